//! The harness of the end-to-end tests: builds the real `latch` binary (once per profile),
//! starts daemons on private sockets, runs clients with bounded waits, and stops every
//! process it started by its pid.
//!
//! It may not signal processes by name (no pkill/killall: other daemons on the machine are
//! not ours), wait without a bound, or leave a process behind when a test panics.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a daemon may take to accept its first connection.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped process may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often bounded waits look again.
const POLL: Duration = Duration::from_millis(20);

/// Which cargo profile to build the daemon with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// The workspace's root directory (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_owned()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// `target/{debug,release}/latch`, built by `cargo build [--release] -p latch --bin latch` the
/// first time a test in this process asks for that profile.
pub fn latch_bin(profile: Profile) -> PathBuf {
    static DEBUG: OnceLock<PathBuf> = OnceLock::new();
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    let cell = match profile {
        Profile::Debug => &DEBUG,
        Profile::Release => &RELEASE,
    };
    cell.get_or_init(|| build_bin("latch", profile)).clone()
}

/// Builds (cargo) run one at a time in a test process: two cores, and the builds are long.
static BUILDS: Mutex<()> = Mutex::new(());

/// Builds the binary `name` of the package of the same name.
fn build_bin(name: &str, profile: Profile) -> PathBuf {
    let _one_build_at_a_time = BUILDS.lock().unwrap_or_else(|p| p.into_inner());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = target_dir();
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", name, "--bin", name, "--target-dir"])
        .arg(&target);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
    assert!(
        out.status.success(),
        "building {name} ({profile:?}) failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = target.join(profile.dir()).join(name);
    assert!(
        bin.is_file(),
        "cargo built {name} but {} is missing",
        bin.display()
    );
    bin
}

/// A `latch daemon` on a socket of its own, stopped (by pid) when dropped.
pub struct Daemon {
    child: Child,
    bin: PathBuf,
    socket: PathBuf,
    stderr_path: PathBuf,
    // Last: the socket and log go only after the daemon is gone.
    _dir: TempDir,
}

impl Daemon {
    /// Starts `latch daemon -s <socket>` and waits until the socket accepts a connection.
    pub fn start(profile: Profile) -> Daemon {
        Daemon::start_with(profile, &[])
    }

    /// Like [`Daemon::start`], with more daemon arguments (e.g. `--debug-feature ...`).
    pub fn start_with(profile: Profile, extra: &[&str]) -> Daemon {
        Daemon::start_exe(latch_bin(profile), extra)
    }

    /// Like [`Daemon::start_with`], running the `latch` binary `bin` (another build of it).
    pub fn start_exe(bin: PathBuf, extra: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("latch-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let socket = dir.path().join("latch.sock");
        let stderr_path = dir.path().join("daemon.stderr");
        let stderr = std::fs::File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
        let child = Command::new(&bin)
            .arg("daemon")
            .arg("-s")
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // A file, not a pipe: a chatty daemon must never block on a full pipe.
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        // Built before waiting, so that a failed start still stops the process.
        let mut daemon = Daemon {
            child,
            bin,
            socket,
            stderr_path,
            _dir: dir,
        };
        daemon.wait_until_accepting();
        daemon
    }

    fn wait_until_accepting(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "latch daemon exited before accepting connections ({status}); stderr:\n{}",
                    self.stderr()
                );
            }
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "latch daemon (pid {}) did not accept connections on {} within {:?}; stderr:\n{}",
                    self.pid(),
                    self.socket.display(),
                    START_TIMEOUT,
                    self.stderr()
                );
            }
            thread::sleep(POLL);
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The binary the daemon runs (it is also the client).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `latch -s <socket>`, to be completed with a client's arguments.
    pub fn client(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-s").arg(&self.socket).stdin(Stdio::null());
        cmd
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`], then reap: by this child's pid only.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = Pid::from_raw(child.id() as i32);
    // Errors mean the process is already gone; reaping below settles it either way.
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(POLL);
    }
    let _ = kill(pid, Signal::SIGKILL);
    let _ = child.wait();
}

/// A process running beside the test, stopped and reaped when dropped.
pub struct Background {
    child: Child,
    what: String,
}

impl Background {
    pub fn spawn(cmd: &mut Command) -> Background {
        let what = format!("{cmd:?}");
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Background { child, what }
    }

    /// Like [`Background::spawn`], but the command's own stdout (a terminal, say) is kept.
    pub fn spawn_keeping_output(cmd: &mut Command) -> Background {
        let what = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Background { child, what }
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_within(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => panic!("{} did not exit within {timeout:?}", self.what),
                Err(e) => panic!("cannot wait for {}: {e}", self.what),
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Runs `cmd` to completion with its output captured, failing the test if it takes longer
/// than `timeout` (the process is then killed by pid).
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Read both pipes while waiting, so that a large output cannot block the child.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            Ok(None) => {
                stop(&mut child);
                panic!("{what} did not finish within {timeout:?}");
            }
            Err(e) => panic!("cannot wait for {what}: {e}"),
        }
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error leaves what was read so far, which is what the test reports.
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

// ---- Additions for the FLoM compatibility tests (transcript_replay, flom_scenarios) ----

impl Background {
    /// The process id (to signal it, or to find its children, by pid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Daemon {
    /// Waits for the daemon to exit by itself, at most `timeout`; `None` if it still runs.
    pub fn wait_exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child_within(&mut self.child, timeout)
    }
}

fn wait_child_within(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// A `latch daemon -a 127.0.0.1 -p <free port>`, stopped (by pid) when dropped.
pub struct TcpDaemon {
    child: Child,
    bin: PathBuf,
    port: u16,
    stderr_path: PathBuf,
    _dir: TempDir,
}

impl TcpDaemon {
    pub const ADDRESS: &'static str = "127.0.0.1";

    /// Starts a daemon on a loopback port that was free a moment ago (retried if another
    /// process takes it first) and waits until it accepts connections.
    pub fn start(profile: Profile) -> TcpDaemon {
        let bin = latch_bin(profile);
        let dir = tempfile::Builder::new()
            .prefix("latch-test-tcp-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let stderr_path = dir.path().join("daemon.stderr");
        for _ in 0..5 {
            let port = std::net::TcpListener::bind((Self::ADDRESS, 0))
                .and_then(|l| l.local_addr())
                .unwrap_or_else(|e| panic!("cannot find a free loopback port: {e}"))
                .port();
            let stderr = std::fs::File::create(&stderr_path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
            let mut child = Command::new(&bin)
                .args(["daemon", "-a", Self::ADDRESS, "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // most likely the port was taken meanwhile: try another
                }
                if std::net::TcpStream::connect((Self::ADDRESS, port)).is_ok() {
                    return TcpDaemon {
                        child,
                        bin,
                        port,
                        stderr_path,
                        _dir: dir,
                    };
                }
                if Instant::now() >= deadline {
                    stop(&mut child);
                    panic!("latch daemon on {}:{port} did not accept connections within {START_TIMEOUT:?}", Self::ADDRESS);
                }
                thread::sleep(POLL);
            }
        }
        panic!(
            "latch daemon could not listen on a free loopback port; stderr:\n{}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `latch -a 127.0.0.1 -p <port>`, to be completed with a client's arguments.
    pub fn client(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-a", Self::ADDRESS, "-p", &self.port.to_string()])
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for TcpDaemon {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

// ---- Additions for the robustness and admin API tests (bad_input, admin_api, hang_hook) ----

/// How long one `latch state --json` may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Daemon {
    /// Whether the daemon process still runs (it has not exited; it is not a zombie).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `latch state --json`, parsed; the test fails if the daemon does not answer.
    /// The conn of the first holder of the first locker, once there is one (at most
    /// `timeout`).
    pub fn first_holder(&self, timeout: Duration) -> u64 {
        wait_for("a holder", timeout, || {
            self.state()
                .lockers
                .first()?
                .holders
                .first()
                .map(|h| h.conn)
        })
    }

    pub fn state(&self) -> latch_probe_common::doc::StateDoc {
        let out = output_within(self.client().args(["state", "--json"]), ADMIN_TIMEOUT);
        assert!(
            out.status.success(),
            "latch state --json failed ({}): {}; daemon stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.stderr()
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "latch state --json printed no latch.state/1 document ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// A `latch -s <socket> ARGS -- sh -c 'exec cat'` client: once granted it holds the lock
    /// (queued or incubated, it waits) until [`Background::close_stdin`] lets its command
    /// end (a clean unlock), or until it is dropped (killed: the daemon sees its connection
    /// close). The granted element, if any, is the script's `$0`.
    pub fn holder(&self, args: &[&str]) -> Background {
        Background::spawn(
            self.client()
                .args(args)
                .args(["--", "sh", "-c", "exec cat"])
                .stdin(Stdio::piped()),
        )
    }
}

impl Background {
    /// Closes the process's stdin, if it is a pipe from the test.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }
}

/// The `rc` of one FLoM answer (`<answer rc="N"/>`); the test fails on an answer without one.
pub fn answer_rc(answer: &[u8]) -> i32 {
    let text = String::from_utf8_lossy(answer);
    text.split("rc=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|rc| rc.parse().ok())
        .unwrap_or_else(|| panic!("an answer without rc: {text}"))
}

/// Polls `probe` until it answers `Some`, at most `timeout`; the test fails naming `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}");
        }
        thread::sleep(POLL);
    }
}

