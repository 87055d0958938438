//! The test hook `--debug-feature hang-on-lock=NAME`: a lock request for NAME wedges the
//! thread that owns the lock table while it holds the table's mutex, so the daemon's own
//! admin API can no longer answer (the admin thread blocks on that mutex: `latch state`
//! times out with exit code 3), both threads sit in the kernel waiting on a futex, and the
//! process stays alive with the table as it was just before that request: what the probe
//! must then read from outside (compared with the state recorded here in a later test).

use latch_probe_common::doc::StateDoc;
use latch_tests::daemon::{Daemon, EXIT_NOT_ANSWERING, WEDGE_NAME};
use latch_tests::procs::{signal, task_dir};
use latch_tests::state::{holding, waiting};
use latch_tests::timeouts::CHANGE;
use latch_tests::wait::wait_for;
use nix::sys::signal::Signal;

/// What `latch state --timeout-ms` is given once the daemon is wedged.
const WEDGED_TIMEOUT_MS: u64 = 1000;

/// One thread of a process, as /proc shows it.
#[derive(Debug)]
struct Task {
    tid: u32,
    comm: String,
    /// The one-letter state of /proc/PID/task/TID/stat (R, S, D, ...).
    state: char,
    /// Where it sleeps in the kernel (/proc/PID/task/TID/wchan), e.g. `futex_do_wait`.
    wchan: String,
    /// The number of the system call it is in (first field of .../syscall), if any.
    syscall: Option<i64>,
}

fn tasks(pid: u32) -> Vec<Task> {
    let dir = task_dir(pid);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut tasks: Vec<Task> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|tid| {
            let base = dir.join(tid.to_string());
            let read = |f: &str| std::fs::read_to_string(base.join(f)).ok();
            let stat = read("stat")?;
            // `pid (comm) S ...`: comm may hold spaces and parentheses; the state follows
            // the last ')'.
            let close = stat.rfind(')')?;
            let open = stat.find('(')?;
            Some(Task {
                tid,
                comm: stat[open + 1..close].to_owned(),
                state: stat[close + 1..].trim_start().chars().next()?,
                wchan: read("wchan").unwrap_or_default(),
                syscall: read("syscall").and_then(|s| s.split_whitespace().next()?.parse().ok()),
            })
        })
        .collect();
    tasks.sort_by_key(|t| t.tid);
    tasks
}

/// Whether the thread sleeps in a futex wait (a mutex, a park).
fn in_futex_wait(t: &Task) -> bool {
    t.state == 'S' && t.wchan.contains("futex") && t.syscall == Some(nix::libc::SYS_futex)
}

fn state_json(daemon: &Daemon) -> (StateDoc, String) {
    let text = daemon.client().args(["state", "--json"]).expect_success();
    let doc = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not a latch.state/1 document ({e}): {text}"));
    (doc, text)
}

#[test]
fn hang_on_lock_wedges_the_table_owner_and_the_admin_thread() {
    let mut daemon = Daemon::start_wedgeable();
    let pid = daemon.pid();

    // Some state first: a holder and a waiter of `a`, a numeric holder, an incubated client.
    let _a = daemon.holder(&["-r", "a"]);
    wait_for("a held", CHANGE, || {
        (daemon.state().lockers.len() == 1).then_some(())
    });
    let _a_waiter = daemon.holder(&["-r", "a"]);
    let _num = daemon.holder(&["-r", "num[3]", "-q", "2"]);
    let _incubated = daemon.holder(&["-r", "later", "-e", "no"]);
    let (before, before_json) = wait_for("the scenario in place", CHANGE, || {
        let (doc, text) = state_json(&daemon);
        (holding(&doc) == 2 && waiting(&doc) == 1 && doc.incubator.len() == 1)
            .then_some((doc, text))
    });
    assert!(!before.torn, "{before_json}");
    assert_eq!(before.generation % 2, 0, "{before_json}");

    // The threads before: the table's owner (the main thread) waits for input in epoll,
    // not on a futex.
    wait_for("the main thread idle, not on a futex", CHANGE, || {
        let main = tasks(pid).into_iter().find(|t| t.tid == pid)?;
        (!in_futex_wait(&main)).then_some(())
    });

    // The request that wedges it: its client never gets an answer.
    let mut stuck = daemon
        .client()
        .args(["-r", WEDGE_NAME, "--", "true"])
        .background();
    let wedged = wait_for("the main thread blocked", CHANGE, || {
        let t = tasks(pid).into_iter().find(|t| t.tid == pid)?;
        in_futex_wait(&t).then_some(t)
    });

    // The admin API cannot answer: its thread blocks on the table's mutex.
    let out = daemon
        .client()
        .args(["state", "--json", "--timeout-ms"])
        .arg(WEDGED_TIMEOUT_MS.to_string())
        .expect_exit(EXIT_NOT_ANSWERING);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.stdout.is_empty(), "it printed a state anyway");
    assert!(
        stderr.contains("did not answer"),
        "latch state does not say the daemon did not answer: {stderr}"
    );
    let admin = wait_for("the admin thread blocked", CHANGE, || {
        let t = tasks(pid).into_iter().find(|t| t.comm == "latch-admin")?;
        in_futex_wait(&t).then_some(t)
    });
    let all = tasks(pid);
    // A few threads in all, never one per client.
    assert!(all.len() <= 4, "{all:#?}");
    let main = all.iter().find(|t| t.tid == pid).expect("the main thread");
    assert!(
        in_futex_wait(main),
        "the main thread woke up: {main:?} (was {wedged:?})"
    );
    assert!(in_futex_wait(&admin), "{admin:?}");

    // Still wedged, still alive: the stuck client got nothing, a ping waits too.
    daemon
        .client()
        .args(["ping", "--timeout-ms", "300"])
        .expect_exit(EXIT_NOT_ANSWERING);
    assert!(
        daemon.is_running(),
        "the daemon died; stderr:\n{}",
        daemon.stderr()
    );
    assert!(
        daemon.stderr().contains("hang-on-lock"),
        "the daemon did not log the hook: {}",
        daemon.stderr()
    );
    // The wedged daemon ignores SIGTERM (its signal pipe is never read): kill it by pid.
    signal(pid, Signal::SIGKILL);
    assert!(
        daemon.wait_exit_within(CHANGE).is_some(),
        "the daemon survived SIGKILL"
    );
    // Its clients see the connection go.
    assert!(!stuck.wait_within(CHANGE).success());
}
