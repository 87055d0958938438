//! The signals the flom client can be told to ignore while its command runs
//! (`--ignore-signal`, `[Monitor] IgnoredSignals`, `--signal-list`): flom's table of names
//! for 1..=31, its reading of a list, and the ignoring itself.
//!
//! Knows signals only; which ones to ignore is the configuration's, when the client's.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// flom's `SIGNAL_STRING_ARRAY`: the name of signal `n` at `n - 1`.
const NAMES: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The name of signal `n`, if flom's table has one.
fn name(n: i32) -> Option<&'static str> {
    usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| NAMES.get(i).copied())
}

/// flom's reading of one item: a number as `strtol` reads it (leading digits), else an
/// exact name; `None` when it is neither (flom ignores such items silently).
fn parse_one(item: &str) -> Option<i32> {
    let text = item.trim_start();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let leading: String = digits.chars().take_while(char::is_ascii_digit).collect();
    let number = leading.parse::<i32>().map(|n| sign * n).unwrap_or(0);
    if name(number).is_some() {
        return Some(number);
    }
    NAMES
        .iter()
        .position(|n| *n == item)
        .and_then(|i| i32::try_from(i + 1).ok())
}

/// The set of signal numbers a list names, ascending and without repeats.
pub(crate) fn parse_set<S: AsRef<str>>(items: &[S]) -> Vec<i32> {
    let mut set: Vec<i32> = items.iter().filter_map(|i| parse_one(i.as_ref())).collect();
    set.sort_unstable();
    set.dedup();
    set
}

/// The names of a set, in order (for `-V`).
pub(crate) fn names(set: &[i32]) -> Vec<&'static str> {
    set.iter().filter_map(|&n| name(n)).collect()
}

/// `--signal-list`: flom's table, four to a line, tab-separated.
pub(crate) fn list_text() -> String {
    let mut out = String::new();
    for (i, n) in NAMES.iter().enumerate() {
        out.push_str(&format!("{}) {n}\t", i + 1));
        if (i + 1) % 4 == 0 {
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

/// Signals ignored by this process until dropped (the previous actions are put back).
pub(crate) struct Ignored {
    previous: Vec<(Signal, SigAction)>,
}

/// Ignores `set` in this process, as flom's client does while its command runs (the
/// command was started before and keeps the default actions). A signal that cannot be
/// ignored (SIGKILL, SIGSTOP) gets flom's warning.
pub(crate) fn ignore(set: &[i32]) -> Ignored {
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    let mut previous = Vec::new();
    for &n in set {
        let shown = name(n).unwrap_or("?");
        // SAFETY: SIG_IGN installs no handler code, so nothing can run in signal context.
        match Signal::try_from(n).map(|sig| (sig, unsafe { sigaction(sig, &ignore) })) {
            Ok((sig, Ok(old))) => previous.push((sig, old)),
            _ => eprintln!("Warning: couldn't ignore signal {n}:{shown}"),
        }
    }
    Ignored { previous }
}

impl Drop for Ignored {
    fn drop(&mut self) {
        for (sig, old) in self.previous.drain(..) {
            // SAFETY: puts back the action this process had before `ignore`.
            if unsafe { sigaction(sig, &old) }.is_err() {
                eprintln!(
                    "Warning: couldn't restore default behavior for {}:{}",
                    sig as i32,
                    sig.as_str()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_as_flom_reads_them() {
        assert_eq!(
            parse_set(&["SIGTERM", "2", "15", "x", "0", "32", "sigint", "10abc", "-3"]),
            [2, 10, 15]
        );
        assert_eq!(names(&[1, 31]), ["SIGHUP", "SIGSYS"]);
    }

    #[test]
    fn list_is_four_to_a_line() {
        let text = list_text();
        assert!(text.starts_with("1) SIGHUP\t2) SIGINT\t3) SIGQUIT\t4) SIGILL\t\n5) SIGTRAP"));
        assert!(text.ends_with("31) SIGSYS\t\n"));
    }
}
