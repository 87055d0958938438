//! The binaries under test: the workspace's `latch` and `latch-probe`, built by cargo once
//! per test process and profile, and where they land.
//!
//! It may not build more than one thing at a time (two cores, long builds) or hand out a
//! path to a binary it did not just build.

use crate::command::TestCommand;
use crate::timeouts::BUILD;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Which cargo profile to build the daemon with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// The workspace's root directory (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_owned()
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, or `<root>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// `target/{debug,release}/latch`, built by `cargo build [--release] -p latch --bin latch` the
/// first time a test in this process asks for that profile.
pub fn latch_bin(profile: Profile) -> PathBuf {
    static DEBUG: OnceLock<PathBuf> = OnceLock::new();
    static RELEASE: OnceLock<PathBuf> = OnceLock::new();
    let cell = match profile {
        Profile::Debug => &DEBUG,
        Profile::Release => &RELEASE,
    };
    cell.get_or_init(|| build_bin("latch", profile)).clone()
}

/// `target/debug/latch-probe`, built by `cargo build -p latch-probe --bin latch-probe` the
/// first time a test in this process asks for it.
pub fn probe_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_bin("latch-probe", Profile::Debug))
        .clone()
}

/// Holds the lock that lets one cargo build run at a time in a test process.
pub fn one_build_at_a_time() -> MutexGuard<'static, ()> {
    static BUILDS: Mutex<()> = Mutex::new(());
    BUILDS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Builds the binary `name` of the package of the same name.
fn build_bin(name: &str, profile: Profile) -> PathBuf {
    let _one_build = one_build_at_a_time();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = target_dir();
    let mut cmd = TestCommand::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", name, "--bin", name, "--target-dir"])
        .arg(&target)
        .timeout(BUILD);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    cmd.expect_success();
    let bin = target.join(profile.dir()).join(name);
    assert!(
        bin.is_file(),
        "cargo built {name} but {} is missing",
        bin.display()
    );
    bin
}
