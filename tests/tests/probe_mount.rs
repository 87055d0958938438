//! `latch-probe mount` and `dump --tree` on a real daemon: with holders, waiters and an
//! incubated client, `find` and `cat` over the mount give FLoM's layout and bytes (and agree
//! with `latch state --json`); the tree follows the daemon after a change, on demand
//! (`.refresh`) and on the interval; SIGTERM unmounts; `dump --tree` writes the same files.
//!
//! Every process is stopped by its pid, and a mount left by a failed test is unmounted by
//! its guard (fusermount3 -u), never by a name.

use latch_probe_common::doc::{Source, StateDoc};
use latch_probe_common::ResourceType;
use latch_tests::bins::{probe_bin, Profile};
use latch_tests::command::TestCommand;
use latch_tests::coredump::gcore;
use latch_tests::daemon::Daemon;
use latch_tests::probe::{as_daemon_doc, latch_probe, ProbeStream, EXIT_NOT_A_LATCH_DAEMON};
use latch_tests::procs::{end_child, signal, wait_child_within};
use latch_tests::rng::Rng;
use latch_tests::state::{holding, locker, now_ns};
use latch_tests::timeouts::{CHANGE, PROBE};
use latch_tests::wait::wait_for;
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// A `latch-probe mount` process and its mount point: dropped, it stops the process by pid
/// and unmounts whatever is still mounted there.
struct Mount {
    child: Child,
    dir: PathBuf,
    stderr: PathBuf,
}

impl Mount {
    /// `latch-probe mount TARGET DIR EXTRA`, TARGET being `--pid P` or `--core F --exe B`.
    fn start(target: &[String], dir: &Path, stderr: &Path, extra: &[&str]) -> Mount {
        let log = std::fs::File::create(stderr).unwrap();
        let child = Command::new(probe_bin())
            .arg("mount")
            .args(target)
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut mount = Mount {
            child,
            dir: dir.canonicalize().unwrap(),
            stderr: stderr.to_owned(),
        };
        // The first capture indexes the daemon's DWARF.
        wait_for("the tree to be mounted", PROBE, || {
            if let Ok(Some(status)) = mount.child.try_wait() {
                panic!("latch-probe mount exited ({status}): {}", mount.log());
            }
            mount_options(&mount.dir)
        });
        mount
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn terminate(&mut self) -> ExitStatus {
        signal(self.child.id(), Signal::SIGTERM);
        wait_child_within(&mut self.child, CHANGE).expect("mount exits on SIGTERM")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        end_child(&mut self.child);
        if mount_options(&self.dir).is_some() {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.dir)
                .status();
        }
    }
}

/// If `dir` is a mount point: its mount options, file system type, source and super options
/// (fields 6, 9, 10 and 11 of /proc/self/mountinfo), one token each.
fn mount_options(dir: &Path) -> Option<Vec<String>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_str().unwrap();
    info.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|&f| f == "-")?;
        (fields.get(4) == Some(&dir)).then(|| {
            let mut tokens: Vec<String> = fields[5].split(',').map(str::to_owned).collect();
            tokens.extend(fields[sep + 1..].iter().take(2).map(|t| t.to_string()));
            let super_options = fields.get(sep + 3).unwrap_or(&"");
            tokens.extend(super_options.split(',').map(str::to_owned));
            tokens
        })
    })
}

/// `find DIR` relative to DIR, in its order.
fn find(dir: &Path) -> Vec<String> {
    TestCommand::new("find")
        .arg(".")
        .current_dir(dir)
        .expect_success()
        .lines()
        .filter_map(|l| l.strip_prefix("./").map(str::to_owned))
        .collect()
}

fn cat(path: &Path) -> Vec<u8> {
    TestCommand::new("cat").arg(path).expect_exit(0).stdout
}

fn mtime_ns(path: &Path) -> u64 {
    let meta = std::fs::symlink_metadata(path).unwrap();
    meta.mtime() as u64 * 1_000_000_000 + meta.mtime_nsec() as u64
}

/// The state as the tree's state.json has it (from `source`), for comparing with the
/// daemon's own.
fn tree_state(root: &Path, source: Source) -> StateDoc {
    as_daemon_doc(
        serde_json::from_slice(&cat(&root.join("state.json"))).unwrap(),
        source,
    )
}

