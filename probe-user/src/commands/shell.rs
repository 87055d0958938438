//! `latch-probe shell`: an interactive prompt over a live process or a core file (history,
//! tab-completion of statics and fields), or a script of the same commands (`--script FILE`,
//! or standard input when it is not a terminal) that stops at the first error with a
//! non-zero exit.

use super::inspect::ShowArgs;
use super::target_args::{Target, TargetArgs};
use anyhow::{anyhow, bail, Context, Result};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser};
use dwarfpeek::inspect::expr::Expr;
use dwarfpeek::inspect::Inspected;
use latch_probe::capture::Capture;
use latch_probe::error::exit_code;
use latch_probe::model::{self, CaptureOptions};
use latch_probe::render::tree::write_tree;
use latch_probe::target::{self, LiveDaemon};
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
pub(super) struct ShellArgs {
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
        Ok(super::inspect::open(self.target)?)
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
            Target::Live(pid) => target::capture_once(pid, CaptureOptions::default())?,
            Target::Core { core, exe } => model::capture_core(core, exe)?,
        })
    }

    /// Runs one command line; its output, or `None` to end the shell.
    fn run(&mut self, line: &str) -> Result<Option<String>> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(Some(String::new()));
        }
        Ok(Some(match parse(line)? {
            Line::Quit => return Ok(None),
            Line::Help => HELP.to_owned(),
            Line::Print { expr, show } => {
                let expr = Expr::parse(&expr.join(" "))?;
                self.with(|i| show.show(i, &expr))?
            }
            Line::Type { expr } => {
                let expr = Expr::parse(&expr.join(" "))?;
                self.with(|i| Ok(i.type_layout(&expr)?))?
                    .trim_end()
                    .to_owned()
            }
            Line::Ls { prefix } => {
                let prefix = prefix.unwrap_or_default();
                self.with(|i| Ok(i.statics()?))?
                    .into_iter()
                    .filter(|p| {
                        p.starts_with(&prefix)
                            || p.rsplit("::")
                                .next()
                                .is_some_and(|n| n.starts_with(&prefix))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            Line::State => {
                let capture = self.capture()?;
                capture.state.entries_text().trim_end().to_owned()
            }
            Line::Stacks => {
                let threads = match self.target.target() {
                    Target::Live(pid) => LiveDaemon::open(pid)?.stacks()?,
                    Target::Core { core, exe } => target::core_stacks(core, exe)?,
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
            Line::Tree { dir } => {
                if dir.is_empty() {
                    bail!("tree needs a directory: tree DIR");
                }
                let dir = dir.join(" ");
                write_tree(&self.capture()?, Path::new(&dir))
                    .with_context(|| format!("writing the tree under {dir}"))?;
                format!("wrote {dir}")
            }
            Line::Freeze => {
                self.held = Some(self.inspected()?);
                "holding one snapshot; `thaw` lets it go".to_owned()
            }
            Line::Thaw => {
                self.held = None;
                "reading afresh for each command".to_owned()
            }
        }))
    }
}

/// One line of the shell, parsed by clap as the commands are; `print` takes the `print`
/// command's own options.
#[derive(Parser, Debug)]
#[command(
    no_binary_name = true,
    disable_help_subcommand = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
enum Line {
    Print {
        /// The expression (its words are joined with spaces: `S.shape as Rect`).
        #[arg(required = true, num_args = 1..)]
        expr: Vec<String>,
        #[command(flatten)]
        show: ShowArgs,
    },
    Type {
        #[arg(required = true, num_args = 1..)]
        expr: Vec<String>,
    },
    Ls {
        prefix: Option<String>,
    },
    State,
    Stacks,
    Tree {
        dir: Vec<String>,
    },
    Freeze,
    Thaw,
    Help,
    #[command(alias = "exit")]
    Quit,
}

/// `line` as a [`Line`]; clap's complaint, on one line, if it is none.
fn parse(line: &str) -> Result<Line> {
    Line::try_parse_from(words(line)).map_err(|error| {
        let command = line.split_whitespace().next().unwrap_or_default();
        match error.kind() {
            ErrorKind::InvalidSubcommand | ErrorKind::UnknownArgument
                if !Line::command().get_subcommands().any(|c| {
                    c.get_name() == command || c.get_all_aliases().any(|a| a == command)
                }) =>
            {
                anyhow!("unknown command `{command}`; `help` lists them")
            }
            _ => {
                let text = error.to_string();
                let first = text.lines().next().unwrap_or_default();
                anyhow!("{}", first.strip_prefix("error: ").unwrap_or(first))
            }
        }
    })
}

/// The words of a line: split at whitespace, except inside double quotes (a map key may
/// hold spaces), which are kept as typed.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in line.chars() {
        if c.is_whitespace() && !quoted {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        word.push(c);
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ => {}
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

pub(super) fn run(args: &ShellArgs) -> Result<u8> {
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
            return Ok((
                0,
                Line::command()
                    .get_subcommands()
                    .map(|c| c.get_name())
                    .filter(|c| c.starts_with(word))
                    .map(str::to_owned)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_at_spaces_outside_quotes() {
        assert_eq!(words("  print  A.b   --json "), ["print", "A.b", "--json"]);
        assert_eq!(
            words(r#"print M["a  b"].c as Rect"#),
            ["print", r#"M["a  b"].c"#, "as", "Rect"]
        );
        assert_eq!(
            words(r#"print M["say \" x"]"#),
            ["print", r#"M["say \" x"]"#]
        );
    }

    #[test]
    fn lines_parse_with_the_commands_options() {
        let Ok(Line::Print { expr, show }) = parse("print S.shape as Rect --json --depth 3") else {
            panic!("not a print");
        };
        assert_eq!(expr, ["S.shape", "as", "Rect"]);
        assert!(show.json);
        assert_eq!(show.depth, 3);
        assert!(matches!(parse("exit"), Ok(Line::Quit)));
        let error = parse("frobnicate now").unwrap_err().to_string();
        assert_eq!(error, "unknown command `frobnicate`; `help` lists them");
        assert!(parse("print").is_err());
    }
}
