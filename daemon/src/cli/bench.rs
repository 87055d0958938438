//! `latch bench`: a load generator that speaks FLoM's protocol as a flom client does (one
//! connection per lock: connect, lock, answer, unlock, close), so it can be pointed at any
//! FLoM-protocol daemon; and `--hold`, which fills a daemon with held locks and waiters for
//! the probe's benchmarks.
//!
//! Measures the daemon from outside, over the wire like any client: it never calls into the
//! engine or the server.

#![forbid(unsafe_code)]

use super::args::BenchArgs;
use super::session::machine_id;
use super::stream::{connect, ClientStream};
use anyhow::{bail, Context, Result};
use latch::net::{raise_fd_limit, Endpoint};
use latch::wire::framer::Framer;
use latch::wire::write::{format_lock, format_unlock};
use latch::wire::{self, LockMsg, Rc};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Connections one `--hold` worker process keeps open (the per-process open-files limit
/// here is 20,000).
const HOLD_PER_PROCESS: usize = 8_000;

#[derive(serde::Serialize)]
struct Rate {
    clients: usize,
    ops: usize,
    secs: f64,
    ops_per_sec: f64,
}

pub(crate) fn run(endpoint: &Endpoint, args: &BenchArgs) -> Result<()> {
    raise_fd_limit();
    if let Some(slice) = &args.hold_slice {
        return hold_worker(endpoint, slice, args.waiters);
    }
    if args.hold {
        return hold(endpoint, args);
    }
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let per_client = args.ops / args.clients;
    let peerid = machine_id();
    let start = Instant::now();
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.clients)
            .map(|c| {
                let name = if args.same_resource {
                    "bench".to_owned()
                } else {
                    format!("bench{c}")
                };
                let peerid = &peerid;
                s.spawn(move || (0..per_client).try_for_each(|_| one_lock(endpoint, &name, peerid)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a client thread panicked"))
            })
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    results.into_iter().collect::<Result<Vec<()>>>()?;
    let ops = per_client * args.clients;
    let rate = Rate {
        clients: args.clients,
        ops,
        secs,
        ops_per_sec: ops as f64 / secs,
    };
    if args.json {
        println!("{}", serde_json::to_string(&rate)?);
    } else {
        println!(
            "{} clients, {} lock+unlock in {:.3} s: {:.0}/s",
            rate.clients, rate.ops, rate.secs, rate.ops_per_sec
        );
    }
    Ok(())
}

fn lock_msg(name: &str) -> LockMsg {
    LockMsg {
        name: name.to_owned(),
        mode: Some(latch_probe_common::LockMode::EX.wire()),
        wait: true,
        quantity: None,
        create: true,
        lifespan_ms: 0,
    }
}

/// One flom-style lock: connect, lock, wait for the grant, unlock, half-close, wait for
/// the daemon's close.
fn one_lock(endpoint: &Endpoint, name: &str, peerid: &str) -> Result<()> {
    let mut s = connect(endpoint).with_context(|| format!("connect to {endpoint}"))?;
    s.send_message(&format_lock(peerid, &lock_msg(name)))?;
    let mut framer = Framer::default();
    loop {
        let answer = wire::parse_answer(&read_message(&mut s, &mut framer)?)?;
        match Rc::try_from(answer.rc) {
            Ok(Rc::Granted) => break,
            Ok(Rc::Queued | Rc::Incubated) => continue,
            _ => bail!("lock of {name} answered rc {}", answer.rc),
        }
    }
    s.send_message(&format_unlock(name, false))?;
    s.shutdown(Shutdown::Write)?;
    let mut sink = [0u8; 64];
    while s.read(&mut sink)? > 0 {}
    Ok(())
}

fn read_message(s: &mut ClientStream, framer: &mut Framer) -> Result<Vec<u8>> {
    let mut buf = [0u8; 512];
    loop {
        if let Some(m) = framer.next_message()? {
            return Ok(m);
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            bail!("the daemon closed the connection before answering");
        }
        framer.push(&buf[..n]);
    }
}

/// Spreads the held connections over worker processes and waits to be killed.
fn hold(endpoint: &Endpoint, args: &BenchArgs) -> Result<()> {
    let per_locker = 1 + args.waiters;
    let lockers_per_worker = (HOLD_PER_PROCESS / per_locker).max(1);
    let exe = std::env::current_exe()?;
    let mut workers = Vec::new();
    let mut start = 0;
    while start < args.lockers {
        let count = lockers_per_worker.min(args.lockers - start);
        let mut cmd = Command::new(&exe);
        match endpoint {
            Endpoint::Unix(p) => cmd.arg("-s").arg(p),
            Endpoint::Tcp(a, p) => cmd.arg("-a").arg(a).arg("-p").arg(p.to_string()),
        };
        cmd.args([
            "bench",
            "--hold",
            "--waiters",
            &args.waiters.to_string(),
            "--hold-slice",
            &format!("{start}:{count}"),
        ]);
        workers.push(
            cmd.stdout(Stdio::piped())
                .spawn()
                .context("start a --hold worker")?,
        );
        start += count;
    }
    let kill_all = |workers: &mut Vec<std::process::Child>| {
        for w in workers.iter_mut() {
            let _ = w.kill();
            let _ = w.wait();
        }
    };
    for w in workers.iter_mut() {
        let mut line = String::new();
        if let Some(out) = w.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        if !line.starts_with("ready") {
            kill_all(&mut workers);
            bail!("a --hold worker failed before it was ready");
        }
    }
    println!(
        "ready: {} lockers, {} connections, pid {}",
        args.lockers,
        args.lockers * per_locker,
        std::process::id()
    );
    std::io::stdout().flush()?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])?;
    signals.forever().next();
    kill_all(&mut workers);
    Ok(())
}

fn hold_worker(endpoint: &Endpoint, slice: &str, waiters: usize) -> Result<()> {
    let (start, count) = slice
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        .context("--hold-slice wants START:COUNT")?;
    let peerid = machine_id();
    let mut held = Vec::with_capacity(count * (1 + waiters));
    for i in start..start + count {
        let name = format!("hold{i}");
        for w in 0..=waiters {
            let mut s = connect(endpoint).with_context(|| format!("connect to {endpoint}"))?;
            s.send_message(&format_lock(&peerid, &lock_msg(&name)))?;
            let answer = wire::parse_answer(&read_message(&mut s, &mut Framer::default())?)?;
            let want = if w == 0 { Rc::Granted } else { Rc::Queued };
            if Rc::try_from(answer.rc) != Ok(want) {
                bail!(
                    "lock {w} of {name} answered rc {}, expected {}",
                    answer.rc,
                    want as i32
                );
            }
            held.push(s);
        }
    }
    println!("ready");
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}
