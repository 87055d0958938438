//! `latch-probe print` and `type` on any Rust program: on the value fixture (known values of
//! every type the probe decodes), each expression gives exactly the expected text and JSON,
//! live and from a core file; on a running daemon, the lock table printed by path agrees
//! with `latch state --json`; a bad expression or a missing part is an error that names the
//! part and what was expected there; garbage pointers and lengths are errors, not panics.
//!
//! Needs root (ptrace, gcore). Every process started is stopped by its pid.

use latch_tests::background::Background;
use latch_tests::bins::{probe_bin, Profile};
use latch_tests::coredump::gcore;
use latch_tests::daemon::Daemon;
use latch_tests::fixture::ValueFixture;
use latch_tests::probe::latch_probe;
use latch_tests::state::waiting;
use latch_tests::timeouts::{CHANGE, POLL};
use latch_tests::wait::wait_for;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

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
        // Every other value of the fixture, by the type it shows.
        ("BIG", "1512366075204170947332355369683137040", json!("1512366075204170947332355369683137040")),
        ("FLOAT", "-0.0025", json!(-0.0025)),
        ("LETTER", "'ß'", json!("ß")),
        ("FLAG", "true", json!(true)),
        ("RAW", "[\n    0,\n    1,\n    254,\n    255,\n]", json!([0, 1, 254, 255])),
        ("NUMBERS", "[\n    7,\n    0,\n    65535,\n]", json!([7, 0, 65535])),
        ("MAYBE", "Some(\n    7,\n)", json!({"variant": "Some", "fields": {"__0": 7}})),
        ("NOTHING", "None", json!({"variant": "None", "fields": {}})),
        ("FREE", "Mutex(Unlocked) []", json!({"state": "Unlocked", "poisoned": false, "value": []})),
        (
            "SHARED",
            "RwLock(2 readers) 5",
            json!({"write_locked": false, "readers": 2, "poisoned": false, "value": 5}),
        ),
        (
            "EXCLUSIVE",
            "RwLock(write-locked) 6",
            json!({"write_locked": true, "readers": 0, "poisoned": false, "value": 6}),
        ),
        (
            "FIXTURE.Some.0.deque",
            "[\n    5,\n    6,\n    7,\n    100,\n    101,\n    102,\n    103,\n]",
            json!([5, 6, 7, 100, 101, 102, 103]),
        ),
        ("FIXTURE.Some.0.empty_vec", "[]", json!([])),
        ("FIXTURE.Some.0.string", "\"héllo wörld\"", json!("héllo wörld")),
        ("FIXTURE.Some.0.str_ref", "\"static str\"", json!("static str")),
        ("FIXTURE.Some.0.bytes", "[\n    0,\n    1,\n    254,\n    255,\n]", json!([0, 1, 254, 255])),
        ("FIXTURE.Some.0.array", "[\n    -1,\n    0,\n    1,\n    32767,\n]", json!([-1, 0, 1, 32767])),
        ("FIXTURE.Some.0.empty_map", "{}", json!([])),
        (
            "FIXTURE.Some.0.small_btree",
            "{\n    \"one\": 1,\n    \"three\": 3,\n    \"two\": 2,\n}",
            json!([["one", 1], ["three", 3], ["two", 2]]),
        ),
        ("FIXTURE.Some.0.rc", "Rc(strong 2, weak 2) 7", json!({"strong": 2, "weak": 2, "value": 7})),
        ("FIXTURE.Some.0.tagged_some", "Some(\n    17,\n)", json!({"variant": "Some", "fields": {"__0": 17}})),
        ("FIXTURE.Some.0.tagged_none", "None", json!({"variant": "None", "fields": {}})),
        ("FIXTURE.Some.0.niche_none", "None", json!({"variant": "None", "fields": {}})),
        ("FIXTURE.Some.0.nonzero_some", "Some(\n    99,\n)", json!({"variant": "Some", "fields": {"__0": 99}})),
        ("FIXTURE.Some.0.box_none", "None", json!({"variant": "None", "fields": {}})),
        (
            "FIXTURE.Some.0.colors",
            "[\n    Red,\n    Green,\n    Blue,\n]",
            json!([
                {"variant": "Red", "fields": {}},
                {"variant": "Green", "fields": {}},
                {"variant": "Blue", "fields": {}}
            ]),
        ),
        ("FIXTURE.Some.0.mutex", "Mutex(Unlocked) 11", json!({"state": "Unlocked", "poisoned": false, "value": 11})),
        (
            "FIXTURE.Some.0.rwlock",
            "RwLock(unlocked) [\n    1,\n    2,\n]",
            json!({"write_locked": false, "readers": 0, "poisoned": false, "value": [1, 2]}),
        ),
        ("FIXTURE.Some.0.cell", "-5", json!(-5)),
        ("FIXTURE.Some.0.refcell", "RefCell(borrow 2) \"borrowed\"", json!({"borrow": 2, "value": "borrowed"})),
        ("FIXTURE.Some.0.refcell_mut", "RefCell(borrow -1) 3", json!({"borrow": -1, "value": 3})),
        (
            "FIXTURE.Some.0.nested",
            "Outer {\n    inner: Inner {\n        a: 1,\n        b: (\n            2,\n            'é',\n        ),\n    },\n    name: \"outer\",\n    color: Green,\n}",
            json!({"inner": {"a": 1, "b": [2, "é"]}, "name": "outer", "color": {"variant": "Green", "fields": {}}}),
        ),
        ("FIXTURE.Some.0.big", "340282366920938463463374607431768211454", json!("340282366920938463463374607431768211454")),
        ("FIXTURE.Some.0.negative", "-1234567890123", json!(-1234567890123i64)),
        ("FIXTURE.Some.0.float", "3.141592653589793", json!(std::f64::consts::PI)),
        ("FIXTURE.Some.0.letter", "'🦀'", json!("🦀")),
        ("FIXTURE.Some.0.flag", "false", json!(false)),
        // Through the Rc<RefCell<Node>> cycle: `next` of node 1 is node 2.
        ("FIXTURE.Some.0.cycle.next.Some.0.value", "2", json!(2)),
        // Raw pointers are followed as Rust's auto-deref would.
        ("POINTERS.to_inner.a", "5", json!(5)),
        ("POINTERS.non_null.b", "(\n    6,\n    'y',\n)", json!([6, "y"])),
    ]
}

