//! [`SpawnedDaemons`]: the daemons a client started by itself (`latch daemon --spawned`,
//! detached, so no child of the test), found through /proc and ended by their pids.
//!
//! It may signal only processes running the workspace's `latch` with `daemon --spawned`
//! and this test's socket or port on their command line, never by name.

use crate::bins::{latch_bin, Profile};
use crate::procs::{become_subreaper, end_pid, reap, running};
use crate::timeouts::POLL;
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

/// How long a client-started daemon may take to show in /proc after its client returned.
const SHOW: Duration = Duration::from_secs(3);

/// The daemons auto-started for one socket or port: found by /proc (our latch executable,
/// argv with `daemon --spawned` and the key), remembered, and ended by pid on drop.
pub struct SpawnedDaemons {
    exe: PathBuf,
    key: OsString,
    seen: BTreeSet<i32>,
}

impl SpawnedDaemons {
    /// The daemons whose command line has `key` (a socket path, or a TCP port as text) as
    /// one argument. Makes the test process a child subreaper, so that they can be reaped.
    pub fn new(key: impl AsRef<OsStr>) -> SpawnedDaemons {
        become_subreaper();
        let exe = latch_bin(Profile::Debug)
            .canonicalize()
            .expect("the latch binary exists");
        SpawnedDaemons {
            exe,
            key: key.as_ref().to_owned(),
            seen: BTreeSet::new(),
        }
    }

    /// The running ones now.
    pub fn running(&mut self) -> Vec<i32> {
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if !running(pid) {
                continue;
            }
            let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
                continue;
            };
            let exe = exe.to_string_lossy();
            let ours = self.exe.to_string_lossy();
            if exe != ours && exe != format!("{ours} (deleted)") {
                continue;
            }
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let has = |a: &[u8]| args.contains(&a);
            if has(b"daemon") && has(b"--spawned") && has(self.key.as_encoded_bytes()) {
                found.push(pid);
            }
        }
        self.seen.extend(&found);
        found
    }

    /// Waits (bounded) until exactly one runs, and returns it.
    #[track_caller]
    pub fn the_one(&mut self) -> i32 {
        let deadline = Instant::now() + SHOW;
        loop {
            let now = self.running();
            if now.len() == 1 {
                return now[0];
            }
            assert!(
                Instant::now() < deadline,
                "expected exactly one auto-started daemon for {}, found {now:?}",
                self.key.to_string_lossy()
            );
            thread::sleep(POLL);
        }
    }
}

impl Drop for SpawnedDaemons {
    fn drop(&mut self) {
        // Only what still is one of our daemons gets a signal (a pid seen earlier may have
        // exited, and in theory been reused); the exited ones are reaped.
        for pid in self.running() {
            end_pid(pid);
        }
        for &pid in &self.seen {
            reap(pid);
        }
    }
}
