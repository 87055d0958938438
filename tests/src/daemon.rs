//! [`Daemon`]: one `latch daemon` on a private Unix socket or a TCP loopback port, its
//! clients, and what the tests ask of its admin API.
//!
//! It may stop only the daemon it started, by pid, and may not wait without a bound or
//! leave the daemon running when a test panics.

use crate::background::Background;
use crate::bins::{latch_bin, Profile};
use crate::command::TestCommand;
use crate::procs::{end_child, wait_child_within};
use crate::sockets::listening_ports;
use crate::timeouts::{CHANGE, DAEMON_START, POLL, WEDGE};
use crate::wait::wait_for;
use latch_probe_common::doc::StateDoc;
use std::ffi::OsString;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The address of TCP daemons.
pub const LOOPBACK: &str = "127.0.0.1";

/// The exit code of `latch ping|status|state` when the daemon did not answer in time
/// (docs/formats.md).
pub const EXIT_NOT_ANSWERING: i32 = 3;

/// The resource whose lock wedges a daemon started by [`Daemon::start_wedgeable`].
pub const WEDGE_NAME: &str = "stuck";

/// Where a daemon listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `-s <socket>` in a temporary directory of its own.
    Unix,
    /// `-a 127.0.0.1 -p 0`: a loopback port the kernel chooses, read off the daemon's own
    /// listening socket (a port found free beforehand could be taken meanwhile, and a
    /// connection cannot tell whose listener it reached).
    TcpLoopback,
}

/// How to start a [`Daemon`]: which binary, where it listens, and more arguments.
pub struct DaemonOptions {
    bin: PathBuf,
    endpoint: Endpoint,
    args: Vec<String>,
}

impl DaemonOptions {
    /// The `latch` of `profile`, on a Unix socket, with no more arguments.
    pub fn new(profile: Profile) -> DaemonOptions {
        DaemonOptions::exe(latch_bin(profile))
    }

    /// Like [`DaemonOptions::new`], running the `latch` binary `bin` (another build of it).
    pub fn exe(bin: PathBuf) -> DaemonOptions {
        DaemonOptions {
            bin,
            endpoint: Endpoint::Unix,
            args: Vec::new(),
        }
    }

    pub fn endpoint(mut self, endpoint: Endpoint) -> DaemonOptions {
        self.endpoint = endpoint;
        self
    }

    /// More daemon arguments (e.g. `-d -1`).
    pub fn args(mut self, args: &[&str]) -> DaemonOptions {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Starts the daemon and waits until it accepts a connection.
    pub fn start(self) -> Daemon {
        Daemon::start_with(self)
    }
}

/// Where a started daemon listens.
enum Listening {
    Unix(PathBuf),
    Tcp(u16),
}

impl Listening {
    /// What names it on the command line: the daemon's and its clients' arguments alike.
    fn args(&self) -> Vec<OsString> {
        match self {
            Listening::Unix(socket) => vec!["-s".into(), socket.into()],
            Listening::Tcp(port) => vec![
                "-a".into(),
                LOOPBACK.into(),
                "-p".into(),
                port.to_string().into(),
            ],
        }
    }
}

/// A `latch daemon` started by the test, stopped (by pid) when dropped.
pub struct Daemon {
    child: Child,
    bin: PathBuf,
    listening: Listening,
    stderr_path: PathBuf,
    // Last: the socket and log go only after the daemon is gone.
    _dir: TempDir,
}

impl Daemon {
    /// Starts `latch daemon -s <socket>` of `profile` and waits until it accepts.
    pub fn start(profile: Profile) -> Daemon {
        DaemonOptions::new(profile).start()
    }

    /// A debug daemon with the test hook `--debug-feature hang-on-lock=`[`WEDGE_NAME`]: a
    /// lock on that name makes the thread that owns the lock table hang while holding it
    /// (see [`Daemon::wedge`]).
    pub fn start_wedgeable() -> Daemon {
        DaemonOptions::new(Profile::Debug)
            .args(&["--debug-feature", &format!("hang-on-lock={WEDGE_NAME}")])
            .start()
    }

