//! What an analysis reads, gathered from where it is: a running daemon (its state, the
//! client processes from `/proc`, and whether the lock table's owner lets go), a core file
//! (the state and the stacks it froze), or files saved earlier (a state, a process table,
//! thread stacks), and saved again for a later look.
//!
//! Gathering only: the verdict is [`crate::analysis`]'s. The daemon is frozen only for the
//! copies, as by `dump` and `stacks`.

use crate::analysis::parties::peer_pids;
use crate::analysis::{Input, ProcessTable};
use crate::error::ProbeError;
use crate::model::{self, CaptureOptions};
use crate::stacks::{self, table_holder, WEDGE_LOOK};
use crate::target::{self, LiveDaemon};
use dwarfpeek::stacks::ThreadStack;
use latch_probe_common::doc::StateDoc;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;
use thiserror::Error;

/// Where the evidence is.
#[derive(Clone, Debug)]
pub enum Origin {
    Live(u32),
    Core {
        core: PathBuf,
        exe: PathBuf,
        processes: Option<PathBuf>,
    },
    Saved {
        state: PathBuf,
        processes: Option<PathBuf>,
        /// Thread stacks in the order they were taken.
        stacks: Vec<PathBuf>,
    },
}

/// Everything an analysis needs but its bounds.
#[derive(Debug)]
pub struct Evidence {
    pub state: StateDoc,
    pub processes: ProcessTable,
    /// The looks at the daemon's threads that decided `wedged` (none from saved files
    /// without stacks).
    pub stacks: Vec<Vec<ThreadStack>>,
    /// When the state was taken: what durations are measured to.
    pub taken_ns: u64,
    /// Why the daemon counts as wedged, if it does.
    pub wedged: Option<String>,
    /// What could not be decoded, one line each (a partial state).
    pub problems: Vec<String>,
}

#[derive(Debug, Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not a {what} document: {error}", path.display())]
    Parse {
        path: PathBuf,
        what: &'static str,
        error: serde_json::Error,
    },
}

impl EvidenceError {
    /// The probe's documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            EvidenceError::Probe(e) => e.exit_code(),
            EvidenceError::Read { .. }
            | EvidenceError::Write { .. }
            | EvidenceError::Parse { .. } => crate::error::exit_code::USAGE,
        }
    }
}

impl Evidence {
    pub fn gather(origin: &Origin) -> Result<Evidence, EvidenceError> {
        match origin {
            Origin::Live(pid) => {
                let daemon = LiveDaemon::open(*pid)?;
                let capture = daemon.capture(CaptureOptions::default())?;
                let processes = ProcessTable::read_live(peer_pids(&capture.state));
                // Two looks apart: an owner seen in both has not let go.
                let first = daemon.stacks()?;
                let stacks = if table_holder(&first).is_some() {
                    std::thread::sleep(WEDGE_LOOK);
                    vec![first, daemon.stacks()?]
                } else {
                    vec![first]
                };
                let wedged = stacks::held_throughout(&stacks).map(|owner| {
                    format!(
                        "thread {owner} holds the lock table and has not let go for {WEDGE_LOOK:?}"
                    )
                });
                Ok(Evidence {
                    taken_ns: capture.daemon.snapshot_ns,
                    state: capture.state,
                    processes,
                    stacks,
                    wedged,
                    problems: capture.problems,
                })
            }
            Origin::Core {
                core,
                exe,
                processes,
            } => {
                let capture = model::capture_core(core, exe)?;
                let threads = target::core_stacks(core, exe)?;
                // A core is one moment: an owner in it never let go.
                let wedged = stacks::held_throughout(std::slice::from_ref(&threads)).map(|owner| {
                    format!("thread {owner} held the lock table when the core was taken")
                });
                Ok(Evidence {
                    taken_ns: modified_ns(core).unwrap_or(capture.daemon.snapshot_ns),
                    state: capture.state,
                    processes: load_processes(processes.as_deref())?,
                    stacks: vec![threads],
                    wedged,
                    problems: capture.problems,
                })
            }
            Origin::Saved {
                state,
                processes,
                stacks: stack_files,
            } => {
                let doc: StateDoc = load(state, "latch.state/1")?;
                let looks = stack_files
                    .iter()
                    .map(|f| load::<Vec<ThreadStack>>(f, "stacks --json"))
                    .collect::<Result<Vec<_>, _>>()?;
                let wedged = stacks::held_throughout(&looks).map(|owner| {
                    format!(
                        "thread {owner} holds the lock table in every one of {} saved looks",
                        looks.len()
                    )
                });
                Ok(Evidence {
                    taken_ns: modified_ns(state).unwrap_or_else(|| latest_since(&doc)),
                    state: doc,
                    processes: load_processes(processes.as_deref())?,
                    stacks: looks,
                    wedged,
                    problems: Vec::new(),
                })
            }
        }
    }

    /// The analysis's input, with the holding bound.
    pub fn input(&self, max_hold_ns: Option<u64>) -> Input<'_> {
        Input {
            state: &self.state,
            processes: &self.processes,
            now_ns: self.taken_ns,
            max_hold_ns,
            wedged: self.wedged.clone(),
        }
    }

    /// Writes `state.json`, `processes.json` and `stacks.json` (the last look) into `dir`:
    /// what `analyze --state --processes --stacks` reads back.
    pub fn save(&self, dir: &Path) -> Result<(), EvidenceError> {
        let write = |name: &str, json: Result<Vec<u8>, serde_json::Error>| {
            let path = dir.join(name);
            json.map_err(std::io::Error::other)
                .and_then(|bytes| std::fs::write(&path, bytes))
                .map_err(|error| EvidenceError::Write { path, error })
        };
        std::fs::create_dir_all(dir).map_err(|error| EvidenceError::Write {
            path: dir.to_owned(),
            error,
        })?;
        write("state.json", serde_json::to_vec(&self.state))?;
        write("processes.json", serde_json::to_vec(&self.processes))?;
        if let Some(last) = self.stacks.last() {
            write("stacks.json", serde_json::to_vec(last))?;
        }
        Ok(())
    }
}

fn load_processes(path: Option<&Path>) -> Result<ProcessTable, EvidenceError> {
    path.map_or_else(
        || Ok(ProcessTable::unknown()),
        |p| load(p, "latch.processes/1"),
    )
}

fn load<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, EvidenceError> {
    let bytes = std::fs::read(path).map_err(|error| EvidenceError::Read {
        path: path.to_owned(),
        error,
    })?;
    serde_json::from_slice(&bytes).map_err(|error| EvidenceError::Parse {
        path: path.to_owned(),
        what,
        error,
    })
}

/// The file's modification time: when a saved state (or a core) was written.
fn modified_ns(path: &Path) -> Option<u64> {
    let at = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_nanos() as u64)
}

/// The latest time the state itself tells: a lower bound of when it was taken.
fn latest_since(state: &StateDoc) -> u64 {
    state.requests().map(|r| r.since_ns).max().unwrap_or(0)
}
