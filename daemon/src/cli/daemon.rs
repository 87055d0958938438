//! `latch daemon`: the daemon's options lowered to a [`Config`], the detaching of a
//! client-started daemon, logging, and the server run to its end.
//!
//! Starts and reports; what the daemon does is [`latch::server`]'s.

#![forbid(unsafe_code)]

use super::args::{scoped, DaemonArgs, EndpointArgs, EndpointError};
use super::autostart;
use super::discover::{self, Multicast};
use super::exit;
use super::session::machine_id;
use super::trace;
use super::vfs::{self, Vfs};
use latch::net::{raise_fd_limit, Endpoint, Keepalive};
use latch::server::{Config, Server};
use latch::table::VERSION;
use latch::tls::Tls;
use std::sync::Arc;

/// Where the daemon listens: as `-s`, `-a` (scoped by `-n`) and `-p` say, or, with `-A`
/// and neither `-s` nor `-a`, on TCP on every address of the group's family, on a port the
/// kernel chooses (FLoM's `flom_listen_tcp_automatic`).
pub(crate) fn endpoint(given: &EndpointArgs, args: &DaemonArgs) -> Result<Endpoint, EndpointError> {
    match (&args.multicast_address, &given.socket, &given.address) {
        (Some(_), None, None) => {
            let v6 = multicast(args)
                .and_then(|m| discover::resolve(&m).ok())
                .is_some_and(|g| g.address.is_ipv6());
            Ok(Endpoint::Tcp(if v6 { "::" } else { "0.0.0.0" }.into(), 0))
        }
        _ => Ok(match given.endpoint()? {
            Endpoint::Tcp(a, p) => Endpoint::Tcp(scoped(a, args.network_interface.as_deref()), p),
            unix => unix,
        }),
    }
}

fn multicast(args: &DaemonArgs) -> Option<Multicast> {
    args.multicast_address.as_ref().map(|address| Multicast {
        address: address.clone(),
        port: args.multicast_port,
        interface: args.network_interface.clone(),
    })
}

/// Runs a daemon on `endpoint` until it exits; returns the process exit status.
pub(crate) fn run(endpoint: Endpoint, args: &DaemonArgs) -> i32 {
    let mut hang_on_lock = None;
    for feature in &args.debug_feature {
        match feature.split_once('=') {
            Some(("hang-on-lock", name)) => hang_on_lock = Some(name.to_owned()),
            _ => {
                eprintln!(
                    "latch daemon: unknown --debug-feature {feature:?} (known: hang-on-lock=NAME)"
                );
                return exit::ERROR;
            }
        }
    }
    let discovery = match multicast(args).map(|m| discover::resolve(&m)).transpose() {
        Ok(group) => group,
        Err(e) => {
            eprintln!("latch daemon: {e}");
            return exit::ERROR;
        }
    };
    // Before anything is bound or started: a daemon that cannot serve -m does not start.
    if let Some(dir) = &args.mount_point_vfs {
        if let Err(e) = vfs::check(dir) {
            eprintln!("latch daemon: {e}");
            return exit::ERROR;
        }
    }
    // A client-started daemon detaches first, while it has no threads, and gives way if
    // another starter holds the start-up lock.
    let _startup_lock = if args.spawned {
        match autostart::detach_and_lock(&autostart::lock_path(&endpoint, discovery.as_ref())) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("latch daemon: cannot take the start-up lock: {e}");
                return exit::ERROR;
            }
        }
    } else {
        None
    };
    if let Err(e) = init_logging(args) {
        eprintln!("latch daemon: {e}");
        return exit::ERROR;
    }
    raise_fd_limit();
    let tls = match args
        .tls_files()
        .map(|files| Tls::server(&files).map_err(|e| (files, e)))
    {
        None => None,
        Some(Ok(tls)) => Some(Arc::new(tls)),
        Some(Err((files, e))) => {
            eprintln!(
                "latch daemon: cannot set up TLS from {} (certificate), {} (key) and {} (CA): ret_cod={} ({e})",
                files.certificate.display(),
                files.private_key.display(),
                files.ca_certificate.display(),
                e.rc()
            );
            tracing::error!("cannot set up TLS: ret_cod={} ({e})", e.rc());
            return exit::ERROR;
        }
    };
    let config = Config {
        endpoint: endpoint.clone(),
        lifespan_ms: args.lifespan_ms,
        hang_on_lock,
        peerid: machine_id(),
        tcp_keepalive: Keepalive {
            time: args.tcp_keepalive_time,
            intvl: args.tcp_keepalive_intvl,
            probes: args.tcp_keepalive_probes,
        },
        discovery: discovery.clone(),
        tls,
        tls_check_peer_id: args.tls_check_peer_id,
    };
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("latch daemon: cannot listen on {endpoint}: {e}");
            return exit::ERROR;
        }
    };
    // After the bind, so that a daemon that cannot listen leaves no probe behind.
    let vfs = match &args.mount_point_vfs {
        Some(dir) => match Vfs::start(dir) {
            Ok(vfs) => Some(vfs),
            Err(e) => {
                eprintln!("latch daemon: {e}");
                tracing::error!("{e}");
                return exit::ERROR;
            }
        },
        None => None,
    };
    if args.spawned {
        autostart::report_ready();
    }
    let listening = server
        .tcp_addr()
        .map_or_else(|| endpoint.to_string(), |a| a.to_string());
    match &discovery {
        Some(g) => tracing::info!(
            "latch {VERSION} listening on {listening}, answering discovery on {}/{}, pid {}",
            g.address,
            g.port,
            std::process::id()
        ),
        None => tracing::info!(
            "latch {VERSION} listening on {listening}, pid {}",
            std::process::id()
        ),
    }
    let ran = server.run();
    // The tree goes before the daemon does, however the daemon ends.
    if let Some(vfs) = vfs {
        vfs.stop();
    }
    match ran {
        Ok(why) => {
            tracing::info!("exiting: {why:?}");
            0
        }
        Err(e) => {
            eprintln!("latch daemon: {e}");
            exit::ERROR
        }
    }
}

/// Logs to stderr, or to `--trace-file`; `LATCH_LOG` sets the level (error, warn, info,
/// debug). A client-started daemon has no stderr to speak of, so it stays quiet unless
/// asked (a trace file is asking: info).
fn init_logging(args: &DaemonArgs) -> Result<(), trace::TraceError> {
    let default = match (&args.trace_file, args.spawned) {
        (Some(_), _) => "info",
        (None, true) => "off",
        (None, false) => "warn",
    };
    trace::init(args.trace_file.as_deref(), args.append_trace_file, default)
}
