//! `latch-probe analyze`: who blocks whom and the verdict, from a running daemon, a core
//! file or saved files, as markdown or `latch.report/1` JSON, with the wait-for graph as
//! Graphviz dot on request; the exit code is the verdict's.
//!
//! Arguments in, evidence gathered by the library, the report rendered out.

use anyhow::{Context, Result};
use clap::{ArgGroup, Args};
use latch_probe::analysis::{render, Report};
use latch_probe::evidence::{Evidence, Origin};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
#[command(
    about = "Who blocks whom, deadlocks, and a verdict (exit 0, 10, 11 or 12)",
    long_about = "Who blocks whom in the daemon, at the level of client processes, and a \
                  verdict.\n\n\
                  Each connection belongs to its client process (the peer pid the daemon \
                  recorded; a `latch` client and the commands it runs, `latch -r A -- latch \
                  -r B -- cmd`, are one party), or over TCP to its peer address. A deadlock \
                  is a set of parties that can never all be granted, across resources, modes, \
                  numeric quantities and set elements; it is told party by party: what each \
                  holds, what it waits for, who holds that. Every waiter's blockers are \
                  listed: hard (holders whose release it needs) and soft (waiters ahead of \
                  it in the queue that want what it wants).\n\n\
                  Findings: a holder whose process has exited, a holder with waiters past \
                  --max-hold, the longest waits, a wedged daemon (a thread holding the lock \
                  table and not letting go), each with the command that acts on it.\n\n\
                  Exit codes (stable): 0 healthy, 10 holding too long, 11 wedged, 12 \
                  deadlock (the worst found); 1 usage, 2 target not found or not permitted, \
                  3 not a latch daemon.\n\n\
                  From files: --state (dump --json or latch state --json) with --processes \
                  and --stacks as `--save DIR` writes them; durations are then measured to \
                  the state file's modification time."
)]
#[command(group(ArgGroup::new("origin").required(true).args(["pid", "core", "state"])))]
pub(super) struct AnalyzeArgs {
    /// The daemon's pid.
    #[arg(long)]
    pid: Option<u32>,
    /// A core file of the daemon; needs --exe.
    #[arg(long, value_name = "FILE", requires = "exe")]
    core: Option<PathBuf>,
    /// The executable the dumped daemon ran.
    #[arg(long, value_name = "BIN", requires = "core")]
    exe: Option<PathBuf>,
    /// A saved latch.state/1 document.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// The client processes (latch.processes/1, as --save writes it), for --state or
    /// --core; without it every peer pid is a party of its own.
    #[arg(long, value_name = "FILE", conflicts_with = "pid")]
    processes: Option<PathBuf>,
    /// Saved thread stacks (stacks --json), for --state, in the order they were taken: a
    /// thread holding the lock table in every one makes the daemon wedged.
    #[arg(long, value_name = "FILE", requires = "state")]
    stacks: Vec<PathBuf>,
    /// A holder with waiters held longer than this is holding too long.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = humantime::parse_duration)]
    max_hold: Duration,
    /// Print the latch.report/1 document instead of markdown.
    #[arg(long)]
    json: bool,
    /// Also write the wait-for graph as Graphviz dot to FILE (deadlocks in red).
    #[arg(long, value_name = "FILE")]
    dot: Option<PathBuf>,
    /// Also write what was analysed (state.json, processes.json, stacks.json) into DIR.
    #[arg(long, value_name = "DIR")]
    save: Option<PathBuf>,
    /// Tell on stderr how long gathering (reading and parsing), the analysis and the
    /// rendering took.
    #[arg(long)]
    stats: bool,
}

pub(super) fn run(args: &AnalyzeArgs) -> Result<u8> {
    let origin = match (&args.pid, &args.core, &args.exe, &args.state) {
        (Some(pid), ..) => Origin::Live(*pid),
        (_, Some(core), Some(exe), _) => Origin::Core {
            core: core.clone(),
            exe: exe.clone(),
            processes: args.processes.clone(),
        },
        // clap requires one origin, and --exe with --core.
        (_, _, _, state) => Origin::Saved {
            state: state.clone().unwrap_or_default(),
            processes: args.processes.clone(),
            stacks: args.stacks.clone(),
        },
    };
    let started = Instant::now();
    let evidence = Evidence::gather(&origin)?;
    let gathered = started.elapsed();
    for problem in &evidence.problems {
        eprintln!("latch-probe: partial state: {problem}");
    }
    if evidence.state.torn {
        eprintln!(
            "latch-probe: torn state: the table was being changed (generation {} is odd)",
            evidence.state.generation
        );
    }
    if let Some(dir) = &args.save {
        evidence.save(dir)?;
    }
    let max_hold_ns = u64::try_from(args.max_hold.as_nanos()).unwrap_or(u64::MAX);
    let analysing = Instant::now();
    let report = Report::new(&evidence.input(Some(max_hold_ns)));
    let analysed = analysing.elapsed();
    let rendering = Instant::now();
    if let Some(file) = &args.dot {
        std::fs::write(file, render::dot(&report))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    // Buffered: a large report is megabytes, and stdout alone flushes at every newline.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render::markdown(&report))?;
    }
    out.flush()?;
    if args.stats {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        eprintln!("gather:   {:.3} ms (reading and parsing)", ms(gathered));
        eprintln!("analysis: {:.3} ms", ms(analysed));
        eprintln!("render:   {:.3} ms", ms(rendering.elapsed()));
    }
    Ok(report.exit_code)
}
