#!/usr/bin/env bash
# Lock+unlock throughput of the latch daemon, side by side with the floor (a do-nothing
# server of ours that only does the exchange: daemon/examples/floor_server.rs), in one run.
# Usage: scripts/bench-daemon.sh [ROUNDS] [OPS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
ops=${2:-20000}
scripts/setup.sh
cargo build -q --release -p latch --bin latch --example floor_server
bin=target/release/latch
floor=target/release/examples/floor_server
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
"$floor" "$dir/floor.sock" 64 & pids+=($!)
"$bin" daemon -s "$dir/latch.sock" & pids+=($!)
for _ in $(seq 100); do [ -S "$dir/floor.sock" ] && [ -S "$dir/latch.sock" ] && break; sleep 0.05; done

rate() { # socket clients extra-args...
    local sock=$1 clients=$2; shift 2
    "$bin" -s "$sock" bench --clients "$clients" --ops "$ops" --json "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ops_per_sec"])'
}
median() { python3 -c 'import statistics,sys; print(round(statistics.median(float(x) for x in sys.argv[1:])))' "$@"; }

# The machine is shared and noisy: each round runs floor and latch back to back, the ratio
# is taken per round, and the tables give medians.
echo "| clients | resources | floor ops/s | latch ops/s | latch / floor (median of per-round ratios) |"
echo "|---|---|---|---|---|"
for clients in 1 8 32; do
    f=(); l=(); s=(); rl=(); rs=()
    for _ in $(seq "$rounds"); do
        a=$(rate "$dir/floor.sock" "$clients")
        b=$(rate "$dir/latch.sock" "$clients")
        c=$(rate "$dir/latch.sock" "$clients" --same-resource)
        f+=("$a"); l+=("$b"); s+=("$c")
        rl+=("$(python3 -c "print($b/$a)")"); rs+=("$(python3 -c "print($c/$a)")")
    done
    ratio() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.2f}")' "$@"; }
    echo "| $clients | distinct | $(median "${f[@]}") | $(median "${l[@]}") | $(ratio "${rl[@]}") |"
    echo "| $clients | one shared (EX) | $(median "${f[@]}") | $(median "${s[@]}") | $(ratio "${rs[@]}") |"
done
