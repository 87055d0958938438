//! `latch ping|status|state|events`: the admin API's command-line client.
//!
//! Exit codes: 0 answered; 2 no daemon at the endpoint; 3 the daemon did not answer in
//! time (it may be wedged: try `latch-probe`); 1 anything else.
//!
//! Sends one request and prints the replies; never speaks FLoM's protocol.

#![forbid(unsafe_code)]

use super::args::AdminArgs;
use super::stream::{connect, is_timeout, ClientStream};
use latch::net::Endpoint;
use latch_probe_common::doc::{EventDoc, StateDoc};
use std::io::{self, BufRead, BufReader, Write};
use std::time::Duration;

pub(crate) const EXIT_NO_DAEMON: i32 = 2;
pub(crate) const EXIT_TIMEOUT: i32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Ping,
    Status,
    State,
    Events,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Ping => "ping",
            Op::Status => "status",
            Op::State => "state",
            Op::Events => "events",
        }
    }
}

pub(crate) fn run(endpoint: &Endpoint, op: Op, args: &AdminArgs) -> i32 {
    match talk(endpoint, op, args) {
        Ok(()) => 0,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            eprintln!(
                "latch: no daemon answers at {endpoint} ({e}); start one with `latch daemon`"
            );
            EXIT_NO_DAEMON
        }
        Err(e) if is_timeout(&e) => {
            eprintln!(
                "latch: the daemon at {endpoint} did not answer within {} ms; it may be wedged: \
                 `latch-probe dump --pid PID` reads its state without its help",
                args.timeout_ms
            );
            EXIT_TIMEOUT
        }
        Err(e) => {
            eprintln!("latch: {} at {endpoint} failed: {e}", op.name());
            1
        }
    }
}

fn talk(endpoint: &Endpoint, op: Op, args: &AdminArgs) -> io::Result<()> {
    let mut stream = connect(endpoint)?;
    writeln!(stream, "{{\"op\":\"{}\"}}", op.name())?;
    if op != Op::Events {
        set_timeout(&stream, Some(Duration::from_millis(args.timeout_ms.max(1))))?;
    }
    let mut lines = BufReader::new(stream).lines();
    let mut out = io::stdout().lock();
    loop {
        let Some(line) = lines.next() else {
            return if op == Op::Events {
                Ok(())
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        };
        let line = line?;
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(&line) {
            if let Some(err) = o.get("error") {
                return Err(io::Error::other(format!("daemon said: {err}")));
            }
        }
        if args.json {
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}", human(op, &line))?;
        }
        out.flush()?;
        if op != Op::Events {
            return Ok(());
        }
    }
}

fn set_timeout(stream: &ClientStream, t: Option<Duration>) -> io::Result<()> {
    stream.set_read_timeout(t)
}

/// A reply made readable; falls back to the JSON itself if it does not parse.
fn human(op: Op, line: &str) -> String {
    match op {
        Op::State => serde_json::from_str::<StateDoc>(line)
            .map_or_else(|_| line.to_owned(), |d| render_state(&d)),
        Op::Events => {
            serde_json::from_str::<EventDoc>(line).map_or_else(|_| line.to_owned(), |e| e.line())
        }
        Op::Ping | Op::Status => {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            match v.as_object() {
                Some(o) => o
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                None => line.to_owned(),
            }
        }
    }
}

pub(crate) fn render_state(d: &StateDoc) -> String {
    let header = format!(
        "daemon pid {} version {} generation {}\n",
        d.pid, d.version, d.generation
    );
    (header + &d.entries_text()).trim_end().to_owned()
}
