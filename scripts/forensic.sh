#!/usr/bin/env bash
# A whole forensic run on a latch daemon, live or dead, into one directory: thin
# orchestration over latch-probe, which does all the reading and deciding. It collects the
# identity, the admin API's answer (or that it timed out), every thread's stack, the state
# (JSON, with the client processes, and FLoM's tree), a trace window and a second state;
# then `latch-probe analyze` writes report.md (the verdict and its reasons, who blocks
# whom, each deadlock party by party, the findings with the command that acts on each) and
# wait-for.dot (the party-level wait-for graph, deadlocks in red; .svg when `dot` exists),
# and `latch-probe diff` what changed between the two states.
#
# Usage:
#   scripts/forensic.sh [--window SECS] [--max-hold DUR] PID OUTDIR
#   scripts/forensic.sh [--max-hold DUR] [--processes FILE] --core FILE --exe BIN OUTDIR
#
# --window: how long the trace between the two states runs, in seconds (default 5).
# --max-hold: a holder with waiters for longer than this is "holding too long" (default
#   10s; 500ms, 2s, 1m...; a bare number is seconds).
# --processes: for a core, the client processes (latch.processes/1, as a live run's
#   first/processes.json), so a client and the commands it runs are one party.
#
# Exit codes (stable, analyze's verdict): 0 healthy; 10 a client holds too long; 11 the
# daemon is wedged; 12 deadlock; 1 usage or a failed step; 2 no such process or not
# permitted; 3 not a latch daemon.
# It stops the daemon only as latch-probe does (frozen for each copy), never leaves it
# stopped, and leaves no uprobe, mount or ptrace attachment behind.
#
# OUTDIR: report.md, wait-for.dot (.svg), diff.txt, identity.txt, admin.txt (admin.json),
# stacks.txt, first/ and second/ (state.json, processes.json, stacks.json: what `analyze
# --state --processes --stacks` reads back), tree/, trace.ndjson, and a STEP.err file for
# each step that said something on stderr.
#
# Over ssh, run it where the daemon is and fetch the directory:
#   ssh root@host 'latch/scripts/forensic.sh PID /tmp/latch-forensic' &&
#   scp -r root@host:/tmp/latch-forensic .
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
window=5
max_hold=10s
core=
exe=
processes=
usage() { sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }
while [ $# -gt 0 ]; do
    case $1 in
        --window) window=$2; shift 2 ;;
        --max-hold) max_hold=$2; shift 2 ;;
        --core) core=$2; shift 2 ;;
        --exe) exe=$2; shift 2 ;;
        --processes) processes=$2; shift 2 ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) echo "forensic.sh: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[[ $max_hold =~ ^[0-9]+(\.[0-9]+)?$ ]] && max_hold=${max_hold}s
if [ -n "$core" ]; then
    [ $# -eq 1 ] && [ -n "$exe" ] || usage
    out=$1; pid=
else
    [ $# -eq 2 ] && [ -z "$exe$processes" ] || usage
    pid=$1; out=$2
    [ -d "/proc/$pid" ] || { echo "forensic.sh: no process $pid" >&2; exit 2; }
fi
probe=${LATCH_PROBE:-$(command -v latch-probe || echo "$here/target/release/latch-probe")}
latch=${LATCH:-$(command -v latch || echo "$here/target/release/latch")}
[ -x "$probe" ] || { echo "forensic.sh: no latch-probe at $probe (cargo build --release, or set LATCH_PROBE)" >&2; exit 1; }
mkdir -p "$out"
log() { printf 'forensic: %s\n' "$*" >&2; }

# A probe step: its output to FILE, its stderr to FILE.err; it returns the probe's exit
# code. "Not found" and "not a latch daemon" end the run with the same code; another
# failure is said and the run goes on (a later step may still see what this one missed).
step() {
    local file=$1; shift
    local rc=0
    "$probe" "$@" >"$out/$file" 2>"$out/$file.err" || rc=$?
    case $rc in
        0|4|10|11|12) ;;
        2|3) cat "$out/$file.err" >&2; exit "$rc" ;;
        *) log "latch-probe $1 failed ($rc): $(tail -1 "$out/$file.err")" ;;
    esac
    return "$rc"
}