// ---- Additions for the probe's mount and tree tests (probe_mount) ----

/// `target/debug/latch-probe`, built by `cargo build -p latch-probe --bin latch-probe` the
/// first time a test in this process asks for it.
pub fn probe_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("latch-probe", Profile::Debug))
        .clone()
}

// ---- The daemon with its structs laid out at random (probe_truth, trace_truth) ----

/// How long the nightly build of the randomized daemon may take.
const NIGHTLY_BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// `latch` built by nightly with `RUSTFLAGS=-Zrandomize-layout`, into `target/randomized`,
/// once per test process, and checked to lay the table's structs out differently from the
/// debug build (else a test on it would prove nothing). A missing nightly toolchain fails
/// the test with how to get it.
pub fn randomized_latch_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let debug = latch_bin(Profile::Debug);
            let _one_build_at_a_time = BUILDS.lock().unwrap_or_else(|p| p.into_inner());
            let target = target_dir().join("randomized");
            let mut cmd = Command::new("cargo");
            cmd.current_dir(workspace_root())
                .args(["+nightly", "build", "-p", "latch", "--bin", "latch"])
                .arg("--target-dir")
                .arg(&target)
                .env("RUSTFLAGS", "-Zrandomize-layout")
                // What the cargo running this test set would override the flags above or
                // pin the stable toolchain.
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTC")
                .env_remove("RUSTC_WRAPPER")
                .env_remove("CARGO")
                .stdin(Stdio::null());
            let out = output_within(&mut cmd, NIGHTLY_BUILD_TIMEOUT);
            assert!(
                out.status.success(),
                "building latch with `cargo +nightly` and -Zrandomize-layout failed ({}); \
                 this test needs the nightly toolchain (rustup toolchain install nightly):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let bin = target.join("debug/latch");
            assert_layouts_differ(&debug, &bin);
            bin
        })
        .clone()
}

