#!/usr/bin/env bash
# What live tracing costs the daemon: lock+unlock throughput of one daemon untraced, traced by
# `latch-probe trace --json > /dev/null`, and traced by bpftrace on the same 8 functions
# (`latch::change::*`): an empty program (the bare uprobe cost, in this run) and a printf of
# a few arguments per hit (a user's one-liner that, like ours, ships every event to user
# space). Interleaved round by round, 1 and 8 clients on distinct resources.
# Usage: scripts/bench-trace.sh [ROUNDS] [OPS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
ops=${2:-40000}
scripts/setup.sh
cargo build -q --release -p latch --bin latch -p latch-probe --bin latch-probe
probes=8
# On /dev/shm: private copies of the binaries (a build during the run must not replace the
# file bpftrace resolves symbols in under the running daemon), and bpftrace's printf output
# (counted, then removed).
dir=$(mktemp -d /dev/shm/bench-trace.XXXXXX)
daemon=
tracer=
cleanup() {
    # By pid only: the tracer of the cell under way (if any), then the daemon.
    if [ -n "$tracer" ]; then kill -INT "$tracer" 2>/dev/null || true; wait "$tracer" 2>/dev/null || true; fi
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bin=$dir/latch
probe=$dir/latch-probe
cp target/release/latch "$bin"
cp target/release/latch-probe "$probe"

"$bin" daemon -s "$dir/latch.sock" & daemon=$!
for _ in $(seq 100); do [ -S "$dir/latch.sock" ] && break; sleep 0.05; done
# bpftrace's probe spec: the mangled names of the contract's functions, e.g.
# _ZN5latch6change5grant17h<hash>E; exactly $probes of them, or the peers differ.
spec="uprobe:$bin:_ZN5latch6change*"
listed=$(bpftrace -l "$spec" | wc -l)
[ "$listed" -eq "$probes" ] || { echo "bpftrace lists $listed functions for $spec, not $probes" >&2; exit 1; }

rate() { # clients
    "$bin" -s "$dir/latch.sock" bench --clients "$1" --ops "$ops" --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["ops_per_sec"])'
}
# Waits until process $1 has $probes uprobes attached with eBPF programs, as the kernel
# lists them: perf events with a program set on them (bpftool perf show: one line each, with
# the owner's pid; bpftrace's way) plus perf links (a bpf_link fd whose fdinfo says
# event_type uprobe; aya's way).
attached() { # pid
    local n links
    for _ in $(seq 600); do
        kill -0 "$1" 2>/dev/null || { echo "tracer $1 ended before attaching" >&2; return 1; }
        n=$(bpftool perf show 2>/dev/null | grep -c "^pid $1 .*uprobe" || true)
        links=$(grep -l '^event_type:[[:space:]]*uprobe' /proc/"$1"/fdinfo/* 2>/dev/null | wc -l || true)
        n=$((n + links))
        [ "$n" -ge "$probes" ] && return 0
        sleep 0.05
    done
    echo "tracer $1: $n of $probes uprobes attached after 30 s" >&2
    return 1
}
stop_tracer() { # signal: stops the current tracer after letting it drain its buffer
    sleep 0.5
    kill "-$1" "$tracer"
    wait "$tracer" || true
    tracer=
}

results=$dir/results.jsonl
echo "start $(date -u '+%F %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds of $ops ops" >&2
for clients in 1 8; do
    for round in $(seq "$rounds"); do
        u1=$(rate "$clients")

        "$probe" trace --pid "$daemon" --json >/dev/null 2>"$dir/trace.err" & tracer=$!
        attached "$tracer"
        for _ in $(seq 100); do grep -q "uprobes attached" "$dir/trace.err" && break; sleep 0.05; done
        ours=$(rate "$clients")
        stop_tracer TERM
        # "latch-probe: trace ended on SIGTERM: N events, M lost, K undecodable; ..."
        summary=$(grep -o '[0-9]* events, [0-9]* lost, [0-9]* undecodable' "$dir/trace.err") \
            || { cat "$dir/trace.err" >&2; exit 1; }
        read -r events _ lost _ undecodable _ <<<"$summary"

        bpftrace -p "$daemon" -e "$spec {}" >"$dir/bt-empty.out" 2>&1 & tracer=$!
        attached "$tracer"
        bare=$(rate "$clients")
        stop_tracer INT

        bpftrace -p "$daemon" -e "$spec { printf(\"%s %d %lu %lx %lx\\n\", probe, tid, nsecs, arg0, arg1); }" \
            >"$dir/bt-printf.out" 2>"$dir/bt-printf.err" & tracer=$!
        attached "$tracer"
        printf_rate=$(rate "$clients")
        stop_tracer INT
        bt_lines=$(grep -c '^uprobe:' "$dir/bt-printf.out" || true)
        bt_lost=$(awk '/^Lost [0-9]+ events/ {s+=$2} END {print s+0}' "$dir/bt-printf.out")
        rm -f "$dir/bt-printf.out"

        u2=$(rate "$clients")
        echo "{\"clients\":$clients,\"round\":$round,\"untraced\":[$u1,$u2],\"ours\":$ours,\"bare\":$bare,\"printf\":$printf_rate,\"events\":$events,\"lost\":$lost,\"undecodable\":$undecodable,\"bt_lines\":$bt_lines,\"bt_lost\":$bt_lost}" >>"$results"
        echo "round $round, $clients clients: untraced $u1 / $u2, ours $ours ($events events, $lost lost), bpftrace {} $bare, printf $printf_rate ($bt_lines lines, $bt_lost lost)" >&2
    done
done

echo "end $(date -u '+%F %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# Per round: the untraced rate is the mean of the one before and the one after; the time
# tracing adds per operation, divided by the events per operation, is the cost per event.
python3 - "$results" "$ops" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ops = int(sys.argv[2])
med = statistics.median
def cost(rate, untraced, per_op):  # µs the daemon spends per traced event
    return (1 / rate - 1 / untraced) / per_op * 1e6
print("| clients | untraced ops/s | ours ops/s | bpftrace `{}` ops/s | bpftrace printf ops/s "
      "| events/op | µs/event: ours | bare uprobe | bpftrace printf | ours / bare | ours / printf "
      "| lost: ours | bpftrace printf |")
print("|" + "---|" * 13)
detail = []
for clients in sorted({r["clients"] for r in rows}):
    rs = [r for r in rows if r["clients"] == clients]
    c = {"ours": [], "bare": [], "printf": [], "rb": [], "rp": [], "u": [], "epo": []}
    for r in rs:
        u = statistics.mean(r["untraced"])
        epo = r["events"] / ops
        co, cb, cp = (cost(r[k], u, epo) for k in ("ours", "bare", "printf"))
        c["u"].append(u); c["epo"].append(epo)
        c["ours"].append(co); c["bare"].append(cb); c["printf"].append(cp)
        c["rb"].append(co / cb if cb > 0 else float("nan"))
        c["rp"].append(co / cp if cp > 0 else float("nan"))
        detail.append(f"| {clients} | {r['round']} | {u:,.0f} | {r['ours']:,.0f} | {r['bare']:,.0f} "
                      f"| {r['printf']:,.0f} | {epo:.3f} | {co:.1f} | {cb:.1f} | {cp:.1f} "
                      f"| {c['rb'][-1]:.2f} | {c['rp'][-1]:.2f} | {r['lost']} | {r['bt_lost']} |")
    print(f"| {clients} | {med(c['u']):,.0f} | {med(r['ours'] for r in rs):,.0f} "
          f"| {med(r['bare'] for r in rs):,.0f} | {med(r['printf'] for r in rs):,.0f} "
          f"| {med(c['epo']):.3f} | {med(c['ours']):.1f} | {med(c['bare']):.1f} | {med(c['printf']):.1f} "
          f"| {med(c['rb']):.2f} | {med(c['rp']):.2f} "
          f"| {sum(r['lost'] for r in rs)} | {sum(r['bt_lost'] for r in rs)} |")
print()
print("Per round (ratios in the table above are medians of these):")
print()
print("| clients | round | untraced | ours | bpftrace `{}` | bpftrace printf | events/op "
      "| µs/event: ours | bare | printf | ours / bare | ours / printf | lost: ours | printf |")
print("|" + "---|" * 14)
print("\n".join(detail))
undecodable = sum(r["undecodable"] for r in rows)
short = [(r["clients"], r["round"], r["bt_lines"], r["events"]) for r in rows if r["bt_lines"] + r["bt_lost"] < r["events"] - 64]
print()
print(f"undecodable events: {undecodable}; bpftrace printf lines/op: "
      f"{med(r['bt_lines'] / ops for r in rows):.3f}" + (f"; short printf runs: {short}" if short else ""))
EOF
