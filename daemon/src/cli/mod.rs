//! The `latch` binary's side: the command line and everything that acts as a client of the
//! daemon (the flom-compatible client, the admin client, the load generator), and the
//! start-up of a daemon from its options.
//!
//! Only these modules know clap; they lower its arguments to the plain values the library
//! takes ([`latch::server::Config`], [`latch::wire::LockMsg`]). The library never imports
//! from here.

pub(crate) mod admin_client;
pub(crate) mod args;
pub(crate) mod autostart;
pub(crate) mod bench;
pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod debug_feature;
pub(crate) mod discover;
pub(crate) mod exit;
pub(crate) mod flom;
pub(crate) mod keyfile;
pub(crate) mod options;
pub(crate) mod session;
pub(crate) mod signals;
pub(crate) mod stream;
pub(crate) mod trace;
pub(crate) mod vfs;
