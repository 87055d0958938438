//! flom's command line as flom reads it: the configuration files first, then each option
//! over them, in flom's order and with flom's messages (`-l` and `-e` by substring, the
//! reserved and invalid resource names, a negative quantity); then the check of the whole
//! and its lowering to the plain [`Job`] the client runs.
//!
//! Interprets and reports bad values; talks to no daemon.

#![forbid(unsafe_code)]

use super::args::{resolve_endpoint, scoped, EndpointArgs, FlomArgs, LockArgs};
use super::autostart::Route;
use super::client::{Job, LockJob, TlsJob, Trace};
use super::config::{self, parse_bool, parse_mode, Settings};
use super::debug_feature::Feature;
use super::discover::{Discovery, Multicast};
use super::exit;
use super::signals;
use super::vfs;
use latch::net::Keepalive;
use latch::tls::TlsFiles;
use latch::wire::LockMsg;
use latch_probe_common::resource;
use std::ffi::OsString;
use std::path::PathBuf;

/// The effective configuration: flom's files, then the command line over them; `Err` is
/// the exit status, its message printed (the checks, their messages and their order are
/// flom's).
pub(crate) fn settings(
    endpoint: &EndpointArgs,
    lock: &LockArgs,
    flom: &FlomArgs,
) -> Result<Settings, i32> {
    let mut s = match Settings::load(flom.config_file.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("latch: {e}");
            return Err(exit::ERROR);
        }
    };
    if let Some(file) = &flom.daemon_trace_file {
        s.daemon_trace_file = Some(file.clone());
    }
    if let Some(file) = &flom.command_trace_file {
        s.command_trace_file = Some(file.clone());
    }
    if flom.verbose {
        s.verbose = true;
    }
    if let Some(name) = &lock.resource {
        if name == resource::DEFAULT_RESOURCE {
            println!("ERROR: '{name}' is a reserved resource name and can not be set by user");
            eprintln!("flom_config_set_resource_name: ret_cod=-14");
            return Err(exit::ERROR);
        }
        if !config::valid_resource_name(name) {
            println!("ERROR: '{name}' is not a valid name for a resource");
            eprintln!("flom_config_set_resource_name: ret_cod=-14");
            return Err(exit::ERROR);
        }
        s.resource_name = name.clone();
    }
    match lock.quantity {
        Some(q) if q < 0 => {
            eprintln!("Resource quantity ignored because negative values ({q}) are meaningless")
        }
        // flom reads -q 0 as "not given".
        Some(q) if q > 0 => s.resource_quantity = q,
        _ => {}
    }
    if let Some(t) = lock.timeout_ms {
        s.resource_timeout = t;
    }
    if let Some(text) = &lock.mode {
        let Some(mode) = parse_mode(text) else {
            eprintln!("lock-mode: '{text}' is an invalid value");
            return Err(exit::ERROR);
        };
        s.lock_mode = mode;
    }
    if let Some(text) = &lock.create {
        let Some(create) = parse_bool(text) else {
            println!("resource-create: '{text}' is an invalid value");
            return Err(exit::ERROR);
        };
        s.resource_create = create;
    }
    if let Some(i) = lock.resource_lifespan_ms {
        s.resource_idle_lifespan = i;
    }
    if let Some(socket) = &endpoint.socket {
        let text = socket.to_string_lossy();
        if !config::valid_socket_name(&text) {
            eprintln!("socket-name: '{text}' is an invalid value");
            return Err(exit::ERROR);
        }
        s.socket_name = Some(text.into_owned());
    }
    if let Some(d) = lock.daemon_lifespan_ms {
        s.daemon_lifespan = d;
    }
    if let Some(a) = &endpoint.address {
        s.unicast_address = Some(a.clone());
    }
    if let Some(p) = endpoint.port {
        s.unicast_port = p;
    }
    lay_discovery(&mut s, flom);
    if let Some(dir) = &flom.mount_point_vfs {
        s.mount_point_vfs = Some(dir.clone());
    }
    if let Some(v) = flom.tcp_keepalive_time {
        s.tcp_keepalive_time = v;
    }
    if let Some(v) = flom.tcp_keepalive_intvl {
        s.tcp_keepalive_intvl = v;
    }
    if let Some(v) = flom.tcp_keepalive_probes {
        s.tcp_keepalive_probes = v;
    }
    if !flom.ignore_signal.is_empty() {
        s.ignored_signals = signals::parse_set(&flom.ignore_signal);
    }
    // After the signals, before the trace file: flom's order.
    lay_tls(&mut s, flom)?;
    if let Some(text) = &flom.append_trace_file {
        let Some(append) = parse_bool(text) else {
            eprintln!("append-trace-file: '{text}' is an invalid value");
            return Err(exit::ERROR);
        };
        s.append_trace_file = append;
    }
    Ok(s)
}

/// Multicast discovery's options over the files.
fn lay_discovery(s: &mut Settings, flom: &FlomArgs) {
    if let Some(v) = &flom.multicast_address {
        s.multicast_address = Some(v.clone());
    }
    if let Some(v) = flom.multicast_port {
        s.multicast_port = v;
    }
    if let Some(v) = &flom.network_interface {
        s.network_interface = Some(v.clone());
    }
    if let Some(v) = flom.discovery_attempts {
        s.discovery_attempts = v;
    }
    if let Some(v) = flom.discovery_timeout {
        s.discovery_timeout = v;
    }
    if let Some(v) = flom.discovery_ttl {
        s.discovery_ttl = v;
    }
}

