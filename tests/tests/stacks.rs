//! `latch-probe stacks` on a wedged daemon (`--debug-feature hang-on-lock=NAME`, then a lock
//! on NAME): it names the owner thread that holds the lock table (parked in the hook), and
//! the admin thread blocked on the table's mutex, named from the debug info; the daemon is
//! left running, untraced. From a core file of the same daemon, the same threads (by tid) say
//! the same.
//!
//! Needs root (ptrace, gcore). Every process started is stopped by its pid.

use latch_tests::coredump::gcore;
use latch_tests::daemon::Daemon;
use latch_tests::probe::{latch_probe, probe_free};
use latch_tests::procs::proc_status;
use latch_tests::timeouts::CHANGE;
use latch_tests::wait::wait_for;
use serde_json::Value;

const LOCK_TABLE: &str = "latch::table::LOCK_TABLE";

/// `latch-probe stacks ARGS --json`, parsed: the threads.
fn stacks(args: &[&str]) -> Vec<Value> {
    let threads: Value = latch_probe(&[&["stacks"], args, &["--json"]].concat()).expect_json();
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

#[test]
fn stacks_name_the_wedged_owner_and_the_threads_blocked_on_the_table() {
    let mut daemon = Daemon::start_wedgeable();
    let pid = daemon.pid();
    // Wedged: the admin API (which needs the table's mutex) no longer answers.
    let _wedger = daemon.wedge();
    // An admin request that waits: the admin thread takes it and blocks on the table.
    let _asking = daemon
        .client()
        .args(["state", "--timeout-ms", "60000"])
        .background();
    wait_for("the admin thread to block on the table", CHANGE, || {
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
    assert!(probe_free(pid), "the probe left the daemon traced");
    assert!(
        proc_status(pid, "State").starts_with('S'),
        "{}",
        proc_status(pid, "State")
    );
    assert!(daemon.is_running());

    // A core file of the wedged daemon says the same of the same threads.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let core = gcore(pid, dir.path());
    let core = core.to_str().expect("a UTF-8 path").to_owned();
    let exe = daemon.bin().to_str().expect("a UTF-8 path").to_owned();
    let dead = stacks(&["--core", &core, "--exe", &exe]);
    let mut from_live = summary(&live);
    let mut from_core = summary(&dead);
    from_live.sort();
    from_core.sort();
    assert_eq!(from_core, from_live, "core: {dead:#?}");
    assert!(daemon.is_running());
}
