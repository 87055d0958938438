//! `latch-probe evict` severs a client's connection from outside: with one client holding
//! forever and another waiting, evicting the holder lets the waiter's command run, and the
//! daemon's own `latch state` then shows the waiter holding. On a wedged daemon it refuses,
//! naming the reason, and does nothing; a conn that is not there is an error. The daemon is
//! left running and untraced after each.
//!
//! Needs root (ptrace, pidfd_getfd). Every process started is stopped by its pid.

use latch_tests::bins::Profile;
use latch_tests::command::TestCommand;
use latch_tests::daemon::Daemon;
use latch_tests::probe::{assert_left_running_and_untraced, latch_probe};
use latch_tests::timeouts::CHANGE;
use latch_tests::wait::wait_for;

/// `latch-probe evict --pid PID ARGS`.
fn evict(pid: u32, args: &[&str]) -> TestCommand {
    let mut cmd = latch_probe(&["evict", "--pid", &pid.to_string()]);
    cmd.args(args);
    cmd
}

#[test]
fn evicting_the_holder_lets_the_waiter_run() {
    let mut daemon = Daemon::start(Profile::Debug);
    let _stuck = daemon.holder(&["-r", "printer"]);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ran = dir.path().join("ran");
    let _waiter = daemon
        .client()
        .args([
            "-r",
            "printer",
            "--",
            "sh",
            "-c",
            &format!("touch {}; exec sleep 60", ran.display()),
        ])
        .background();
    let (holder, waiting) = wait_for("one holder and one waiter", CHANGE, || {
        let state = daemon.state();
        let l = state.lockers.first()?;
        (l.holders.len() == 1 && l.waitings.len() == 1)
            .then(|| (l.holders[0].request.conn, l.waitings[0].request.conn))
    });

    let out = evict(daemon.pid(), &["--conn", &holder.to_string()]).expect_exit(0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("severed conn {holder}")),
        "{stderr}"
    );

    wait_for("the waiter's command to run", CHANGE, || {
        ran.exists().then_some(())
    });
    let state = daemon.state();
    let printer = &state.lockers[0];
    assert_eq!(
        printer
            .holders
            .iter()
            .map(|h| h.request.conn)
            .collect::<Vec<_>>(),
        [waiting],
        "{state:#?}"
    );
    assert!(printer.waitings.is_empty(), "{state:#?}");
    assert_left_running_and_untraced(&mut daemon);
}

#[test]
fn evict_refuses_a_wedged_daemon_and_an_unknown_conn() {
    let mut daemon = Daemon::start_wedgeable();
    let (_holder, conn) = daemon.sole_holder(&["-r", "foo"]);
    let unknown = evict(daemon.pid(), &["--conn", "999"]).expect_exit(1);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no conn 999"));

    // Wedged: the admin API (which needs the table's mutex) no longer answers.
    let _wedger = daemon.wedge();
    let refused = evict(daemon.pid(), &["--conn", &conn.to_string()]).expect_exit(1);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("not evicting") && stderr.contains("wedged"),
        "the refusal says why: {stderr}"
    );
    assert_left_running_and_untraced(&mut daemon);
}
