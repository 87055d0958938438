//! Live events from a running daemon through eBPF: uprobes on the contract's state-change
//! functions (`latch::change::*`) copy the structs and strings their arguments point to, and
//! user space turns each record into the same `latch.event/1` document the daemon's own
//! `events` stream prints.
//!
//! - [`plan`]: what the uprobes need, computed from the exact executable's DWARF (registers,
//!   struct sizes, where strings keep their pointer and length). No layout is written here.
//! - [`probes`]: loading the eBPF object with that plan, attaching it to the executable with
//!   the one process's hits kept, and handing out the raw records and the count of lost
//!   ones; dropping it detaches.
//! - [`layout`]: the decoder compiled from the plan: offsets, sizes and variant tests.
//! - [`event`]: a raw record decoded, at those offsets, into an [`EventRef`] (or an
//!   [`EventDoc`]).
//! - [`follow`]: one snapshot and the events after it, merged into a live state.
//! - [`feed`]: that live state kept on a thread of its own, the latest published.
//!
//! It never writes to the daemon and never stops it: a uprobe costs the daemon a trap per
//! call and nothing else.
//!
//! [`EventDoc`]: latch_probe_common::doc::EventDoc
//! [`EventRef`]: latch_probe_common::doc::EventRef

mod error;
pub mod event;
pub mod feed;
pub mod follow;
mod layout;
pub mod plan;
pub mod probes;

pub use error::TraceError;
pub use event::{EventDecoder, EventError};
pub use feed::{Feed, FeedNote, Latest};
pub use follow::{Followed, Follower};
pub use plan::TracePlan;
pub use probes::Tracer;

use crate::target::LiveDaemon;
use latch_probe_common::doc::{EventDoc, EventRef};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

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

    /// Hands the events already recorded to `each`, decoded (an [`EventError`] for a
    /// record that could not be, and the trace goes on), at most `max` of them; how many.
    pub fn drain<E: From<TraceError>>(
        &mut self,
        max: usize,
        mut each: impl FnMut(Result<EventRef<'_>, EventError>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let decoder = EventDecoder::new(&self.plan, self.realtime_offset_ns);
        self.tracer.drain(max, |raw| each(decoder.decode(raw)))
    }

    /// Waits a little for events ([`Tracer::wait`]): at most `timeout`; whether `wake` is
    /// readable.
    pub fn wait(
        &self,
        timeout: Duration,
        wake: Option<BorrowedFd<'_>>,
    ) -> Result<bool, TraceError> {
        self.tracer.wait(timeout, wake)
    }

    /// The next event, owned, waiting at most `timeout`: `None` when none came in time, an
    /// [`EventError`] for a record that could not be decoded (the trace goes on). `wake`
    /// ends the wait early.
    pub fn next_event(
        &mut self,
        timeout: Duration,
        wake: Option<BorrowedFd<'_>>,
    ) -> Result<Option<Result<EventDoc, EventError>>, TraceError> {
        let deadline = Instant::now() + timeout;
        loop {
            let next = self.take_one()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if next.is_some() || left.is_zero() {
                return Ok(next);
            }
            if self.wait(left, wake)? {
                // One last look, so a record that came with the wake-up is not left behind.
                return self.take_one();
            }
        }
    }

    fn take_one(&mut self) -> Result<Option<Result<EventDoc, EventError>>, TraceError> {
        let mut next = None;
        self.drain(1, |event| {
            next = Some(event.map(|e| e.to_doc()));
            Ok::<_, TraceError>(())
        })?;
        Ok(next)
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
