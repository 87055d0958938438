#!/usr/bin/env bash
# A whole forensic run on a latch daemon, live or dead, into one directory, built on
# latch-probe: identity, the admin API's answer (or that it timed out), every thread's stack,
# the state (JSON and FLoM's tree), a trace window, a second state and the difference, and
# report.md with a verdict and a wait-for picture (wait-for.dot, and .svg when `dot` exists).
#
# Usage:
#   scripts/forensic.sh [--window SECS] [--max-hold SECS] PID OUTDIR
#   scripts/forensic.sh --core FILE --exe BIN OUTDIR
#
# --window: how long the trace between the two states runs (default 5).
# --max-hold: a holder with waiters behind it for longer than this is "holding too long"
#   (default 10).
#
# Exit codes (stable): 0 healthy; 10 a client holds too long; 11 the daemon is wedged;
# 1 usage or a failed step; 2 no such process or not permitted; 3 not a latch daemon.
# It stops the daemon only as latch-probe does (frozen for each copy), never leaves it
# stopped, and leaves no uprobe, mount or ptrace attachment behind.
#
# Over ssh, run it where the daemon is and fetch the directory:
#   ssh root@host 'latch/scripts/forensic.sh PID /tmp/latch-forensic' &&
#   scp -r root@host:/tmp/latch-forensic .
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
window=5
max_hold=10
core=
exe=
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }
while [ $# -gt 0 ]; do
    case $1 in
        --window) window=$2; shift 2 ;;
        --max-hold) max_hold=$2; shift 2 ;;
        --core) core=$2; shift 2 ;;
        --exe) exe=$2; shift 2 ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) echo "forensic.sh: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
if [ -n "$core" ]; then
    [ $# -eq 1 ] && [ -n "$exe" ] || usage
    out=$1; pid=
else
    [ $# -eq 2 ] || usage
    pid=$1; out=$2
    [ -d "/proc/$pid" ] || { echo "forensic.sh: no process $pid" >&2; exit 2; }
fi
probe=${LATCH_PROBE:-$(command -v latch-probe || echo "$here/target/release/latch-probe")}
latch=${LATCH:-$(command -v latch || echo "$here/target/release/latch")}
[ -x "$probe" ] || { echo "forensic.sh: no latch-probe at $probe (cargo build --release, or set LATCH_PROBE)" >&2; exit 1; }
mkdir -p "$out"
log() { printf 'forensic: %s\n' "$*" >&2; }

# A probe step: its output to FILE, its stderr to FILE.err; the probe's exit code for "not a
# latch daemon" or "not found" ends the run with the same code.
step() {
    local file=$1; shift
    local rc=0
    "$probe" "$@" >"$out/$file" 2>"$out/$file.err" || rc=$?
    case $rc in
        0|4) ;;
        2|3) cat "$out/$file.err" >&2; exit "$rc" ;;
        *) log "latch-probe $1 failed ($rc): $(tail -1 "$out/$file.err")" ;;
    esac
    return 0
}

if [ -n "$core" ]; then
    target=(--core "$core" --exe "$exe")
    log "core file $core of $exe"
    {
        echo "source: core file $core"
        echo "exe: $exe"
    } >"$out/identity.txt"
    echo "no admin API: a core file" >"$out/admin.txt"
    step stacks.json stacks "${target[@]}" --json
    step stacks.txt stacks "${target[@]}"
    step state1.json dump "${target[@]}" --json
    step tree.txt dump "${target[@]}" --tree "$out/tree"
    cp "$out/state1.json" "$out/state2.json"
    : >"$out/trace.ndjson"
