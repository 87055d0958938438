//! The probe tells the truth: at quiescent points of seeded random workloads, the state the
//! probe reads from outside equals the daemon's own `latch state --json` (the `source` field
//! aside), on the debug build (at least 200 points), the release build and a build with
//! nightly's `-Zrandomize-layout` (at least 20 each), frozen and without freezing.
//!
//! One daemon per build serves every point of its run; each point is a change of a few
//! clients: raw FLoM connections from this process (fast: no process per client; closing
//! the socket releases or cancels) and now and then a real `latch` client (another peer pid,
//! the real client's `-e no`). All six resource types, every mode, quantities, holders,
//! waiters and incubated requests occur. A point is quiescent when the daemon's state holds
//! exactly the open clients and reads the same before and after the probe (timers, such as
//! an idle locker's expiry, may move it in between: such a point is read again). A request
//! can leave the table after its first answer (an incubated one is refused as impossible
//! when a locker for its resource appears), so every connection's later answers are read
//! too.
//!
//! Every point is read through the probe library (the code `latch-probe dump` runs, with the
//! executable indexed once per build); every [`CLI_EVERY`]th also through the
//! `latch-probe dump --pid P --json` command (it indexes the executable on each run: about
//! two seconds for a debug probe). `LATCH_TRUTH_SEED=N` replays a run; a mismatch prints
//! the seed, the point and both documents.
//!
//! Needs root (ptrace). Every process started is stopped by its pid.

use latch_probe::capture::Capture;
use latch_probe::model::CaptureOptions;
use latch_probe::target::LiveDaemon;
use latch_probe_common::doc::{Source, StateDoc};
use latch_tests::background::Background;
use latch_tests::bins::{latch_bin, Profile};
use latch_tests::daemon::{Daemon, DaemonOptions};
use latch_tests::flom::{answer_rc, base64};
use latch_tests::probe::latch_probe;
use latch_tests::randomized::randomized_latch_bin;
use latch_tests::rng::Rng;
use latch_tests::timeouts::{CHANGE, REPLY};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DEBUG_POINTS: usize = 200;
const OTHER_POINTS: usize = 20;
/// Every this many points, the command line is checked too.
const CLI_EVERY: usize = 40;
/// Every this many points, a real `latch` client comes or goes.
const REAL_CLIENT_EVERY: usize = 7;
/// Open clients at most, so the table stays small and every point cheap.
const MAX_OPEN: usize = 14;

/// The resources a workload asks for: every type, a few of each, some with paths under one
/// hierarchical locker, tight numeric totals and set sizes so that clients queue.
const RESOURCES: &[&str] = &[
    "alpha",
    "beta",
    "num[3]",
    "pair[2]",
    "red.green.blue",
    "left.right",
    "/h/a",
    "/h/b/c",
    "/g",
    "_s_seq[2]",
    "_S_tseq[2]",
    "_t_%H:%M:%S#ffffff[2]",
];

