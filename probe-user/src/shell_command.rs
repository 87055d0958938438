//! `latch-probe shell`: an interactive prompt over a live process or a core file (history,
//! tab-completion of statics and fields), or a script of the same commands (`--script FILE`,
//! or standard input when it is not a terminal) that stops at the first error with a
//! non-zero exit.

use crate::target::{Target, TargetArgs};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use latch_probe::capture::Capture;
use latch_probe::inspect::expr::Expr;
use latch_probe::inspect::show::{self, Shown};
use latch_probe::inspect::Inspected;
use latch_probe::model::{self, exit_code, CaptureOptions, DaemonImage};
use latch_probe::render::tree::write_tree;
use latch_probe::stacks;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::{Context as LineContext, Editor, Helper, Highlighter, Hinter, Validator};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

const HELP: &str = "\
commands:
  print EXPR [--json]   a static (or part of one) by path: LOCK_TABLE.lockers[3].waitings
  type EXPR             the layout DWARF gives its type
  ls [PREFIX]           statics whose path starts with (or whose name starts with) PREFIX
  state                 the latch daemon's lock state (as latch-probe dump)
  stacks                every thread's backtrace (as latch-probe stacks)
  tree DIR              the state as files in FLoM's VFS layout
  freeze / thaw         hold one snapshot across commands / read afresh for each
  help, quit
EXPR: a static's path (a unique suffix will do), then .field, .0, [i], [a..b], [\"key\"],
.len(), .Some.0 or `as Variant`. Tab completes statics and fields.";

#[derive(Args)]
#[command(
    about = "An interactive (or scripted) shell over a live process or a core file",
    after_help = HELP
)]
pub struct ShellArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Run the commands of FILE (one a line; `#` starts a comment) and exit: 0 if all
    /// succeeded, 1 at the first that failed. Standard input is read the same way when it
    /// is not a terminal.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
}

/// What the shell looks at, and the snapshot held by `freeze`.
struct Session<'a> {
    target: &'a TargetArgs,
    held: Option<Inspected>,
}

