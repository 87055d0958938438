#!/usr/bin/env bash
# What live tracing costs the daemon: lock+unlock throughput of one daemon untraced, traced by
# `latch-probe trace --json > /dev/null`, and traced by bpftrace on the same 8 functions
# (`latch::change::*`): an empty program (the bare uprobe cost, in this run) and a printf of
# a few arguments per hit (a user's one-liner that, like ours, ships every event to user
# space). Interleaved round by round, 1, 8 and 32 clients on distinct resources.
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
# Off for the run: with it on, the kernel reads the clock around every program run, a cost
# of its own in every traced cell (bench-uprobe-cost.sh turns it on, and back).
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
    # By pid only: the tracer of the cell under way (if any), then the daemon.
    if [ -n "$tracer" ]; then kill -INT "$tracer" 2>/dev/null || true; wait "$tracer" 2>/dev/null || true; fi
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
    sysctl -qw kernel.bpf_stats_enabled="$stats_was"
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
sysctl -qw kernel.bpf_stats_enabled=0
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
# Nanoseconds on a CPU so far, all threads of process $1 (the scheduler's own count).
cpu_ns() {
    local s=0 f ns
    for f in /proc/"$1"/task/*/schedstat; do read -r ns _ <"$f" 2>/dev/null && s=$((s + ns)); done
    echo "$s"
}
# One measured load: "ops/s daemon-cpu-ns tracer-cpu-ns" (the tracer's from before the load
# until it has drained its buffer; 0 without a tracer).
measure() { # clients
    local d0 t0=0 r d1 t1=0
    d0=$(cpu_ns "$daemon"); [ -n "$tracer" ] && t0=$(cpu_ns "$tracer")
    r=$(rate "$1")
    d1=$(cpu_ns "$daemon")
    if [ -n "$tracer" ]; then sleep 0.5; t1=$(cpu_ns "$tracer"); fi
    echo "$r $((d1 - d0)) $((t1 - t0))"
}
stop_tracer() { # signal
    kill "-$1" "$tracer"
    wait "$tracer" || true
    tracer=
}

# One cell each: ours (its rate, CPU, and counts from its closing line), and bpftrace's empty
# program (the bare uprobe cost).
run_ours() {
    "$probe" trace --pid "$daemon" --json >/dev/null 2>"$dir/trace.err" & tracer=$!
    attached "$tracer"
    for _ in $(seq 100); do grep -q "uprobes attached" "$dir/trace.err" && break; sleep 0.05; done
    read -r ours dours tours <<<"$(measure "$clients")"
    stop_tracer TERM
    # "latch-probe: trace ended on SIGTERM: N events, M lost, K undecodable; ..."
    summary=$(grep -o '[0-9]* events, [0-9]* lost, [0-9]* undecodable' "$dir/trace.err") \
        || { cat "$dir/trace.err" >&2; exit 1; }
    read -r events _ lost _ undecodable _ <<<"$summary"
}
run_bare() {
    bpftrace -p "$daemon" -e "$spec {}" >"$dir/bt-empty.out" 2>&1 & tracer=$!
    attached "$tracer"
    read -r bare dbare tbare <<<"$(measure "$clients")"
    stop_tracer INT
}

results=$dir/results.jsonl
echo "start $(date -u '+%F %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds of $ops ops" >&2
for clients in 1 8 32; do
    for round in $(seq "$rounds"); do
        # An untraced load before and after each traced one, each traced one measured
        # against the two beside it: the machine's drift over a round is larger than a bare
        # hit's cost. Ours and the bare uprobes take turns at going first.
        if [ $((round % 2)) -eq 1 ]; then first=ours; else first=bare; fi
        read -r u1 du1 _ <<<"$(measure "$clients")"
        "run_$first"
        read -r u2 du2 _ <<<"$(measure "$clients")"
        if [ "$first" = ours ]; then run_bare; else run_ours; fi
        read -r u3 du3 _ <<<"$(measure "$clients")"

        bpftrace -p "$daemon" -e "$spec { printf(\"%s %d %lu %lx %lx\\n\", probe, tid, nsecs, arg0, arg1); }" \
            >"$dir/bt-printf.out" 2>"$dir/bt-printf.err" & tracer=$!
        attached "$tracer"
        read -r pf dpf tpf <<<"$(measure "$clients")"
        stop_tracer INT
        bt_lines=$(grep -c '^uprobe:' "$dir/bt-printf.out" || true)
        bt_lost=$(awk '/^Lost [0-9]+ events/ {s+=$2} END {print s+0}' "$dir/bt-printf.out")
        rm -f "$dir/bt-printf.out"

        read -r u4 du4 _ <<<"$(measure "$clients")"
        cat >>"$results" <<JSON
{"clients":$clients,"round":$round,"first":"$first","untraced":[$u1,$u2,$u3,$u4],"ours":$ours,"bare":$bare,"printf":$pf,
 "cpu":{"untraced":[$du1,$du2,$du3,$du4],"ours":$dours,"bare":$dbare,"printf":$dpf},
 "tracer_cpu":{"ours":$tours,"bare":$tbare,"printf":$tpf},
 "events":$events,"lost":$lost,"undecodable":$undecodable,"bt_lines":$bt_lines,"bt_lost":$bt_lost}
JSON
        printf 'round %s, %s clients: ops/s untraced %.0f / %.0f / %.0f / %.0f, ours %.0f (%s events, %s lost), bpftrace {} %.0f, printf %.0f (%s lines, %s lost)\n' \
            "$round" "$clients" "$u1" "$u2" "$u3" "$u4" "$ours" "$events" "$lost" "$bare" "$pf" "$bt_lines" "$bt_lost" >&2
    done
done

echo "end $(date -u '+%F %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$results" "$ops" <<'EOF'
import json, statistics, sys
text = open(sys.argv[1]).read()
dec, rows, i = json.JSONDecoder(), [], 0
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    row, i = dec.raw_decode(text, i)
    rows.append(row)
ops = int(sys.argv[2])
med = statistics.median
peers = ("ours", "bare", "printf")
def ratio(a, b):
    return a / b if b > 0 else float("nan")
def fmt(x, spec=".1f"):
    return "n/a" if x != x else format(x, spec)
def mr(xs):  # median of per-round ratios, the undefined ones (a cost <= 0) left out
    xs = [x for x in xs if x == x]
    return med(xs) if xs else float("nan")
# Per round: each traced load against the mean of the untraced loads just before and after
# it (the round ran U first U second U printf U).
# Throughput cost of an event: the time tracing adds to an operation, over events per op.
# CPU cost of an event: the daemon's extra CPU per op over events per op (what its uprobe
# hits cost it, in-kernel); the tracer's: its CPU over the events it handled.
per = []
for r in rows:
    second = "bare" if r["first"] == "ours" else "ours"
    beside = {r["first"]: (0, 1), second: (1, 2), "printf": (2, 3)}
    epo = (r["events"] + r["lost"]) / ops  # hits per op (a lost event was a hit too)
    d = {"r": r, "epo": epo, "u": statistics.mean(r["untraced"]),
         "du": statistics.mean(r["cpu"]["untraced"]) / ops / 1e3}
    for k in peers:
        u = statistics.mean(r["untraced"][i] for i in beside[k])
        du = statistics.mean(r["cpu"]["untraced"][i] for i in beside[k]) / ops
        d["t_" + k] = (1 / r[k] - 1 / u) / epo * 1e6
        d["c_" + k] = (r["cpu"][k] / ops - du) / epo / 1e3
    d["tr_ours"] = r["tracer_cpu"]["ours"] / max(r["events"], 1) / 1e3
    d["tr_printf"] = r["tracer_cpu"]["printf"] / max(r["bt_lines"], 1) / 1e3
    for x in ("t", "c"):
        d[x + "_ob"] = ratio(d[x + "_ours"], d[x + "_bare"])
        d[x + "_op"] = ratio(d[x + "_ours"], d[x + "_printf"])
    per.append(d)
groups = {}
for d in per:
    groups.setdefault(d["r"]["clients"], []).append(d)

print("Throughput (ops/s, medians) and what it gives per traced event:")
print()
print("| clients | untraced | ours | bpftrace `{}` | bpftrace printf | events/op "
      "| µs/event: ours | bare uprobe | bpftrace printf | ours / bare | ours / printf "
      "| lost: ours | bpftrace printf |")
print("|" + "---|" * 13)
for c, ds in sorted(groups.items()):
    m = lambda k: med(d[k] for d in ds)
    print(f"| {c} | {m('u'):,.0f} | {med(d['r']['ours'] for d in ds):,.0f} "
          f"| {med(d['r']['bare'] for d in ds):,.0f} | {med(d['r']['printf'] for d in ds):,.0f} "
          f"| {m('epo'):.2f} | {m('t_ours'):.1f} | {m('t_bare'):.1f} | {m('t_printf'):.1f} "
          f"| {fmt(mr(d['t_ob'] for d in ds), '.2f')} | {fmt(mr(d['t_op'] for d in ds), '.2f')} "
          f"| {sum(d['r']['lost'] for d in ds)} | {sum(d['r']['bt_lost'] for d in ds)} |")
print()
print("CPU time per traced event (µs, medians; the scheduler's counts of the daemon's and the")
print("tracer's threads):")
print()
print("| clients | daemon µs/op untraced | daemon +µs/event: ours | bare uprobe | bpftrace printf "
      "| ours / bare | tracer µs/event: ours | bpftrace printf | total µs/event: ours | bpftrace printf |")
print("|" + "---|" * 10)
for c, ds in sorted(groups.items()):
    m = lambda k: med(d[k] for d in ds)
    print(f"| {c} | {m('du'):.1f} | {m('c_ours'):.2f} | {m('c_bare'):.2f} | {m('c_printf'):.2f} "
          f"| {fmt(mr(d['c_ob'] for d in ds), '.2f')} | {m('tr_ours'):.2f} | {m('tr_printf'):.2f} "
          f"| {med(d['c_ours'] + d['tr_ours'] for d in ds):.2f} "
          f"| {med(d['c_printf'] + d['tr_printf'] for d in ds):.2f} |")
print()
print("Per round (the ratios above are medians of these; n/a where the bare cost came out <= 0):")
print()
print("| clients | round | untraced | ours | `{}` | printf | thr. µs/event ours / bare / printf "
      "| ours/bare | daemon CPU +µs/event ours / bare / printf | ours/bare | tracer µs/event ours / printf | lost |")
print("|" + "---|" * 12)
for d in per:
    r = d["r"]
    print(f"| {r['clients']} | {r['round']} | {d['u']:,.0f} | {r['ours']:,.0f} | {r['bare']:,.0f} "
          f"| {r['printf']:,.0f} | {d['t_ours']:.1f} / {d['t_bare']:.1f} / {d['t_printf']:.1f} "
          f"| {fmt(d['t_ob'], '.2f')} | {d['c_ours']:.2f} / {d['c_bare']:.2f} / {d['c_printf']:.2f} "
          f"| {fmt(d['c_ob'], '.2f')} | {d['tr_ours']:.2f} / {d['tr_printf']:.2f} | {r['lost']} / {r['bt_lost']} |")
print()
print(f"undecodable events: {sum(d['r']['undecodable'] for d in per)}; "
      f"hits per op seen by bpftrace printf: {med(d['r']['bt_lines'] / ops for d in per):.3f}")
EOF
