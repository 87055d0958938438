#!/usr/bin/env bash
# The demo: builds everything, starts a latch daemon, attaches the eBPF probe to it, runs
# contending flom-style clients, and shows the daemon's state while they contend, the events
# the probe saw from outside and the alerts of its watch. Installs what is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "$(id -u)" != 0 ]; then
    echo "demo.sh: the eBPF probe needs root (uid is $(id -u))" >&2
    exit 1
fi
echo "== building (release)"
cargo build -q --release -p latch -p latch-probe
bin=$PWD/target/release/latch
probe=$PWD/target/release/latch-probe
dir=$(mktemp -d /tmp/latch-demo.XXXXXX)
sock=$dir/latch.sock
pids=()
cleanup() {
    # Everything this script started, by pid.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "a daemon: latch daemon -s $sock"
"$bin" daemon -s "$sock" 2>"$dir/daemon.log" & daemon=$!; pids+=("$daemon")
for _ in $(seq 100); do "$bin" -s "$sock" ping >/dev/null 2>&1 && break; sleep 0.05; done
"$bin" -s "$sock" ping

step "the probe attaches eBPF uprobes to the daemon's 8 state-change functions (pid $daemon)"
"$probe" trace --pid "$daemon" --duration 8 >"$dir/trace.txt" 2>"$dir/trace.log" & tracer=$!; pids+=($tracer)
"$probe" watch --pid "$daemon" --max-wait 500ms --duration 8 >"$dir/alerts.ndjson" 2>"$dir/watch.log" & watcher=$!; pids+=($watcher)
# Both say so once attached (a debug probe indexes the daemon's DWARF first).
for _ in $(seq 300); do
    grep -q attached "$dir/trace.log" && grep -q attached "$dir/watch.log" && break
    sleep 0.1
done
cat "$dir/trace.log"

step "contending clients: 3 on one printer, 3 on a pool of 2 units, 3 on a set of rooms"
for i in 1 2 3; do
    "$bin" -s "$sock" -r printer -- sleep 1 & pids+=($!)
    "$bin" -s "$sock" -r 'pool[2]' -q 1 -- sleep 1 & pids+=($!)
    "$bin" -s "$sock" -r red.green.blue -- sh -c 'echo "  got room $0"; sleep 1' & pids+=($!)
done
sleep 0.5

step "the daemon's own view while they contend: latch state"
"$bin" -s "$sock" state

step "the same as JSON (latch.state/1): latch state --json"
# Through files, not `| head`: under pipefail a closed pipe would end the demo.
"$bin" -s "$sock" state --json >"$dir/state.json"
python3 -m json.tool "$dir/state.json" >"$dir/state.pretty.json"
head -40 "$dir/state.pretty.json"

step "the same state read from outside, without the daemon's help: latch-probe dump --stats"
"$probe" dump --pid "$daemon" --stats

step "as FLoM's VFS tree: latch-probe dump --tree (find, then one holder's files)"
"$probe" dump --pid "$daemon" --tree "$dir/tree"
(cd "$dir/tree" && find status | sort >"$dir/tree.txt")
head -30 "$dir/tree.txt"
holder=$(grep -m1 '/holders/.*/lock_mode$' "$dir/tree.txt" || true)
[ -n "$holder" ] && printf '%s: %s\n' "$holder" "$(cat "$dir/tree/$holder")"

# Until their --duration ends: the idle lockers' destruction comes 1.75 s after the last unlock.
wait "$tracer" "$watcher"
step "what the probe's trace saw from outside: every change, as it happened"
cat "$dir/trace.txt"

step "what latch-probe watch --max-wait 500ms said: one alert per client that waited too long"
cat "$dir/alerts.ndjson"

step "the daemon after they all finished: latch status"
"$bin" -s "$sock" status
