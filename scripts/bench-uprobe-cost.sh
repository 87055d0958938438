#!/usr/bin/env bash
# The cost of one traced event, as the issue defines its floor: the bare uprobe hit (bpftrace
# with an empty program on a C function in a tight loop: the trap alone) against a hit of
# latch-probe's programs (the same trap, plus the program's own run time, which the kernel
# measures per program with kernel.bpf_stats_enabled), on the daemon at full speed. The
# empty bpftrace program's run time on the same daemon functions is measured alike.
# Usage: scripts/bench-uprobe-cost.sh [ROUNDS] [OPS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
ops=${2:-20000}
scripts/setup.sh
cargo build -q --release -p latch --bin latch -p latch-probe --bin latch-probe
dir=$(mktemp -d /dev/shm/bench-uprobe.XXXXXX)
daemon= tracer=
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
    if [ -n "$tracer" ]; then kill -INT "$tracer" 2>/dev/null || true; wait "$tracer" 2>/dev/null || true; fi
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
    sysctl -qw kernel.bpf_stats_enabled="$stats_was"
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp target/release/latch target/release/latch-probe "$dir/"
cat >"$dir/loop.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
__attribute__((noinline)) long hit(long x) { __asm__ volatile(""); return x + 1; }
int main(int argc, char **argv) {
    long n = atol(argv[1]), s = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) s = hit(s);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.1f %ld\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n, s & 1);
    return 0;
}
C
gcc -O2 -o "$dir/loop" "$dir/loop.c"
sysctl -qw kernel.bpf_stats_enabled=1

# Waits until process $1 holds $2 eBPF programs (their fdinfo), so no hit is missed.
wait_programs() {
    for _ in $(seq 600); do
        n=$(grep -l '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | xargs -r grep -L '^link_id:' 2>/dev/null | wc -l || true)
        [ "$n" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "bench-uprobe-cost: process $1 did not load $2 programs" >&2; exit 1
}
# Mean run time (ns) per hit of the programs process $1 holds, from bpftool.
run_ns() {
    ids=$(grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -u | tr '\n' ' ')
    bpftool -j prog show | python3 -c '
import json, sys
ids = set(int(i) for i in sys.argv[1].split())
runs = [(p["run_cnt"], p["run_time_ns"]) for p in json.load(sys.stdin) if p["id"] in ids and p.get("run_cnt")]
cnt = sum(c for c, _ in runs); ns = sum(t for _, t in runs)
print(f"{ns / cnt:.0f} {cnt}" if cnt else "nan 0")' "$ids"
}

"$dir/latch" daemon -s "$dir/latch.sock" & daemon=$!
for _ in $(seq 100); do [ -S "$dir/latch.sock" ] && break; sleep 0.05; done
spec="uprobe:$dir/latch:_ZN5latch6change*"

echo "| round | C call untraced (ns) | bare uprobe hit (ns) | bpftrace {} program (ns/hit) | latch-probe program (ns/hit) | traced event: ours / bare |"
echo "|---|---|---|---|---|---|"
ratios=()
for r in $(seq "$rounds"); do
    plain=$("$dir/loop" 100000000 | cut -d' ' -f1)
    bpftrace -e "uprobe:$dir/loop:hit {}" >/dev/null 2>&1 & tracer=$!
    wait_programs "$tracer" 1
    traced=$("$dir/loop" 200000 | cut -d' ' -f1)
    kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true; tracer=
    bare=$(python3 -c "print(round($traced - $plain))")

    bpftrace -p "$daemon" -e "$spec {}" >/dev/null 2>&1 & tracer=$!
    wait_programs "$tracer" 8
    "$dir/latch" -s "$dir/latch.sock" bench --clients 1 --ops "$ops" --json >/dev/null
    empty=$(run_ns "$tracer" | cut -d' ' -f1)
    kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true; tracer=

    "$dir/latch-probe" trace --pid "$daemon" --json >/dev/null 2>"$dir/trace.err" & tracer=$!
    for _ in $(seq 600); do grep -q attached "$dir/trace.err" && break; sleep 0.1; done
    "$dir/latch" -s "$dir/latch.sock" bench --clients 1 --ops "$ops" --json >/dev/null
    ours=$(run_ns "$tracer" | cut -d' ' -f1)
    kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true; tracer=

    ratio=$(python3 -c "print(f'{($bare + $ours) / ($bare + $empty):.3f}')")
    ratios+=("$ratio")
    echo "| $r | $plain | $bare | $empty | $ours | $ratio |"
done
echo
echo "median traced-event cost ours / bare: $(python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.3f}")' "${ratios[@]}")"
