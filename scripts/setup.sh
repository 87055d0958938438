#!/usr/bin/env bash
# Installs everything the build and the tests need, idempotently: a second run only checks.
# See ../shared/toolchain.md for why each piece is pinned the way it is.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

need_apt=()
dpkg -s llvm-22-dev >/dev/null 2>&1 || need_apt+=(llvm-22-dev)
command -v fusermount3 >/dev/null 2>&1 || need_apt+=(fuse3)
command -v gdb >/dev/null 2>&1 || need_apt+=(gdb)
command -v bpftool >/dev/null 2>&1 || need_apt+=(bpftool)
command -v bpftrace >/dev/null 2>&1 || need_apt+=(bpftrace)
dpkg -s pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# `ip` makes the discovery tests' network namespaces.
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# What the discovery tests read off the wire inside their namespaces (the hop limit).
command -v tcpdump >/dev/null 2>&1 || need_apt+=(tcpdump)
# OpenSSL's own TLS peers and certificates in tests/tests/tls.rs (FLoM speaks OpenSSL).
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The eBPF crate is built by the preinstalled `nightly` with rust-src (aya-build's default
# toolchain name); never `rustup update nightly`, newer aya needs a newer rustc.
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
    log "adding rust-src to nightly"
    rustup component add rust-src --toolchain nightly
fi

if ! bpf-linker --version 2>/dev/null | grep -q '0\.13\.0'; then
    log "building bpf-linker 0.13.0 against Debian's LLVM 22 (about a minute)"
    LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --version 0.13.0 --locked \
        --no-default-features --features llvm-22
fi
