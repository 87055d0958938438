//! A running daemon's state followed from outside: the uprobes attached first, then one
//! snapshot (frozen by default), then every event merged into it ([`LiveState`]); the daemon
//! is never stopped again unless the events stop describing it (a lost or misfit event),
//! when a new snapshot replaces the state.

use super::{EventError, Session, TraceError};
use crate::capture::Capture;
use crate::merge::{Applied, LiveState, Misfit};
use crate::model::CaptureOptions;
use crate::target::LiveDaemon;
use latch_probe_common::doc::{EventDoc, StateDoc};
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// Snapshots taken while a change is in progress are taken again this many times.
const SNAPSHOT_TRIES: u32 = 20;
/// Events between two looks at the kernel's lost-record counter while the stream is busy.
const LOST_CHECK_EVERY: u32 = 1024;

/// What one step of following brought.
#[derive(Debug)]
pub enum Followed {
    /// An event, and what it did to the state.
    Event(EventDoc, Applied),
    /// A record that could not be decoded; the state may be off, so it was taken anew.
    Undecodable(EventError),
    /// An event that does not fit the state; the state was taken anew.
    Misfit(Misfit),
    /// The kernel lost this many records; the state was taken anew.
    Lost(u64),
}

pub struct Follower {
    session: Session,
    options: CaptureOptions,
    first: Capture,
    live: LiveState,
    lost: u64,
    since_lost_check: u32,
}

impl Follower {
    /// Attaches to `daemon` and takes the first snapshot with `options`.
    pub fn start(daemon: LiveDaemon, options: CaptureOptions) -> Result<Follower, TraceError> {
        let session = Session::start(daemon)?;
        let first = snapshot(&session, options)?;
        Ok(Follower {
            live: LiveState::new(first.state.clone()),
            first,
            session,
            options,
            lost: 0,
            since_lost_check: 0,
        })
    }

    /// How many uprobes are attached.
    pub fn probes(&self) -> usize {
        self.session.probes()
    }

    /// The latest snapshot (the first one, or the one a loss made necessary).
    pub fn snapshot(&self) -> &Capture {
        &self.first
    }

    /// The state now.
    pub fn state(&self) -> &StateDoc {
        self.live.doc()
    }

    /// The next event merged into the state, waiting at most `timeout` (or until `wake`
    /// is readable); `None` when none came.
    pub fn next(
        &mut self,
        timeout: Duration,
        wake: Option<BorrowedFd<'_>>,
    ) -> Result<Option<Followed>, TraceError> {
        self.since_lost_check += 1;
        let next = self.session.next_event(timeout, wake)?;
        if next.is_none() || self.since_lost_check >= LOST_CHECK_EVERY {
            self.since_lost_check = 0;
            let lost = self.session.lost()?;
            if lost > self.lost {
                let new = lost - self.lost;
                self.lost = lost;
                self.resnapshot()?;
                return Ok(Some(Followed::Lost(new)));
            }
        }
        let followed = match next {
            None => return Ok(None),
            Some(Err(error)) => {
                self.resnapshot()?;
                Followed::Undecodable(error)
            }
            Some(Ok(event)) => match self.live.apply(&event) {
                Ok(applied) => Followed::Event(event, applied),
                Err(misfit) => {
                    self.resnapshot()?;
                    Followed::Misfit(misfit)
                }
            },
        };
        Ok(Some(followed))
    }

    fn resnapshot(&mut self) -> Result<(), TraceError> {
        self.first = snapshot(&self.session, self.options)?;
        self.live = LiveState::new(self.first.state.clone());
        Ok(())
    }
}

/// A snapshot that is not torn (a change in progress has no generation to meet the events
/// at), taken again while it is.
fn snapshot(session: &Session, options: CaptureOptions) -> Result<Capture, TraceError> {
    let mut tries = 0;
    loop {
        let capture = session.daemon().capture(options)?;
        tries += 1;
        if !capture.state.torn || tries >= SNAPSHOT_TRIES {
            return Ok(capture);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