    /// Starts the daemon `options` describe and waits until it accepts a connection.
    pub fn start_with(options: DaemonOptions) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("latch-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let stderr_path = dir.path().join("daemon.stderr");
        let requested = match options.endpoint {
            Endpoint::Unix => Listening::Unix(dir.path().join("latch.sock")),
            Endpoint::TcpLoopback => Listening::Tcp(0),
        };
        let mut child = spawn(&options, &requested, &stderr_path);
        match wait_until_accepting(&mut child, requested, &stderr_path) {
            Ok(listening) => Daemon {
                child,
                bin: options.bin,
                listening,
                stderr_path,
                _dir: dir,
            },
            Err(status) => panic!(
                "latch daemon exited before accepting connections ({status}); stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            ),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The Unix socket of a daemon started on [`Endpoint::Unix`].
    #[track_caller]
    pub fn socket(&self) -> &Path {
        match &self.listening {
            Listening::Unix(socket) => socket,
            Listening::Tcp(port) => panic!("the daemon listens on TCP port {port}, not a socket"),
        }
    }

    /// The port of a daemon started on [`Endpoint::TcpLoopback`].
    #[track_caller]
    pub fn port(&self) -> u16 {
        match &self.listening {
            Listening::Tcp(port) => *port,
            Listening::Unix(socket) => {
                panic!("the daemon listens on {}, not a TCP port", socket.display())
            }
        }
    }

    /// The binary the daemon runs (it is also the client).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `latch -s <socket>` or `latch -a 127.0.0.1 -p <port>`, to be completed with a
    /// client's arguments.
    pub fn client(&self) -> TestCommand {
        let mut cmd = TestCommand::new(&self.bin);
        cmd.args(self.listening.args());
        cmd
    }

    /// Waits for the daemon to exit by itself, at most `timeout`; `None` if it still runs.
    pub fn wait_exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child_within(&mut self.child, timeout)
    }

    /// Whether the daemon process still runs (it has not exited; it is not a zombie).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `latch state --json`, parsed; the test fails if the daemon does not answer.
    pub fn state(&self) -> StateDoc {
        self.client().args(["state", "--json"]).expect_json()
    }

    /// Polls `latch state --json` until `ok` holds of it, at most [`CHANGE`]; that state.
    #[track_caller]
    pub fn wait_state(&self, what: &str, ok: impl Fn(&StateDoc) -> bool) -> StateDoc {
        wait_for(what, CHANGE, || {
            let state = self.state();
            ok(&state).then_some(state)
        })
    }

    /// A [`Daemon::holder`] for `args` on a daemon that holds no other lock, and its conn
    /// once it holds (at most [`CHANGE`]).
    pub fn sole_holder(&self, args: &[&str]) -> (Background, u64) {
        let holder = self.holder(args);
        let conn = wait_for("a holder", CHANGE, || {
            self.state()
                .lockers
                .first()?
                .holders
                .first()
                .map(|h| h.request.conn)
        });
        (holder, conn)
    }

    /// A `latch -s <socket> ARGS -- sh -c 'exec cat'` client: once granted it holds the lock
    /// (queued or incubated, it waits) until [`Background::close_stdin`] lets its command
    /// end (a clean unlock), or until it is dropped (killed: the daemon sees its connection
    /// close). The granted element, if any, is the script's `$0`.
    pub fn holder(&self, args: &[&str]) -> Background {
        self.client()
            .args(args)
            .args(["--", "sh", "-c", "exec cat"])
            .stdin(Stdio::piped())
            .background()
    }

    /// Wedges a daemon started by [`Daemon::start_wedgeable`] with a lock on
    /// [`WEDGE_NAME`]. Returns once the admin API (which needs the table) no longer answers;
    /// the client is stopped when the returned value is dropped.
    pub fn wedge(&self) -> Background {
        let wedger = self
            .client()
            .args(["-r", WEDGE_NAME, "--", "true"])
            .background();
        wait_for("the daemon to be wedged", WEDGE, || {
            let out = self
                .client()
                .args(["status", "--timeout-ms", "300"])
                .timeout(WEDGE)
                .output();
            (out.status.code() == Some(EXIT_NOT_ANSWERING)).then_some(())
        });
        wedger
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        end_child(&mut self.child);
    }
}

/// Waits until the daemon accepts a connection; its exit status if it exits first. One that
/// neither accepts nor exits in time is ended by its pid before the test fails.
/// Waits until the daemon accepts where it was asked to listen; where that is (on TCP, the
/// port the kernel chose).
fn wait_until_accepting(
    child: &mut Child,
    requested: Listening,
    stderr_path: &Path,
) -> Result<Listening, ExitStatus> {
    let deadline = Instant::now() + DAEMON_START;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(status);
        }
        let listening = match &requested {
            Listening::Unix(socket) => UnixStream::connect(socket)
                .is_ok()
                .then(|| Listening::Unix(socket.clone())),
            Listening::Tcp(_) => listening_ports(child.id())
                .first()
                .map(|p| Listening::Tcp(*p)),
        };
        if let Some(listening) = listening {
            return Ok(listening);
        }
        if Instant::now() >= deadline {
            let pid = child.id();
            end_child(child);
            panic!(
                "latch daemon (pid {pid}) did not listen ({:?}) within {DAEMON_START:?}; \
                 stderr:\n{}",
                requested.args(),
                std::fs::read_to_string(stderr_path).unwrap_or_default()
            );
        }
        thread::sleep(POLL);
    }
}

fn spawn(options: &DaemonOptions, listening: &Listening, stderr_path: &Path) -> Child {
    let stderr = std::fs::File::create(stderr_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
    Command::new(&options.bin)
        .arg("daemon")
        .args(listening.args())
        .args(&options.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // A file, not a pipe: a chatty daemon must never block on a full pipe.
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", options.bin.display()))
}