fn seed() -> u64 {
    match std::env::var("LATCH_TRUTH_SEED") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("LATCH_TRUTH_SEED={text:?} is not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

/// One lock request, as the flom client would send it.
struct Request {
    name: String,
    mode: Option<u8>,
    quantity: Option<u64>,
    create: bool,
}

impl Request {
    fn random(rng: &mut Rng) -> Request {
        let name = rng.pick(RESOURCES).to_string();
        let (mode, quantity) = if name.starts_with('/') || name.chars().all(char::is_alphanumeric) {
            (Some(rng.below(6) as u8), None)
        } else if let Some(total) = numeric_total(&name) {
            // Now and then more than the total: the daemon refuses it (impossible).
            (None, Some(1 + rng.below(total as usize + 1) as u64))
        } else {
            (None, None)
        };
        Request {
            name,
            mode,
            quantity,
            // `-e no`: incubated while the resource has no locker.
            create: rng.below(5) != 0,
        }
    }

    fn wire(&self) -> Vec<u8> {
        let name = base64(self.name.as_bytes());
        let mode = self
            .mode
            .map(|m| format!(" mode=\"{m}\""))
            .unwrap_or_default();
        let quantity = self
            .quantity
            .map(|q| format!(" quantity=\"{q}\""))
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><msg level=\"3\" verb=\"1\" step=\"8\">\
             <session peerid=\"probe-truth\"/><resource name=\"{name}\"{mode} wait=\"1\"\
             {quantity} create=\"{}\" lifespan=\"0\"/></msg>",
            u8::from(self.create)
        )
        .into_bytes()
    }
}

/// `name[N]` of a numeric resource (not a sequence or timestamp).
fn numeric_total(name: &str) -> Option<u64> {
    if name.starts_with('_') {
        return None;
    }
    let inner = name.strip_suffix(']')?;
    inner[inner.rfind('[')? + 1..].parse().ok()
}

/// A raw client's connection whose request is in the table, and the bytes of an answer it
/// has begun to read.
struct Conn {
    stream: UnixStream,
    unread: Vec<u8>,
}

impl Conn {
    /// Sends `request` on a new connection and reads the first answer: the connection if the
    /// request is now in the table (granted, queued or incubated).
    fn lock(socket: &Path, request: &Request) -> Option<Conn> {
        let stream = UnixStream::connect(socket)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
        stream.set_read_timeout(Some(REPLY)).unwrap();
        stream.set_write_timeout(Some(REPLY)).unwrap();
        let mut conn = Conn {
            stream,
            unread: Vec::new(),
        };
        conn.stream.write_all(&request.wire()).unwrap();
        let mut buf = [0u8; 512];
        loop {
            if let Some(rc) = conn.next_rc() {
                return in_table(rc).then_some(conn);
            }
            let n = conn
                .stream
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("no answer to a lock of {}: {e}", request.name));
            assert!(n > 0, "the daemon closed a lock of {}", request.name);
            conn.unread.extend_from_slice(&buf[..n]);
            assert!(conn.unread.len() < 64 * 1024, "an endless answer");
        }
    }

    /// Whether the request is still in the table after the answers that came since the last
    /// look: a request can leave it later, as an incubated one refused as impossible when a
    /// locker for its resource appears.
    fn still_in_table(&mut self) -> bool {
        self.stream.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        let open = loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break false,
                Ok(n) => self.unread.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                Err(e) => panic!("reading a raw client's answers: {e}"),
            }
        };
        self.stream.set_nonblocking(false).unwrap();
        let mut present = open;
        while let Some(rc) = self.next_rc() {
            present &= in_table(rc);
        }
        present
    }

    /// The rc of the whole answer at the front of `unread`, which then drops it.
    fn next_rc(&mut self) -> Option<i32> {
        const END: &[u8] = b"</msg>";
        let end = self.unread.windows(END.len()).position(|w| w == END)? + END.len();
        let answer: Vec<u8> = self.unread.drain(..end).collect();
        Some(answer_rc(&answer))
    }
}

/// 0 granted, 1 queued, 2 incubated; anything else leaves no trace in the table.
fn in_table(rc: i32) -> bool {
    matches!(rc, 0..=2)
}

/// `{"op":"state"}` on the admin API: what `latch state --json` prints.
fn daemon_state(socket: &Path) -> StateDoc {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(REPLY)).unwrap();
    stream.write_all(b"{\"op\":\"state\"}\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("the daemon answers state");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a state document ({e}): {line}"))
}

fn entries(doc: &StateDoc) -> usize {
    doc.incubator.len()
        + doc
            .lockers
            .iter()
            .map(|l| l.holders.len() + l.waitings.len())
            .sum::<usize>()
}

/// What the points of a run showed, so a run that never exercised a part of the state
/// says so.
#[derive(Debug, Default)]
struct Coverage {
    types: BTreeSet<&'static str>,
    modes: BTreeSet<&'static str>,
    holders: usize,
    waiters: usize,
    incubated: usize,
    quantities: usize,
    elements: usize,
    peers: BTreeSet<u32>,
}