#[test]
fn mount_shows_flom_s_tree_follows_the_daemon_and_unmounts_on_sigterm() {
    let daemon = Daemon::start(Profile::Debug);
    let mut foo_holder = daemon.holder(&["-r", "foo"]);
    wait_for("foo held", CHANGE, || {
        (!daemon.state().lockers.is_empty()).then_some(())
    });
    let _foo_waiter = daemon.holder(&["-r", "foo"]);
    let _bar = daemon.holder(&["-r", "bar", "-l", "PR"]);
    let num = daemon.holder(&["-r", "num[3]", "-q", "2"]);
    let _seq = daemon.holder(&["-r", "_s_seq[3]"]);
    let _incubated = daemon.holder(&["-r", "later", "-e", "no"]);
    let state = wait_for("the scenario", CHANGE, || {
        let s = daemon.state();
        let ready = s.lockers.len() == 4
            && holding(&s) == 4
            && locker(&s, "foo").waitings.len() == 1
            && s.incubator.len() == 1;
        ready.then_some(s)
    });

    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let mut mount = Mount::start(
        &["--pid".into(), daemon.pid().to_string()],
        &dir,
        &work.path().join("mount.stderr"),
        &["--interval", "1"],
    );
    let options = mount_options(&mount.dir).unwrap();
    let has = |option: &str| options.iter().any(|o| o == option);
    assert!(has("latch-probe") && has("ro"), "{options:?}");
    assert!(!has("allow_other"), "not asked for: {options:?}");

    // The tree is the daemon's state, as its own admin API tells it.
    assert_eq!(tree_state(&dir, Source::Live), state);
    assert_eq!(
        cat(&dir.join("daemon/pid")),
        format!("{}\n", daemon.pid()).as_bytes()
    );

    // find: FLoM's layout and order for each locker and the incubator.
    let foo = locker(&state, "foo");
    let (h, w) = (foo.holders[0].request.conn, foo.waitings[0].request.conn);
    let bar = locker(&state, "bar");
    let numeric = locker(&state, "num[3]");
    let seq = locker(&state, "_s_seq[3]");
    let inc = state.incubator[0].request.conn;
    let listed = find(&dir);
    let status: Vec<&str> = listed
        .iter()
        .map(String::as_str)
        .filter(|p| p.starts_with("status"))
        .collect();
    let mut want = vec![
        "status".to_owned(),
        "status/incubator".to_owned(),
        format!("status/incubator/{inc}"),
        format!("status/incubator/{inc}/peer_name"),
        format!("status/incubator/{inc}/resource_name"),
        format!("status/incubator/{inc}/resource_type"),
        "status/lockers".to_owned(),
    ];
    for l in &state.lockers {
        let base = format!("status/lockers/{}", l.id);
        // Only the types of this scenario; a sequence shows its value to holders only.
        let (holder_file, waiter_file) = match l.resource_type {
            ResourceType::Simple => (Some("lock_mode"), Some("lock_mode")),
            ResourceType::Numeric => (Some("quantity"), Some("quantity")),
            ResourceType::Sequence => (Some("sequence_value"), None),
            other => panic!("no {other:?} in this scenario"),
        };
        want.extend([
            base.clone(),
            format!("{base}/resource_name"),
            format!("{base}/resource_type"),
            format!("{base}/holders"),
        ]);
        for e in &l.holders {
            want.push(format!("{base}/holders/{}", e.request.conn));
            want.push(format!("{base}/holders/{}/peer_name", e.request.conn));
            want.extend(holder_file.map(|f| format!("{base}/holders/{}/{f}", e.request.conn)));
        }
        want.push(format!("{base}/waitings"));
        for e in &l.waitings {
            want.push(format!("{base}/waitings/{}", e.request.conn));
            want.push(format!("{base}/waitings/{}/peer_name", e.request.conn));
            want.extend(waiter_file.map(|f| format!("{base}/waitings/{}/{f}", e.request.conn)));
        }
    }
    assert_eq!(status, want);
    for top in ["daemon/generation", "daemon/torn", "state.json"] {
        assert!(listed.iter().any(|p| p == top), "{top} not in {listed:?}");
    }
    assert!(
        listed.iter().any(|p| p.starts_with("threads/")),
        "{listed:?}"
    );

    // cat: FLoM's bytes.
    let f = foo.id;
    let (b, bh) = (bar.id, bar.holders[0].request.conn);
    let (n, nh) = (numeric.id, numeric.holders[0].request.conn);
    let (s, sh) = (seq.id, seq.holders[0].request.conn);
    let expected: [(String, &[u8]); 13] = [
        (format!("status/lockers/{f}/resource_name"), b"foo\n"),
        (format!("status/lockers/{f}/resource_type"), b"simple\n"),
        (
            format!("status/lockers/{f}/holders/{h}/peer_name"),
            b"localhost/\n",
        ),
        (
            format!("status/lockers/{f}/holders/{h}/lock_mode"),
            b"Exclusive",
        ),
        (
            format!("status/lockers/{f}/waitings/{w}/lock_mode"),
            b"Exclusive",
        ),
        (
            format!("status/lockers/{b}/holders/{bh}/lock_mode"),
            b"ProtectedRead",
        ),
        (format!("status/lockers/{n}/resource_type"), b"numeric\n"),
        (format!("status/lockers/{n}/holders/{nh}/quantity"), b"2\n"),
        (format!("status/lockers/{s}/resource_type"), b"sequence\n"),
        (
            format!("status/lockers/{s}/holders/{sh}/sequence_value"),
            b"1\n",
        ),
        (format!("status/incubator/{inc}/peer_name"), b"localhost/\n"),
        (format!("status/incubator/{inc}/resource_name"), b"later\n"),
        (format!("status/incubator/{inc}/resource_type"), b"simple\n"),
    ];
    for (path, bytes) in expected {
        assert_eq!(cat(&dir.join(&path)), bytes, "{path}");
    }

    // Modes, owner (the daemon runs as root here), mtimes from the state.
    for path in &listed {
        let meta = std::fs::symlink_metadata(dir.join(path)).unwrap();
        let mode = if meta.is_dir() { 0o550 } else { 0o440 };
        assert_eq!(meta.mode() & 0o7777, mode, "{path}");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{path}");
    }
    assert_eq!(
        mtime_ns(&dir.join(format!("status/lockers/{f}"))),
        foo.created_ns
    );
    assert_eq!(
        mtime_ns(&dir.join(format!("status/lockers/{f}/waitings/{w}"))),
        foo.waitings[0].request.since_ns
    );
    assert_eq!(
        mtime_ns(&dir.join(format!("status/lockers/{f}/holders/{h}/lock_mode"))),
        foo.holders[0].request.since_ns
    );
    // Unknown paths are not there; nothing can be written.
    assert!(std::fs::metadata(dir.join("status/lockers/99")).is_err());
    assert!(std::fs::write(dir.join(format!("status/lockers/{f}/resource_name")), "x").is_err());

    // `dump --tree` writes the same files, modes, owner and entry times.
    let dumped = work.path().join("dump");
    latch_probe(&["dump", "--pid", &daemon.pid().to_string(), "--tree"])
        .arg(&dumped)
        .expect_success();
    cat(&dir.join(".refresh"));
    compare_trees(&dir, &dumped);

    // A change, then a refresh on demand: the waiter holds foo, the old holder is gone, the
    // paths that stayed kept their inodes.
    let foo_ino = std::fs::metadata(dir.join(format!("status/lockers/{f}")))
        .unwrap()
        .ino();
    foo_holder.close_stdin();
    foo_holder.wait_within(CHANGE);
    let after = wait_for("the waiter granted", CHANGE, || {
        let s = daemon.state();
        locker(&s, "foo").waitings.is_empty().then_some(s)
    });
    let refreshed = cat(&dir.join(".refresh"));
    assert_eq!(refreshed, cat(&dir.join("daemon/snapshot_time")));
    assert_eq!(tree_state(&dir, Source::Live), after);
    assert!(!dir.join(format!("status/lockers/{f}/holders/{h}")).exists());
    assert!(!dir
        .join(format!("status/lockers/{f}/waitings/{w}"))
        .exists());
    assert_eq!(
        cat(&dir.join(format!("status/lockers/{f}/holders/{w}/lock_mode"))),
        b"Exclusive"
    );
    assert_eq!(
        std::fs::metadata(dir.join(format!("status/lockers/{f}")))
            .unwrap()
            .ino(),
        foo_ino
    );

    // Another change, and no asking: the interval refresh shows it.
    drop(num);
    let gone = dir.join(format!("status/lockers/{n}/holders/{nh}"));
    wait_for("the interval refresh", CHANGE, || {
        (!gone.exists()).then_some(())
    });

    // SIGTERM: a clean exit, and the mount is gone.
    let status = mount.terminate();
    assert!(status.success(), "{status}: {}", mount.log());
    assert_eq!(mount_options(&mount.dir), None, "{}", mount.log());
}

