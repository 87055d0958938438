//! A mount's life: mount the tree read-only on a directory, refresh it on an interval, stop on
//! SIGINT, SIGTERM or SIGHUP (or when someone else unmounts it), and unmount on the way out,
//! lazily if the mount point is busy, so that no mount is left behind by any exit but a kill.
//!
//! It owns the calling thread until the mount ends and leaves SIGINT, SIGTERM and SIGHUP
//! blocked in it: serving a mount is the last thing a process does.

use super::fs::TreeFs;
use super::refresh::{CaptureFn, Latest, RefreshError};
use crate::capture::Capture;
use crate::stop::StopSignals;
use fuser::{BackgroundSession, Config, MountOption, SessionACL};
use nix::mount::{umount2, MntFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How often the loop looks whether the mount was taken down from outside.
const WATCH: Duration = Duration::from_millis(250);

#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Take a new capture this often; `None` serves the first one until asked (`.refresh`).
    pub interval: Option<Duration>,
    /// Let other users in (FUSE's `allow_other`; the modes still apply). Off by default.
    pub allow_other: bool,
}

#[derive(Debug, Error)]
pub enum MountError {
    #[error("cannot mount on {}: {source}", dir.display())]
    Mount { dir: PathBuf, source: io::Error },
    #[error("cannot unmount {}: {source}; `fusermount3 -u {}` unmounts it", dir.display(), dir.display())]
    Unmount { dir: PathBuf, source: io::Error },
    #[error("waiting for signals: {0}")]
    Wait(nix::Error),
}

/// Why a mount ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Signal(Signal),
    /// Someone else unmounted it (`fusermount3 -u`, `umount`).
    UnmountedOutside,
}

/// Serves `first`, then what `capture` returns at each refresh, on `dir` until one of
/// `signals` ends it; unmounts before returning, on errors too. The signals are taken over
/// by the caller before it starts any thread, so that every thread inherits their mask
/// (the mount's own threads start here).
pub fn serve(
    dir: &Path,
    first: &Capture,
    capture: CaptureFn,
    options: &MountOptions,
    signals: &StopSignals,
) -> Result<Ended, MountError> {
    let mount_error = |source| MountError::Mount {
        dir: dir.to_owned(),
        source,
    };
    // fuser mounts the canonical path; a lazy unmount must name the same one.
    let dir = dir.canonicalize().map_err(mount_error)?;
    let latest = Arc::new(Latest::new(first, capture));
    let session = fuser::spawn_mount(TreeFs::new(Arc::clone(&latest)), &dir, &config(options))
        .map_err(mount_error)?;
    let ended = watch(signals, &session, &latest, options.interval);
    // No capture may be stopping the daemon while, or after, the mount goes.
    latest.close();
    unmount(session, &dir)?;
    ended
}

fn config(options: &MountOptions) -> Config {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("latch-probe".into()),
        MountOption::Subtype("latch".into()),
        MountOption::RO,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoExec,
        // The kernel enforces the modes shown (0550/0440, the daemon's owner).
        MountOption::DefaultPermissions,
    ];
    config.acl = if options.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config
}

fn watch(
    signals: &StopSignals,
    session: &BackgroundSession,
    latest: &Latest,
    interval: Option<Duration>,
) -> Result<Ended, MountError> {
    let mut next = interval.map(|every| Instant::now() + every);
    // Said once per distinct failure: a dead daemon would otherwise fill the terminal.
    let mut last_failure: Option<String> = None;
    loop {
        let wait = next.map_or(WATCH, |at| {
            at.saturating_duration_since(Instant::now()).min(WATCH)
        });
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(MountError::Wait(e)),
        }
        if let Some(signal) = signals.received().map_err(MountError::Wait)? {
            return Ok(Ended::Signal(signal));
        }
        if session.guard.is_finished() {
            return Ok(Ended::UnmountedOutside);
        }
        if let (Some(at), Some(every)) = (next, interval) {
            if Instant::now() >= at {
                match latest.refresh() {
                    Ok(_) => last_failure = None,
                    Err(RefreshError::Closed) => {}
                    Err(RefreshError::Capture(error)) => {
                        let text = error.to_string();
                        if last_failure.as_ref() != Some(&text) {
                            eprintln!(
                                "latch-probe mount: refresh failed, still serving the last \
                                 capture: {text}"
                            );
                            last_failure = Some(text);
                        }
                    }
                }
                next = Some(Instant::now() + every);
            }
        }
    }
}

fn unmount(session: BackgroundSession, dir: &Path) -> Result<(), MountError> {
    match session.umount_and_join() {
        Ok(()) => Ok(()),
        // A shell inside the tree, or a file held open: detach it now, and the kernel drops
        // it when the last user leaves (FLoM's unmount just fails here).
        Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => umount2(dir, MntFlags::MNT_DETACH)
            .map_err(|errno| MountError::Unmount {
                dir: dir.to_owned(),
                source: errno.into(),
            }),
        Err(source) => Err(MountError::Unmount {
            dir: dir.to_owned(),
            source,
        }),
    }
}
