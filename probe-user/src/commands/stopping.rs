//! When a long-running command (trace, watch) ends: a stop signal, or the end of its
//! `--duration`. Shared by the commands so that each ends the same way.

use anyhow::{Context, Result};
use latch_probe::stop::StopSignals;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

pub(super) struct Stopping {
    signals: StopSignals,
    deadline: Option<Instant>,
}

impl Stopping {
    /// Takes over SIGINT, SIGTERM and SIGHUP; `duration` in seconds, as the user gave it.
    pub(super) fn new(duration: Option<f64>) -> Result<Stopping> {
        let duration = duration
            .map(Duration::try_from_secs_f64)
            .transpose()
            .context("--duration must be a non-negative number of seconds")?;
        let signals = StopSignals::take_over().context("taking over SIGINT and SIGTERM")?;
        Ok(Stopping {
            signals,
            deadline: duration.map(|d| Instant::now() + d),
        })
    }

    /// Why the command should end now, if it should.
    pub(super) fn why(&self) -> Result<Option<String>> {
        if let Some(signal) = self.signals.received()? {
            return Ok(Some(format!("on {}", signal.as_str())));
        }
        Ok(self
            .deadline
            .is_some_and(|d| Instant::now() >= d)
            .then(|| "at the end of --duration".to_owned()))
    }

    /// How long to wait for more work: at most `max`, and not past the deadline.
    pub(super) fn wait(&self, max: Duration) -> Duration {
        self.deadline
            .map_or(max, |d| d.saturating_duration_since(Instant::now()))
            .min(max)
    }

    /// Readable when a stop signal is pending: to end a wait early.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.signals.as_fd()
    }
}
