//! Builds the eBPF programs (`probe-ebpf`, for bpfel-unknown-none) with the `nightly`
//! toolchain and bpf-linker, and leaves the object in OUT_DIR for `trace` to embed.

use std::path::Path;

fn main() -> aya_build::Result<()> {
    // Say what is missing instead of letting a nested cargo fail on a linker it cannot find.
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("bpf-linker").is_file())
    });
    if !on_path {
        return Err(std::io::Error::other(
            "bpf-linker is not on PATH; run scripts/setup.sh \
             (it installs bpf-linker 0.13.0 into ~/.cargo/bin)",
        )
        .into());
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let workspace = Path::new(&manifest_dir).parent().ok_or_else(|| {
        std::io::Error::other("probe-user is expected inside the workspace directory")
    })?;
    let ebpf_dir = workspace.join("probe-ebpf");
    // aya-build reruns on changes under the eBPF crate; its records come from probe-common.
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("probe-common").display()
    );
    let root_dir = ebpf_dir.to_str().ok_or_else(|| {
        std::io::Error::other("the workspace path is not UTF-8, which aya-build needs")
    })?;
    // aya-build turns every line the nested cargo prints into a cargo warning; a quiet
    // nested cargo still reports its errors and warnings, without the progress lines.
    std::env::set_var("CARGO_TERM_QUIET", "true");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "latch-probe-ebpf",
            root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