/// TLS's options over the files.
fn lay_tls(s: &mut Settings, flom: &FlomArgs) -> Result<(), i32> {
    if let Some(v) = &flom.tls_certificate {
        s.tls_certificate = Some(v.clone());
    }
    if let Some(v) = &flom.tls_private_key {
        s.tls_private_key = Some(v.clone());
    }
    if let Some(v) = &flom.tls_ca_certificate {
        s.tls_ca_certificate = Some(v.clone());
    }
    if let Some(text) = &flom.tls_check_peer_id {
        let Some(check) = parse_bool(text) else {
            println!("tls-check-peer-id: '{text}' is an invalid value");
            return Err(exit::ERROR);
        };
        s.tls_check_peer_id = check;
    }
    Ok(())
}

/// flom's check of the whole configuration (`flom_config_check`), then the [`Job`]; `Err`
/// is the exit status, its message printed.
/// A `debug_feature` (`--debug-feature`) comes after the checks and before `-x`/`-X`, as in
/// flom's `main`.
pub(crate) fn lower(
    s: &Settings,
    lock: &LockArgs,
    debug_feature: Option<&str>,
    command: &[OsString],
) -> Result<Job, i32> {
    if s.socket_name.is_some() && (s.unicast_address.is_some() || s.multicast_address.is_some()) {
        println!("ERROR: flom can not be configured for local (UNIX socket) and network (TCP-UDP/IP) communication at the same time.");
        eprintln!("Configuration is not valid, cannot go on!");
        return Err(exit::ERROR);
    }
    let tls = match (
        &s.tls_certificate,
        &s.tls_private_key,
        &s.tls_ca_certificate,
    ) {
        (Some(certificate), Some(private_key), Some(ca_certificate)) => Some(TlsJob {
            files: TlsFiles {
                certificate: certificate.into(),
                private_key: private_key.into(),
                ca_certificate: ca_certificate.into(),
            },
            check_peer_id: s.tls_check_peer_id,
        }),
        _ if s.tls_check_peer_id => {
            println!(
                "ERROR: TLS check peer id can not be specified without full TLS configuration."
            );
            eprintln!("Configuration is not valid, cannot go on!");
            return Err(exit::ERROR);
        }
        // FLoM speaks TLS only with all three files.
        _ => None,
    };
    let multicast = s.multicast_address.as_ref().map(|address| Multicast {
        address: address.clone(),
        port: s.multicast_port,
        interface: s.network_interface.clone(),
    });
    let route = match (&multicast, &s.socket_name, &s.unicast_address) {
        // FLoM's order: a socket, else a unicast address, else discovery.
        (Some(m), None, None) => Route::Discover(Discovery {
            multicast: m.clone(),
            attempts: s.discovery_attempts,
            timeout_ms: s.discovery_timeout,
            ttl: s.discovery_ttl,
            verbose: s.verbose,
        }),
        _ => match resolve_endpoint(
            s.socket_name.as_ref().map(PathBuf::from),
            s.unicast_address
                .clone()
                .map(|a| scoped(a, s.network_interface.as_deref())),
            s.unicast_port,
        ) {
            Ok(endpoint) => Route::Direct(endpoint),
            Err(e) => {
                eprintln!("latch: {e}");
                return Err(exit::ERROR);
            }
        },
    };
    if let Some(name) = debug_feature {
        return match Feature::named(name) {
            Ok(feature) => Ok(Job::Debug {
                feature,
                route,
                tls,
            }),
            Err(e) => {
                eprintln!("latch: {e}");
                // flom's status for any debug feature that did not work.
                Err(1)
            }
        };
    }
    if lock.quiesce || lock.immediate {
        return Ok(Job::Shutdown {
            route,
            immediate: lock.immediate,
            tls,
        });
    }
    if command.is_empty() {
        eprintln!("No command to execute!");
        return Err(exit::CANT_EXEC);
    }
    let Some(spec) = resource::classify(&s.resource_name) else {
        // Both the files and the command line checked the name; the default is valid.
        println!(
            "ERROR: '{}' is not a valid name for a resource",
            s.resource_name
        );
        return Err(exit::ERROR);
    };
    let resource_type = spec.resource_type();
    // Checked here, where it can be said: the daemon this client may start has no stderr.
    let vfs = s.mount_point_vfs.as_deref().map(absolute);
    if let Some(dir) = &vfs {
        if let Err(e) = vfs::check(dir) {
            eprintln!("latch: {e}");
            return Err(exit::ERROR);
        }
    }
    let msg = LockMsg {
        name: s.resource_name.clone(),
        mode: resource_type.has_mode().then_some(s.lock_mode.wire()),
        wait: s.resource_timeout != 0,
        quantity: resource_type
            .has_quantity()
            .then_some(i64::from(s.resource_quantity)),
        create: s.resource_create,
        lifespan_ms: i64::from(s.resource_idle_lifespan),
    };
    Ok(Job::Lock(Box::new(LockJob {
        route,
        multicast,
        msg,
        timeout_ms: i64::from(s.resource_timeout),
        daemon_lifespan_ms: i64::from(s.daemon_lifespan),
        command: command.to_vec(),
        ignored_signals: s.ignored_signals.clone(),
        keepalive: Keepalive {
            time: s.tcp_keepalive_time,
            intvl: s.tcp_keepalive_intvl,
            probes: s.tcp_keepalive_probes,
        },
        // Absolute, as flom asks: the daemon changes directory to / before opening it.
        daemon_trace: s.daemon_trace_file.as_ref().map(|path| Trace {
            path: absolute(path),
            append: s.append_trace_file,
        }),
        vfs,
        tls,
    })))
}

/// Absolute, as flom asks of its paths: a client-started daemon changes directory to /.
fn absolute(path: &str) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path))
}
