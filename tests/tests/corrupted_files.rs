//! Corrupted and truncated files never crash or hang the probe: an executable (ELF, symbols,
//! DWARF) or a core file with random bytes overwritten, or cut short at a random length, is
//! read the whole way the probe reads it (open the executable, index its DWARF on demand,
//! open the core, find the load bias, find a static, decode it), and every step may fail
//! with an error but none may panic or run without end.
//!
//! The files are the value fixture and a core of it written by `gcore`. Needs root (gcore).
//! Every process started is stopped by its pid.

use dwarfpeek::inspect::expr::Expr;
use latch_probe::target::inspect_core;
use latch_tests::coredump::gcore;
use latch_tests::fixture::ValueFixture;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

const CASES: u32 = 64;
/// All the cases of one test together, at most: a hang fails the test instead of CI.
const ALL_CASES_WITHIN: Duration = Duration::from_secs(240);

/// The fixture's executable and a core of it, made once per test process.
fn files() -> (&'static Path, &'static Path) {
    static FILES: std::sync::OnceLock<(PathBuf, PathBuf, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    let (exe, core, _dir) = FILES.get_or_init(|| {
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_value_fixture"));
        let fixture = ValueFixture::start(&exe);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let core = gcore(fixture.pid(), dir.path());
        (exe, core, dir)
    });
    (exe, core)
}

/// The expressions read from every pair of files.
const EXPRESSIONS: [&str; 4] = ["FIXTURE", "GREETING", "NUMBERS", "POINTERS.to_inner.a"];

/// Everything the probe does with an executable and a core, errors allowed.
/// How many of [`EXPRESSIONS`] read.
fn read_all(core: &Path, exe: &Path) -> usize {
    let Ok(inspected) = inspect_core(core, exe) else {
        return 0;
    };
    let _ = inspected.statics();
    EXPRESSIONS
        .iter()
        .filter(|text| {
            let expr = Expr::parse(text).expect("a valid expression");
            inspected.value(&expr, 101).is_ok()
        })
        .count()
}

/// `bytes` with `flips` (position, byte) overwritten (positions taken modulo the length),
/// then cut to `keep_ppm` millionths of its length, written to a new file in `dir`.
fn damaged(bytes: &[u8], flips: &[(usize, u8)], keep_ppm: u32, dir: &Path, name: &str) -> PathBuf {
    let mut bytes = bytes.to_vec();
    let len = bytes.len();
    for &(at, b) in flips {
        bytes[at % len] = b;
    }
    bytes.truncate((len as u64 * u64::from(keep_ppm) / 1_000_000) as usize);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write a damaged copy");
    path
}

/// Runs `cases` in a thread of its own and fails if they do not all end in time.
fn within_time(what: &str, cases: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        cases();
        let _ = done.send(());
    });
    match finished.recv_timeout(ALL_CASES_WITHIN) {
        Ok(()) => worker.join().expect("the cases ran"),
        // The worker panicked: join reports its message.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not done within {ALL_CASES_WITHIN:?}: a read hangs")
        }
    }
}

/// Random flips (and cuts, about half the cases) in the named file.
fn damage_strategy() -> impl Strategy<Value = (Vec<(usize, u8)>, u32)> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 1..64),
        prop_oneof![Just(1_000_000u32), 0u32..1_000_000],
    )
}

fn run(what: &'static str, damage_core: bool) {
    let (exe, core) = files();
    // Intact, the pair reads: so the damaged cases below do reach the decoding.
    assert_eq!(read_all(core, exe), EXPRESSIONS.len(), "the intact files");
    within_time(what, move || {
        let target = if damage_core { core } else { exe };
        let bytes = std::fs::read(target).expect("read the file to damage");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: CASES,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let n = std::cell::Cell::new(0);
        runner
            .run(&damage_strategy(), |(flips, keep)| {
                n.set(n.get() + 1);
                let bad = damaged(&bytes, &flips, keep, dir.path(), &n.get().to_string());
                if damage_core {
                    read_all(&bad, exe);
                } else {
                    read_all(core, &bad);
                }
                std::fs::remove_file(&bad).expect("remove the damaged copy");
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    });
}

#[test]
fn a_corrupted_or_truncated_executable_is_an_error_not_a_crash() {
    run("damaged executable", false);
}

#[test]
fn a_corrupted_or_truncated_core_file_is_an_error_not_a_crash() {
    run("damaged core file", true);
}
