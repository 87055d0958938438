//! flom 1.7.2's options and configuration files, end to end against the real `latch`: the
//! system file (through the `LATCH_SYSTEM_CONFIG` hook), the user's `~/.flom` (HOME set to
//! a temporary directory), `-c FILE`, their precedence under the command line, `-V`'s
//! `[Group]/Key='value'` print-out, `-v`, `--unique-id`, `--signal-list`, `--ignore-signal`,
//! the trace files (`-t`, `-T`, `--append-trace-file`), TCP keepalive on both ends of a
//! loopback connection, and every kind of bad configuration.
//!
//! Each key is shown twice: in `-V`'s print-out, and in what it does (the lock a client takes
//! as the daemon's own `latch state --json` shows it, the socket it talks to, its trace
//! file, the socket options on its connection). Every process is ended by its pid: clients
//! by the harness, client-started daemons by [`SpawnedDaemons`].

use latch_probe_common::doc::StateDoc;
use latch_probe_common::LockMode;
use latch_tests::background::Background;
use latch_tests::bins::{latch_bin, Profile};
use latch_tests::command::TestCommand;
use latch_tests::daemon::{Daemon, DaemonOptions, Endpoint, LOOPBACK};
use latch_tests::procs::{proc_status, signal};
use latch_tests::sockets::{tcp_keepalive, End, Keepalive};
use latch_tests::spawned::SpawnedDaemons;
use latch_tests::timeouts::{CHANGE, CLIENT};
use latch_tests::wait::wait_for;
use nix::sys::signal::Signal;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use tempfile::TempDir;

/// latch's exit codes for these checks (docs/formats.md).
const EXIT_ERROR: i32 = 99;
const EXIT_CANT_EXEC: i32 = 97;
const EXIT_BUSY: i32 = 98;
const EXIT_CANT_WAIT: i32 = 96;

/// A user of their own: a HOME (for `~/.flom`) and a system file path, both in a
/// temporary directory, so that no file of the machine is read.
struct User {
    dir: TempDir,
}

