//! Live events from a running daemon through eBPF: uprobes on the contract's state-change
//! functions (`latch::change::*`) copy the structs and strings their arguments point to, and
//! user space turns each record into the same `latch.event/1` document the daemon's own
//! `events` stream prints.
//!
//! - [`plan`]: what the uprobes need, computed from the exact executable's DWARF (registers,
//!   struct sizes, where strings keep their pointer and length). No layout is written here.
//! - [`probes`]: loading the eBPF object with that plan, attaching it for one process, and
//!   handing out the raw records and the count of lost ones; dropping it detaches.
//! - [`event`]: a raw record decoded, with the value reader, into an [`EventDoc`].
//! - [`follow`]: one snapshot and the events after it, merged into a live state.
//! - [`feed`]: that live state kept on a thread of its own, the latest published.
//!
//! It never writes to the daemon and never stops it: a uprobe costs the daemon a trap per
//! call and nothing else.
//!
//! [`EventDoc`]: latch_probe_common::doc::EventDoc

mod error;
pub mod event;
pub mod feed;
pub mod follow;
pub mod plan;
pub mod probes;

pub use error::TraceError;
pub use event::{EventDecoder, EventError};
pub use feed::{Feed, FeedNote, Latest};
pub use follow::{Followed, Follower};
pub use plan::TracePlan;
pub use probes::Tracer;

use crate::target::LiveDaemon;
use latch_probe_common::doc::EventDoc;
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// A running daemon being traced: the daemon, the plan read from it, the attached uprobes.
pub struct Session {
    // Field order is drop order: the uprobes go first.
    tracer: Tracer,
    plan: TracePlan,
    daemon: LiveDaemon,
    realtime_offset_ns: i128,
}

impl Session {
    /// Attaches the uprobes to `daemon`: to its process's own link to its executable, which
    /// is the very file it runs, even if replaced on disk since.
    pub fn start(daemon: LiveDaemon) -> Result<Session, TraceError> {
        let plan = TracePlan::from_image(daemon.image())?;
        let tracer = Tracer::attach(&plan, &daemon.proc_exe(), daemon.pid(), daemon.bias()?)?;
        Ok(Session {
            tracer,
            plan,
            daemon,
            realtime_offset_ns: event::realtime_offset_ns(),
        })
    }

    /// How many uprobes are attached.
    pub fn probes(&self) -> usize {
        self.plan.probes.len()
    }

    /// The daemon (to take snapshots of).
    pub fn daemon(&self) -> &LiveDaemon {
        &self.daemon
    }

    /// The next event, waiting at most `timeout`: `None` when none came in time, an
    /// [`EventError`] for a record that could not be decoded (the trace goes on). `wake`
    /// ends the wait early, as [`Tracer::next_record`] says.
    pub fn next_event(
        &mut self,
        timeout: Duration,
        wake: Option<BorrowedFd<'_>>,
    ) -> Result<Option<Result<EventDoc, EventError>>, TraceError> {
        let Some(raw) = self.tracer.next_record(timeout, wake)? else {
            return Ok(None);
        };
        let decoder = EventDecoder::new(
            self.daemon.image().index(),
            &self.plan,
            self.realtime_offset_ns,
        );
        Ok(Some(decoder.decode(&raw)))
    }

    /// Detaches the uprobes; the events already recorded can still be read with
    /// [`Session::next_event`] (with no wait) until it gives `None`.
    pub fn detach(&mut self) {
        self.tracer.detach();
    }

    /// Records lost so far because the ring buffer was full.
    pub fn lost(&self) -> Result<u64, TraceError> {
        self.tracer.lost()
    }
}
