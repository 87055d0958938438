//! `-m/--mount-point-vfs DIR` (flom's `[Daemon] MountPointVFS`): FLoM's virtual file system
//! for a latch daemon, served from outside by `latch-probe mount --live --pid <daemon> DIR`,
//! a child of the daemon that is stopped when the daemon exits and that gets SIGTERM
//! (`PR_SET_PDEATHSIG`) if the daemon dies without stopping it.
//!
//! Finds, starts and stops the probe; the daemon knows nothing of what it reads, and the
//! tree is the probe's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The probe's executable name.
const PROBE: &str = "latch-probe";
/// How long the probe may take to unmount and exit after SIGTERM before it is killed.
const STOP_PATIENCE: Duration = Duration::from_secs(10);

/// Why the VFS cannot be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VfsError {
    #[error("-m needs {PROBE}, found neither next to {} nor on PATH; install it beside latch (cargo build -p latch-probe, or the latch-probe package) or leave out -m", exe.display())]
    NoProbe { exe: PathBuf },
    #[error("-m {}: not a directory; create it, or give an existing one", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("cannot start {} for -m {}: {source}", probe.display(), dir.display())]
    Start {
        probe: PathBuf,
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Whether `-m dir` can be served: a directory, and a probe to serve it (see [`find_probe`]).
pub(crate) fn check(dir: &Path) -> Result<(), VfsError> {
    if !dir.is_dir() {
        return Err(VfsError::NotADirectory {
            dir: dir.to_owned(),
        });
    }
    find_probe().map(drop)
}

/// `latch-probe` next to the running `latch`, else the first on PATH.
pub(crate) fn find_probe() -> Result<PathBuf, VfsError> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("latch"));
    let beside = exe.parent().map(|dir| dir.join(PROBE));
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(PROBE));
    beside
        .into_iter()
        .chain(on_path)
        .find(|candidate| is_executable(candidate))
        .ok_or(VfsError::NoProbe { exe })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The running probe serving this daemon's tree; [`Vfs::stop`] unmounts it.
pub(crate) struct Vfs {
    child: Child,
}

impl Vfs {
    /// Starts `latch-probe mount --live --pid <this process> DIR` (DIR made absolute: a
    /// client-started daemon runs in /).
    pub(crate) fn start(dir: &Path) -> Result<Vfs, VfsError> {
        let dir = &std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let probe = find_probe()?;
        let daemon = std::process::id();
        let mut cmd = Command::new(&probe);
        cmd.arg("mount")
            .arg("--live")
            .arg("--pid")
            .arg(daemon.to_string())
            .arg(OsString::from(dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: between fork and exec the closure makes two system calls (prctl,
        // getppid) and allocates nothing.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                // A daemon killed by SIGKILL cannot stop its probe: the kernel does, with
                // the SIGTERM that makes the probe unmount.
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
                // Dead already, before the line above: no parent to serve.
                if nix::unistd::getppid().as_raw() as u32 != daemon {
                    return Err(std::io::Error::other("the daemon is gone"));
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| VfsError::Start {
            probe: probe.clone(),
            dir: dir.to_owned(),
            source,
        })?;
        tracing::info!(
            "serving the VFS on {} by {} (pid {})",
            dir.display(),
            probe.display(),
            child.id()
        );
        Ok(Vfs { child })
    }

    /// SIGTERM (the probe unmounts and exits), then SIGKILL if it takes too long.
    pub(crate) fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + STOP_PATIENCE;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Ok(Some(status)) => {
                    tracing::info!("the VFS probe exited: {status}");
                    return;
                }
                Err(_) => return,
            }
        }
        tracing::warn!(
            "the VFS probe (pid {pid}) did not exit within {STOP_PATIENCE:?} of SIGTERM; killed"
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