impl Coverage {
    fn note(&mut self, doc: &StateDoc) {
        for l in &doc.lockers {
            self.types.insert(l.resource_type.name());
            self.holders += l.holders.len();
            self.waiters += l.waitings.len();
            for e in l.holders.iter().chain(&l.waitings) {
                self.modes
                    .extend(e.request.lock_mode.map(|m| m.short_name()));
                self.quantities += usize::from(e.request.quantity.is_some());
                self.elements += usize::from(e.element.is_some());
                self.peers.extend(e.request.peer_pid);
            }
        }
        for i in &doc.incubator {
            self.types.insert(i.resource_type.name());
            self.incubated += 1;
        }
    }

    /// Every resource type and mode, and every kind of entry, were seen.
    fn assert_complete(&self, what: &str) {
        assert_eq!(self.types.len(), 6, "{what}: {self:?}");
        assert_eq!(self.modes.len(), 6, "{what}: {self:?}");
        assert!(
            self.waiters > 0 && self.incubated > 0 && self.quantities > 0 && self.elements > 0,
            "{what}: {self:?}"
        );
        assert!(self.peers.len() > 1, "real clients took part: {self:?}");
    }
}

/// The clients of one run.
struct Workload<'d> {
    daemon: &'d Daemon,
    rng: Rng,
    /// Raw connections whose request is in the table.
    conns: Vec<Conn>,
    /// Real `latch` clients (each holds, waits or incubates until dropped).
    clients: Vec<Background>,
}

impl<'d> Workload<'d> {
    fn new(daemon: &'d Daemon, seed: u64) -> Self {
        Workload {
            daemon,
            rng: Rng::new(seed),
            conns: Vec::new(),
            clients: Vec::new(),
        }
    }

    /// The clients whose request is in the table, after dropping the raw connections the
    /// daemon has since refused.
    fn open(&mut self) -> usize {
        self.conns.retain_mut(Conn::still_in_table);
        self.conns.len() + self.clients.len()
    }

    /// One change: a few clients leave (releasing or cancelling), a few come.
    fn step(&mut self, point: usize) {
        let leaving = self.rng.below(3).min(self.conns.len());
        for _ in 0..leaving {
            let i = self.rng.below(self.conns.len());
            drop(self.conns.swap_remove(i));
        }
        let coming = 1 + self.rng.below(3);
        for _ in 0..coming {
            if self.open() >= MAX_OPEN {
                break;
            }
            let request = Request::random(&mut self.rng);
            if let Some(conn) = Conn::lock(self.daemon.socket(), &request) {
                self.conns.push(conn);
            }
        }
        if point.is_multiple_of(REAL_CLIENT_EVERY) {
            if self.clients.len() >= 2 {
                // Killed: the daemon sees its connection close.
                self.clients.remove(0);
            }
            // Requests that cannot be refused, so each client is in the table.
            let args: &[&[&str]] = &[
                &["-r", "alpha", "-l", "PR"],
                &["-r", "later", "-e", "no"],
                &["-r", "num[3]", "-q", "1"],
                &["-r", "/h/z", "-l", "CW"],
                &["-r", "red.green.blue"],
            ];
            let args = self.rng.pick(args);
            self.clients.push(self.daemon.holder(args));
        }
    }
}

