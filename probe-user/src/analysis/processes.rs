//! The client processes behind a state's connections: pid, parent and command line, read
//! from `/proc` when the state is captured (`latch.processes/1`), so that an analysis can
//! name each party and join a `latch` client with the commands it runs.
//!
//! The reading is [`dwarfpeek::process`]'s; a process that exits while it is read is left
//! out. Nothing here knows about locks.

use dwarfpeek::process;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PROCESSES_SCHEMA: &str = "latch.processes/1";

/// How far up the process tree a party is looked for: deeper than any real nesting of
/// clients, and a bound on a garbage or looping parent chain.
const MAX_ANCESTRY: usize = 64;

/// The processes of a state's peers and their ancestors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessTable {
    pub schema: String,
    /// Read from `/proc` at the time of the state, every peer looked up: a peer missing
    /// here had exited. False when nothing is known (a core, a state without its table).
    pub complete: bool,
    pub processes: BTreeMap<u32, ProcessInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub ppid: u32,
    /// The arguments, lossily decoded; empty for a kernel thread or a zombie.
    pub cmdline: Vec<String>,
}

impl ProcessTable {
    /// Nothing known: every peer is a party of its own, none is called gone.
    pub fn unknown() -> ProcessTable {
        ProcessTable {
            schema: PROCESSES_SCHEMA.to_owned(),
            complete: false,
            processes: BTreeMap::new(),
        }
    }

    /// Reads `pids` and their ancestors from `/proc` now.
    pub fn read_live(pids: impl IntoIterator<Item = u32>) -> ProcessTable {
        let mut table = ProcessTable {
            complete: true,
            ..ProcessTable::unknown()
        };
        table.extend_live(pids);
        table
    }

    /// Reads from `/proc` those of `pids` and their ancestors the table does not know yet:
    /// a table kept across states (as `watch` keeps one) reads each process once.
    pub fn extend_live(&mut self, pids: impl IntoIterator<Item = u32>) {
        for pid in pids {
            let mut at = pid;
            for _ in 0..MAX_ANCESTRY {
                if at <= 1 || self.processes.contains_key(&at) {
                    break;
                }
                let Some(info) = read_process(at) else { break };
                let parent = info.ppid;
                self.processes.insert(at, info);
                at = parent;
            }
        }
    }

    /// Forgets every process that is neither one of `pids` nor an ancestor of one, so a
    /// kept table stays the size of the state and a reused pid is read anew.
    pub fn retain_ancestry_of(&mut self, pids: impl IntoIterator<Item = u32>) {
        let keep: std::collections::BTreeSet<u32> =
            pids.into_iter().flat_map(|p| self.ancestry(p)).collect();
        self.processes.retain(|pid, _| keep.contains(pid));
    }

    /// `pid`, its parent, its parent's parent… as far as the table knows, nearest first,
    /// `pid` included. Bounded, and stops at a loop.
    pub fn ancestry(&self, pid: u32) -> impl Iterator<Item = u32> + '_ {
        let mut next = Some(pid);
        let mut seen = Vec::new();
        std::iter::from_fn(move || {
            let at = next.take()?;
            if seen.len() >= MAX_ANCESTRY || seen.contains(&at) {
                return None;
            }
            seen.push(at);
            next = self.processes.get(&at).map(|p| p.ppid).filter(|&pp| pp > 1);
            Some(at)
        })
    }

    /// The process's command line as one line of text, if known.
    pub fn command(&self, pid: u32) -> Option<String> {
        let info = self.processes.get(&pid)?;
        (!info.cmdline.is_empty()).then(|| info.cmdline.join(" "))
    }

    /// Whether the table can tell that `pid` had exited.
    pub fn gone(&self, pid: u32) -> bool {
        self.complete && !self.processes.contains_key(&pid)
    }
}

fn read_process(pid: u32) -> Option<ProcessInfo> {
    Some(ProcessInfo {
        ppid: process::parent(pid)?,
        cmdline: process::arguments(pid).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_its_parents() {
        let me = std::process::id();
        let table = ProcessTable::read_live([me]);
        let info = &table.processes[&me];
        assert_eq!(info.ppid, std::os::unix::process::parent_id());
        assert!(!info.cmdline.is_empty());
        let up: Vec<u32> = table.ancestry(me).collect();
        assert_eq!(up[0], me);
        assert_eq!(up.get(1), Some(&info.ppid).filter(|&&p| p > 1));
        assert!(!table.gone(me));
        assert!(table.gone(u32::MAX));
        assert!(!ProcessTable::unknown().gone(u32::MAX));
    }

    #[test]
    fn a_kept_table_keeps_only_the_ancestry_of_the_peers() {
        let me = std::process::id();
        let parent = std::os::unix::process::parent_id();
        let mut table = ProcessTable::read_live([parent]);
        table.processes.insert(
            u32::MAX,
            ProcessInfo {
                ppid: 1,
                cmdline: vec![],
            },
        );
        table.extend_live([me]);
        assert!(table.processes.contains_key(&me) && table.processes.contains_key(&parent));
        table.retain_ancestry_of([me]);
        assert!(table.processes.contains_key(&parent), "an ancestor stays");
        assert!(!table.processes.contains_key(&u32::MAX), "the rest goes");
        table.retain_ancestry_of([]);
        assert!(table.processes.is_empty());
    }

    #[test]
    fn ancestry_stops_at_a_loop() {
        let mut table = ProcessTable::unknown();
        for (pid, ppid) in [(10, 11), (11, 12), (12, 10)] {
            table.processes.insert(
                pid,
                ProcessInfo {
                    ppid,
                    cmdline: vec![],
                },
            );
        }
        assert_eq!(table.ancestry(10).collect::<Vec<_>>(), [10, 11, 12]);
    }
}
