//! The `latch` binary's side: the command line and everything that acts as a client of the
//! daemon (the flom-compatible client, the admin client, the load generator), and the
//! start-up of a daemon from its options.
//!
//! Only these modules know clap; they lower its arguments to the plain values the library
//! takes ([`latch::server::Config`], [`latch::wire::LockMsg`]). The library never imports
//! from here.

pub mod admin_client;
pub mod args;
pub mod autostart;
pub mod bench;
pub mod client;
pub mod config;
pub mod daemon;
pub mod discover;
pub mod exit;
pub mod flom;
pub mod keyfile;
pub mod options;
pub mod session;
pub mod signals;
pub mod stream;
pub mod trace;
pub mod vfs;