/// The value fixture, started, and its pid as an argument.
fn start_fixture() -> (ValueFixture, String) {
    let fixture = ValueFixture::start(Path::new(env!("CARGO_BIN_EXE_value_fixture")));
    let pid = fixture.pid().to_string();
    (fixture, pid)
}

fn check(target: &[&str], source: &str) {
    for (expr, text, json) in cases() {
        let mut args = vec!["print"];
        args.extend(target);
        args.push(expr);
        let printed = latch_probe(&args).expect_success();
        assert_eq!(printed.trim_end(), text, "print {expr} ({source})");
        args.push("--json");
        let got: Value = latch_probe(&args).expect_json();
        assert_eq!(got, json, "print {expr} --json ({source})");
    }
}

#[test]
fn print_gives_the_fixture_s_values_live_and_from_a_core() {
    let (fixture, pid) = start_fixture();
    check(&["--pid", &pid], "live");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let core = gcore(fixture.pid(), dir.path());
    check(
        &[
            "--core",
            core.to_str().expect("UTF-8"),
            "--exe",
            fixture.exe.to_str().expect("UTF-8"),
        ],
        "core",
    );

    // The type's layout, as DWARF gives it.
    let layout = latch_probe(&["type", "--pid", &pid, "FIXTURE.Some.0.boxed"]).expect_success();
    assert!(layout.starts_with("value_fixture::Inner ("), "{layout}");
    assert!(
        layout.contains(" a: u8") && layout.contains(" b: (u16, char)"),
        "{layout}"
    );
}

#[test]
fn bad_expressions_name_the_part_that_failed() {
    let (_fixture, pid) = start_fixture();
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
    fails_naming(&pid, &failing);
}

/// `print` of each `(expression, place, what)` exits 1 with an error that names the place
/// and says what.
fn fails_naming(pid: &str, failing: &[(&str, &str, &str)]) {
    for (expr, place, expected) in failing {
        let out = latch_probe(&["print", "--pid", pid, expr]).expect_exit(1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(place) && stderr.contains(expected),
            "{expr}: the error should name {place:?} and say {expected:?}: {stderr}"
        );
    }
}

