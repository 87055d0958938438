//! `latch-probe`: the command line over the probe library. Subcommands parse arguments,
//! call the library and print; they hold no probing logic of their own.

mod dump;
mod evict_command;
mod inspect_command;
mod mount;
mod shell_command;
mod stacks_command;
mod stopping;
mod target;
mod trace_command;
mod watch_command;

use clap::{CommandFactory, Parser, Subcommand};
use latch_probe::model::{exit_code, ProbeError};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "latch-probe",
    version,
    about = "Reads a latch daemon's state from outside, without its help",
    after_help = "A stuck lock service, step by step:\n  \
        latch-probe stacks --pid P      who holds the lock table, who waits on it\n  \
        latch-probe dump --pid P        who holds what and who waits (--json, --tree DIR)\n  \
        latch-probe watch --pid P --max-hold 30s   alerts as it happens\n  \
        latch-probe evict --pid P --conn N         sever the client everyone waits behind\n  \
        scripts/forensic.sh P OUTDIR    all of it, into a report\n  \
        latch-probe print --pid P 'LOCK_TABLE.lockers[3]'   any static, by path (any Rust program)\n\n\
        A dead daemon: the same with --core FILE --exe BIN (dump, mount, stacks).\n\n\
        Exit codes: 0 ok; 1 usage or other failure; 2 target not found or not permitted; \
        3 not a latch daemon or no debug info; 4 torn or partial result (printed anyway).\n\
        Docs: docs/guide.md, docs/probe.md, docs/trace.md, docs/inspect.md, docs/formats.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the daemon's lock state, read from outside (a live process or a core file).
    Dump(dump::DumpArgs),
    /// Mount the daemon's lock state as a read-only FUSE tree in FLoM's VFS layout.
    Mount(mount::MountArgs),
    Stacks(stacks_command::StacksArgs),
    Trace(trace_command::TraceArgs),
    Watch(watch_command::WatchArgs),
    Evict(evict_command::EvictArgs),
    Print(inspect_command::PrintArgs),
    Type(inspect_command::TypeArgs),
    Shell(shell_command::ShellArgs),
    /// Print a shell completion script, e.g.
    /// `latch-probe completions bash > /etc/bash_completion.d/latch-probe`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // Help and version are answers; anything else is a usage error, whose code is
            // 1 here (clap's 2 means "target not found" in the probe's documented codes).
            return ExitCode::from(if err.use_stderr() {
                exit_code::USAGE
            } else {
                exit_code::OK
            });
        }
    };
    let result = match cli.command {
        Command::Trace(args) => trace_command::run(&args),
        Command::Watch(args) => watch_command::run(&args),
        Command::Stacks(args) => stacks_command::run(&args),
        Command::Evict(args) => evict_command::run(&args),
        Command::Print(args) => inspect_command::print(&args),
        Command::Type(args) => inspect_command::type_of(&args),
        Command::Shell(args) => shell_command::run(&args),
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
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`dump --json | head`) is not an error of ours.
        Err(err) if is_broken_pipe(&err) => ExitCode::from(exit_code::OK),
        Err(err) => {
            // The whole cause chain on one line; a backtrace helps no user of a probe.
            eprintln!("latch-probe: {err:#}");
            let probe_error = err.chain().find_map(|e| e.downcast_ref::<ProbeError>());
            ExitCode::from(probe_error.map_or(exit_code::USAGE, ProbeError::exit_code))
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
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