impl User {
    fn new() -> User {
        let dir = tempfile::Builder::new()
            .prefix("latch-options-")
            .tempdir()
            .expect("temporary directory");
        std::fs::create_dir(dir.path().join("home")).expect("the home directory");
        User { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn text(&self, name: &str) -> String {
        self.path(name).to_str().expect("UTF-8 paths").to_owned()
    }

    fn system_file(&self) -> PathBuf {
        self.path("flom.conf")
    }

    fn user_file(&self) -> PathBuf {
        self.path("home/.flom")
    }

    /// Writes `text` to `path`; the path.
    fn write(&self, path: PathBuf, text: &str) -> PathBuf {
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// `latch` with this user's HOME and system file, and no LATCH_LOG of the caller.
    fn latch(&self) -> TestCommand {
        let mut cmd = TestCommand::new(latch_bin(Profile::Debug));
        cmd.env("HOME", self.path("home"))
            .env("LATCH_SYSTEM_CONFIG", self.system_file())
            .env_remove("LATCH_LOG");
        cmd
    }
}

/// `-V`'s print-out of flom's defaults, in flom's order (`flom_config_print`).
fn defaults() -> Vec<String> {
    [
        "[Trace]/DaemonTraceFile=''",
        "[Trace]/CommandTraceFile=''",
        "[Trace]/AppendTraceFile=0",
        "[Trace]/Verbose=1",
        "[Resource]/Name='_RESOURCE'",
        "[Resource]/Timeout=-1",
        "[Resource]/Quantity=1",
        "[Resource]/LockMode=5",
        "[Resource]/Create=1",
        "[Resource]/IdleLifespan=0",
        "[Daemon]/SocketName=''",
        "[Daemon]/Lifespan=5000",
        "[Daemon]/UnicastAddress=''",
        "[Daemon]/UnicastPort=28015",
        "[Daemon]/MulticastAddress=''",
        "[Daemon]/MulticastPort=28015",
        "[Daemon]/MountPointVFS=''",
        "[Monitor]/IgnoredSignals=''",
        "[Network]/NetworkInterface=''",
        "[Network]/DiscoveryAttempts=2",
        "[Network]/DiscoveryTimeout=500",
        "[Network]/DiscoveryTTL=1",
        "[Network]/TcpKeepaliveTime=60",
        "[Network]/TcpKeepaliveIntvl=10",
        "[Network]/TcpKeepaliveProbes=6",
        "[TLS]/TlsCertificate=''",
        "[TLS]/TlsPrivateKey=''",
        "[TLS]/TlsCaCertificate=''",
        "[TLS]/TlsCheckPeerId=0",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `lines` with the line of `[Group]/Key` replaced by `[Group]/Key=value` (quoted by the
/// caller where flom quotes).
#[track_caller]
fn with(mut lines: Vec<String>, changes: &[(&str, &str)]) -> Vec<String> {
    for (key, value) in changes {
        let prefix = format!("{key}=");
        let line = lines
            .iter_mut()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {key} in -V's keys"));
        *line = format!("{prefix}{value}");
    }
    lines
}

/// The lines a client printed before it found no command to run (exit 97, as flom's).
#[track_caller]
fn printed_without_command(cmd: &mut TestCommand) -> Vec<String> {
    let out = cmd.expect_exit(EXIT_CANT_EXEC);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "No command to execute!\n"
    );
    lines(&out)
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command a lock runs to show what it holds: the daemon's own state, printed from
/// inside the lock (`latch ENDPOINT state --json`).
fn state_from_inside(endpoint: &[String]) -> Vec<String> {
    let mut cmd = vec![latch_bin(Profile::Debug)
        .to_str()
        .expect("UTF-8 paths")
        .to_owned()];
    cmd.extend(endpoint.iter().cloned());
    cmd.extend(["state".to_owned(), "--json".to_owned()]);
    cmd
}

fn unix_endpoint(daemon: &Daemon) -> Vec<String> {
    vec![
        "-s".to_owned(),
        daemon.socket().to_str().expect("UTF-8 paths").to_owned(),
    ]
}

/// Runs `cmd -- <state from inside>`; the state the daemon had while the lock was held.
#[track_caller]
fn held_state(cmd: &mut TestCommand, endpoint: &[String]) -> StateDoc {
    cmd.arg("--")
        .args(state_from_inside(endpoint))
        .expect_json()
}

/// A holder's command: marks `prefix.started`, waits for `prefix.stop`, marks `prefix.done`.
const GATE: &str =
    r#"touch "$0.started"; while [ ! -e "$0.stop" ]; do sleep 0.02; done; touch "$0.done""#;

/// A client running [`GATE`] in the background, once its command runs.
struct Gated {
    client: Background,
    prefix: PathBuf,
}

impl Gated {
    /// Starts `cmd -- sh -c GATE prefix` and waits until its command runs.
    fn start(cmd: &mut TestCommand, prefix: PathBuf) -> Gated {
        let prefix_text = prefix.to_str().expect("UTF-8 paths").to_owned();
        let client = cmd
            .args(["--", "sh", "-c", GATE, &prefix_text])
            .background();
        let gated = Gated { client, prefix };
        let started = gated.file("started");
        wait_for("the gated client's command to run", CHANGE, || {
            started.exists().then_some(())
        });
        gated
    }

    fn file(&self, ext: &str) -> PathBuf {
        PathBuf::from(format!("{}.{ext}", self.prefix.display()))
    }

    fn pid(&self) -> u32 {
        self.client.pid()
    }

    /// Opens the gate; how the client ended, once its command has ended too (it may have
    /// outlived a killed client).
    fn release(mut self) -> std::process::ExitStatus {
        std::fs::write(self.file("stop"), "").expect("the stop file");
        let status = self.client.wait_within(CLIENT);
        let done = self.file("done");
        wait_for("the gated command to end", CLIENT, || {
            done.exists().then_some(())
        });
        status
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        // On a failed test: the gate opens, so the command ends by itself (the client is
        // ended by its pid).
        let _ = std::fs::write(self.file("stop"), "");
    }
}

// ---------------------------------------------------------------------------------------
// -V, -v, --unique-id, --signal-list

#[test]
fn dash_capital_v_prints_flom_s_defaults_in_flom_s_format_and_order() {
    let user = User::new();
    assert_eq!(
        printed_without_command(user.latch().arg("-V")),
        defaults(),
        "no file, no option"
    );
    assert_eq!(
        printed_without_command(user.latch().arg("--verbose")),
        defaults(),
        "--verbose"
    );
    // Without -V (nor Verbose=yes) nothing is printed.
    let out = user.latch().expect_exit(EXIT_CANT_EXEC);
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn dash_v_prints_the_package_info_and_the_information_options_exit_at_once() {
    let user = User::new();
    let out = user.latch().arg("-v").expect_success();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        out.contains(&format!("Package name: latch; package version: {version}")),
        "{out}"
    );
    assert!(out.starts_with("latch: a FLoM-compatible"), "{out}");
    // --version: one line, as scripts compare it.
    assert_eq!(
        user.latch().arg("--version").expect_success(),
        format!("latch {version}\n")
    );

    // --unique-id: flom's flom_tls_get_unique_id is D-Bus's machine id, 32 hex digits.
    let id = user.latch().arg("--unique-id").expect_success();
    let id = id.strip_suffix('\n').expect("one line");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id:?}"
    );
    let machine = ["/var/lib/dbus/machine-id", "/etc/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .expect("this machine has a machine id");
    assert_eq!(id, machine.trim(), "the machine's id");

    // --signal-list: flom_config_print_signal_list, "N) NAME\t" four to a line.
    let list = user.latch().arg("--signal-list").expect_success();
    let rows: Vec<&str> = list.split('\n').collect();
    assert_eq!(rows.len(), 9, "{list:?}");
    assert_eq!(rows[0], "1) SIGHUP\t2) SIGINT\t3) SIGQUIT\t4) SIGILL\t");
    assert_eq!(
        rows[3],
        "13) SIGPIPE\t14) SIGALRM\t15) SIGTERM\t16) SIGSTKFLT\t"
    );
    assert_eq!(rows[7], "29) SIGIO\t30) SIGPWR\t31) SIGSYS\t");
    assert_eq!(rows[8], "", "flom ends with a newline of its own");

    // None of them needs a daemon or runs the command.
    let ran = user.path("ran");
    for option in ["-v", "--unique-id", "--signal-list"] {
        user.latch()
            .args([option, "-d", "0", "-s"])
            .arg(user.path("no-daemon"))
            .args(["--", "touch"])
            .arg(&ran)
            .expect_success();
        assert!(!ran.exists(), "{option} ran the command");
    }
}

/// `--debug-feature`: after the configuration's checks (as flom's `main`), instead of a
/// command; a name flom does not know, or a feature without what it needs, is status 1
/// and says why. (What each feature does: tls.rs and discovery.rs.)
#[test]
fn debug_features_run_instead_of_a_command_and_fail_with_status_1() {
    let user = User::new();
    let out = user
        .latch()
        .args(["--debug-feature=nope", "--", "true"])
        .expect_exit(1);
    let said = stderr(&out);
    assert!(
        said.contains("there is no feature 'nope'") && said.contains("tls.server"),
        "{said}"
    );
    let out = user
        .latch()
        .args(["--debug-feature=TLS.Client", "-a", "127.0.0.1"])
        .expect_exit(1);
    assert!(stderr(&out).contains("TLS is needed"), "{}", stderr(&out));
    // A bad configuration is refused first, with its own status.
    let out = user
        .latch()
        .args(["--debug-feature=tls.client", "--tls-check-peer-id=yes"])
        .expect_exit(EXIT_ERROR);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("without full TLS configuration"),
        "{out:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Every key, in each of the three files; their precedence.

/// Every key latch implements set away from its default (SocketName, which cannot go with
/// UnicastAddress, has a test of its own), and `-V`'s lines for it.
fn every_key(user: &User) -> (String, Vec<String>) {
    let (daemon_trace, command_trace) = (user.text("d.trace"), user.text("c.trace"));
    let text = format!(
        "# every key flom 1.7.2 reads that latch implements\n\
         [Trace]\nDaemonTraceFile={daemon_trace}\nCommandTraceFile={command_trace}\n\
         AppendTraceFile=yes\nVerbose=yes\n\n\
         [Resource]\nName=every\nTimeout=250\nQuantity=3\nLockMode=PR\nCreate=no\n\
         IdleLifespan=1234\n\
         [Daemon]\nLifespan=-1\nUnicastAddress=127.0.0.1\nUnicastPort=4242\n\
         MountPointVFS=/mnt/flom\n\
         [Monitor]\nIgnoredSignals=SIGTERM;2\n\
         [Network]\nTcpKeepaliveTime=11\nTcpKeepaliveIntvl=5\nTcpKeepaliveProbes=2\n"
    );
    let expected = with(
        defaults(),
        &[
            ("[Trace]/DaemonTraceFile", &format!("'{daemon_trace}'")),
            ("[Trace]/CommandTraceFile", &format!("'{command_trace}'")),
            ("[Trace]/AppendTraceFile", "1"),
            ("[Resource]/Name", "'every'"),
            ("[Resource]/Timeout", "250"),
            ("[Resource]/Quantity", "3"),
            ("[Resource]/LockMode", "3"),
            ("[Resource]/Create", "0"),
            ("[Resource]/IdleLifespan", "1234"),
            ("[Daemon]/Lifespan", "-1"),
            ("[Daemon]/UnicastAddress", "'127.0.0.1'"),
            ("[Daemon]/UnicastPort", "4242"),
            ("[Daemon]/MountPointVFS", "'/mnt/flom'"),
            ("[Monitor]/IgnoredSignals", "'SIGINT;SIGTERM'"),
            ("[Network]/TcpKeepaliveTime", "11"),
            ("[Network]/TcpKeepaliveIntvl", "5"),
            ("[Network]/TcpKeepaliveProbes", "2"),
        ],
    );
    (text, expected)
}

#[test]
fn every_key_is_read_from_the_system_file_the_user_file_and_dash_c() {
    for which in ["system", "user", "-c"] {
        let user = User::new();
        let (text, expected) = every_key(&user);
        let mut cmd = user.latch();
        match which {
            "system" => drop(user.write(user.system_file(), &text)),
            "user" => drop(user.write(user.user_file(), &text)),
            _ => drop(cmd.arg("-c").arg(user.write(user.path("my.conf"), &text))),
        }
        // Verbose=yes prints without -V.
        assert_eq!(printed_without_command(&mut cmd), expected, "{which} file");
        // CommandTraceFile is opened (and written) before the configuration is printed.
        assert!(
            user.path("c.trace").exists(),
            "{which} file: the command trace file"
        );
    }
}

/// The discovery and TLS keys, which [`every_key`] leaves out because they change where and
/// how a client connects, from each of the three files: what `-V` shows of them. (What
/// they do: discovery.rs with the same keys, tls.rs's `tls_from_a_config_file_...`.)
#[test]
fn discovery_and_tls_keys_are_read_from_each_file() {
    let text = "[Daemon]\nMulticastAddress=224.0.0.1\nMulticastPort=28031\n\
                [Network]\nNetworkInterface=lo\nDiscoveryAttempts=4\nDiscoveryTimeout=321\n\
                DiscoveryTTL=3\n\
                [TLS]\nTlsCertificate=/tmp/c.pem\nTlsPrivateKey=/tmp/k.pem\n\
                TlsCaCertificate=/tmp/ca.pem\n";
    let expected = with(
        defaults(),
        &[
            ("[Daemon]/MulticastAddress", "'224.0.0.1'"),
            ("[Daemon]/MulticastPort", "28031"),
            ("[Network]/NetworkInterface", "'lo'"),
            ("[Network]/DiscoveryAttempts", "4"),
            ("[Network]/DiscoveryTimeout", "321"),
            ("[Network]/DiscoveryTTL", "3"),
            ("[TLS]/TlsCertificate", "'/tmp/c.pem'"),
            ("[TLS]/TlsPrivateKey", "'/tmp/k.pem'"),
            ("[TLS]/TlsCaCertificate", "'/tmp/ca.pem'"),
        ],
    );
    for which in ["system", "user", "-c"] {
        let user = User::new();
        let mut cmd = user.latch();
        match which {
            "system" => drop(user.write(user.system_file(), text)),
            "user" => drop(user.write(user.user_file(), text)),
            _ => drop(cmd.arg("-c").arg(user.write(user.path("my.conf"), text))),
        }
        assert_eq!(
            printed_without_command(cmd.arg("-V")),
            expected,
            "{which} file"
        );
    }
}

#[test]
fn files_are_read_system_then_user_then_dash_c_then_the_command_line() {
    let user = User::new();
    user.write(
        user.system_file(),
        "[Resource]\nName=sys\nTimeout=1\nQuantity=2\nIdleLifespan=3\n",
    );
    user.write(
        user.user_file(),
        "[Resource]\nTimeout=10\nQuantity=20\nIdleLifespan=30\n",
    );
    let custom = user.write(
        user.path("c.conf"),
        "[Resource]\nQuantity=200\nIdleLifespan=300\n",
    );
    let lines = printed_without_command(
        user.latch()
            .arg("-V")
            .arg("-c")
            .arg(&custom)
            .args(["-i", "3000"]),
    );
    let expected = with(
        defaults(),
        &[
            ("[Resource]/Name", "'sys'"),
            ("[Resource]/Timeout", "10"),
            ("[Resource]/Quantity", "200"),
            ("[Resource]/IdleLifespan", "3000"),
        ],
    );
    assert_eq!(lines, expected, "system < user < -c < command line");
    // Without -c and the option, the user's file is the last word.
    let lines = printed_without_command(user.latch().arg("-V"));
    let expected = with(
        defaults(),
        &[
            ("[Resource]/Name", "'sys'"),
            ("[Resource]/Timeout", "10"),
            ("[Resource]/Quantity", "20"),
            ("[Resource]/IdleLifespan", "30"),
        ],
    );
    assert_eq!(lines, expected, "system < user");
    // An option given at its default still overrides a file (flom's -o -1 does not: see
    // docs/flom-differences.md).
    let lines = printed_without_command(user.latch().args(["-V", "-o", "-1"]));
    assert!(
        lines.contains(&"[Resource]/Timeout=-1".to_owned()),
        "{lines:?}"
    );
}

// ---------------------------------------------------------------------------------------
// What the keys do

#[test]
fn resource_keys_shape_the_lock_the_daemon_grants() {
    let daemon = Daemon::start(Profile::Debug);
    let user = User::new();
    let endpoint = unix_endpoint(&daemon);
    let socket = daemon.socket().to_str().expect("UTF-8 paths").to_owned();
    // SocketName, Name, Quantity from a file: the daemon at that socket grants num[3] ×2.
    let conf = user.write(
        user.path("num.conf"),
        &format!(
            "[Daemon]\nSocketName={socket}\nLifespan=0\n[Resource]\nName=num[3]\nQuantity=2\n"
        ),
    );
    let state = held_state(user.latch().arg("-c").arg(&conf), &endpoint);
    let locker = state
        .lockers
        .iter()
        .find(|l| l.resource_name == "num[3]")
        .unwrap_or_else(|| panic!("num[3] held: {state:?}"));
    assert_eq!(locker.holders.len(), 1, "{locker:?}");
    assert_eq!(locker.holders[0].request.quantity, Some(2), "{locker:?}");

    // LockMode from the system file, under the user's Name.
    user.write(user.system_file(), "[Resource]\nLockMode=ConcurrentWrite\n");
    user.write(
        user.user_file(),
        &format!("[Daemon]\nSocketName={socket}\n[Resource]\nName=moded\n"),
    );
    let state = held_state(&mut user.latch(), &endpoint);
    let locker = state
        .lockers
        .iter()
        .find(|l| l.resource_name == "moded")
        .unwrap_or_else(|| panic!("moded held: {state:?}"));
    assert_eq!(
        locker.holders[0].request.lock_mode,
        Some(LockMode::CW),
        "{locker:?}"
    );
    std::fs::remove_file(user.system_file()).expect("the system file");

    // Timeout: a held resource is waited for that long, then refused (98).
    let holder = daemon.holder(&["-r", "busy"]);
    daemon.wait_state("busy held", |s| {
        s.lockers
            .iter()
            .any(|l| l.resource_name == "busy" && !l.holders.is_empty())
    });
    let conf = user.write(
        user.path("busy.conf"),
        "[Resource]\nName=busy\nTimeout=300\n",
    );
    let out = user
        .latch()
        .arg("-c")
        .arg(&conf)
        .args(["--", "true"])
        .expect_exit(EXIT_BUSY);
    assert_eq!(
        stderr(&out),
        "The lock was not obtained because timeout (300 milliseconds) expired\n"
    );
    drop(holder);

    // Create=no with Timeout=0: a resource nobody created cannot be waited for (96).
    let conf = user.write(
        user.path("nocreate.conf"),
        "[Resource]\nName=nobody\nCreate=no\nTimeout=0\n",
    );
    let out = user
        .latch()
        .arg("-c")
        .arg(&conf)
        .args(["--", "true"])
        .expect_exit(EXIT_CANT_WAIT);
    assert_eq!(
        stderr(&out),
        "The resource could be available in the future, but the requester can't wait\n"
    );

    // IdleLifespan: the resource outlives its last client that long (plus the daemon's
    // grace); one without goes first.
    for (name, lifespan) in [("kept", 5000), ("gone", 0)] {
        let conf = user.write(
            user.path(&format!("{name}.conf")),
            &format!("[Resource]\nName={name}\nIdleLifespan={lifespan}\n"),
        );
        user.latch()
            .arg("-c")
            .arg(&conf)
            .args(["--", "true"])
            .expect_success();
    }
    let state = daemon.wait_state("the resource without idle lifespan to go", |s| {
        !s.lockers.iter().any(|l| l.resource_name == "gone")
    });
    assert!(
        state.lockers.iter().any(|l| l.resource_name == "kept"),
        "IdleLifespan=5000 kept its resource: {state:?}"
    );
}

#[test]
fn daemon_keys_choose_the_daemon_and_whether_one_is_started() {
    let user = User::new();
    // UnicastAddress and UnicastPort: a TCP daemon.
    let daemon = DaemonOptions::new(Profile::Debug)
        .endpoint(Endpoint::TcpLoopback)
        .start();
    let port = daemon.port().to_string();
    let conf = user.write(
        user.path("tcp.conf"),
        &format!("[Daemon]\nUnicastAddress={LOOPBACK}\nUnicastPort={port}\nLifespan=0\n[Resource]\nName=overtcp\n"),
    );
    let endpoint = ["-a", LOOPBACK, "-p", &port].map(str::to_owned);
    let state = held_state(user.latch().arg("-c").arg(&conf), &endpoint);
    let holder = state
        .lockers
        .iter()
        .find(|l| l.resource_name == "overtcp")
        .and_then(|l| l.holders.first())
        .unwrap_or_else(|| panic!("overtcp held over TCP: {state:?}"));
    assert!(
        holder
            .request
            .peer_name
            .starts_with(&format!("{LOOPBACK}/")),
        "a TCP peer: {holder:?}"
    );

    // Lifespan=0: no daemon is started where none listens.
    let socket = user.path("nobody.sock");
    let conf = user.write(
        user.path("nostart.conf"),
        &format!("[Daemon]\nSocketName={}\nLifespan=0\n", socket.display()),
    );
    let out = user
        .latch()
        .arg("-c")
        .arg(&conf)
        .args(["-r", "x", "--", "true"])
        .expect_exit(EXIT_ERROR);
    assert!(
        stderr(&out).starts_with("flom_client_connect: ret_cod=-105"),
        "{}",
        stderr(&out)
    );
    assert!(!socket.exists(), "no daemon was started");

    // SocketName with UnicastAddress: flom's conflict, refused.
    let conf = user.write(
        user.path("both.conf"),
        &format!(
            "[Daemon]\nSocketName={}\nUnicastAddress={LOOPBACK}\n",
            socket.display()
        ),
    );
    let out = user
        .latch()
        .arg("-c")
        .arg(&conf)
        .args(["--", "true"])
        .expect_exit(EXIT_ERROR);
    assert_eq!(stderr(&out), "Configuration is not valid, cannot go on!\n");
}

#[test]
fn ignored_signals_from_the_option_and_the_key_do_not_stop_the_client() {
    let daemon = Daemon::start(Profile::Debug);
    let user = User::new();
    let conf = user.write(
        user.path("signals.conf"),
        "[Monitor]\nIgnoredSignals=SIGTERM;2\n",
    );
    let ways: [(&str, Vec<String>); 2] = [
        (
            "--ignore-signal twice",
            ["--ignore-signal", "SIGTERM", "--ignore-signal", "2"]
                .map(str::to_owned)
                .to_vec(),
        ),
        (
            "[Monitor] IgnoredSignals",
            vec!["-c".to_owned(), conf.to_str().expect("UTF-8").to_owned()],
        ),
    ];
    // SIGINT is bit 1 and SIGTERM bit 14 of /proc's SigIgn mask.
    let both = (1u64 << 1) | (1u64 << 14);
    for (i, (how, args)) in ways.iter().enumerate() {
        let gated = Gated::start(
            daemon.client().args(args).args(["-r", &format!("sig{i}")]),
            user.path(&format!("sig{i}")),
        );
        let pid = gated.pid();
        wait_for(
            &format!("{how}: SIGINT and SIGTERM ignored"),
            CHANGE,
            || {
                let mask = u64::from_str_radix(proc_status(pid, "SigIgn").trim(), 16).ok()?;
                (mask & both == both).then_some(())
            },
        );
        signal(pid, Signal::SIGTERM);
        signal(pid, Signal::SIGINT);
        let status = gated.release();
        assert!(status.success(), "{how}: the client survived: {status}");
    }
    // Not ignored, SIGTERM ends the client.
    let gated = Gated::start(daemon.client().args(["-r", "plain"]), user.path("plain"));
    signal(gated.pid(), Signal::SIGTERM);
    let status = gated.release();
    assert_eq!(
        status.signal(),
        Some(15),
        "without --ignore-signal: {status}"
    );
}

// ---------------------------------------------------------------------------------------
// Trace files

fn count(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

#[test]
fn trace_files_are_written_and_truncated_or_appended_to() {
    let user = User::new();
    let socket = user.path("sock");
    let (dtrace, ctrace) = (user.path("daemon.trace"), user.path("command.trace"));
    let mut spawned = SpawnedDaemons::new(&socket);
    // One client that starts a daemon, then stops it (-X), and the daemon's pid; `extra`
    // are the trace options.
    let mut run = |extra: &[String]| -> i32 {
        user.latch()
            .arg("-s")
            .arg(&socket)
            .args(["-d", "-1", "-r", "traced"])
            .args(extra)
            .args(["--", "true"])
            .expect_success();
        let pid = spawned.the_one();
        // The daemon says it listens after it told the client it is ready.
        wait_for("the daemon's trace", CHANGE, || {
            (count(&dtrace, &format!("pid {pid}")) == 1).then_some(())
        });
        user.latch()
            .arg("-s")
            .arg(&socket)
            .arg("-X")
            .expect_success();
        wait_for("the daemon to exit on -X", CHANGE, || {
            spawned.running().is_empty().then_some(())
        });
        pid
    };
    let options = |append: &str| {
        let mut v = vec!["-t".to_owned(), dtrace.to_str().expect("UTF-8").to_owned()];
        v.extend(["-T".to_owned(), ctrace.to_str().expect("UTF-8").to_owned()]);
        v.extend(["--append-trace-file".to_owned(), append.to_owned()]);
        v
    };
    const LOCKING: &str = "locking \"traced\"";
    const LISTENING: &str = "listening on";
    let first = run(&options("no"));
    assert_eq!((count(&ctrace, LOCKING), count(&dtrace, LISTENING)), (1, 1));
    // Truncated: only the second daemon's trace is left.
    let second = run(&[
        "-t",
        dtrace.to_str().expect("UTF-8"),
        "-T",
        ctrace.to_str().expect("UTF-8"),
    ]
    .map(str::to_owned));
    assert_eq!((count(&ctrace, LOCKING), count(&dtrace, LISTENING)), (1, 1));
    assert_eq!(count(&dtrace, &format!("pid {first}")), 0, "truncated");
    // Appended: both.
    let third = run(&options("yes"));
    assert_eq!((count(&ctrace, LOCKING), count(&dtrace, LISTENING)), (2, 2));
    assert_eq!(count(&dtrace, &format!("pid {second}")), 1, "appended");
    // The same from the keys.
    let conf = user.write(
        user.path("trace.conf"),
        &format!(
            "[Trace]\nDaemonTraceFile={}\nCommandTraceFile={}\nAppendTraceFile=yes\n",
            dtrace.display(),
            ctrace.display()
        ),
    );
    run(&["-c".to_owned(), conf.to_str().expect("UTF-8").to_owned()]);
    assert_eq!((count(&ctrace, LOCKING), count(&dtrace, LISTENING)), (3, 3));
    assert_eq!(count(&dtrace, &format!("pid {third}")), 1, "appended");

    // A trace file that cannot be opened is an error before anything runs.
    let out = user
        .latch()
        .args(["-T", "/nonexistent-dir/c.trace", "--", "true"])
        .expect_exit(EXIT_ERROR);
    assert!(
        stderr(&out).contains("/nonexistent-dir/c.trace"),
        "{}",
        stderr(&out)
    );
    let out = user
        .latch()
        .args(["--append-trace-file", "perhaps", "--", "true"])
        .expect_exit(EXIT_ERROR);
    assert_eq!(
        stderr(&out),
        "append-trace-file: 'perhaps' is an invalid value\n"
    );
}

// ---------------------------------------------------------------------------------------
// TCP keepalive, on the daemon's accepted connection and on the client's

fn keepalive(time: u32, intvl: u32, probes: u32) -> Keepalive {
    Keepalive {
        on: true,
        time,
        intvl,
        probes,
    }
}

/// Holds a lock over TCP with `args`, and the keepalive of the client's connection and of
/// the daemon's accepted one.
fn keepalive_of(
    daemon_pid: u32,
    port: u16,
    client: &mut TestCommand,
    prefix: PathBuf,
) -> (Vec<Keepalive>, Vec<Keepalive>) {
    let gated = Gated::start(client, prefix);
    let found = (
        tcp_keepalive(gated.pid(), End::Peer(port)),
        tcp_keepalive(daemon_pid, End::Local(port)),
    );
    assert!(gated.release().success());
    found
}

#[test]
fn tcp_keepalive_is_set_on_both_ends_of_the_connection() {
    let user = User::new();
    let daemon = DaemonOptions::new(Profile::Debug)
        .endpoint(Endpoint::TcpLoopback)
        .args(&[
            "--tcp-keepalive-time",
            "7",
            "--tcp-keepalive-intvl",
            "3",
            "--tcp-keepalive-probes",
            "4",
        ])
        .start();
    let port = daemon.port();
    let (client, accepted) = keepalive_of(
        daemon.pid(),
        port,
        daemon.client().args([
            "-d",
            "0",
            "-r",
            "ka",
            "--tcp-keepalive-time",
            "11",
            "--tcp-keepalive-intvl",
            "5",
            "--tcp-keepalive-probes",
            "2",
        ]),
        user.path("ka1"),
    );
    assert_eq!(client, [keepalive(11, 5, 2)], "the client's options");
    assert_eq!(accepted, [keepalive(7, 3, 4)], "the daemon's options");

    // The keys, for the client; flom's defaults without them.
    let conf = user.write(
        user.path("ka.conf"),
        "[Network]\nTcpKeepaliveTime=13\nTcpKeepaliveIntvl=6\nTcpKeepaliveProbes=3\n",
    );
    let (client, _) = keepalive_of(
        daemon.pid(),
        port,
        daemon
            .client()
            .args(["-d", "0", "-r", "ka", "-c"])
            .arg(&conf),
        user.path("ka2"),
    );
    assert_eq!(client, [keepalive(13, 6, 3)], "the [Network] keys");
    let plain = DaemonOptions::new(Profile::Debug)
        .endpoint(Endpoint::TcpLoopback)
        .start();
    let (client, accepted) = keepalive_of(
        plain.pid(),
        plain.port(),
        plain.client().args(["-d", "0", "-r", "ka"]),
        user.path("ka3"),
    );
    assert_eq!(client, [keepalive(60, 10, 6)], "flom's defaults, client");
    assert_eq!(accepted, [keepalive(60, 10, 6)], "flom's defaults, daemon");

    // A daemon the client starts gets the client's values.
    let free = std::net::TcpListener::bind((LOOPBACK, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let mut spawned = SpawnedDaemons::new(free.to_string());
    let mut cmd = user.latch();
    cmd.args([
        "-a",
        LOOPBACK,
        "-p",
        &free.to_string(),
        "-d",
        "-1",
        "-r",
        "ka",
    ])
    .args(["--tcp-keepalive-time", "17", "--tcp-keepalive-intvl", "8"])
    .args(["--tcp-keepalive-probes", "5"]);
    let gated = Gated::start(&mut cmd, user.path("ka4"));
    let started = spawned.the_one();
    let accepted = tcp_keepalive(started as u32, End::Local(free));
    assert!(gated.release().success());
    assert_eq!(
        accepted,
        [keepalive(17, 8, 5)],
        "the started daemon's connection"
    );

    // A value the kernel refuses fails the client.
    let out = daemon
        .client()
        .args([
            "-d",
            "0",
            "-r",
            "ka",
            "--tcp-keepalive-time",
            "-1",
            "--",
            "true",
        ])
        .expect_exit(EXIT_ERROR);
    assert!(!out.stderr.is_empty(), "it says why");
}

// ---------------------------------------------------------------------------------------
// Bad configurations

#[test]
fn each_bad_configuration_names_its_file_line_and_key_and_exits_99() {
    // (file text, what the message must name besides the file)
    let cases: [(&str, &[&str]); 6] = [
        (
            "[Resource]\nName=x\nbroken line\n",
            &["line 3", "'broken line'"],
        ),
        ("Name=x\n", &["line 1", "[Group]"]),
        (
            "[Resource]\nLockMode=sideways\n",
            &["line 2", "[Resource] LockMode", "'sideways'"],
        ),
        (
            "[Resource]\nCreate=perhaps\n",
            &["line 2", "[Resource] Create", "'perhaps'"],
        ),
        (
            "[Daemon]\n# lifespan\nLifespan=12x\n",
            &["line 3", "Lifespan", "'12x'"],
        ),
        (
            "[Resource]\nTimeout=99999999999\n",
            &["line 2", "Timeout", "out of range"],
        ),
    ];
    for (text, needles) in cases {
        for which in ["system", "user", "-c"] {
            let user = User::new();
            let mut cmd = user.latch();
            let path = match which {
                "system" => user.write(user.system_file(), text),
                "user" => user.write(user.user_file(), text),
                _ => {
                    let path = user.write(user.path("my.conf"), text);
                    cmd.arg("-c").arg(&path);
                    path
                }
            };
            let ran = user.path("ran");
            let out = cmd
                .args(["-d", "0", "--", "touch"])
                .arg(&ran)
                .expect_exit(EXIT_ERROR);
            let message = stderr(&out);
            assert!(
                message.contains(&path.display().to_string())
                    && needles.iter().all(|n| message.contains(n)),
                "{which} file {text:?}: {needles:?} in {message:?}"
            );
            assert_eq!(message.lines().count(), 1, "one line: {message:?}");
            assert!(!ran.exists(), "{which} file {text:?}: the command ran");
        }
    }
    // A -c file that is missing is an error; missing system and user files are not.
    let user = User::new();
    let out = user
        .latch()
        .args(["-c", "/nonexistent/flom.conf", "--", "true"])
        .expect_exit(EXIT_ERROR);
    assert!(
        stderr(&out).contains("/nonexistent/flom.conf"),
        "{}",
        stderr(&out)
    );
    // One TLS file alone is shown by -V but is no TLS (FLoM's: all three or none): the
    // command runs, over a plain connection.
    let conf = user.write(user.path("tls.conf"), "[TLS]\nTlsCertificate=/x.pem\n");
    let out = user
        .latch()
        .arg("-V")
        .arg("-c")
        .arg(&conf)
        .args(["-d", "0", "-s"])
        .arg(user.path("no-daemon.sock"))
        .args(["--", "true"])
        .expect_exit(EXIT_ERROR);
    assert!(
        lines(&out).contains(&"[TLS]/TlsCertificate='/x.pem'".to_owned()),
        "{out:?}"
    );
    assert!(
        stderr(&out).contains("flom_client_connect: ret_cod=-105"),
        "no TLS file error, only no daemon to reach: {}",
        stderr(&out)
    );
}

/// cmdopt.at.in, one AT_SETUP per option ("Resource name: -r, --resource-name" …): each option
/// latch implements, in its short and its long `--name=value` form, shows in `-V`'s print-out;
/// "Help: -h, --help" and "Invalid option: -Z, --ZZZ-ZZZ" exit 0 and 99.
#[test]
fn each_option_in_its_short_and_long_form_shows_in_dash_capital_v_as_cmdopt() {
    let user = User::new();
    let trace = user.text("c.trace");
    // (short form, long form, the -V line it makes)
    let options: [(&[&str], String, String); 26] = [
        (
            &["-t", "/tmp/d.trc"],
            "--daemon-trace-file=/tmp/d.trc".into(),
            "[Trace]/DaemonTraceFile='/tmp/d.trc'".into(),
        ),
        (
            &["-T", &trace],
            format!("--command-trace-file={trace}"),
            format!("[Trace]/CommandTraceFile='{trace}'"),
        ),
        (
            &["--append-trace-file", "yes"],
            "--append-trace-file=yes".into(),
            "[Trace]/AppendTraceFile=1".into(),
        ),
        (
            &["-r", "MYRES"],
            "--resource-name=MYRES".into(),
            "[Resource]/Name='MYRES'".into(),
        ),
        (
            &["-o", "100"],
            "--resource-timeout=100".into(),
            "[Resource]/Timeout=100".into(),
        ),
        (
            &["-o", "-100"],
            "--resource-timeout=-100".into(),
            "[Resource]/Timeout=-100".into(),
        ),
        (
            &["-q", "22"],
            "--resource-quantity=22".into(),
            "[Resource]/Quantity=22".into(),
        ),
        (
            &["-e", "n"],
            "--resource-create=no".into(),
            "[Resource]/Create=0".into(),
        ),
        (
            &["-i", "123"],
            "--resource-idle-lifespan=123".into(),
            "[Resource]/IdleLifespan=123".into(),
        ),
        (
            &["-l", "PR"],
            "--lock-mode=ProtectedRead".into(),
            "[Resource]/LockMode=3".into(),
        ),
        (
            &["-s", "/tmp/foo"],
            "--socket-name=/tmp/foo".into(),
            "[Daemon]/SocketName='/tmp/foo'".into(),
        ),
        (
            &["-d", "231"],
            "--daemon-lifespan=231".into(),
            "[Daemon]/Lifespan=231".into(),
        ),
        (
            &["-a", "localhost"],
            "--unicast-address=localhost".into(),
            "[Daemon]/UnicastAddress='localhost'".into(),
        ),
        (
            &["-p", "27750"],
            "--unicast-port=27750".into(),
            "[Daemon]/UnicastPort=27750".into(),
        ),
        (
            &["-m", "/tmp/flom-test-vfs"],
            "--mount-point-vfs=/tmp/flom-test-vfs".into(),
            "[Daemon]/MountPointVFS='/tmp/flom-test-vfs'".into(),
        ),
        (
            &["--ignore-signal", "SIGQUIT"],
            "--ignore-signal=SIGQUIT".into(),
            "[Monitor]/IgnoredSignals='SIGQUIT'".into(),
        ),
        (
            &["--tcp-keepalive-time", "12345"],
            "--tcp-keepalive-time=12345".into(),
            "[Network]/TcpKeepaliveTime=12345".into(),
        ),
        (
            &["-A", "224.0.0.1"],
            "--multicast-address=224.0.0.1".into(),
            "[Daemon]/MulticastAddress='224.0.0.1'".into(),
        ),
        (
            &["-P", "28001"],
            "--multicast-port=28001".into(),
            "[Daemon]/MulticastPort=28001".into(),
        ),
        (
            &["-n", "eth0"],
            "--network-interface=eth0".into(),
            "[Network]/NetworkInterface='eth0'".into(),
        ),
        (
            &["-D", "7"],
            "--discovery-attempts=7".into(),
            "[Network]/DiscoveryAttempts=7".into(),
        ),
        (
            &["-I", "123"],
            "--discovery-timeout=123".into(),
            "[Network]/DiscoveryTimeout=123".into(),
        ),
        (
            &["--discovery-ttl", "3"],
            "--discovery-ttl=3".into(),
            "[Network]/DiscoveryTTL=3".into(),
        ),
        (
            &["--tls-certificate", "/tmp/c.pem"],
            "--tls-certificate=/tmp/c.pem".into(),
            "[TLS]/TlsCertificate='/tmp/c.pem'".into(),
        ),
        (
            &["--tls-private-key", "/tmp/k.pem"],
            "--tls-private-key=/tmp/k.pem".into(),
            "[TLS]/TlsPrivateKey='/tmp/k.pem'".into(),
        ),
        (
            &["--tls-ca-certificate", "/tmp/ca.pem"],
            "--tls-ca-certificate=/tmp/ca.pem".into(),
            "[TLS]/TlsCaCertificate='/tmp/ca.pem'".into(),
        ),
    ];
    for (short, long, line) in &options {
        for form in [
            short.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            vec![long.clone()],
        ] {
            let printed = printed_without_command(user.latch().arg("-V").args(&form));
            assert!(printed.contains(line), "{form:?}: {line} in {printed:?}");
        }
    }
    for (option, line) in [
        (
            "--tcp-keepalive-intvl=12345",
            "[Network]/TcpKeepaliveIntvl=12345",
        ),
        (
            "--tcp-keepalive-probes=12345",
            "[Network]/TcpKeepaliveProbes=12345",
        ),
    ] {
        let printed = printed_without_command(user.latch().args(["--verbose", option]));
        assert!(printed.contains(&line.to_owned()), "{option}: {printed:?}");
    }
    // Shown, then refused by flom's check: the peer-id check without the three files.
    for form in [
        &["--tls-check-peer-id", "yes"][..],
        &["--tls-check-peer-id=yes"],
    ] {
        let out = user.latch().arg("-V").args(form).expect_exit(EXIT_ERROR);
        let printed = lines(&out);
        assert!(
            printed.contains(&"[TLS]/TlsCheckPeerId=1".to_owned()),
            "{form:?}: {printed:?}"
        );
    }
    let printed = printed_without_command(user.latch().args([
        "-V",
        "--ignore-signal=SIGQUIT",
        "--ignore-signal=SIGTERM",
    ]));
    assert!(
        printed.contains(&"[Monitor]/IgnoredSignals='SIGQUIT;SIGTERM'".to_owned()),
        "{printed:?}"
    );
    for help in ["-h", "--help"] {
        let out = user.latch().arg(help).expect_success();
        assert!(out.contains("--resource-name"), "{help}: {out}");
    }
    for bad in [
        &["-z", "FOO", "--", "ls"][..],
        &["--ZZZ-ZZZ=BAR", "--", "ls"],
    ] {
        user.latch().args(bad).expect_exit(EXIT_ERROR);
    }
}
