//! flom's `-m/--mount-point-vfs DIR` on latch: the daemon starts `latch-probe mount --live
//! --pid <daemon> DIR` beside itself; the tree (FLoM's layout, as latch-probe mount gives it)
//! appears, follows a lock taken and released, and is gone once the daemon has exited by its
//! lifespan, by `-X` or by SIGTERM, and soon after it is killed with SIGKILL (the probe gets
//! SIGTERM from the kernel then). Without latch-probe, -m is refused.
//!
//! Every process is ended by its pid (the daemon by the harness, a client-started one by
//! [`SpawnedDaemons`], the probe by [`Vfs`]'s guard), and a mount left by a failed test is
//! unmounted by the guard (fusermount3 -u -z on its directory), never by a name.

use latch_tests::bins::{latch_bin, probe_bin, Profile};
use latch_tests::command::TestCommand;
use latch_tests::daemon::{Daemon, DaemonOptions};
use latch_tests::procs::{become_subreaper, children_of, end_pid, reap, running, signal};
use latch_tests::spawned::SpawnedDaemons;
use latch_tests::timeouts::{CHANGE, PROBE, STOP};
use latch_tests::wait::wait_for;
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

const EXIT_ERROR: i32 = 99;

/// A mount point for a daemon's `-m`, and the probe serving it once found: dropped, it ends
/// the probe by pid and unmounts what is still mounted there.
struct Vfs {
    _work: TempDir,
    dir: PathBuf,
    probe: Option<i32>,
}

impl Vfs {
    fn new() -> Vfs {
        // The probe must be next to latch: both built now.
        probe_bin();
        latch_bin(Profile::Debug);
        // A probe orphaned by a killed daemon comes to us, to be reaped.
        become_subreaper();
        let work = tempfile::Builder::new()
            .prefix("latch-vfs-")
            .tempdir()
            .expect("temporary directory");
        let dir = work.path().join("mnt");
        std::fs::create_dir(&dir).expect("the mount point");
        let dir = dir.canonicalize().expect("the mount point");
        Vfs {
            _work: work,
            dir,
            probe: None,
        }
    }

    fn arg(&self) -> &str {
        self.dir.to_str().expect("UTF-8 paths")
    }

    fn mounted(&self) -> bool {
        let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        info.lines()
            .any(|line| line.split(' ').nth(4) == Some(self.arg()))
    }

    /// Waits until the daemon `daemon` has its probe child serving the tree; the probe's pid.
    #[track_caller]
    fn wait_mounted(&mut self, daemon: u32) -> i32 {
        let probe = wait_for("the daemon's latch-probe child", CHANGE, || {
            children_of(daemon).into_iter().find(|&pid| {
                std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|exe| exe == probe_bin().canonicalize().expect("the probe"))
            })
        });
        self.probe = Some(probe);
        let cmdline = std::fs::read(format!("/proc/{probe}/cmdline")).expect("its command line");
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .skip(1)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(
            args,
            ["mount", "--live", "--pid", &daemon.to_string(), self.arg()],
            "the probe's command line"
        );
        // The first capture indexes the daemon's DWARF.
        wait_for("the tree to be mounted", PROBE, || {
            assert!(
                running(probe),
                "the probe (pid {probe}) exited before mounting"
            );
            self.mounted().then_some(())
        });
        probe
    }

    fn file(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.join(path))
            .unwrap_or_else(|e| panic!("{path} in the tree: {e}"))
    }

    /// A new capture, then the locker of `name` in the tree: its id and its holders' conns.
    fn locker(&self, name: &str) -> Option<(String, Vec<String>)> {
        self.file(".refresh");
        let lockers = self.dir.join("status/lockers");
        std::fs::read_dir(&lockers)
            .expect("status/lockers")
            .flatten()
            .find(|l| {
                std::fs::read_to_string(l.path().join("resource_name"))
                    .is_ok_and(|n| n == format!("{name}\n"))
            })
            .map(|l| {
                let holders = std::fs::read_dir(l.path().join("holders"))
                    .expect("holders")
                    .flatten()
                    .map(|h| h.file_name().to_string_lossy().into_owned())
                    .collect();
                (l.file_name().to_string_lossy().into_owned(), holders)
            })
    }

    /// After the daemon is gone: the probe too, and nothing mounted.
    #[track_caller]
    fn assert_gone(&self, how: &str) {
        assert!(!self.mounted(), "{how}: the tree is still mounted");
        if let Some(probe) = self.probe {
            wait_for(&format!("{how}: the probe to exit"), STOP, || {
                (!running(probe)).then_some(())
            });
            reap(probe);
        }
    }
}