/// The mount and a `dump --tree` of the same state: the same paths, modes and owner; the
/// same bytes but for the snapshot's own time and the threads' momentary states; the same
/// mtimes for what the state dates (lockers and entries).
fn compare_trees(mounted: &Path, dumped: &Path) {
    let walk = |root: &Path| -> BTreeMap<String, (u32, u32, u32)> {
        find(root)
            .into_iter()
            .map(|p| {
                let meta = std::fs::symlink_metadata(root.join(&p)).unwrap();
                (p, (meta.mode(), meta.uid(), meta.gid()))
            })
            .collect()
    };
    let (m, d) = (walk(mounted), walk(dumped));
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        d.keys().collect::<Vec<_>>(),
        "mount and dump --tree list different paths"
    );
    for (path, attrs) in &m {
        assert_eq!(Some(attrs), d.get(path), "{path}");
        let (mp, dp) = (mounted.join(path), dumped.join(path));
        let file = mp.is_file();
        let momentary = path == "daemon/snapshot_time" || path.ends_with("/state");
        if file && !momentary {
            assert_eq!(cat(&mp), cat(&dp), "{path}");
        }
        if path.starts_with("status/lockers/") || path.starts_with("status/incubator/") {
            assert_eq!(mtime_ns(&mp), mtime_ns(&dp), "{path}");
        }
    }
}

