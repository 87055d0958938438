//! `latch-probe stacks`: every thread of the daemon with its backtrace, and what each thread
//! blocked in a futex waits on, named from the debug info. Live (`--pid`; the daemon is
//! frozen only while registers and stacks are copied) or from a core file.

use super::target_args::{Target, TargetArgs};
use anyhow::Result;
use clap::Args;
use dwarfpeek::stacks::ThreadStack;
use latch_probe::error::exit_code;
use latch_probe::target::{self, LiveDaemon};
use std::io::Write;

#[derive(Args)]
#[command(
    about = "Every thread's backtrace, and what each blocked thread waits on",
    long_about = "Every thread of the daemon with a symbolized backtrace (function, file:line, \
                  inlined calls; CFI unwinding from the threads' registers), and for each \
                  thread blocked in futex(2) the static it waits on, named from the debug info \
                  (e.g. latch::table::LOCK_TABLE.inner.futex: the lock table's mutex).\n\n\
                  Live (--pid): the daemon is frozen only while its registers and stacks are \
                  copied, and left exactly as stopped as it was. From a core file (--core \
                  --exe): the same, by tid (a core keeps no thread names)."
)]
pub(super) struct StacksArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// One JSON document: an array of threads (tid, name, state, frames, blocked_on).
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: &StacksArgs) -> Result<u8> {
    let threads = match args.target.target() {
        Target::Live(pid) => LiveDaemon::open(pid)?.stacks()?,
        Target::Core { core, exe } => target::core_stacks(core, exe)?,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &threads)?;
        writeln!(out)?;
    } else {
        for thread in &threads {
            write_thread(&mut out, thread)?;
        }
    }
    Ok(exit_code::OK)
}

fn write_thread(out: &mut impl Write, t: &ThreadStack) -> std::io::Result<()> {
    let name = if t.name.is_empty() {
        String::new()
    } else {
        format!(" \"{}\"", t.name)
    };
    writeln!(out, "thread {}{name} ({})", t.tid, t.state)?;
    for lock in &t.holds {
        writeln!(out, "  holds {lock}")?;
    }
    if let Some(b) = &t.blocked_on {
        writeln!(
            out,
            "  blocked in {} on {:#x}{}",
            b.syscall,
            b.address,
            b.name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        )?;
    }
    for (i, f) in t.frames.iter().enumerate() {
        let function = f.function.as_deref().unwrap_or("??");
        let place = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!(" at {file}:{line}"),
            (Some(file), None) => format!(" at {file}"),
            _ => String::new(),
        };
        let module = f
            .module
            .as_ref()
            .map(|m| format!(" [{m}]"))
            .unwrap_or_default();
        let inlined = if f.inlined { " (inlined)" } else { "" };
        writeln!(
            out,
            "  #{i:<2} {:#014x} {function}{inlined}{place}{module}",
            f.address
        )?;
    }
    writeln!(out)
}
