//! The subcommands of `latch-probe`, one module each. A command lowers its clap arguments
//! to a plain request to the library (a pid or a core, options), and prints what comes
//! back; it holds no probing logic of its own.

mod analyze;
mod diff;
mod dump;
mod evict;
mod inspect;
mod mount;
mod shell;
mod stacks;
mod stopping;
mod target_args;
mod trace;
mod watch;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use latch_probe::error::exit_code;

#[derive(Parser)]
#[command(
    name = "latch-probe",
    version,
    about = "Reads a latch daemon's state from outside, without its help",
    after_help = "A stuck lock service, step by step:\n  \
        latch-probe stacks --pid P      who holds the lock table, who waits on it\n  \
        latch-probe dump --pid P        who holds what and who waits (--json, --tree DIR)\n  \
        latch-probe watch --pid P --max-hold 30s   alerts as it happens\n  \
        latch-probe analyze --pid P     who blocks whom, deadlocks, a verdict\n  \
        latch-probe evict --pid P --conn N         sever the client everyone waits behind\n  \
        scripts/forensic.sh P OUTDIR    all of it, into a report\n  \
        latch-probe print --pid P 'LOCK_TABLE.lockers[3]'   any static, by path (any Rust program)\n\n\
        A dead daemon: the same with --core FILE --exe BIN (dump, mount, stacks, analyze).\n\n\
        Exit codes: 0 ok; 1 usage or other failure; 2 target not found or not permitted; \
        3 not a latch daemon or no debug info; 4 torn or partial result (printed anyway).\n\
        Docs: docs/guide.md, docs/probe.md, docs/trace.md, docs/inspect.md, docs/formats.md."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the daemon's lock state, read from outside (a live process or a core file).
    Dump(dump::DumpArgs),
    /// Mount the daemon's lock state as a read-only FUSE tree in FLoM's VFS layout.
    Mount(mount::MountArgs),
    Stacks(stacks::StacksArgs),
    Trace(trace::TraceArgs),
    Watch(watch::WatchArgs),
    Evict(evict::EvictArgs),
    Analyze(analyze::AnalyzeArgs),
    Diff(diff::DiffArgs),
    Print(inspect::PrintArgs),
    Type(inspect::TypeArgs),
    Shell(shell::ShellArgs),
    /// Print a shell completion script, e.g.
    /// `latch-probe completions bash > /etc/bash_completion.d/latch-probe`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Cli {
    /// Runs the command; its exit code.
    pub(crate) fn run(self) -> Result<u8> {
        match self.command {
            Command::Trace(args) => trace::run(&args),
            Command::Watch(args) => watch::run(&args),
            Command::Stacks(args) => stacks::run(&args),
            Command::Evict(args) => evict::run(&args),
            Command::Analyze(args) => analyze::run(&args),
            Command::Diff(args) => diff::run(&args),
            Command::Print(args) => inspect::print(&args),
            Command::Type(args) => inspect::type_of(&args),
            Command::Shell(args) => shell::run(&args),
            Command::Completions { shell } => {
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "latch-probe",
                    &mut std::io::stdout(),
                );
                Ok(exit_code::OK)
            }
            Command::Dump(args) => dump::run(&args),
            Command::Mount(args) => mount::run(&args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_know_every_command_and_option() {
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "latch-probe",
            &mut script,
        );
        let script = String::from_utf8(script).expect("UTF-8");
        for word in [
            "dump",
            "mount",
            "trace",
            "watch",
            "stacks",
            "evict",
            "analyze",
            "diff",
            "--max-hold",
            "--core",
        ] {
            assert!(script.contains(word), "bash completion lacks {word}");
        }
    }

    #[test]
    fn a_target_is_a_pid_or_a_core_with_its_executable() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|_| ());
        assert!(parse(&["latch-probe", "dump", "--pid", "1"]).is_ok());
        assert!(parse(&["latch-probe", "dump", "--core", "c", "--exe", "e"]).is_ok());
        assert!(parse(&["latch-probe", "dump"]).is_err());
        assert!(parse(&["latch-probe", "dump", "--core", "c"]).is_err());
        assert!(parse(&[
            "latch-probe",
            "mount",
            "--pid",
            "1",
            "--core",
            "c",
            "--exe",
            "e",
            "d"
        ])
        .is_err());
    }
}
