//! Latch: a FLoM-compatible lock daemon and its client, built to be probed from outside.
//!
//! The data flows one way: [`wire`] bytes → [`server`] → [`engine`] (deciding with
//! [`rules`], changing through [`change`]) → the [`table`] behind one static. The admin
//! API ([`admin`]) and the `events` stream ([`hub`]) read it; the flom-compatible client
//! ([`client`]), the admin client ([`admin_client`]) and the load generator ([`bench`])
//! talk to it over the wire like anybody else.

pub mod admin;
pub mod admin_client;
pub mod autostart;
pub mod bench;
pub mod change;
pub mod cli;
pub mod client;
pub mod engine;
pub mod hub;
pub mod journal;
pub mod net;
pub mod resource;
pub mod rules;
pub mod server;
pub mod snapshot;
pub mod table;
pub mod timefmt;
pub mod wire;
