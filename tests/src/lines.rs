//! [`Lines`]: the lines a process or a socket writes, collected by a thread as they come,
//! for tests that read an event stream while it runs.
//!
//! It may not block the test on a writer that still runs: every wait for lines is bounded,
//! and [`Lines::finish`] is for a writer that has exited.

use crate::wait::wait_for;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The lines something writes, collected by a thread as they come.
pub struct Lines {
    lines: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Lines {
    pub fn collect(from: impl Read + Send + 'static) -> Lines {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let thread = thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        Lines {
            lines,
            thread: Some(thread),
        }
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Lines `from..from + count`, once there are that many (the test fails after `timeout`).
    pub fn take(&self, from: usize, count: usize, what: &str, timeout: Duration) -> Vec<String> {
        wait_for(what, timeout, || {
            let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            lines.get(from..from + count).map(<[String]>::to_vec)
        })
    }

    /// Waits for the writer to close its end, and gives every line.
    pub fn finish(mut self) -> Vec<String> {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.all()
    }
}
