//! `latch-probe print` and `type` on any Rust program: on the value fixture (known values of
//! every type the probe decodes), each expression gives exactly the expected text and JSON,
//! live and from a core file; on a running daemon, the lock table printed by path agrees
//! with `latch state --json`; a bad expression or a missing part is an error that names the
//! part and what was expected there.
//!
//! Needs root (ptrace, gcore). Every process started is stopped by its pid.

use latch_tests::{output_within, probe_bin, wait_for, Daemon, Profile, ValueFixture};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

fn probe(args: &[&str]) -> Output {
    output_within(Command::new(probe_bin()).args(args), TIMEOUT)
}

fn stdout_of(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

/// Expressions on the fixture with the text and the JSON they must print.
fn cases() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "FIXTURE.Some.0.vec_u32[1..4]",
            "[\n    2,\n    3,\n    5,\n]",
            json!([2, 3, 5]),
        ),
        (r#"FIXTURE.Some.0.map["key3"]"#, "300", json!(300)),
        ("FIXTURE.Some.0.btree[42]", "\"v42\"", json!("v42")),
        (
            "value_fixture::FIXTURE.Some.0.vec_string.len()",
            "3",
            json!(3),
        ),
        (
            "FIXTURE.Some.0.shapes[2]",
            "Rect(\n    3,\n    4,\n)",
            json!({"variant": "Rect", "fields": {"__0": 3, "__1": 4}}),
        ),
        (
            "FIXTURE.Some.0.shapes[1] as Circle",
            "Circle {\n    radius: 1.5,\n}",
            json!({"radius": 1.5}),
        ),
        (
            "FIXTURE.Some.0.boxed",
            "Inner {\n    a: 9,\n    b: (\n        300,\n        'x',\n    ),\n}",
            json!({"a": 9, "b": [300, "x"]}),
        ),
        (
            "FIXTURE.Some.0.niche_some.Some.0",
            "\"niche\"",
            json!("niche"),
        ),
        (
            "FIXTURE.Some.0.arc",
            "Arc(strong 3, weak 1) \"shared\"",
            json!({"strong": 3, "weak": 1, "value": "shared"}),
        ),
        ("GREETING", "\"grüß dich\"", json!("grüß dich")),
        (
            "HELD",
            "Mutex(Locked) 42",
            json!({"state": "Locked", "poisoned": false, "value": 42}),
        ),
        ("COLOR", "Blue", json!({"variant": "Blue", "fields": {}})),
    ]
}

fn check(target: &[&str], source: &str) {
    for (expr, text, json) in cases() {
        let mut args = vec!["print"];
        args.extend(target);
        args.push(expr);
        let printed = stdout_of(&probe(&args), &format!("print {expr} ({source})"));
        assert_eq!(printed.trim_end(), text, "print {expr} ({source})");
        args.push("--json");
        let printed = stdout_of(&probe(&args), &format!("print {expr} --json ({source})"));
        let got: Value = serde_json::from_str(&printed).expect("JSON");
        assert_eq!(got, json, "print {expr} --json ({source})");
    }
}

#[test]
fn print_gives_the_fixture_s_values_live_and_from_a_core() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_value_fixture"));
    let fixture = ValueFixture::start(&exe);
    let pid = fixture.pid().to_string();
    check(&["--pid", &pid], "live");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let prefix = dir.path().join("core");
    let gcore = output_within(
        Command::new("gcore").arg("-o").arg(&prefix).arg(&pid),
        TIMEOUT,
    );
    assert!(
        gcore.status.success(),
        "gcore (scripts/setup.sh installs gdb): {gcore:?}"
    );
    let core = format!("{}.{pid}", prefix.display());
    check(
        &["--core", &core, "--exe", exe.to_str().expect("UTF-8")],
        "core",
    );

    // The type's layout, as DWARF gives it.
    let layout = stdout_of(
        &probe(&["type", "--pid", &pid, "FIXTURE.Some.0.boxed"]),
        "type",
    );
    assert!(layout.starts_with("value_fixture::Inner ("), "{layout}");
    assert!(
        layout.contains(" a: u8") && layout.contains(" b: (u16, char)"),
        "{layout}"
    );
}

#[test]
fn bad_expressions_name_the_part_that_failed() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_value_fixture"));
    let fixture = ValueFixture::start(&exe);
    let pid = fixture.pid().to_string();
    let failing = [
        ("FIXTURE.Some.0.vec_u32[x]", "column 24", "an index"),
        (
            "FIXTURE.Some.0.vec_u32[9]",
            "`[9]` (step 4)",
            "out of bounds: the length is 6",
        ),
        (
            "FIXTURE.Some.0.nested.nope",
            "`.nope` (step 4)",
            "has no field `nope`",
        ),
        (
            "FIXTURE.Some.0.tagged_none.Some",
            "`.Some` (step 4)",
            "is `None`",
        ),
        ("NO_SUCH_STATIC", "no static matches `NO_SUCH_STATIC`", ""),
    ];
    for (expr, place, expected) in failing {
        let out = probe(&["print", "--pid", &pid, expr]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{expr}: {stderr}");
        assert!(
            stderr.contains(place) && stderr.contains(expected),
            "{expr}: the error should name {place:?} and say {expected:?}: {stderr}"
        );
    }
}