/// Reads the daemon and the probe at a quiescent point: the daemon's state holds exactly
/// the workload's open entries and is the same before and after the probe.
fn quiescent_point<T>(workload: &mut Workload<'_>, mut probe: impl FnMut() -> T) -> (StateDoc, T) {
    let daemon = workload.daemon;
    let deadline = Instant::now() + CHANGE;
    loop {
        let open = workload.open();
        assert!(
            Instant::now() < deadline,
            "the daemon did not settle on {open} entries within {CHANGE:?}: {:?}",
            daemon_state(daemon.socket())
        );
        let before = daemon_state(daemon.socket());
        if entries(&before) != open {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let probed = probe();
        if daemon_state(daemon.socket()) == before {
            return (before, probed);
        }
    }
}

/// The probe's document equals the daemon's, `source` aside.
fn check(what: &str, seed: u64, point: usize, daemon: &StateDoc, probed: &StateDoc) {
    let mut probed = probed.clone();
    assert_eq!(probed.source, Source::Live, "{what}");
    probed.source = Source::Daemon;
    if &probed != daemon {
        panic!(
            "{what}: seed {seed} (LATCH_TRUTH_SEED={seed} replays it), point {point}: the \
             probe and the daemon disagree\n daemon: {}\n  probe: {}",
            serde_json::to_string(daemon).unwrap(),
            serde_json::to_string(&probed).unwrap()
        );
    }
}

/// A capture of a quiescent daemon is whole: not torn, nothing left out.
fn check_whole(what: &str, seed: u64, point: usize, capture: &Capture) {
    assert!(
        capture.problems.is_empty() && !capture.state.torn,
        "{what}: seed {seed}, point {point}: a partial or torn read of a quiescent daemon \
         (torn {}): {:?}",
        capture.state.torn,
        capture.problems
    );
}

/// `latch-probe dump --pid P --json [extra]`, parsed; a torn or partial state fails it
/// (exit code 4).
fn cli_dump(pid: u32, extra: &[&str]) -> StateDoc {
    latch_probe(&["dump", "--pid", &pid.to_string(), "--json"])
        .args(extra)
        .expect_json()
}

/// Runs `points` quiescent points against a daemon running `bin`, checking the probe
/// against the daemon at each; what the points showed.
fn run(what: &str, bin: PathBuf, points: usize) -> Coverage {
    let seed = seed();
    eprintln!("{what}: seed {seed} (LATCH_TRUTH_SEED={seed} replays this run)");
    let daemon = DaemonOptions::exe(bin).start();
    let pid = daemon.pid();
    let started = Instant::now();
    let target = LiveDaemon::open(pid)
        .unwrap_or_else(|e| panic!("{what}: the probe refuses the daemon: {e}"));
    eprintln!("{what}: indexed the daemon in {:?}", started.elapsed());
    let mut workload = Workload::new(&daemon, seed);
    let mut frozen_max = Duration::ZERO;
    let mut cli_checks = 0;
    let mut coverage = Coverage::default();
    let started = Instant::now();
    for point in 0..points {
        workload.step(point);
        // Every third point without freezing: the retrying reader must agree as well.
        let options = CaptureOptions {
            freeze: point % 3 != 2,
            ..CaptureOptions::default()
        };
        let (state, capture) = quiescent_point(&mut workload, || {
            target
                .capture(options)
                .unwrap_or_else(|e| panic!("{what}: seed {seed}, point {point}: {e}"))
        });
        frozen_max = frozen_max.max(Duration::from_nanos(capture.stats.frozen_ns));
        check_whole(what, seed, point, &capture);
        check(what, seed, point, &state, &capture.state);
        coverage.note(&state);
        if point.is_multiple_of(CLI_EVERY) || point + 1 == points {
            let extra: &[&str] = if cli_checks % 2 == 1 {
                &["--no-freeze"]
            } else {
                &[]
            };
            let (state, capture) = quiescent_point(&mut workload, || cli_dump(pid, extra));
            check(
                &format!("{what} (command line {extra:?})"),
                seed,
                point,
                &state,
                &capture,
            );
            cli_checks += 1;
        }
    }
    eprintln!(
        "{what}: {points} points ({cli_checks} through the command line) agree, in {:?}; \
         longest freeze {frozen_max:?}; {coverage:?}",
        started.elapsed()
    );
    coverage
}

#[test]
fn probe_equals_daemon_debug() {
    run("debug", latch_bin(Profile::Debug), DEBUG_POINTS).assert_complete("debug");
}

#[test]
fn probe_equals_daemon_release() {
    run("release", latch_bin(Profile::Release), OTHER_POINTS);
}

#[test]
fn probe_equals_daemon_randomized_layout() {
    let bin = randomized_latch_bin();
    run("randomize-layout", bin, OTHER_POINTS);
}
