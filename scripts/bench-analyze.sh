#!/usr/bin/env bash
# The cost of `latch-probe analyze` on a large table, beyond reading it: a CONNS-connection
# latch.state/1 and its process tree made by the big_state test binary (parties of one
# process with several connections and chains of nested clients; simple resources in every
# mode, numeric pools and sets, the popular ones more often; queues behind hot resources and
# some deadlocks), then ROUNDS runs of `analyze --state FILE --processes FILE --json --stats`.
# Each run's --stats split its time into gathering (reading and parsing the two files: the
# peer, what any reader of the dump pays), the analysis and the rendering; the run's wall
# time is measured around the command. Prints each round, then the medians and the median
# ratio analysis / gathering.
#
# Usage: scripts/bench-analyze.sh [ROUNDS] [CONNS] [SEED]   (default 11 15000 1)
#
# It starts no daemon and leaves nothing behind but what it prints.
set -euo pipefail

rounds=${1:-11}
conns=${2:-15000}
seed=${3:-1}

cd "$(dirname "$0")/.."
cargo build --release -p latch-probe --bin latch-probe -p latch-tests --bin big_state >&2
target=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d /tmp/latch-bench-analyze.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "state: $("$target/release/big_state" "$conns" "$seed" "$work")," \
    "$(du -k "$work/state.json" | cut -f1) KiB state, $(du -k "$work/processes.json" | cut -f1) KiB processes"

ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
walls=() gathers=() analyses=() renders=() ratios=()
for ((round = 1; round <= rounds; round++)); do
    start=$(date +%s%N)
    rc=0
    "$target/release/latch-probe" analyze --state "$work/state.json" \
        --processes "$work/processes.json" --json --stats >"$work/report.json" 2>"$work/stats" || rc=$?
    wall=$(($(date +%s%N) - start))
    # 0, 10, 11 and 12 are verdicts; anything else is a failure.
    case $rc in 0|10|11|12) ;; *) cat "$work/stats" >&2; exit 1 ;; esac
    gather=$(awk '/^gather:/ { print $2 }' "$work/stats")
    analysis=$(awk '/^analysis:/ { print $2 }' "$work/stats")
    render=$(awk '/^render:/ { print $2 }' "$work/stats")
    ratio=$(awk -v a="$analysis" -v g="$gather" 'BEGIN { printf "%.2f", a / g }')
    walls+=("$(ms "$wall")") gathers+=("$gather") analyses+=("$analysis") renders+=("$render") ratios+=("$ratio")
    echo "round $round: wall $(ms "$wall") ms (exit $rc): gather $gather ms, analysis $analysis ms, render $render ms; analysis/gather ${ratio}x"
done
echo "median: wall $(median "${walls[@]}") ms, gather $(median "${gathers[@]}") ms," \
    "analysis $(median "${analyses[@]}") ms, render $(median "${renders[@]}") ms," \
    "analysis/gather $(median "${ratios[@]}")x; report $(du -k "$work/report.json" | cut -f1) KiB"