impl Drop for Vfs {
    fn drop(&mut self) {
        if let Some(probe) = self.probe {
            end_pid(probe);
        }
        if self.mounted() {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.dir)
                .status();
        }
    }
}

#[test]
fn the_tree_follows_the_daemon_and_goes_when_it_exits_by_its_lifespan() {
    let mut vfs = Vfs::new();
    let mut daemon = DaemonOptions::new(Profile::Debug)
        .args(&["-d", "3000", "-m", vfs.arg()])
        .start();
    // A holder keeps the daemon busy (not idle) while the tree is read.
    let mut holder = daemon.holder(&["-r", "vfsres"]);
    let state = daemon.wait_state("vfsres held", |s| {
        s.lockers
            .iter()
            .any(|l| l.resource_name == "vfsres" && l.holders.len() == 1)
    });
    vfs.wait_mounted(daemon.pid());
    assert_eq!(vfs.file("daemon/pid"), format!("{}\n", daemon.pid()));
    // What FLoM's own test looks for (tests/vfs.at.in, "VFS dirs and files").
    for dir in ["status/incubator", "status/lockers"] {
        assert!(vfs.dir.join(dir).is_dir(), "{dir} in the tree");
    }
    let own = state
        .lockers
        .iter()
        .find(|l| l.resource_name == "vfsres")
        .expect("vfsres");
    let conn = own.holders[0].request.conn.to_string();
    let (id, holders) = wait_for("vfsres in the tree", CHANGE, || vfs.locker("vfsres"));
    assert_eq!(id, own.id.to_string(), "the daemon's locker id");
    assert_eq!(holders, [conn.as_str()], "the daemon's holder");
    assert_eq!(
        vfs.file(&format!("status/lockers/{id}/holders/{conn}/lock_mode")),
        "Exclusive"
    );
    assert_eq!(
        vfs.file(&format!("status/lockers/{id}/resource_type")),
        "simple\n"
    );
    assert!(vfs
        .dir
        .join(format!("status/lockers/{id}/waitings"))
        .is_dir());

    // Released: the holder leaves the tree.
    holder.close_stdin();
    holder.wait_within(CHANGE);
    wait_for("the holder to leave the tree", CHANGE, || {
        vfs.locker("vfsres")
            .is_none_or(|(_, holders)| holders.is_empty())
            .then_some(())
    });
    // Idle: the daemon exits after its lifespan, and its tree is gone by then.
    let status = daemon
        .wait_exit_within(CHANGE)
        .expect("the daemon exits after its lifespan");
    assert!(status.success(), "{status}");
    vfs.assert_gone("lifespan");
}

#[test]
fn sigterm_to_the_daemon_unmounts_its_tree() {
    let mut vfs = Vfs::new();
    let mut daemon = DaemonOptions::new(Profile::Debug)
        .args(&["-m", vfs.arg()])
        .start();
    vfs.wait_mounted(daemon.pid());
    signal(daemon.pid(), Signal::SIGTERM);
    daemon
        .wait_exit_within(CHANGE)
        .expect("the daemon exits on SIGTERM");
    vfs.assert_gone("SIGTERM");
}

