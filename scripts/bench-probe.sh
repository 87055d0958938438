#!/usr/bin/env bash
# The probe's benchmark, side by side: a release daemon filled by `latch bench --hold`
# (LOCKERS lockers, each with one holder and WAITERS waiters), then, ROUNDS times and
# alternating which goes first, `latch-probe dump --pid P --json --stats` and gdb printing the
# same information (every locker, holder, waiter and incubated request dereferenced, the
# fields of the state document printed through the toolchain's own pretty printers). Prints
# each round, then the medians and the median of the per-round ratios gdb/probe.
#
# Usage: scripts/bench-probe.sh [ROUNDS] [LOCKERS] [WAITERS]   (default 5 5000 2; run as root)
# With BASELINE_PROBE=/path/to/an/older/latch-probe, that probe is timed in each round too.
#
# It stops everything it started, by pid, on every exit path. The binaries are copied to a
# temporary directory first, so builds running meanwhile cannot replace them under gdb.
set -euo pipefail

rounds=${1:-5}
lockers=${2:-5000}
waiters=${3:-2}

cd "$(dirname "$0")/.."
cargo build --release -p latch -p latch-probe >&2
target=${CARGO_TARGET_DIR:-target}
command -v rust-gdb >/dev/null || { echo "bench-probe: rust-gdb is needed (rustup's toolchain, gdb)" >&2; exit 1; }

work=$(mktemp -d /tmp/latch-bench-probe.XXXXXX)
cp "$target/release/latch" "$target/release/latch-probe" "$work/"
baseline=${BASELINE_PROBE:-}
[ -z "$baseline" ] || cp "$baseline" "$work/latch-probe-baseline"
started=()
cleanup() {
    local i
    # Latest first: the clients before the daemon.
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        kill "${started[i]}" 2>/dev/null || true
        wait "${started[i]}" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$work/latch" daemon -s "$work/sock" >"$work/daemon.log" 2>&1 &
daemon=$!
started+=("$daemon")
for _ in $(seq 100); do [ -S "$work/sock" ] && break; sleep 0.05; done
"$work/latch" -s "$work/sock" bench --hold --lockers "$lockers" --waiters "$waiters" >"$work/bench.log" 2>&1 &
started+=("$!")
for _ in $(seq 1200); do grep -qs '^ready' "$work/bench.log" && break; sleep 0.1; done
grep '^ready' "$work/bench.log" >&2 || { echo "bench-probe: the daemon was not filled" >&2; cat "$work/bench.log" >&2; exit 1; }

# What gdb prints: the fields the probe prints (the state document's), each box
# dereferenced, formatted by the toolchain's pretty printers.
cat >"$work/same.py" <<'EOF'
import gdb

def children(value):
    printer = gdb.default_visualizer(value)
    return [child for _, child in printer.children()] if printer else []

REQUEST = ("conn", "resource_name", "lock_mode", "quantity", "element", "since_ns", "peer")

def request_line(boxed, fields):
    request = boxed.dereference()
    return " ".join(str(request[f]) for f in fields)

table = gdb.parse_and_eval("'latch::table::LOCK_TABLE'")["data"]["value"]
lines = ["generation = %s" % table["generation"]]
pairs = children(table["lockers"])
for boxed in pairs[1::2]:
    locker = boxed.dereference()
    lines.append("locker %s %s %s %s" % tuple(
        locker[f] for f in ("id", "resource_name", "rules", "created_ns")))
    for list_name in ("holders", "waitings"):
        for request in children(locker[list_name]):
            lines.append("  %s: %s" % (list_name, request_line(request, REQUEST)))
for request in children(table["incubator"]):
    lines.append("incubator: %s" % request_line(request, REQUEST + ("resource_type",)))
print("\n".join(lines))
print("gdb printed %d lines" % len(lines))
EOF

now() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }

probe_round() {
    local t0 t1
    t0=$(now)
    "$work/latch-probe" dump --pid "$daemon" --json --stats >"$work/probe.json" 2>"$work/probe.err"
    t1=$(now)
    probe_ns=$((t1 - t0))
    frozen_ms=$(awk '/^frozen:/ { print $2 }' "$work/probe.err")
}

# `latch-probe print` of the whole static, as text: issue 6's peer of the same gdb run.
print_round() {
    local t0 t1
    t0=$(now)
    "$work/latch-probe" print --pid "$daemon" LOCK_TABLE --limit 100000 --depth 64 >"$work/print.txt" 2>"$work/print.err"
    t1=$(now)
    print_ns=$((t1 - t0))
}

baseline_round() {
    local t0 t1
    baseline_ns=0
    [ -n "$baseline" ] || return 0
    t0=$(now)
    "$work/latch-probe-baseline" dump --pid "$daemon" --json >/dev/null 2>&1
    t1=$(now)
    baseline_ns=$((t1 - t0))
}

gdb_round() {
    local t0 t1
    t0=$(now)
    rust-gdb -nx -batch "$work/latch" -p "$daemon" \
        -ex 'set print elements unlimited' -ex 'set print repeats unlimited' \
        -ex "source $work/same.py" >"$work/gdb.out" 2>"$work/gdb.err"
    t1=$(now)
    gdb_ns=$((t1 - t0))
    gdb_lines=$(awk '/^gdb printed/ { print $3 }' "$work/gdb.out")
}

echo "bench-probe: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "daemon pid $daemon: $lockers lockers, $((lockers * (1 + waiters))) connections; $rounds rounds"
printf '%-6s %12s %12s %10s %9s %12s %10s %12s\n' round probe_s gdb_s ratio frozen_ms baseline_s print_s gdb/print
probes=() gdbs=() ratios=() frozens=() baselines=() prints=() print_ratios=()
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then probe_round; print_round; gdb_round; else gdb_round; print_round; probe_round; fi
    baseline_round
    [ -n "$gdb_lines" ] || { echo "bench-probe: gdb printed nothing:" >&2; tail -5 "$work/gdb.err" >&2; exit 1; }
    ratio=$(awk -v g="$gdb_ns" -v p="$probe_ns" 'BEGIN { printf "%.1f", g / p }')
    print_ratio=$(awk -v g="$gdb_ns" -v p="$print_ns" 'BEGIN { printf "%.1f", g / p }')
    printf '%-6s %12s %12s %10s %9s %12s %10s %12s\n' "$r" "$(secs "$probe_ns")" "$(secs "$gdb_ns")" \
        "$ratio" "$frozen_ms" "$(secs "$baseline_ns")" "$(secs "$print_ns")" "$print_ratio"
    probes+=("$probe_ns") gdbs+=("$gdb_ns") ratios+=("$ratio") frozens+=("$frozen_ms")
    baselines+=("$baseline_ns") prints+=("$print_ns") print_ratios+=("$print_ratio")
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
lockers_seen=$(grep -o '"id":' "$work/probe.json" | wc -l)
echo "probe: $lockers_seen lockers in its JSON ($(wc -c <"$work/probe.json") bytes); gdb: $gdb_lines lines"
echo "median: probe $(secs "$(median "${probes[@]}")") s, gdb $(secs "$(median "${gdbs[@]}")") s," \
    "ratio $(median "${ratios[@]}")x, frozen $(median "${frozens[@]}") ms"
echo "print: $(grep -c 'conn:' "$work/print.txt") requests in its text ($(wc -c <"$work/print.txt") bytes);" \
    "median $(secs "$(median "${prints[@]}")") s, gdb/print $(median "${print_ratios[@]}")x"
[ -z "$baseline" ] || echo "median baseline probe ($baseline): $(secs "$(median "${baselines[@]}")") s"
