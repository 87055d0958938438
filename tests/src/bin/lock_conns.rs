//! A client process that holds several connections to a latch daemon at once, as a program
//! using libflom with two handles does: the deadlock tests need one process that holds a
//! lock on one connection while it waits on another.
//!
//! Usage: `lock_conns SOCKET`, then one request per line on stdin: `NAME [MODE [QUANTITY]]`
//! (MODE is FLoM's number 0-5, `-` for none). Each line opens a new connection and sends the
//! lock request; the first answer is printed as `granted NAME` (rc 0), `queued NAME` (rc 1)
//! or `rc N NAME`. A line `-NAME` closes the latest connection that asked for NAME (the
//! daemon drops its wait or releases its lock) and prints `closed NAME`. At the end of stdin
//! it exits, and the daemon releases everything.

#![forbid(unsafe_code)]

use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;

const XML_DECL: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(socket), None) = (args.next(), args.next()) else {
        eprintln!("usage: lock_conns SOCKET < requests");
        std::process::exit(2);
    };
    let mut held: Vec<(String, UnixStream)> = Vec::new();
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap_or_else(|e| fail(&format!("reading stdin: {e}")));
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        if let Some(name) = name.strip_prefix('-') {
            let at = held
                .iter()
                .rposition(|(asked, _)| asked == name)
                .unwrap_or_else(|| fail(&format!("no connection asked for {name}")));
            let (_, conn) = held.remove(at);
            let _ = conn.shutdown(std::net::Shutdown::Both);
            let mut out = stdout.lock();
            let _ = writeln!(out, "closed {name}");
            let _ = out.flush();
            continue;
        }
        let mode = words.next().filter(|m| *m != "-");
        let quantity = words.next();
        let mut conn = UnixStream::connect(&socket)
            .unwrap_or_else(|e| fail(&format!("connecting to {socket}: {e}")));
        conn.write_all(request(name, mode, quantity).as_bytes())
            .unwrap_or_else(|e| fail(&format!("sending the request for {name}: {e}")));
        let rc = first_rc(&mut conn).unwrap_or_else(|| fail(&format!("no answer for {name}")));
        let said = match rc {
            0 => format!("granted {name}"),
            1 => format!("queued {name}"),
            rc => format!("rc {rc} {name}"),
        };
        let mut out = stdout.lock();
        let _ = writeln!(out, "{said}");
        let _ = out.flush();
        held.push((name.to_owned(), conn));
    }
}

/// A lock request as the flom client sends it.
fn request(name: &str, mode: Option<&str>, quantity: Option<&str>) -> String {
    let mode = mode.map(|m| format!(r#" mode="{m}""#)).unwrap_or_default();
    let quantity = quantity
        .map(|q| format!(r#" quantity="{q}""#))
        .unwrap_or_default();
    format!(
        r#"{XML_DECL}<msg level="3" verb="1" step="8"><session peerid="lock_conns"/><resource name="{}"{mode}{quantity} wait="1" create="1" lifespan="0"/></msg>"#,
        base64(name.as_bytes())
    )
}

/// The `rc` of the first answer on `conn`.
fn first_rc(conn: &mut UnixStream) -> Option<i32> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.ends_with(b"</msg>") {
        let n = conn.read(&mut buf).ok().filter(|&n| n > 0)?;
        got.extend_from_slice(buf.get(..n)?);
    }
    let text = String::from_utf8_lossy(&got);
    text.split("rc=\"").nth(1)?.split('"').next()?.parse().ok()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn fail(why: &str) -> ! {
    eprintln!("lock_conns: {why}");
    std::process::exit(1);
}