#[test]
fn a_daemon_killed_with_sigkill_leaves_no_tree_behind() {
    let mut vfs = Vfs::new();
    let mut daemon =
        Daemon::start_with(DaemonOptions::new(Profile::Debug).args(&["-m", vfs.arg()]));
    let probe = vfs.wait_mounted(daemon.pid());
    signal(daemon.pid(), Signal::SIGKILL);
    daemon.wait_exit_within(CHANGE).expect("killed");
    // The kernel's SIGTERM (PR_SET_PDEATHSIG) makes the probe unmount and exit.
    wait_for(
        "the probe to unmount after the daemon's death",
        CHANGE,
        || (!running(probe) && !vfs.mounted()).then_some(()),
    );
    vfs.assert_gone("SIGKILL");
}

#[test]
fn a_client_started_daemon_given_the_key_serves_the_tree_until_dash_capital_x() {
    let mut vfs = Vfs::new();
    let work = tempfile::tempdir().expect("temporary directory");
    let socket = work.path().join("sock");
    let mut spawned = SpawnedDaemons::new(&socket);
    let client = || {
        let mut cmd = TestCommand::new(latch_bin(Profile::Debug));
        cmd.arg("-s").arg(&socket);
        cmd
    };
    // The key this time (the client's -m has its test below).
    let conf = work.path().join("vfs.conf");
    std::fs::write(&conf, format!("[Daemon]\nMountPointVFS={}\n", vfs.arg())).expect("-c file");
    client()
        .args(["-d", "-1", "-r", "started", "-c"])
        .arg(&conf)
        .args(["--", "true"])
        .expect_success();
    let pid = spawned.the_one();
    vfs.wait_mounted(pid as u32);
    client().arg("-X").expect_success();
    wait_for("the daemon to exit on -X", CHANGE, || {
        (!running(pid)).then_some(())
    });
    vfs.assert_gone("-X");
}

#[test]
fn without_latch_probe_or_its_directory_dash_m_is_refused_saying_what_to_do() {
    let work = tempfile::tempdir().expect("temporary directory");
    // A latch with no latch-probe beside it, and none on PATH.
    let alone = work.path().join("bin");
    std::fs::create_dir(&alone).expect("bin");
    let latch = alone.join("latch");
    std::fs::copy(latch_bin(Profile::Debug), &latch).expect("a copy of latch");
    let dir = work.path().join("mnt");
    std::fs::create_dir(&dir).expect("the mount point");
    let socket = work.path().join("sock");
    // The client, before it starts a daemon (which would have nowhere to say it).
    let out = TestCommand::new(&latch)
        .env("PATH", work.path().join("empty"))
        .arg("-m")
        .arg(&dir)
        .args(["-s"])
        .arg(&socket)
        .args(["-r", "x", "--", "true"])
        .expect_exit(EXIT_ERROR);
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("latch-probe") && message.contains("install"),
        "{message}"
    );
    assert!(!socket.exists(), "no daemon was started");
    // `latch daemon -m` (its trailing client options are not parsed: a daemon's own).
    let out = TestCommand::new(&latch)
        .env("PATH", work.path().join("empty"))
        .args(["daemon", "-d", "1000", "-m"])
        .arg(&dir)
        .arg("-s")
        .arg(&socket)
        .expect_exit(EXIT_ERROR);
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("latch-probe") && message.contains("install"),
        "{message}"
    );
    assert!(!mounted_at(&dir), "nothing mounted");
    assert!(!socket.exists(), "the daemon refused before it listened");

    // With latch-probe at hand, a mount point that is no directory is refused the same way.
    let missing = work.path().join("no-such-dir");
    for daemon in [false, true] {
        let mut cmd = TestCommand::new(latch_bin(Profile::Debug));
        if daemon {
            cmd.args(["daemon", "-d", "1000"]);
        }
        cmd.arg("-m").arg(&missing).arg("-s").arg(&socket);
        if !daemon {
            cmd.args(["-r", "x", "--", "true"]);
        }
        let out = cmd.expect_exit(EXIT_ERROR);
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(
            message.contains("not a directory"),
            "daemon {daemon}: {message}"
        );
        assert!(!socket.exists(), "daemon {daemon}: nothing started");
    }
}

fn mounted_at(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let dir = dir.to_string_lossy();
    info.lines()
        .any(|line| line.split(' ').nth(4) == Some(&*dir))
}
