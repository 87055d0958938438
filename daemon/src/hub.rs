//! Hands the lock-event records to the admin API's `events` readers without ever making
//! the lock table's owner wait: each reader has a bounded queue, and a reader that lets it
//! fill up is dropped (and told how many events it missed).

#![forbid(unsafe_code)]

use latch_probe_common::doc::EventDoc;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// How many events a reader may be behind before it is dropped.
pub const READER_QUEUE: usize = 65_536;

/// One `events` reader's queue, filled by the server thread, drained by the admin thread.
#[derive(Default)]
pub struct Reader {
    inner: Mutex<ReaderQueue>,
}

#[derive(Default)]
pub struct ReaderQueue {
    pub lines: VecDeque<Arc<str>>,
    /// Set once the queue overflowed; from then on events are only counted.
    pub dropped: bool,
    pub missed: u64,
}

impl Reader {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ReaderQueue> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
pub struct Hub {
    readers: Mutex<Vec<Arc<Reader>>>,
    count: AtomicUsize,
    /// Called after new events were queued (wakes the admin thread).
    notify: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Hub {
    pub fn set_notify(&self, f: Box<dyn Fn() + Send + Sync>) {
        // Set once at start-up; a second call is a programming error we can ignore safely.
        let _ = self.notify.set(f);
    }

    /// Whether anybody listens (so the server can skip building events at all).
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    pub fn subscribe(&self) -> Arc<Reader> {
        let reader = Arc::new(Reader::default());
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        readers.push(reader.clone());
        self.count.store(readers.len(), Ordering::Relaxed);
        reader
    }

    pub fn unsubscribe(&self, reader: &Arc<Reader>) {
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        readers.retain(|r| !Arc::ptr_eq(r, reader));
        self.count.store(readers.len(), Ordering::Relaxed);
    }

    /// Queues `events` for every reader; never blocks on a reader.
    pub fn publish(&self, events: &[EventDoc]) {
        if events.is_empty() {
            return;
        }
        let lines: Vec<Arc<str>> = events
            .iter()
            .filter_map(|e| serde_json::to_string(e).ok())
            .map(Arc::from)
            .collect();
        let readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        for reader in readers.iter() {
            let mut q = reader.lock();
            if q.dropped || q.lines.len() + lines.len() > READER_QUEUE {
                q.dropped = true;
                q.missed += lines.len() as u64;
            } else {
                q.lines.extend(lines.iter().cloned());
            }
        }
        drop(readers);
        if let Some(notify) = self.notify.get() {
            notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latch_probe_common::{EntryState, EventKind};

    fn event() -> EventDoc {
        EventDoc {
            locker: Some(3),
            resource_name: "foo".into(),
            conn: Some(2),
            peer_name: Some("localhost/".into()),
            peer_pid: Some(7),
            peer_uid: Some(0),
            fd: Some(5),
            since_ns: Some(1),
            ..EventDoc::new(1, EventKind::Grant, EntryState::None, EntryState::Holding)
        }
    }

    #[test]
    fn a_full_reader_is_dropped_and_counts_what_it_missed() {
        let hub = Hub::default();
        assert!(!hub.active());
        let reader = hub.subscribe();
        assert!(hub.active());
        let batch = vec![event(); 1000];
        for _ in 0..(READER_QUEUE / 1000) {
            hub.publish(&batch);
        }
        assert!(!reader.lock().dropped);
        hub.publish(&batch);
        hub.publish(&batch);
        let q = reader.lock();
        assert!(q.dropped);
        assert_eq!(q.missed, 2000);
        drop(q);
        hub.unsubscribe(&reader);
        assert!(!hub.active());
    }
}