else
    target=(--pid "$pid")
    exe_path=$(readlink "/proc/$pid/exe" || true)
    start_ticks=$(awk '{print $22}' "/proc/$pid/stat")
    uptime_s=$(awk -v t="$start_ticks" -v hz="$(getconf CLK_TCK)" '{printf "%d", $1 - t / hz}' /proc/uptime)
    {
        echo "source: live process $pid"
        echo "exe: $exe_path"
        echo "uptime: ${uptime_s}s"
        echo "command: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
    } >"$out/identity.txt"
    # The daemon's listening socket, from its descriptors and the kernel's table of Unix
    # sockets: the admin API is asked there.
    sock=$(python3 - "$pid" <<'EOF'
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        link = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if link.startswith("socket:["):
        inodes.add(link[8:-1])
for line in open("/proc/net/unix").read().splitlines()[1:]:
    f = line.split()
    # Flags 00010000: a listening socket; the path is the 8th field.
    if len(f) >= 8 and f[6] in inodes and f[3] == "00010000":
        print(f[7]); break
EOF
    )
    log "daemon $pid ($exe_path), socket ${sock:-unknown}"
    if [ -n "$sock" ] && "$latch" -s "$sock" status --json --timeout-ms 2000 >"$out/admin.json" 2>"$out/admin.err"; then
        echo "answered: see admin.json" >"$out/admin.txt"
    else
        echo "did not answer within 2 s (socket ${sock:-not found}): $(tail -1 "$out/admin.err" 2>/dev/null)" >"$out/admin.txt"
    fi
    step stacks.json stacks "${target[@]}" --json
    step stacks.txt stacks "${target[@]}"
    step state1.json dump "${target[@]}" --json
    step tree.txt dump "${target[@]}" --tree "$out/tree"
    log "tracing for ${window}s"
    step trace.ndjson trace "${target[@]}" --json --duration "$window"
    step state2.json dump "${target[@]}" --json
    step stacks2.json stacks "${target[@]}" --json
fi
# The build id, from the tree's daemon/ directory, and the version, from the state.
[ -f "$out/tree/daemon/build_id" ] && echo "build id: $(cat "$out/tree/daemon/build_id")" >>"$out/identity.txt"
python3 -c 'import json,sys; print("version: " + json.load(open(sys.argv[1]))["version"])' \
    "$out/state1.json" >>"$out/identity.txt" 2>/dev/null || true

rc=0
python3 - "$out" "$max_hold" <<'EOF' || rc=$?
import json, os, sys, time
out, max_hold = sys.argv[1], float(sys.argv[2])
def load(name, default):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default
s1, s2 = load("state1.json", None), load("state2.json", None)
if s2 is None:
    print("forensic: no state could be read", file=sys.stderr)
    sys.exit(1)
stacks1, stacks2 = load("stacks.json", []), load("stacks2.json", None)
admin = open(os.path.join(out, "admin.txt")).read().strip()
live = s2["source"] == "live"
now = time.time_ns() if live else max([e["since_ns"] for l in s2["lockers"] for e in l["holders"] + l["waitings"]] + [0])

def cmdline(pid):
    if pid is None:
        return "?"
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip() or "?"
    except OSError:
        return "(gone)" if live else "(core file: not known)"

def who(e):
    pid = e.get("peer_pid")
    return f"conn {e['conn']} (pid {pid}, uid {e.get('peer_uid')}, `{cmdline(pid)}`)" if pid else f"conn {e['conn']} ({e['peer_name']})"

def secs(ns):
    return f"{max(ns, 0) / 1e9:.1f} s"

# The difference of the two states.
def entries(s):
    d = {}
    for l in s["lockers"]:
        for role, es in (("holder", l["holders"]), ("waiting", l["waitings"])):
            for e in es:
                d[e["conn"]] = (l["resource_name"], role)
    for i in s["incubator"]:
        d[i["conn"]] = (i["resource_name"], "incubated")
    return d
e1, e2 = entries(s1), entries(s2)
diff = []
for c in sorted(set(e1) | set(e2)):
    a, b = e1.get(c), e2.get(c)
    if a != b:
        diff.append(f"conn {c}: {a[1] + ' ' + a[0] if a else 'absent'} -> {b[1] + ' ' + b[0] if b else 'absent'}")
with open(os.path.join(out, "diff.txt"), "w") as f:
    f.write("\n".join(diff) + ("\n" if diff else "no change between the two states\n"))

# Who waits behind whom.
edges, culprits = [], []
for l in s2["lockers"]:
    for w in l["waitings"]:
        for h in l["holders"]:
            edges.append((w, h, l["resource_name"]))
    if l["waitings"]:
        for h in l["holders"]:
            culprits.append((now - h["since_ns"], h, l, len(l["waitings"])))
culprits.sort(key=lambda c: -c[0])
waits = sorted(([now - w["since_ns"], w, l["resource_name"]] for l in s2["lockers"] for w in l["waitings"]), key=lambda x: -x[0])
waits += sorted(([now - i["since_ns"], i, i["resource_name"] + " (incubator)"] for i in s2["incubator"]), key=lambda x: -x[0])

