//! The eBPF build chain end to end: the grant uprobe, attached to a real daemon (debug and
//! release builds) with offsets from that binary's own DWARF, reports the grant of a real
//! client's lock with the locker id the daemon itself reports.
//!
//! Needs root (uprobes, BPF). A missing prerequisite fails the test with the reason; it is
//! never skipped. bpf-linker and the nightly toolchain are needed to build this test at
//! all (probe-user's build.rs says so when they are missing).

use latch_probe::debuginfo::Executable;
use latch_probe::trace::{event_kind, GrantPlan, GrantTrace};
use latch_probe_common::doc::StateDoc;
use latch_probe_common::EventKind;
use latch_tests::{output_within, Background, Daemon, Profile};
use std::path::PathBuf;
use std::time::Duration;

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn grant_event_matches_daemon_state_debug() {
    grant_event_matches_daemon_state(Profile::Debug);
}

#[test]
fn grant_event_matches_daemon_state_release() {
    grant_event_matches_daemon_state(Profile::Release);
}

fn grant_event_matches_daemon_state(profile: Profile) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test attaches eBPF uprobes and must run as root (euid is {})",
        nix::unistd::geteuid()
    );
    let daemon = Daemon::start(profile);
    let pid = daemon.pid();

    // The process's own executable: the DWARF of exactly the code that runs.
    let exe_path = PathBuf::from(format!("/proc/{pid}/exe"));
    let exe = Executable::open(&exe_path).expect("reading the daemon's executable");
    let plan = GrantPlan::from_executable(&exe)
        .unwrap_or_else(|e| panic!("computing the grant probe for {profile:?}: {e}"));
    let mut trace = GrantTrace::attach(&plan, &exe_path, pid)
        .unwrap_or_else(|e| panic!("attaching to daemon pid {pid} ({profile:?}): {e}"));

    // Hold the lock long enough to read the daemon's view while it is held.
    let mut holder = Background::spawn(daemon.client().args(["-r", "foo", "--", "sleep", "2"]));

    let event = trace
        .next_event(EVENT_TIMEOUT)
        .expect("reading the event ring buffer")
        .unwrap_or_else(|| {
            panic!(
                "no grant event within {EVENT_TIMEOUT:?} ({profile:?}, plan {plan:?}); daemon stderr:\n{}",
                daemon.stderr()
            )
        });
    assert_eq!(event_kind(&event), Some(EventKind::Grant), "{event:?}");
    assert!(
        PathBuf::from(format!("/proc/{pid}/task/{}", event.tid)).exists(),
        "event tid {} is not a thread of daemon pid {pid}",
        event.tid
    );

    let out = output_within(daemon.client().args(["state", "--json"]), CLIENT_TIMEOUT);
    assert!(
        out.status.success(),
        "latch state --json failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let state: StateDoc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "latch state --json printed no latch.state/1 document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(state.pid, pid, "state document of another process");
    assert_eq!(
        state.lockers.len(),
        1,
        "expected one locker while `foo` is held: {state:?}"
    );
    assert_eq!(
        state.lockers[0].id, event.locker,
        "the uprobe read locker id {} but the daemon reports {} ({profile:?}, plan {plan:?})",
        event.locker, state.lockers[0].id
    );

    let status = holder.wait_within(CLIENT_TIMEOUT);
    assert!(status.success(), "the lock holder failed: {status}");
    // Detach before the daemon goes, so the daemon's stop is not traced.
    drop(trace);
}
