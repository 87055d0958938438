//! Latch: a FLoM-compatible lock daemon, built to be probed from outside.
//!
//! The data flows one way: [`wire`] bytes → [`server`] → [`engine`] (deciding with
//! [`rules`], changing through [`change`]) → the [`table`] behind one static. The admin
//! API ([`admin`]) and the `events` stream ([`hub`]) read it. The command line, the
//! flom-compatible client, the admin client and the load generator are the `latch`
//! binary's (`src/cli/`): they talk to the daemon over the wire like anybody else, and
//! hand the library plain values ([`server::Config`], [`wire::LockMsg`]), never clap's.

pub mod admin;
pub mod change;
pub mod discovery;
pub mod engine;
pub mod hub;
pub mod journal;
pub mod net;
pub mod rules;
pub mod server;
pub mod snapshot;
pub mod table;
pub mod timefmt;
pub mod tls;
pub mod wire;