fn assert_layouts_differ(plain: &Path, randomized: &Path) {
    let offsets = |bin: &Path| -> Vec<u64> {
        let exe = dwarfpeek::debuginfo::Executable::open(bin).expect("open the daemon");
        let fields = [
            ("latch::table::Request", "conn"),
            ("latch::table::Request", "resource_name"),
            ("latch::table::Request", "since_ns"),
            ("latch::table::Request", "peer"),
            ("latch::table::Locker", "id"),
            ("latch::table::Locker", "holders"),
            ("latch::table::Locker", "waitings"),
            ("latch::table::LockTable", "generation"),
            ("latch::table::LockTable", "lockers"),
        ];
        fields
            .iter()
            .map(|(ty, field)| {
                exe.struct_member(ty, field)
                    .unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
                    .offset
            })
            .collect()
    };
    let (a, b) = (offsets(plain), offsets(randomized));
    assert_ne!(
        a, b,
        "-Zrandomize-layout left the table's structs as they were; the build did not take the flag"
    );
}

// ---- Event streams: the daemon's own `events` and the probe's `trace` (admin_api, trace_truth) ----

/// The lines something writes, collected by a thread as they come.
pub struct Lines {
    lines: std::sync::Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Lines {
    pub fn collect(from: impl Read + Send + 'static) -> Lines {
        use std::io::BufRead;
        let lines = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let thread = thread::spawn(move || {
            for line in std::io::BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        Lines {
            lines,
            thread: Some(thread),
        }
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Lines `from..from + count`, once there are that many (the test fails after `timeout`).
    pub fn take(&self, from: usize, count: usize, what: &str, timeout: Duration) -> Vec<String> {
        wait_for(what, timeout, || {
            let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            (lines.len() >= from + count).then(|| lines[from..from + count].to_vec())
        })
    }

    /// Waits for the writer to close its end, and gives every line.
    fn finish(mut self) -> Vec<String> {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.all()
    }
}

/// An `events` subscriber on its own admin connection; ends the subscription when dropped.
pub struct EventReader {
    pub lines: Lines,
    stream: UnixStream,
}

impl EventReader {
    /// Subscribes, and returns once the subscription is in place (an admin request sent
    /// after it is answered: one admin thread serves requests in arrival order).
    pub fn start(daemon: &Daemon) -> EventReader {
        use std::io::Write;
        let mut stream = UnixStream::connect(daemon.socket()).expect("connect");
        stream
            .write_all(b"{\"op\":\"events\"}\n")
            .expect("send the events request");
        let lines = Lines::collect(stream.try_clone().expect("clone the stream"));
        let out = output_within(daemon.client().args(["ping", "--json"]), ADMIN_TIMEOUT);
        assert!(out.status.success(), "latch ping failed: {out:?}");
        EventReader { lines, stream }
    }
}

impl Drop for EventReader {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// A `latch-probe` command that attaches uprobes (`trace`, `watch`) running beside the
/// test, its output collected; stopped by pid when dropped.
pub struct ProbeStream {
    child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl ProbeStream {
    /// Starts `latch-probe SUBCOMMAND --pid P ARGS` and returns once its uprobes are attached
    /// (it says so on stderr).
    pub fn start(subcommand: &str, pid: u32, args: &[&str]) -> ProbeStream {
        let mut child = Command::new(probe_bin())
            .args([subcommand, "--pid", &pid.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start latch-probe {subcommand}: {e}"));
        let stdout = Lines::collect(child.stdout.take().expect("piped stdout"));
        let stderr = Lines::collect(child.stderr.take().expect("piped stderr"));
        let mut stream = ProbeStream {
            child,
            stdout,
            stderr,
        };
        // Indexing a debug daemon's DWARF on a loaded machine takes seconds.
        wait_for(
            "latch-probe attaches its uprobes",
            START_TIMEOUT * 6,
            || {
                if let Ok(Some(status)) = stream.child.try_wait() {
                    panic!(
                        "latch-probe {subcommand} exited ({status}) before attaching:\n{}",
                        stream.stderr.all().join("\n")
                    );
                }
                stream
                    .stderr
                    .all()
                    .iter()
                    .any(|l| l.contains("uprobes attached"))
                    .then_some(())
            },
        );
        stream
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, as a user's Ctrl-C or service manager would; the command must exit 0 by
    /// itself. Its whole stdout and stderr.
    pub fn stop(mut self) -> (Vec<String>, Vec<String>) {
        let pid = Pid::from_raw(self.child.id() as i32);
        kill(pid, Signal::SIGTERM).expect("SIGTERM to latch-probe trace");
        let status = wait_child_within(&mut self.child, STOP_TIMEOUT).unwrap_or_else(|| {
            panic!("latch-probe trace did not exit within {STOP_TIMEOUT:?} of SIGTERM")
        });
        let (stdout, stderr) = (
            std::mem::replace(&mut self.stdout, Lines::collect(std::io::empty())),
            std::mem::replace(&mut self.stderr, Lines::collect(std::io::empty())),
        );
        let (stdout, stderr) = (stdout.finish(), stderr.finish());
        assert!(
            status.success(),
            "latch-probe exited {status} on SIGTERM:\n{}",
            stderr.join("\n")
        );
        (stdout, stderr)
    }
}

impl Drop for ProbeStream {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

// ---- Wedged daemons and what the probe leaves behind (stacks, evict, forensic) ----

/// How long a wedge may take to show (the admin API stops answering).
const WEDGE_TIMEOUT: Duration = Duration::from_secs(60);

impl Daemon {
    /// Wedges a daemon started with `--debug-feature hang-on-lock=NAME`: a lock on `name`
    /// makes the thread that owns the lock table hang while holding it. Returns once the
    /// admin API (which needs the table) no longer answers; the client is stopped when the
    /// returned value is dropped.
    pub fn wedge(&self, name: &str) -> Background {
        let wedger = Background::spawn(self.client().args(["-r", name, "--", "true"]));
        wait_for("the daemon to be wedged", WEDGE_TIMEOUT, || {
            let out = output_within(
                self.client().args(["status", "--timeout-ms", "300"]),
                WEDGE_TIMEOUT,
            );
            (out.status.code() == Some(3)).then_some(())
        });
        wedger
    }
}

/// Whether process `pid` is traced by nobody and no `latch-probe` still runs against it
/// (the probe's uprobes, mounts and ptrace attachments live only as long as its process).
pub fn probe_free(pid: u32) -> bool {
    let untraced = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| s.lines().any(|l| l == "TracerPid:\t0"));
    let target = format!("--pid {pid} ");
    let probes_left = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .any(|c| c.contains("latch-probe") && c.contains(&target));
    untraced && !probes_left
}

// ---- The value fixture (tests/src/bin/value_fixture.rs: value_reader, print) ----

/// How long the value fixture may take to set its values up.
const FIXTURE_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A started value fixture (known values of every type the probe decodes), killed and
/// reaped by pid when dropped.
pub struct ValueFixture {
    child: Child,
    pub exe: PathBuf,
}

impl ValueFixture {
    pub fn start(exe: &Path) -> ValueFixture {
        ValueFixture::start_with(exe, &[])
    }

    pub fn start_with(exe: &Path, args: &[&str]) -> ValueFixture {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let fixture = ValueFixture {
            child,
            exe: exe.to_owned(),
        };
        // Read the line in a thread: a fixture that never says it is ready fails the test
        // after a bounded wait instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(FIXTURE_READY_TIMEOUT) {
            Ok(line) if line.trim() == "ready" => fixture,
            other => panic!("{} did not print `ready`: {other:?}", exe.display()),
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }
}

impl Drop for ValueFixture {
    fn drop(&mut self) {
        // The fixture has no state to save: SIGKILL by its own pid, then reap it.
        let _ = kill(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
