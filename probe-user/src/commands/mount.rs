//! `latch-probe mount`: the daemon's state as a read-only FUSE tree in FLoM's VFS layout,
//! live (`--pid`, refreshed on an interval and on demand) or from a core file (`--core
//! --exe`), until SIGINT, SIGTERM or SIGHUP, which unmount it.
//!
//! Arguments in, captures handed to the library's server: the tree and the mount are the
//! library's. The daemon's executable is indexed once, not at every refresh.

use super::target_args::{Target, TargetArgs};
use anyhow::{Context, Result};
use clap::Args;
use latch_probe::capture::Capture;
use latch_probe::error::{exit_code, ProbeError};
use latch_probe::model::{CaptureOptions, DaemonImage};
use latch_probe::render::fuse::{serve, CaptureFn, Ended, MountOptions, CONTROL_NAME};
use latch_probe::stop::StopSignals;
use latch_probe::target::LiveDaemon;
use latch_probe::trace::{Feed, FeedNote};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The refresh interval of a live mount unless `--interval` says otherwise.
const DEFAULT_INTERVAL_SECS: f64 = 2.0;

#[derive(Args)]
#[command(
    after_help = "Refresh: a live mount takes a new capture every --interval seconds, and \
                  whenever DIR/.refresh is read: `cat DIR/.refresh` returns once the tree \
                  shows the new capture, and prints its snapshot time. (.refresh is not \
                  listed, so find or cp -r over the tree do not refresh it.) If a capture \
                  fails (the daemon exited), the last one stays served.\n\n\
                  Stop: SIGINT (Ctrl-C), SIGTERM or SIGHUP unmount the tree and exit 0; \
                  a busy mount point is detached lazily."
)]
pub(super) struct MountArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The directory to mount the tree on.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Seconds between captures of a live daemon; 0 refreshes only on a read of .refresh.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_INTERVAL_SECS, conflicts_with = "core")]
    interval: f64,
    /// Let other users see the tree (FUSE's allow_other; the modes 0550/0440 and the
    /// daemon's ownership still apply).
    #[arg(long)]
    allow_other: bool,
    /// Read the daemon while it runs, retrying while its table changes, instead of
    /// stopping it for each copy.
    #[arg(long, conflicts_with = "core")]
    no_freeze: bool,
    /// Take one snapshot, then keep the tree current from eBPF events (no further stop of
    /// the daemon); --interval is then how often the tree shows the latest state.
    #[arg(long, conflicts_with = "core")]
    live: bool,
}

pub(super) fn run(args: &MountArgs) -> Result<u8> {
    // Before any thread starts (the live feed's, the mount's), so that all inherit the mask.
    let signals = StopSignals::take_over().context("taking over SIGINT and SIGTERM")?;
    let options = CaptureOptions {
        freeze: !args.no_freeze,
        ..CaptureOptions::default()
    };
    let mut feed = None;
    let (first, capture) = match args.target.target() {
        Target::Core { core, exe } => from_core(core, exe)?,
        Target::Live(pid) if args.live => {
            let (started, first) = Feed::start(LiveDaemon::open(pid)?, options, say)?;
            let latest = started.latest();
            let capture: CaptureFn = Box::new(move || {
                latest
                    .get()
                    .ok_or_else(|| "the live feed has no state".into())
            });
            feed = Some(started);
            (first, capture)
        }
        Target::Live(pid) => live(pid, options)?,
    };
    for problem in &first.problems {
        eprintln!("latch-probe: partial state: {problem}");
    }
    let interval = Duration::try_from_secs_f64(args.interval)
        .context("--interval must be a non-negative number of seconds")?;
    // A core file does not change; a zero interval means "only when asked".
    let interval = (matches!(args.target.target(), Target::Live(_)) && !interval.is_zero())
        .then_some(interval);
    let options = MountOptions {
        interval,
        allow_other: args.allow_other,
    };
    eprintln!(
        "latch-probe: serving daemon {} on {} ({}; read {} for a new capture); \
         SIGINT or SIGTERM unmounts",
        first.daemon.pid,
        args.dir.display(),
        interval.map_or("no periodic refresh".to_owned(), |every| {
            format!("refreshed every {every:?}")
        }),
        args.dir.join(CONTROL_NAME).display(),
    );
    let served = serve(&args.dir, &first, capture, &options, &signals);
    // The uprobes go before the process does, whatever the mount's end.
    drop(feed);
    let why = match served? {
        Ended::Signal(signal) => format!("on {}", signal.as_str()),
        Ended::UnmountedOutside => "from outside".to_owned(),
    };
    eprintln!("latch-probe: {} unmounted {why}", args.dir.display());
    Ok(exit_code::OK)
}

fn live(pid: u32, options: CaptureOptions) -> Result<(Capture, CaptureFn)> {
    let daemon = LiveDaemon::open(pid)?;
    let first = daemon.capture(options)?;
    let capture: CaptureFn = Box::new(move || daemon.capture(options).map_err(boxed));
    Ok((first, capture))
}

fn from_core(core: &Path, exe: &Path) -> Result<(Capture, CaptureFn)> {
    let image = DaemonImage::open(exe)?;
    let first = image.capture_core(core)?;
    let core = core.to_owned();
    let capture: CaptureFn = Box::new(move || image.capture_core(&core).map_err(boxed));
    Ok((first, capture))
}

fn boxed(error: ProbeError) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(error)
}

/// What the live feed met, on stderr.
fn say(note: FeedNote) {
    match note {
        FeedNote::Resnapshot(followed) => {
            eprintln!("latch-probe: {followed:?}; took a new snapshot")
        }
        FeedNote::Stopped(error) => {
            eprintln!("latch-probe: the live feed stopped: {error}; the tree keeps its last state")
        }
    }
}
