//! [`NetNs`]: a network namespace the test makes for itself (`ip netns add`), with `lo` up
//! and one multicast interface, `d0`, that leads nowhere: what multicast discovery is
//! tested in, as FLoM's tests use 224.0.0.1 and ff01::1, without a packet leaving the
//! namespace.
//!
//! It may end only the processes inside its own namespace (by pid, from `ip netns pids`),
//! and must delete the namespace when dropped, even when the test panics.

use crate::command::TestCommand;
use crate::procs::end_pid;
use std::ffi::OsStr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `d0`'s IPv4 address; the multicast range is routed to `d0`.
pub const IPV4: &str = "10.199.0.1";
/// `d0`'s IPv6 addresses, global and link-local (no duplicate address detection, so they
/// are usable at once).
pub const IPV6: &str = "fd00:1a7c::1";
pub const LINK_LOCAL: &str = "fe80::1a7c";

/// A network namespace of this test's, deleted (with everything still running in it)
/// when dropped.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Makes the namespace and its interfaces; fails the test loudly if it cannot (the
    /// tests run as root: there is no skip). `d0` is a dummy interface, or, on a kernel
    /// without the dummy driver, a bridge without ports: either drops what it is given.
    pub fn create() -> NetNs {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "latch-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]).unwrap_or_else(|e| {
            panic!("cannot make network namespace {name} (the tests need root): {e}")
        });
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        if ns.try_ip(&["link", "add", "d0", "type", "dummy"]).is_err() {
            ns.ip(&["link", "add", "d0", "type", "bridge"]);
        }
        ns.ip(&["link", "set", "d0", "multicast", "on", "up"]);
        ns.ip(&["addr", "add", &format!("{IPV4}/24"), "dev", "d0"]);
        ns.ip(&["route", "add", "224.0.0.0/4", "dev", "d0"]);
        for address in [IPV6, LINK_LOCAL] {
            let address = format!("{address}/64");
            ns.ip(&["-6", "addr", "add", &address, "dev", "d0", "nodad"]);
        }
        let addresses = ns.try_ip(&["addr", "show", "d0"]).unwrap_or_default();
        for address in [IPV4, IPV6, LINK_LOCAL] {
            assert!(
                addresses.contains(&format!("{address}/")),
                "d0 lacks {address}:\n{addresses}"
            );
        }
        ns
    }

    /// `program` run inside the namespace (`ip netns exec` execs it: the pid is its own).
    pub fn command(&self, program: impl AsRef<OsStr>) -> TestCommand {
        let mut cmd = TestCommand::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// The pids of the processes in the namespace now.
    pub fn pids(&self) -> Vec<i32> {
        let out = ip(&["netns", "pids", &self.name]).unwrap_or_default();
        out.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        ip(&full)
    }

    #[track_caller]
    fn ip(&self, args: &[&str]) {
        if let Err(e) = self.try_ip(args) {
            panic!("ip -n {} {}: {e}", self.name, args.join(" "));
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        for pid in self.pids() {
            end_pid(pid);
        }
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cannot delete network namespace {}: {e}", self.name);
        }
    }
}

/// Runs `ip ARGS`; its stdout, or what it said on failure.
fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
