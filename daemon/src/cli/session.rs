//! The session id flom puts in its messages, which both the daemon's first answers and a
//! client's requests carry.
//!
//! Reads the id; puts it in no message itself.

#![forbid(unsafe_code)]

/// The machine id, as flom uses it (all zeros when the machine has none).
pub(crate) fn machine_id() -> String {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "00000000000000000000000000000000".to_owned())
}