impl Session<'_> {
    fn inspected(&self) -> Result<Inspected> {
        Ok(match self.target.target() {
            Target::Live(pid) => Inspected::live(pid)?,
            Target::Core { core, exe } => Inspected::core(core, exe)?,
        })
    }

    /// The held snapshot, or a fresh one.
    fn with<T>(&self, f: impl FnOnce(&Inspected) -> Result<T>) -> Result<T> {
        match &self.held {
            Some(held) => f(held),
            None => f(&self.inspected()?),
        }
    }

    fn capture(&self) -> Result<Capture> {
        Ok(match self.target.target() {
            Target::Live(pid) => model::capture_live(pid, CaptureOptions::default())?,
            Target::Core { core, exe } => model::capture_core(core, exe)?,
        })
    }

    /// Runs one command line; its output.
    fn run(&mut self, line: &str) -> Result<Option<String>> {
        let line = line.trim();
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let shown = Shown {
            depth: 12,
            limit: 100,
            addresses: false,
        };
        Ok(Some(match command {
            "" => return Ok(Some(String::new())),
            c if c.starts_with('#') => return Ok(Some(String::new())),
            "quit" | "exit" => return Ok(None),
            "help" => HELP.to_owned(),
            "print" => {
                let (expr, json) = match rest.strip_suffix("--json") {
                    Some(expr) => (expr.trim(), true),
                    None => (rest, false),
                };
                let expr = Expr::parse(expr)?;
                let value = self.with(|i| Ok(i.value(&expr, shown.limit as u64 + 1)?))?;
                if json {
                    serde_json::to_string_pretty(&show::json(&value, shown))?
                } else {
                    show::text(&value, shown)
                }
            }
            "type" => {
                let expr = Expr::parse(rest)?;
                self.with(|i| Ok(i.type_layout(&expr)?))?
                    .trim_end()
                    .to_owned()
            }
            "ls" => self
                .with(|i| Ok(i.statics()?))?
                .into_iter()
                .filter(|p| {
                    p.starts_with(rest)
                        || p.rsplit("::").next().is_some_and(|n| n.starts_with(rest))
                })
                .collect::<Vec<_>>()
                .join("\n"),
            "state" => {
                let capture = self.capture()?;
                capture.state.entries_text().trim_end().to_owned()
            }
            "stacks" => {
                let threads = match self.target.target() {
                    Target::Live(pid) => stacks::live(
                        &DaemonImage::open(Path::new(&format!("/proc/{pid}/exe")))?,
                        pid,
                    )?,
                    Target::Core { core, exe } => stacks::core(&DaemonImage::open(exe)?, core)?,
                };
                threads
                    .iter()
                    .map(|t| {
                        let top: Vec<&str> = t
                            .frames
                            .iter()
                            .filter_map(|f| f.function.as_deref())
                            .take(8)
                            .collect();
                        format!(
                            "thread {} {} ({}): {}",
                            t.tid,
                            t.name,
                            t.state,
                            top.join(" <- ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            "tree" => {
                if rest.is_empty() {
                    bail!("tree needs a directory: tree DIR");
                }
                write_tree(&self.capture()?, Path::new(rest))
                    .with_context(|| format!("writing the tree under {rest}"))?;
                format!("wrote {rest}")
            }
            "freeze" => {
                self.held = Some(self.inspected()?);
                "holding one snapshot; `thaw` lets it go".to_owned()
            }
            "thaw" => {
                self.held = None;
                "reading afresh for each command".to_owned()
            }
            other => bail!("unknown command `{other}`; `help` lists them"),
        }))
    }
}

pub fn run(args: &ShellArgs) -> Result<u8> {
    let mut session = Session {
        target: &args.target,
        held: None,
    };
    let script: Option<Box<dyn BufRead>> = match &args.script {
        Some(path) => Some(Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        ))),
        None if !std::io::stdin().is_terminal() => Some(Box::new(std::io::stdin().lock())),
        None => None,
    };
    match script {
        Some(lines) => scripted(&mut session, lines),
        None => interactive(&mut session),
    }
}

/// Each line in turn; the first failure ends the run with exit code 1.
fn scripted(session: &mut Session<'_>, lines: Box<dyn BufRead>) -> Result<u8> {
    for (n, line) in lines.lines().enumerate() {
        let line = line?;
        match session.run(&line) {
            Ok(Some(out)) if !out.is_empty() => println!("{out}"),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(error) => {
                eprintln!("latch-probe: line {}: `{}`: {error:#}", n + 1, line.trim());
                return Ok(exit_code::USAGE);
            }
        }
    }
    Ok(exit_code::OK)
}

#[derive(Helper, Hinter, Highlighter, Validator)]
struct Completion {
    /// Read once for completion: the target's statics and types do not change.
    inspected: Option<Inspected>,
}

impl Completer for Completion {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &LineContext<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before.rfind(' ').map_or(0, |i| i + 1);
        let word = &before[start..];
        if start == 0 {
            let commands = [
                "print", "type", "ls", "state", "stacks", "tree", "freeze", "thaw", "help", "quit",
            ];
            return Ok((
                0,
                commands
                    .iter()
                    .filter(|c| c.starts_with(word))
                    .map(|c| c.to_string())
                    .collect(),
            ));
        }
        let found = self
            .inspected
            .as_ref()
            .map(|i| i.complete(word))
            .unwrap_or_default();
        Ok((start, found))
    }
}

fn interactive(session: &mut Session<'_>) -> Result<u8> {
    let mut editor: Editor<Completion, _> =
        Editor::new().map_err(|e| anyhow!("cannot start the line editor: {e}"))?;
    editor.set_helper(Some(Completion {
        inspected: session.inspected().ok(),
    }));
    println!("latch-probe shell: `help` lists the commands, Tab completes, Ctrl-D quits");
    loop {
        match editor.readline("latch> ") {
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                match session.run(&line) {
                    Ok(Some(out)) if !out.is_empty() => println!("{out}"),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(error) => eprintln!("error: {error:#}"),
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(error) => bail!("reading a line: {error}"),
        }
    }
    Ok(exit_code::OK)
}
