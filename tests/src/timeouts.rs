//! Every bound the harness and the tests put on a wait, named once by what it bounds.
//!
//! It may hold only durations: what waits is in the modules that wait. A bound is an upper
//! limit that fails a hung test; none of them is a sleep that something must outlast.

use std::time::Duration;

/// How often bounded waits look again.
pub const POLL: Duration = Duration::from_millis(20);
/// How long a daemon may take to accept its first connection.
pub const DAEMON_START: Duration = Duration::from_secs(10);
/// How long a stopped process may take to exit after SIGTERM before it gets SIGKILL.
pub const STOP: Duration = Duration::from_secs(5);
/// A `latch` client or admin command that should finish at once (debug build, busy
/// machine).
pub const CLIENT: Duration = Duration::from_secs(15);
/// How long the daemon may take to answer or close a raw connection.
pub const REPLY: Duration = Duration::from_secs(10);
/// A state change (a grant, a release, a holder leaving) showing in the daemon's state.
pub const CHANGE: Duration = Duration::from_secs(60);
/// One `latch-probe` run: a debug probe indexes a debug daemon's DWARF in about two
/// seconds, much longer on a loaded machine.
pub const PROBE: Duration = Duration::from_secs(120);
/// How long a `latch-probe trace` or `watch` may take to attach its uprobes.
pub const PROBE_ATTACH: Duration = Duration::from_secs(60);
/// One run of an outside tool on a whole process or binary (`gcore`, `objcopy`).
pub const TOOL: Duration = Duration::from_secs(120);
/// How long a wedge may take to show (the admin API stops answering).
pub const WEDGE: Duration = Duration::from_secs(60);
/// A `latch bench` run beside other clients.
pub const BENCH: Duration = Duration::from_secs(90);
/// One cargo build of a binary under test (the nightly build of the randomized daemon is
/// the longest).
pub const BUILD: Duration = Duration::from_secs(900);
/// One run of `scripts/forensic.sh` (it traces for a window, then stacks and dumps).
pub const FORENSIC: Duration = Duration::from_secs(300);
/// How long the value fixture may take to set its values up.
pub const FIXTURE_READY: Duration = Duration::from_secs(10);