/// Garbage in the target (a null and a dangling pointer, a `Vec` whose pointer and lengths
/// are lies) is an error that says what could not be read, or is shown in place inside a
/// value that reads: never a panic, a hang or an allocation of the length it claims.
#[test]
fn garbage_pointers_and_lengths_are_errors() {
    let (_fixture, pid) = start_fixture();
    let whole = latch_probe(&["print", "--pid", &pid, "POINTERS"]).expect_success();
    for part in [
        "null: 0x0 as *const value_fixture::Inner,",
        "dangling: 0x10 as *const value_fixture::Inner,",
        "lying: [\n        <error: 8 bytes at 0x1baddead0000 are not in the snapshot",
        "… (30433579171839 more)",
    ] {
        assert!(whole.contains(part), "{part:?} in:\n{whole}");
    }
    // What the lying `Vec` claims, as it claims it.
    let len = latch_probe(&["print", "--pid", &pid, "POINTERS.lying.len()"]).expect_success();
    assert_eq!(len.trim(), "30433579171840");
    fails_naming(
        &pid,
        &[
            ("POINTERS.null.a", "`.a` (step 2)", "is null"),
            (
                "POINTERS.dangling.a",
                "could not be read",
                "at 0x18 are not in the snapshot",
            ),
            (
                "POINTERS.lying[3]",
                "`[3]` (step 2)",
                "element 0 could not be read",
            ),
            (
                "POINTERS.lying[0]",
                "could not be read",
                "at 0x1baddead0000",
            ),
        ],
    );
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
    let state = wait_for("the scenario", CHANGE, || {
        let s = daemon.state();
        (s.lockers.len() == 2 && waiting(&s) == 2).then_some(s)
    });
    let pid = daemon.pid().to_string();
    let count = latch_probe(&["print", "--pid", &pid, "LOCK_TABLE.lockers.len()"]).expect_success();
    assert_eq!(count.trim(), state.lockers.len().to_string());
    // The whole table: each locker's id, name, creation time and its holders' and waiters'
    // connections, in the daemon's order.
    let table: Value =
        latch_probe(&["print", "--pid", &pid, "LOCK_TABLE.lockers", "--json"]).expect_json();
    let conns = |entries: &Value| -> Vec<u64> {
        entries
            .as_array()
            .expect("an array of requests")
            .iter()
            .map(|r| r["conn"].as_u64().expect("a conn"))
            .collect()
    };
    /// Id, name, creation time, holders' and waiters' connections.
    type Line = (u64, String, u64, Vec<u64>, Vec<u64>);
    let printed: Vec<Line> = table
        .as_array()
        .expect("a map printed as [key, value] pairs")
        .iter()
        .map(|pair| {
            let locker = &pair[1];
            assert_eq!(pair[0], locker["id"], "keyed by id: {pair}");
            (
                locker["id"].as_u64().expect("an id"),
                locker["resource_name"].as_str().expect("a name").to_owned(),
                locker["created_ns"].as_u64().expect("a creation time"),
                conns(&locker["holders"]),
                conns(&locker["waitings"]),
            )
        })
        .collect();
    let expected: Vec<Line> = state
        .lockers
        .iter()
        .map(|l| {
            (
                l.id,
                l.resource_name.clone(),
                l.created_ns,
                l.holders.iter().map(|h| h.request.conn).collect(),
                l.waitings.iter().map(|w| w.request.conn).collect(),
            )
        })
        .collect();
    assert_eq!(printed, expected, "{table:#}");
    let printer = state
        .lockers
        .iter()
        .find(|l| l.resource_name == "printer")
        .expect("the printer's locker");
    let expr = format!("LOCK_TABLE.lockers[{}].waitings", printer.id);
    let waitings: Value = latch_probe(&["print", "--pid", &pid, &expr, "--json"]).expect_json();
    let conns: Vec<u64> = waitings
        .as_array()
        .expect("an array")
        .iter()
        .map(|w| w["conn"].as_u64().expect("a conn"))
        .collect();
    assert_eq!(
        conns,
        printer
            .waitings
            .iter()
            .map(|w| w.request.conn)
            .collect::<Vec<_>>(),
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

    let (fixture, _) = start_fixture();
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
    let mut child = Background::spawn_keeping_output(&mut cmd);
    let mut master = std::fs::File::from(pty.master);
    nix::fcntl::fcntl(
        master.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .expect("non-blocking");
    let mut seen = String::new();
    let mut read_until = |want: &str, master: &mut std::fs::File| {
        let deadline = std::time::Instant::now() + CHANGE;
        let mut buf = [0u8; 4096];
        while !seen.contains(want) {
            assert!(
                std::time::Instant::now() < deadline,
                "the shell never showed {want:?}; it showed:\n{seen}"
            );
            match master.read(&mut buf) {
                Ok(n) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => std::thread::sleep(POLL),
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
    assert!(child.wait_within(CHANGE).success(), "{seen}");
}

/// A script runs every command and exits 0; a bad line stops it with exit code 1, naming the
/// line and the part of the expression that failed.
#[test]
fn a_shell_script_runs_and_stops_at_the_first_error() {
    let (_fixture, pid) = start_fixture();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("script");
    let run = |lines: &str| {
        std::fs::write(&script, lines).expect("write the script");
        latch_probe(&[
            "shell",
            "--pid",
            &pid,
            "--script",
            script.to_str().expect("UTF-8"),
        ])
    };
    let out = run(
        "# the fixture's values\nfreeze\nprint FIXTURE.Some.0.vec_u32[2]\nprint GREETING\nthaw\nls FLA\n",
    )
    .expect_success();
    assert_eq!(
        out,
        "holding one snapshot; `thaw` lets it go\n3\n\"grüß dich\"\nreading afresh for each command\nvalue_fixture::FLAG\n"
    );
    let out = run("print GREETING\nprint FIXTURE.Some.0.vec_u32[\nprint FLAG\n").expect_exit(1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("expected an index"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"grüß dich\"\n");
}
