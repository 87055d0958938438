//! A stripped daemon is read through its separate debug file: the stripped binary (`.symtab`
//! kept, for the uprobes) with `latch.debug` beside it through `.gnu_debuglink`, or with the
//! debug file under `<root>/.build-id/` and `LATCH_PROBE_DEBUG_ROOT=<root>`, or stripped of
//! `.symtab` too (the symbols then come from the debug file); each way
//! `latch-probe dump --pid P --json` equals `latch state --json` (`source` aside). With no
//! debug file anywhere the probe refuses the daemon with exit code 3, naming where it looked.
//!
//! Needs root (ptrace) and binutils' `objcopy`. Every process started is stopped by its pid.

use dwarfpeek::debuginfo::Executable;
use latch_probe::executable::DEBUG_ROOT_ENV;
use latch_probe_common::doc::Source;
use latch_tests::bins::{latch_bin, Profile};
use latch_tests::command::TestCommand;
use latch_tests::daemon::DaemonOptions;
use latch_tests::probe::{expect_dump, latch_probe, EXIT_NOT_A_LATCH_DAEMON};
use latch_tests::state::holding;
use latch_tests::timeouts::{CHANGE, TOOL};
use latch_tests::wait::wait_for;
use std::path::{Path, PathBuf};

/// A stripped copy of the debug daemon and its debug file, in a directory of their own.
struct Stripped {
    dir: tempfile::TempDir,
    /// The stripped daemon (`.gnu_debuglink` names `latch.debug`).
    bin: PathBuf,
    /// `latch.debug`, beside it.
    debug: PathBuf,
    /// The daemon's GNU build id, hex.
    build_id: String,
}

/// `objcopy ARGS`, bounded by [`TOOL`].
fn objcopy() -> TestCommand {
    let mut cmd = TestCommand::new("objcopy");
    cmd.timeout(TOOL);
    cmd
}

/// `strip` is `--strip-debug` (keeps `.symtab`) or `--strip-all`.
fn stripped(strip: &str) -> Stripped {
    let dir = tempfile::Builder::new()
        .prefix("latch-debugfile-")
        .tempdir()
        .expect("temporary directory");
    let full = dir.path().join("latch.full");
    std::fs::copy(latch_bin(Profile::Debug), &full).expect("copy the daemon");
    let bin = dir.path().join("latch");
    let debug = dir.path().join("latch.debug");
    objcopy()
        .arg("--only-keep-debug")
        .args([&full, &debug])
        .expect_success();
    // objcopy names the link after the debug file and computes its CRC from it; run in the
    // directory so the link is the bare file name.
    objcopy()
        .current_dir(dir.path())
        .args([
            strip,
            "--add-gnu-debuglink=latch.debug",
            "latch.full",
            "latch",
        ])
        .expect_success();
    std::fs::remove_file(&full).expect("remove the unstripped copy");
    let exe = Executable::open_with_debug_root(&bin, Path::new("/nonexistent"))
        .expect("open the stripped daemon");
    let build_id = exe
        .build_id()
        .expect("build id")
        .expect("the daemon has a build id");
    assert_eq!(exe.debug_file(), Some(debug.as_path()));
    Stripped {
        dir,
        bin,
        debug,
        build_id,
    }
}

/// `latch-probe dump --pid P --json` with the debug root `root`.
fn dump(pid: u32, root: &Path) -> TestCommand {
    let mut cmd = latch_probe(&["dump", "--pid", &pid.to_string(), "--json"]);
    cmd.env(DEBUG_ROOT_ENV, root);
    cmd
}

/// Starts the stripped daemon with a holder, and checks the probe reads what it says.
fn assert_probe_reads(bin: &Path, root: &Path) {
    let daemon = DaemonOptions::exe(bin.to_owned()).start();
    let _holder = daemon.holder(&["-r", "a", "-l", "EX"]);
    let _waiter = daemon.holder(&["-r", "num[3]", "-q", "2"]);
    let truth = wait_for("the holders in place", CHANGE, || {
        let doc = daemon.state();
        (holding(&doc) == 2).then_some(doc)
    });
    let probed = expect_dump(&mut dump(daemon.pid(), root), Source::Live);
    assert_eq!(probed, truth);
    assert_eq!(daemon.state(), truth, "the state moved while probed");
}

fn empty_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("latch-debugroot-")
        .tempdir()
        .expect("temporary directory")
}

#[test]
fn a_stripped_daemon_is_read_through_its_debuglink() {
    let s = stripped("--strip-debug");
    let root = empty_root();
    assert_probe_reads(&s.bin, root.path());
}

#[test]
fn a_daemon_without_symbols_takes_them_from_its_debug_file() {
    let s = stripped("--strip-all");
    let root = empty_root();
    assert_probe_reads(&s.bin, root.path());
}

#[test]
fn a_stripped_daemon_is_read_through_its_build_id() {
    let s = stripped("--strip-debug");
    let root = empty_root();
    let dir = root.path().join(".build-id").join(&s.build_id[..2]);
    std::fs::create_dir_all(&dir).expect("create .build-id/xx");
    std::fs::rename(&s.debug, dir.join(format!("{}.debug", &s.build_id[2..])))
        .expect("move the debug file");
    assert!(!s.debug.exists());
    assert_probe_reads(&s.bin, root.path());
}

#[test]
fn without_a_debug_file_the_probe_says_where_it_looked() {
    let s = stripped("--strip-debug");
    let root = empty_root();
    std::fs::remove_file(&s.debug).expect("remove the debug file");
    let daemon = DaemonOptions::exe(s.bin.clone()).start();
    let out = dump(daemon.pid(), root.path()).expect_exit(EXIT_NOT_A_LATCH_DAEMON);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let by_id = root
        .path()
        .join(".build-id")
        .join(&s.build_id[..2])
        .join(format!("{}.debug", &s.build_id[2..]));
    let dir = s.dir.path().canonicalize().expect("canonical temp dir");
    for place in [
        by_id,
        dir.join("latch.debug"),
        dir.join(".debug").join("latch.debug"),
    ] {
        assert!(
            stderr.contains(&*place.to_string_lossy()),
            "the error does not name {}: {stderr}",
            place.display()
        );
    }
    assert!(stderr.contains(DEBUG_ROOT_ENV), "{stderr}");
}