#[test]
fn print_of_the_lock_table_agrees_with_the_daemon() {
    let daemon = Daemon::start(Profile::Debug);
    let _holder = daemon.holder(&["-r", "printer"]);
    let _waiters = [
        daemon.holder(&["-r", "printer"]),
        daemon.holder(&["-r", "printer", "-l", "PR"]),
    ];
    let _other = daemon.holder(&["-r", "num[3]", "-q", "2"]);
    let state = wait_for("the scenario", TIMEOUT, || {
        let s = daemon.state();
        (s.lockers.len() == 2 && s.lockers.iter().map(|l| l.waitings.len()).sum::<usize>() == 2)
            .then_some(s)
    });
    let pid = daemon.pid().to_string();
    let count = stdout_of(
        &probe(&["print", "--pid", &pid, "LOCK_TABLE.lockers.len()"]),
        "print lockers.len()",
    );
    assert_eq!(count.trim(), state.lockers.len().to_string());
    let printer = state
        .lockers
        .iter()
        .find(|l| l.resource_name == "printer")
        .expect("the printer's locker");
    let expr = format!("LOCK_TABLE.lockers[{}].waitings", printer.id);
    let waitings: Value = serde_json::from_str(&stdout_of(
        &probe(&["print", "--pid", &pid, &expr, "--json"]),
        "print waitings",
    ))
    .expect("JSON");
    let conns: Vec<u64> = waitings
        .as_array()
        .expect("an array")
        .iter()
        .map(|w| w["conn"].as_u64().expect("a conn"))
        .collect();
    assert_eq!(
        conns,
        printer.waitings.iter().map(|w| w.conn).collect::<Vec<_>>(),
        "{waitings:#}"
    );
}

/// The shell, driven through a pseudo-terminal: Tab completes a command, a static's name and
/// a field, and the completed line runs.
#[test]
fn the_shell_completes_statics_and_fields() {
    use nix::pty::openpty;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    let exe = PathBuf::from(env!("CARGO_BIN_EXE_value_fixture"));
    let fixture = ValueFixture::start(&exe);
    let pty = openpty(None, None).expect("a pseudo-terminal");
    let slave = std::fs::File::from(pty.slave);
    let mut cmd = Command::new(probe_bin());
    cmd.args(["shell", "--pid", &fixture.pid().to_string()])
        .env("TERM", "xterm")
        .stdin(slave.try_clone().expect("dup"))
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave);
    // SAFETY: setsid only makes the child the leader of a new session, so the terminal can
    // be its controlling one; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = latch_tests::Background::spawn_keeping_output(&mut cmd);
    let mut master = std::fs::File::from(pty.master);
    nix::fcntl::fcntl(
        master.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .expect("non-blocking");
    let mut seen = String::new();
    let mut read_until = |want: &str, master: &mut std::fs::File| {
        let deadline = std::time::Instant::now() + TIMEOUT;
        let mut buf = [0u8; 4096];
        while !seen.contains(want) {
            assert!(
                std::time::Instant::now() < deadline,
                "the shell never showed {want:?}; it showed:\n{seen}"
            );
            match master.read(&mut buf) {
                Ok(n) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    };
    read_until("latch> ", &mut master);
    master.write_all(b"pri\t").expect("type");
    read_until("print", &mut master);
    master.write_all(b" FIXT\t").expect("type");
    read_until("FIXTURE", &mut master);
    master.write_all(b".Some.0.vec_st\t").expect("type");
    read_until("vec_string", &mut master);
    master.write_all(b".len()\r").expect("type");
    read_until("3\r\n", &mut master);
    master.write_all(b"quit\r").expect("type");
    assert!(child.wait_within(TIMEOUT).success(), "{seen}");
}

/// A script runs every command and exits 0; a bad line stops it with exit code 1, naming the
/// line and the part of the expression that failed.
#[test]
fn a_shell_script_runs_and_stops_at_the_first_error() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_value_fixture"));
    let fixture = ValueFixture::start(&exe);
    let pid = fixture.pid().to_string();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("script");
    std::fs::write(
        &script,
        "# the fixture's values\nfreeze\nprint FIXTURE.Some.0.vec_u32[2]\nprint GREETING\nthaw\nls FLA\n",
    )
    .expect("write the script");
    let out = probe(&[
        "shell",
        "--pid",
        &pid,
        "--script",
        script.to_str().expect("UTF-8"),
    ]);
    assert_eq!(
        stdout_of(&out, "shell --script"),
        "holding one snapshot; `thaw` lets it go\n3\n\"grüß dich\"\nreading afresh for each command\nvalue_fixture::FLAG\n"
    );
    std::fs::write(
        &script,
        "print GREETING\nprint FIXTURE.Some.0.vec_u32[\nprint FLAG\n",
    )
    .expect("write the script");
    let out = probe(&[
        "shell",
        "--pid",
        &pid,
        "--script",
        script.to_str().expect("UTF-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 2") && stderr.contains("expected an index"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"grüß dich\"\n");
}
