//! `latch-probe stacks` on a wedged daemon (`--debug-feature hang-on-lock=NAME`, then a lock
//! on NAME): it names the owner thread that holds the lock table (parked in the hook), and
//! the admin thread blocked on the table's mutex, named from the debug info; the daemon is
//! left running, untraced. From a core file of the same daemon, the same threads (by tid) say
//! the same.
//!
//! Needs root (ptrace, gcore). Every process started is stopped by its pid.

use latch_tests::{output_within, probe_bin, wait_for, Background, Daemon, Profile};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
const LOCK_TABLE: &str = "latch::table::LOCK_TABLE";

/// `latch-probe stacks ARGS --json`, parsed: the threads.
fn stacks(args: &[&str]) -> Vec<Value> {
    let out = output_within(
        Command::new(probe_bin())
            .arg("stacks")
            .args(args)
            .arg("--json"),
        TIMEOUT,
    );
    assert!(
        out.status.success(),
        "latch-probe stacks {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let threads: Value = serde_json::from_slice(&out.stdout).expect("stacks --json is JSON");
    threads.as_array().cloned().expect("an array of threads")
}

fn functions(thread: &Value) -> Vec<String> {
    thread["frames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["function"].as_str().map(str::to_owned))
        .collect()
}

/// (tid, holds the table, the name of what it is blocked on) per thread.
fn summary(threads: &[Value]) -> Vec<(u64, bool, Option<String>)> {
    threads
        .iter()
        .map(|t| {
            (
                t["tid"].as_u64().expect("a tid"),
                t["holds"]
                    .as_array()
                    .is_some_and(|h| h.iter().any(|l| l == LOCK_TABLE)),
                t["blocked_on"]["name"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Whether the thread `latch-admin` is in futex(2) (x86-64 system call 202).
fn admin_in_futex(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).any(|task| {
        let read = |f: &str| std::fs::read_to_string(task.path().join(f)).unwrap_or_default();
        read("comm").trim() == "latch-admin" && read("syscall").split(' ').next() == Some("202")
    })
}

fn proc_status(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon runs");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn stacks_name_the_wedged_owner_and_the_threads_blocked_on_the_table() {
    let mut daemon = Daemon::start_with(Profile::Debug, &["--debug-feature", "hang-on-lock=stuck"]);
    let pid = daemon.pid();
    // Wedged: the admin API (which needs the table's mutex) no longer answers.
    let _wedger = daemon.wedge("stuck");
    // An admin request that waits: the admin thread takes it and blocks on the table.
    let _asking = Background::spawn(daemon.client().args(["state", "--timeout-ms", "60000"]));
    wait_for("the admin thread to block on the table", TIMEOUT, || {
        admin_in_futex(pid).then_some(())
    });
    let live = stacks(&["--pid", &pid.to_string()]);

    let owner = live
        .iter()
        .find(|t| t["name"] == "latch")
        .expect("the daemon's main thread");
    assert!(
        summary(std::slice::from_ref(owner))[0].1,
        "the owner thread should hold {LOCK_TABLE}: {owner:#}"
    );
    assert!(
        functions(owner)
            .iter()
            .any(|f| f == "latch::server::hang_forever"),
        "the owner is parked in the hook: {:?}",
        functions(owner)
    );
    let admin = live
        .iter()
        .find(|t| t["name"] == "latch-admin")
        .expect("the admin thread");
    assert_eq!(
        admin["blocked_on"]["name"],
        format!("{LOCK_TABLE}.inner.futex"),
        "the admin thread waits on the table's mutex: {admin:#}"
    );
    assert!(
        !summary(std::slice::from_ref(admin))[0].1,
        "the admin thread does not hold the table"
    );
    assert!(
        functions(admin)
            .iter()
            .any(|f| f.starts_with("latch::admin::")),
        "{:?}",
        functions(admin)
    );
    // Left as it was: running (sleeping), traced by nobody.
    assert!(
        latch_tests::probe_free(pid),
        "the probe left the daemon traced"
    );
    assert!(
        proc_status(pid, "State").starts_with('S'),
        "{}",
        proc_status(pid, "State")
    );
    assert!(daemon.is_running());

    // A core file of the wedged daemon says the same of the same threads.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let prefix = dir.path().join("core");
    let out = output_within(
        Command::new("gcore")
            .arg("-o")
            .arg(&prefix)
            .arg(pid.to_string()),
        TIMEOUT,
    );
    assert!(
        out.status.success(),
        "gcore failed (scripts/setup.sh installs gdb): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let core = format!("{}.{pid}", prefix.display());
    let exe = daemon.bin().to_str().expect("a UTF-8 path").to_owned();
    let dead = stacks(&["--core", &core, "--exe", &exe]);
    let mut from_live = summary(&live);
    let mut from_core = summary(&dead);
    from_live.sort();
    from_core.sort();
    assert_eq!(from_core, from_live, "core: {dead:#?}");
    assert!(daemon.is_running());
}