def holders_of_table(stacks):
    return [t for t in (stacks or []) if "latch::table::LOCK_TABLE" in t.get("holds", [])]
owners1, owners2 = holders_of_table(stacks1), holders_of_table(stacks2)
same_owner = [t for t in owners2 if any(t["tid"] == o["tid"] for o in owners1)]
admin_timed_out = admin.startswith("did not answer")
wedged = bool(same_owner) if live else bool(owners1)
wedged = wedged or (live and admin_timed_out)
blocked = [t for t in (stacks2 if stacks2 is not None else stacks1) if t.get("blocked_on")]
too_long = [c for c in culprits if c[0] > max_hold * 1e9]
if wedged:
    verdict, code = "daemon wedged", 11
elif too_long:
    verdict, code = "client holding too long", 10
else:
    verdict, code = "healthy", 0

# Wait-for picture: an edge from each waiter to each holder it waits behind.
dot = ["digraph waitfor {", "  rankdir=LR; node [shape=box, fontname=monospace];"]
seen = set()
for w, h, r in edges:
    for e in (w, h):
        if e["conn"] not in seen:
            seen.add(e["conn"])
            label = who(e).replace('"', "'")
            dot.append(f'  c{e["conn"]} [label="{label}"];')
    dot.append(f'  c{w["conn"]} -> c{h["conn"]} [label="{r}"];')
dot.append("}")
with open(os.path.join(out, "wait-for.dot"), "w") as f:
    f.write("\n".join(dot) + "\n")

r = []
r.append("# Latch forensic report\n")
r.append(f"**Verdict: {verdict}.**\n")
r.append("## Identity\n")
r.append("```\n" + open(os.path.join(out, "identity.txt")).read().strip() + "\n```\n")
r.append(f"Admin API: {admin}\n")
r.append("## Why\n")
if wedged:
    for t in same_owner or owners1:
        where = next((f["function"] for f in t["frames"] if f.get("function", "") and f["function"].startswith("latch::")), "?")
        r.append(f"- Thread {t['tid']} {t.get('name') or ''} holds the lock table and has not let go (in `{where}`).")
    if admin_timed_out:
        r.append("- The daemon's own admin API did not answer: it needs the lock table.")
    r.append("- Evicting a client cannot help until that thread runs again (`latch-probe evict` refuses).")
elif too_long:
    for held, h, l, n in too_long:
        r.append(f"- {who(h)} has held `{l['resource_name']}` for {secs(held)} with {n} waiting behind it: the cause. `latch-probe evict --pid {s2['pid']} --conn {h['conn']}` severs it.")
else:
    r.append("- No thread holds the lock table for long, and no holder with waiters is past the bound.")
r.append("\n## Holders everyone waits behind\n")
r += [f"- {who(h)} on `{l['resource_name']}`: held {secs(held)}, {n} waiting" for held, h, l, n in culprits] or ["- none"]
r.append("\n## Longest waits\n")
r += [f"- {who(w)} on `{res}`: {secs(waited)}" for waited, w, res in waits[:20]] or ["- none"]
r.append("\n## Blocked threads\n")
r += [f"- thread {t['tid']} {t.get('name') or ''}: futex {t['blocked_on']['address']:#x} ({t['blocked_on'].get('name') or 'not a static'})" for t in blocked] or ["- none"]
r.append("\n## Change during the trace window\n")
r.append("```\n" + open(os.path.join(out, "diff.txt")).read() + "```\n")
r.append("## The state\n")
r.append("```json\n" + json.dumps(s2, indent=1) + "\n```\n")
r.append("Files: identity.txt, admin.txt, stacks.txt/.json, state1.json, state2.json, tree/, trace.ndjson, diff.txt, wait-for.dot (.svg).\n")
with open(os.path.join(out, "report.md"), "w") as f:
    f.write("\n".join(r))
with open(os.path.join(out, "verdict"), "w") as f:
    f.write(verdict + "\n")
sys.exit(code)
EOF
if command -v dot >/dev/null; then dot -Tsvg "$out/wait-for.dot" -o "$out/wait-for.svg" || true; fi
# A step's stderr is kept only when it said something.
find "$out" -maxdepth 1 -name '*.err' -empty -delete
log "verdict: $(cat "$out/verdict"); report: $out/report.md"
exit $rc
