//! The latest view of the daemon and how it is replaced: one capture at a time (two would
//! both try to stop the daemon), whether the interval or a read of `.refresh` asks for it;
//! readers take the current view without waiting for a capture in progress.
//!
//! It calls the capture function it was given and nothing else: where captures come from
//! (a live pid, a core file) is the caller's business.

use super::view::View;
use crate::capture::Capture;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use thiserror::Error;

pub type CaptureError = Box<dyn std::error::Error + Send + Sync>;
/// Takes a new capture of the same daemon (or reads the same core file again).
pub type CaptureFn = Box<dyn FnMut() -> Result<Capture, CaptureError> + Send>;

#[derive(Debug, Error)]
pub(super) enum RefreshError {
    #[error("the mount is being taken down")]
    Closed,
    #[error(transparent)]
    Capture(CaptureError),
}

pub(super) struct Latest {
    current: RwLock<Arc<View>>,
    source: Mutex<Source>,
}

struct Source {
    capture: CaptureFn,
    closed: bool,
}

impl Latest {
    pub(super) fn new(first: &Capture, capture: CaptureFn) -> Latest {
        Latest {
            current: RwLock::new(Arc::new(View::new(first))),
            source: Mutex::new(Source {
                capture,
                closed: false,
            }),
        }
    }

    pub(super) fn view(&self) -> Arc<View> {
        // A panic elsewhere cannot leave a half-replaced Arc: the old view is still whole.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes a new capture and serves it from now on; on failure the last view stays.
    pub(super) fn refresh(&self) -> Result<Arc<View>, RefreshError> {
        let mut source = self.source.lock().unwrap_or_else(PoisonError::into_inner);
        if source.closed {
            return Err(RefreshError::Closed);
        }
        let capture = (source.capture)().map_err(RefreshError::Capture)?;
        let view = Arc::new(View::new(&capture));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&view);
        Ok(view)
    }

    /// Waits for a capture in progress to end and refuses any later one: once this returns,
    /// the daemon is not stopped by this mount, and will not be again.
    pub(super) fn close(&self) {
        self.source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
    }
}
