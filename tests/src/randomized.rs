//! The daemon with its structs laid out at random: `latch` built by nightly with
//! `-Zrandomize-layout`, checked to differ in layout from the debug build.
//!
//! It may not hand out a build whose layout it has not checked to differ (a test on it
//! would then prove nothing).

use crate::bins::{latch_bin, one_build_at_a_time, target_dir, workspace_root, Profile};
use crate::command::TestCommand;
use crate::timeouts::BUILD;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `latch` built by nightly with `RUSTFLAGS=-Zrandomize-layout`, into `target/randomized`,
/// once per test process, and checked to lay the table's structs out differently from the
/// debug build. A missing nightly toolchain fails the test with how to get it.
pub fn randomized_latch_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let debug = latch_bin(Profile::Debug);
            let _one_build = one_build_at_a_time();
            let target = target_dir().join("randomized");
            let out = TestCommand::new("cargo")
                .current_dir(workspace_root())
                .args(["+nightly", "build", "-p", "latch", "--bin", "latch"])
                .arg("--target-dir")
                .arg(&target)
                .env("RUSTFLAGS", "-Zrandomize-layout")
                // What the cargo running this test set would override the flags above or
                // pin the stable toolchain.
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTC")
                .env_remove("RUSTC_WRAPPER")
                .env_remove("CARGO")
                .timeout(BUILD)
                .output();
            assert!(
                out.status.success(),
                "building latch with `cargo +nightly` and -Zrandomize-layout failed ({}); \
                 this test needs the nightly toolchain (rustup toolchain install nightly):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let bin = target.join("debug/latch");
            assert_layouts_differ(&debug, &bin);
            bin
        })
        .clone()
}

fn assert_layouts_differ(plain: &Path, randomized: &Path) {
    let offsets = |bin: &Path| -> Vec<u64> {
        let exe = dwarfpeek::debuginfo::Executable::open(bin).expect("open the daemon");
        let fields = [
            ("latch::table::Request", "conn"),
            ("latch::table::Request", "resource_name"),
            ("latch::table::Request", "since_ns"),
            ("latch::table::Request", "peer"),
            ("latch::table::Locker", "id"),
            ("latch::table::Locker", "holders"),
            ("latch::table::Locker", "waitings"),
            ("latch::table::LockTable", "generation"),
            ("latch::table::LockTable", "lockers"),
        ];
        fields
            .iter()
            .map(|(ty, field)| {
                exe.struct_member(ty, field)
                    .unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
                    .offset
            })
            .collect()
    };
    let (a, b) = (offsets(plain), offsets(randomized));
    assert_ne!(
        a, b,
        "-Zrandomize-layout left the table's structs as they were; the build did not take the flag"
    );
}
