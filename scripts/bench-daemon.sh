#!/usr/bin/env bash
# Lock+unlock throughput of the latch daemon, side by side with the floor (a do-nothing
# server of ours that only does the exchange: daemon/examples/floor_server.rs), in one run.
# Usage: scripts/bench-daemon.sh [ROUNDS] [OPS]
# With BASELINE_LATCH=/path/to/an/older/latch, that daemon runs beside and is timed in each
# round too (for "unchanged or better" across a change): its ops/s and latch's ratio to it.
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
# The floor must be a strong peer: its pool size matters (a thread blocked in accept is
# woken in FIFO order, so a big pool serves each connection from a cold thread). Two pools
# run, of the sizes that were fastest here (docs/benchmarks.md), and latch is compared with
# the faster of the two (below).
floor_threads=(4 8)
socks=("$dir/latch.sock")
for t in "${floor_threads[@]}"; do
    "$floor" "$dir/floor$t.sock" "$t" & pids+=($!)
    socks+=("$dir/floor$t.sock")
done
"$bin" daemon -s "$dir/latch.sock" & pids+=($!)
baseline=${BASELINE_LATCH:-}
if [ -n "$baseline" ]; then
    cp "$baseline" "$dir/baseline"
    "$dir/baseline" daemon -s "$dir/baseline.sock" & pids+=($!)
    socks+=("$dir/baseline.sock")
fi
for _ in $(seq 100); do
    missing=0
    for s in "${socks[@]}"; do [ -S "$s" ] || missing=1; done
    [ "$missing" = 0 ] && break
    sleep 0.05
done

rate() { # socket clients extra-args...
    local sock=$1 clients=$2; shift 2
    "$bin" -s "$sock" bench --clients "$clients" --ops "$ops" --json "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ops_per_sec"])'
}

# The machine is shared and noisy: each round runs both floors and latch back to back and
# ratios are taken per round. The floor is the pool size whose median is higher (per-round
# maxima of two floors would add noise to the floor and so bias the ratio down); the ratio
# is the median of latch's per-round ratios to that floor.
summary() { # clients floor4 floor8 distinct shared [baseline-distinct baseline-shared] (comma-separated rates)
    python3 - "$@" <<'PY'
import statistics as st, sys
clients, f4, f8, distinct, shared = sys.argv[1:6]
parse = lambda s: [float(x) for x in s.split(",")]
if len(sys.argv) > 6:
    for what, ours, base in (("distinct", distinct, sys.argv[6]), ("one shared (EX)", shared, sys.argv[7])):
        ratio = st.median(r / b for r, b in zip(parse(ours), parse(base)))
        with open(sys.argv[8], "a") as rows:
            print(f"| {clients} | {what} | {round(st.median(parse(base)))} | "
                  f"{round(st.median(parse(ours)))} | {ratio:.2f} |", file=rows)
floors = {4: parse(f4), 8: parse(f8)}
threads = max(floors, key=lambda t: st.median(floors[t]))
floor = floors[threads]
for what, rates in (("distinct", parse(distinct)), ("one shared (EX)", parse(shared))):
    ratio = st.median(r / f for r, f in zip(rates, floor))
    print(f"| {clients} | {what} | {round(st.median(floor))} ({threads} threads) | "
          f"{round(st.median(rates))} | {ratio:.2f} |")
PY
}
echo "| clients | resources | floor ops/s | latch ops/s | latch / floor (median of per-round ratios) |"
echo "|---|---|---|---|---|"
join() { local IFS=,; echo "$*"; }
for clients in 1 8 32; do
    f4=(); f8=(); l=(); s=(); bl=(); bs=()
    for _ in $(seq "$rounds"); do
        if [ -n "$baseline" ]; then
            bl+=("$(rate "$dir/baseline.sock" "$clients")")
            bs+=("$(rate "$dir/baseline.sock" "$clients" --same-resource)")
        fi
        f4+=("$(rate "$dir/floor4.sock" "$clients")")
        f8+=("$(rate "$dir/floor8.sock" "$clients")")
        l+=("$(rate "$dir/latch.sock" "$clients")")
        s+=("$(rate "$dir/latch.sock" "$clients" --same-resource)")
    done
    summary "$clients" "$(join "${f4[@]}")" "$(join "${f8[@]}")" "$(join "${l[@]}")" "$(join "${s[@]}")" \
        ${baseline:+"$(join "${bl[@]}")" "$(join "${bs[@]}")" "$dir/baseline.rows"}
done
if [ -n "$baseline" ]; then
    echo
    echo "| clients | resources | baseline ops/s | latch ops/s | latch / baseline (median of per-round ratios) |"
    echo "|---|---|---|---|---|"
    cat "$dir/baseline.rows"
fi