#[test]
fn a_core_file_mounts_as_its_dump_tree() {
    let daemon = Daemon::start(Profile::Debug);
    let _holder = daemon.holder(&["-r", "foo", "-l", "PW"]);
    wait_for("foo held", CHANGE, || {
        (!daemon.state().lockers.is_empty()).then_some(())
    });
    let _waiter = daemon.holder(&["-r", "foo"]);
    let state = wait_for("a holder and a waiter", CHANGE, || {
        let s = daemon.state();
        (s.lockers.len() == 1 && s.lockers[0].waitings.len() == 1).then_some(s)
    });
    let work = tempfile::tempdir().unwrap();
    let core = gcore(daemon.pid(), work.path());
    let target = [
        "--core".to_owned(),
        core.to_str().unwrap().to_owned(),
        "--exe".to_owned(),
        daemon.bin().to_str().unwrap().to_owned(),
    ];
    let dumped = work.path().join("dump");
    latch_probe(&["dump"])
        .args(&target)
        .arg("--tree")
        .arg(&dumped)
        .expect_success();
    let dir = work.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let mut mount = Mount::start(&target, &dir, &work.path().join("mount.stderr"), &[]);
    assert_eq!(tree_state(&dir, Source::Core), state);
    let foo = &state.lockers[0];
    assert_eq!(
        cat(&dir.join(format!(
            "status/lockers/{}/holders/{}/lock_mode",
            foo.id, foo.holders[0].request.conn
        ))),
        b"ProtectedWrite"
    );
    compare_trees(&dir, &dumped);
    // A core's snapshot is the core's: the same in both.
    assert_eq!(
        cat(&dir.join("daemon/snapshot_time")),
        cat(&dumped.join("daemon/snapshot_time"))
    );
    let status = mount.terminate();
    assert!(status.success(), "{status}: {}", mount.log());
    assert_eq!(mount_options(&mount.dir), None, "{}", mount.log());
}

#[test]
fn mount_refuses_a_process_that_is_not_a_latch_daemon() {
    let sleeper = TestCommand::new("sleep").arg("30").background();
    let work = tempfile::tempdir().unwrap();
    let out = latch_probe(&["mount", "--pid", &sleeper.pid().to_string()])
        .arg(work.path())
        .expect_exit(EXIT_NOT_A_LATCH_DAEMON);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a latch daemon"), "{stderr}");
    assert_eq!(mount_options(&work.path().canonicalize().unwrap()), None);
}