# The daemon's listening Unix socket (where its admin API is asked): the one of its
# descriptors that the kernel's table of Unix sockets lists as listening (flags 00010000).
listening_socket() {
    local fd link inodes=" "
    for fd in "/proc/$1/fd/"*; do
        link=$(readlink "$fd" 2>/dev/null) || continue
        [[ $link == socket:\[*\] ]] && inodes+="${link:8:-1} "
    done
    local _num _refs _proto flags _type _st inode path
    while read -r _num _refs _proto flags _type _st inode path; do
        if [ "$flags" = 00010000 ] && [[ $inodes == *" $inode "* ]] && [ -n "$path" ]; then
            echo "$path"
            return
        fi
    done </proc/net/unix
}

rc=0
if [ -n "$core" ]; then
    target=(--core "$core" --exe "$exe")
    log "core file $core of $exe"
    printf 'source: core file %s\nexe: %s\n' "$core" "$exe" >"$out/identity.txt"
    echo "no admin API: a core file" >"$out/admin.txt"
    step stacks.txt stacks "${target[@]}" || true
    step tree.txt dump "${target[@]}" --tree "$out/tree" || true
    step report.md analyze "${target[@]}" ${processes:+--processes "$processes"} \
        --max-hold "$max_hold" --save "$out/first" --dot "$out/wait-for.dot" || rc=$?
    echo "a core file is one moment: no second state" >"$out/diff.txt"
else
    target=(--pid "$pid")
    sock=$(listening_socket "$pid")
    {
        echo "source: live process $pid"
        echo "exe: $(readlink "/proc/$pid/exe" || true)"
        echo "running for: $(ps -o etime= -p "$pid" || true)"
        echo "command: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
        echo "socket: ${sock:-not found}"
    } >"$out/identity.txt"
    log "daemon $pid, socket ${sock:-not found}"
    if [ -n "$sock" ] && "$latch" -s "$sock" status --json --timeout-ms 2000 >"$out/admin.json" 2>"$out/admin.err"; then
        echo "answered: see admin.json" >"$out/admin.txt"
    else
        echo "did not answer within 2 s (socket ${sock:-not found}): $(tail -1 "$out/admin.err" 2>/dev/null)" >"$out/admin.txt"
    fi
    step stacks.txt stacks "${target[@]}" || true
    step first.md analyze "${target[@]}" --max-hold "$max_hold" --save "$out/first" || true
    step tree.txt dump "${target[@]}" --tree "$out/tree" || true
    log "tracing for ${window}s"
    step trace.ndjson trace "${target[@]}" --json --duration "$window" || true
    step report.md analyze "${target[@]}" --max-hold "$max_hold" --save "$out/second" \
        --dot "$out/wait-for.dot" || rc=$?
    step diff.txt diff "$out/first/state.json" "$out/second/state.json" || true
    rm -f "$out/first.md"
fi
case $rc in
    0|10|11|12) ;;
    *) log "no verdict: analyze failed (see $out/report.md.err)"; exit 1 ;;
esac
# The verdict first (analyze's markdown), then what was collected around it.
{
    echo
    echo "## Identity"
    echo
    echo '```'
    cat "$out/identity.txt"
    echo '```'
    echo
    echo "Admin API: $(cat "$out/admin.txt")"
    echo
    echo "## Change during the trace window"
    echo
    echo '```'
    cat "$out/diff.txt"
    echo '```'
    echo
    echo "Files: identity.txt, admin.txt, stacks.txt, first/ and second/ (state, processes and" \
        "stacks JSON), tree/, trace.ndjson, diff.txt, wait-for.dot (.svg)."
} >>"$out/report.md"
if command -v dot >/dev/null; then dot -Tsvg "$out/wait-for.dot" -o "$out/wait-for.svg" || true; fi
# A step's stderr is kept only when it said something.
find "$out" -maxdepth 1 -name '*.err' -empty -delete
log "$(head -1 "$out/report.md" | sed 's/^# //'); report: $out/report.md"
exit "$rc"
