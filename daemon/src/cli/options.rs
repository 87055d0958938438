//! The flom client's options as flom reads them (`-l`, `-e` by substring, the reserved and
//! invalid resource names, a negative quantity), lowered from clap's arguments to the plain
//! [`Job`] the client runs.
//!
//! Interprets and reports bad values; talks to no daemon.

#![forbid(unsafe_code)]

use super::args::{EndpointArgs, LockArgs};
use super::client::{Job, LockJob};
use super::exit;
use latch::wire::LockMsg;
use latch_probe_common::resource::{self, DEFAULT_RESOURCE};
use latch_probe_common::LockMode;
use std::ffi::OsString;

/// flom's options as flom reads them; `Err` is the exit status, its message printed (the
/// checks, their messages and their order are flom's).
pub fn lower(endpoint: &EndpointArgs, args: &LockArgs, command: &[OsString]) -> Result<Job, i32> {
    let mode = match args.mode.as_deref().map(|m| (m, parse_mode(m))) {
        Some((text, None)) => {
            eprintln!("lock-mode: '{text}' is an invalid value");
            return Err(exit::ERROR);
        }
        Some((_, Some(m))) => m,
        None => LockMode::EX,
    };
    let create = match args.create.as_deref().map(|c| (c, parse_create(c))) {
        Some((text, None)) => {
            println!("resource-create: '{text}' is an invalid value");
            return Err(exit::ERROR);
        }
        Some((_, Some(c))) => c,
        None => true,
    };
    let name = match args.resource.as_deref() {
        Some(DEFAULT_RESOURCE) => {
            println!("ERROR: '{DEFAULT_RESOURCE}' is a reserved resource name and can not be set by user");
            eprintln!("flom_config_set_resource_name: ret_cod=-14");
            return Err(exit::ERROR);
        }
        Some(n) => n.to_owned(),
        None => DEFAULT_RESOURCE.to_owned(),
    };
    let Some(spec) = resource::classify(&name) else {
        println!("ERROR: '{name}' is not a valid name for a resource");
        eprintln!("flom_config_set_resource_name: ret_cod=-14");
        return Err(exit::ERROR);
    };
    let Ok(endpoint) = endpoint.endpoint() else {
        println!("ERROR: flom can not be configured for local (UNIX socket) and network (TCP-UDP/IP) communication at the same time.");
        eprintln!("Configuration is not valid, cannot go on!");
        return Err(exit::ERROR);
    };
    if args.quiesce || args.immediate {
        return Ok(Job::Shutdown {
            endpoint,
            immediate: args.immediate,
        });
    }
    if command.is_empty() {
        eprintln!("No command to execute!");
        return Err(exit::CANT_EXEC);
    }
    let resource_type = spec.resource_type();
    let quantity = match args.quantity {
        Some(q) if q < 0 => {
            eprintln!("Resource quantity ignored because negative values ({q}) are meaningless");
            1
        }
        Some(q) => q,
        None => 1,
    };
    let msg = LockMsg {
        name,
        mode: resource_type.has_mode().then_some(mode.wire()),
        wait: args.timeout_ms != 0,
        quantity: resource_type.has_quantity().then_some(quantity),
        create,
        lifespan_ms: args.resource_lifespan_ms,
    };
    Ok(Job::Lock(LockJob {
        endpoint,
        msg,
        timeout_ms: args.timeout_ms,
        daemon_lifespan_ms: args.daemon_lifespan_ms,
        command: command.to_vec(),
    }))
}

/// flom's `-l`: a case-insensitive substring search, long then short name, in the order
/// NL CR CW PW PR EX (tests/data/flom-transcripts.md, e).
pub fn parse_mode(text: &str) -> Option<LockMode> {
    let lower = text.to_ascii_lowercase();
    [
        LockMode::NL,
        LockMode::CR,
        LockMode::CW,
        LockMode::PW,
        LockMode::PR,
        LockMode::EX,
    ]
    .into_iter()
    .find(|m| {
        lower.contains(&m.long_name().to_ascii_lowercase())
            || lower.contains(&m.short_name().to_ascii_lowercase())
    })
}

/// flom's `-e`: any text containing "no", "yes", "n" or "y" (case-insensitive, in that
/// order) means no/yes/no/yes; anything else is refused.
pub fn parse_create(text: &str) -> Option<bool> {
    let lower = text.to_ascii_lowercase();
    [("no", false), ("yes", true), ("n", false), ("y", true)]
        .into_iter()
        .find(|(word, _)| lower.contains(word))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_as_flom_reads_them() {
        for (text, mode) in [
            ("NL", LockMode::NL),
            ("ConcurrentRead", LockMode::CR),
            ("cw", LockMode::CW),
            ("ProtectedRead", LockMode::PR),
            ("pw", LockMode::PW),
            ("Ex", LockMode::EX),
            ("EXCL", LockMode::EX),
            ("exclusive", LockMode::EX),
        ] {
            assert_eq!(parse_mode(text), Some(mode), "{text}");
        }
        assert_eq!(parse_mode("xx"), None);
        assert_eq!(parse_mode(""), None);
    }

    #[test]
    fn create_as_flom_reads_it() {
        assert_eq!(parse_create("no"), Some(false));
        assert_eq!(parse_create("yes"), Some(true));
        assert_eq!(parse_create("maybe"), Some(true));
        assert_eq!(parse_create("xyz"), Some(true));
        assert_eq!(parse_create("n"), Some(false));
        for bad in ["1", "0", "true", "false", ""] {
            assert_eq!(parse_create(bad), None, "{bad}");
        }
    }
}
