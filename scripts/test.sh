#!/usr/bin/env bash
# Runs every test, as CI does: formatting, lints, unit, property and end-to-end tests
# (the eBPF, FUSE and ptrace tests included; they need root and fail loudly without it).
# Installs what is missing first (scripts/setup.sh), so a fresh machine needs only this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "$(id -u)" != 0 ]; then
    echo "test.sh: the eBPF, FUSE and ptrace tests must run as root (uid is $(id -u))" >&2
    exit 1
fi
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --exclude latch-probe-ebpf --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace --exclude latch-probe-ebpf
