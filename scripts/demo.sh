#!/usr/bin/env bash
# The demo: builds everything, starts a latch daemon, attaches the eBPF probe to it, runs
# contending flom-style clients, and shows the daemon's state while they contend, the events
# the probe saw from outside and the alerts of its watch; then the 3 a.m. story: a client
# that never lets go (a forensic report names it, evict frees the queue) and a wedged daemon
# (stacks and the forensic report say so, evict refuses). Installs what is missing first (scripts/setup.sh).
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
    # Everything this script started, by pid; a wedged daemon does not act on SIGTERM (its
    # event loop hangs), so whatever is left after 3 s gets SIGKILL.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for _ in $(seq 30); do
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
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

step "a client takes the printer and never lets go; two more queue behind it"
"$bin" -s "$sock" -r printer -- sleep 600 & stuck=$!; pids+=($stuck)
sleep 0.3
"$bin" -s "$sock" -r printer -- sh -c 'echo "  (waiter 1 finally printed)"' & pids+=($!)
"$bin" -s "$sock" -r printer -l PR -- sh -c 'echo "  (waiter 2 finally printed)"' & pids+=($!)
sleep 0.5
"$bin" -s "$sock" state

step "a forensic run: scripts/forensic.sh $daemon (verdict, cause, wait-for picture)"
rc=0
LATCH_PROBE=$probe LATCH=$bin scripts/forensic.sh --window 2 --max-hold 500ms "$daemon" "$dir/forensic" || rc=$?
echo "exit code $rc"
sed -n '1,/^## Identity/p' "$dir/forensic/report.md" | grep -v '^## Identity'
cat "$dir/forensic/wait-for.dot"

conn=$("$bin" -s "$sock" state --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print([l for l in d["lockers"] if l["resource_name"]=="printer"][0]["holders"][0]["conn"])')
step "the fix from outside: latch-probe evict --pid $daemon --conn $conn"
"$probe" evict --pid "$daemon" --conn "$conn"
sleep 0.5
"$bin" -s "$sock" state

step "a wedged daemon: its lock-table owner hangs (test hook: --debug-feature hang-on-lock=stuck)"
"$bin" daemon -s "$dir/wedged.sock" --debug-feature hang-on-lock=stuck 2>/dev/null & wedged=$!; pids+=($wedged)
for _ in $(seq 100); do "$bin" -s "$dir/wedged.sock" ping >/dev/null 2>&1 && break; sleep 0.05; done
"$bin" -s "$dir/wedged.sock" -r printer -- sleep 600 & pids+=($!)
sleep 0.3
"$bin" -s "$dir/wedged.sock" -r stuck -- true & pids+=($!)
sleep 0.3
"$bin" -s "$dir/wedged.sock" status --timeout-ms 1000 || echo "(latch status: exit code $?)"
"$bin" -s "$dir/wedged.sock" state --timeout-ms 600000 >/dev/null 2>&1 & pids+=($!)
sleep 0.5

step "latch-probe stacks --pid $wedged: who holds the lock table, who waits for it"
"$probe" stacks --pid "$wedged" | grep -E '^thread|holds|blocked|latch::(server|admin)' | head -12

step "latch-probe evict on the wedged daemon refuses, and says why"
"$probe" evict --pid "$wedged" --conn 2 || echo "(exit code $?)"

step "scripts/forensic.sh on the wedged daemon"
rc=0
LATCH_PROBE=$probe LATCH=$bin scripts/forensic.sh --window 1 "$wedged" "$dir/forensic-wedged" || rc=$?
echo "exit code $rc"
sed -n '1,/^## Identity/p' "$dir/forensic-wedged/report.md" | grep -v '^## Identity'
