//! A running daemon's latest state kept by a thread of its own: a [`Follower`] (one snapshot,
//! then the eBPF events merged into it), its state published whenever the event stream
//! pauses, so a busy daemon is not copied once an event. For a reader that wants the state
//! now and then (`mount --live`) rather than every event.
//!
//! It never stops the daemon beyond what the follower does, and prints nothing: what
//! happens after the first snapshot is handed to the caller's `note`, and after a failure
//! the last state stays published. Dropping the feed ends the thread, which detaches the
//! uprobes.

use super::{Followed, Follower, TraceError};
use crate::capture::Capture;
use crate::model::CaptureOptions;
use crate::target::LiveDaemon;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the thread waits for events before it looks at its stop flag.
const TICK: Duration = Duration::from_millis(100);

/// What the feed's thread met after its first snapshot.
#[derive(Debug)]
pub enum FeedNote {
    /// Events were lost, or one did not decode or fit: a new snapshot was taken.
    Resnapshot(Followed),
    /// Following failed; the thread ended and the last state stays published.
    Stopped(TraceError),
}

/// The latest published capture, shared with the feed's thread.
#[derive(Clone, Default)]
pub struct Latest(Arc<Mutex<Option<Capture>>>);

impl Latest {
    /// The capture last published (`None` before the first).
    pub fn get(&self) -> Option<Capture> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn publish(&self, follower: &Follower) {
        let mut capture = follower.snapshot().clone();
        capture.state = follower.state().clone();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(capture);
    }
}

pub struct Feed {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    latest: Latest,
}

impl Feed {
    /// Follows `daemon` on a thread of its own; returns once the first snapshot is
    /// published (or following could not start), with that snapshot.
    pub fn start(
        daemon: LiveDaemon,
        options: CaptureOptions,
        note: impl Fn(FeedNote) + Send + 'static,
    ) -> Result<(Feed, Capture), TraceError> {
        let (started_tx, started_rx) = mpsc::sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let latest = Latest::default();
        let shared = latest.clone();
        let thread = std::thread::spawn(move || {
            let mut follower = match Follower::start(daemon, options) {
                Ok(follower) => follower,
                Err(error) => {
                    let _ = started_tx.send(Err(error));
                    return;
                }
            };
            shared.publish(&follower);
            let _ = started_tx.send(Ok(()));
            let mut dirty = false;
            while !stopped.load(Ordering::Relaxed) {
                match follower.next(TICK, None) {
                    Ok(None) if dirty => {
                        shared.publish(&follower);
                        dirty = false;
                    }
                    Ok(None) => {}
                    Ok(Some(Followed::Event(..))) => dirty = true,
                    Ok(Some(other)) => {
                        note(FeedNote::Resnapshot(other));
                        dirty = true;
                    }
                    Err(error) => {
                        note(FeedNote::Stopped(error));
                        return;
                    }
                }
            }
        });
        let feed = Feed {
            stop,
            thread: Some(thread),
            latest,
        };
        started_rx.recv().map_err(|_| TraceError::FeedEnded)??;
        let first = feed.latest.get().ok_or(TraceError::FeedEnded)?;
        Ok((feed, first))
    }

    /// The published capture, to read whenever wanted (also after the feed is dropped).
    pub fn latest(&self) -> Latest {
        self.latest.clone()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
