//! The benchmark's floor: a FLoM-protocol server that does nothing but the exchange itself
//! (accept, read the lock, answer rc 0, read the unlock and the client's EOF, close), so
//! `latch bench` against it measures what one-connection-per-lock costs on this machine.
//!
//! Usage: floor_server SOCKET [THREADS]  (a pool of threads blocking in accept, 8 by
//! default). The pool's size matters: the kernel wakes the thread that has waited longest
//! in accept, so a big pool serves every connection from a cold thread (64 threads were
//! half as fast as 4 with one client here); `scripts/bench-daemon.sh` runs the sizes that
//! were fastest.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

const ANSWER: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?><msg level=\"3\" verb=\"1\" step=\"16\"><session peerid=\"floor\"/><answer rc=\"0\"/></msg>";

fn serve(mut s: UnixStream) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    // The lock request ends at the first "</msg>".
    while !seen.windows(6).any(|w| w == b"</msg>") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        seen.extend_from_slice(&buf[..n]);
    }
    s.write_all(ANSWER)?;
    // Then the unlock, then EOF.
    while s.read(&mut buf)? > 0 {}
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: floor_server SOCKET [THREADS]");
        std::process::exit(1);
    };
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(8);
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("floor_server: cannot listen on {path}: {e}");
            std::process::exit(1);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for conn in listener.incoming().flatten() {
                    let _ = serve(conn);
                }
            });
        }
    });
}