/// `mount --live`, `watch --state-file` and `trace --format merge-patch` follow a random
/// workload from one snapshot and the eBPF events after it: at quiescent points the live
/// tree's state.json, the watch's state file and the first snapshot with every patch
/// applied all equal `latch state --json`, and none took a second snapshot (the daemon was
/// not stopped again).
#[test]
fn live_mount_and_watch_follow_a_random_workload() {
    const STEPS: usize = 48;
    const CHECK_EVERY: usize = 8;
    const MAX_OPEN: usize = 10;
    const RESOURCES: &[&[&str]] = &[
        &["-r", "a"],
        &["-r", "a", "-l", "PR"],
        &["-r", "b", "-l", "CR"],
        &["-r", "num[2]", "-q", "1"],
        &["-r", "red.green"],
        &["-r", "/h/x", "-l", "PW"],
        &["-r", "/h/x/y"],
        &["-r", "_s_s[2]"],
        &["-r", "inc", "-e", "no"],
        &["-r", "inc"],
    ];
    let seed = std::env::var("LATCH_LIVE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now_ns);
    eprintln!("live workload seed {seed} (LATCH_LIVE_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);
    // Clients told to unlock: they finish once granted, and are stopped by pid at the end.
    let mut finishing = Vec::new();

    let daemon = Daemon::start(Profile::Debug);
    // Something held before the snapshot, so the first snapshot is not empty.
    let mut open = vec![daemon.holder(&["-r", "a"])];
    wait_for("a held", CHANGE, || {
        (!daemon.state().lockers.is_empty()).then_some(())
    });
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let pid = daemon.pid().to_string();
    let mount = Mount::start(
        &["--pid".into(), pid.clone()],
        &dir,
        &work.path().join("mount.stderr"),
        &["--live", "--interval", "0.2"],
    );
    let state_file = work.path().join("watch.json");
    let watch = ProbeStream::start(
        "watch",
        daemon.pid(),
        &["--state-file", state_file.to_str().unwrap()],
    );
    let patches = ProbeStream::start("trace", daemon.pid(), &["--format", "merge-patch"]);
    let first_snapshot = cat(&dir.join("daemon/snapshot_time"));
    // The first keyed snapshot with every merge patch so far applied.
    let patched = || -> Option<StateDoc> {
        let lines = patches.stdout.all();
        let (first, rest) = lines.split_first()?;
        let mut doc: serde_json::Value = serde_json::from_str(first).unwrap();
        for line in rest {
            let patch: serde_json::Value = serde_json::from_str(line).unwrap();
            latch_probe::merge::patch::apply(&mut doc, &patch);
        }
        let mut state = latch_probe::merge::patch::unkeyed(&doc).unwrap();
        state.source = Source::Daemon;
        Some(state)
    };

    let check = |step: usize| {
        wait_for(
            &format!("the live states to equal the daemon's after step {step} (seed {seed})"),
            CHANGE,
            || {
                let own = daemon.state();
                cat(&dir.join(".refresh"));
                let tree = tree_state(&dir, Source::Live);
                let watched: Option<StateDoc> = std::fs::read(&state_file)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .map(|mut d: StateDoc| {
                        d.source = Source::Daemon;
                        d
                    });
                let all = tree == own
                    && watched.as_ref() == Some(&own)
                    && patched().as_ref() == Some(&own);
                all.then_some(())
            },
        );
    };
    for step in 1..=STEPS {
        match rng.below(10) {
            0..=4 if open.len() < MAX_OPEN => {
                open.push(daemon.holder(RESOURCES[rng.below(RESOURCES.len())]));
            }
            0..=7 if !open.is_empty() => {
                // A clean unlock, once its holder holds (a waiter's stdin closes too, and it
                // unlocks as soon as it is granted).
                let mut client = open.remove(rng.below(open.len()));
                client.close_stdin();
                finishing.push(client);
            }
            _ if !open.is_empty() => {
                // Killed: the daemon sees its connection close.
                drop(open.remove(rng.below(open.len())));
            }
            _ => {}
        }
        if step % CHECK_EVERY == 0 {
            check(step);
        }
    }
    drop(open);
    drop(finishing);
    check(STEPS + 1);

    assert_eq!(
        cat(&dir.join("daemon/snapshot_time")),
        first_snapshot,
        "the live mount took a new snapshot"
    );
    for (what, stream) in [("watch", watch), ("trace --format merge-patch", patches)] {
        let (_, log) = stream.stop();
        assert!(
            log.last().is_some_and(|l| l.contains(" 1 snapshots")),
            "{what} took a second snapshot (the daemon was stopped again): {log:#?}"
        );
    }
    drop(mount);
}
