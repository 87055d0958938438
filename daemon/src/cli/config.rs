//! flom's configuration (its `flom_config_t`): the defaults, the configuration files in
//! flom's order (the system file, the user's `~/.flom`, then `-c FILE`), the keys of each
//! group as flom reads them, and `-V`'s print-out of the result.
//!
//! Holds and reads values; the command line is laid over it by [`super::options`], and what
//! the values do is the client's and the daemon's business. Prints nothing but `-V`'s lines.

#![forbid(unsafe_code)]

use super::keyfile::{KeyFile, KeyFileError, Value};
use super::signals;
use latch_probe_common::resource::{self, DEFAULT_RESOURCE};
use latch_probe_common::LockMode;
use std::path::{Path, PathBuf};

/// flom's `_SYSTEM_CONFIG_FILENAME` in its `sysconfdir`.
pub(crate) const SYSTEM_CONFIG: &str = "/etc/flom.conf";
/// Test hook: the system file's path instead of [`SYSTEM_CONFIG`] (flom has no override;
/// the end-to-end tests cannot write /etc on a shared machine).
pub(crate) const SYSTEM_CONFIG_ENV: &str = "LATCH_SYSTEM_CONFIG";
/// flom's `_USER_CONFIG_FILENAME`, in `$HOME`.
pub(crate) const USER_CONFIG: &str = ".flom";

/// flom's defaults for what the daemon and discovery are given.
pub(crate) const DEFAULT_PORT: i32 = 28015;
pub(crate) const DEFAULT_DAEMON_LIFESPAN: i32 = 5000;
pub(crate) const DEFAULT_DISCOVERY_ATTEMPTS: i32 = 2;
pub(crate) const DEFAULT_DISCOVERY_TIMEOUT: i32 = 500;
pub(crate) const DEFAULT_DISCOVERY_TTL: i32 = 1;
pub(crate) const DEFAULT_TCP_KEEPALIVE_TIME: i32 = 60;
pub(crate) const DEFAULT_TCP_KEEPALIVE_INTVL: i32 = 10;
pub(crate) const DEFAULT_TCP_KEEPALIVE_PROBES: i32 = 6;
/// The longest Unix socket path flom accepts (`sun_path` less its NUL).
const MAX_SOCKET_NAME: usize = 107;

/// The effective configuration, field for field flom's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub daemon_trace_file: Option<String>,
    pub command_trace_file: Option<String>,
    pub append_trace_file: bool,
    pub verbose: bool,
    pub resource_name: String,
    pub resource_create: bool,
    pub resource_timeout: i32,
    pub resource_quantity: i32,
    pub lock_mode: LockMode,
    pub resource_idle_lifespan: i32,
    pub socket_name: Option<String>,
    pub daemon_lifespan: i32,
    pub unicast_address: Option<String>,
    pub unicast_port: i32,
    pub multicast_address: Option<String>,
    pub multicast_port: i32,
    pub mount_point_vfs: Option<String>,
    /// Signal numbers (1..=31) the client ignores while its command runs.
    pub ignored_signals: Vec<i32>,
    pub network_interface: Option<String>,
    pub discovery_attempts: i32,
    pub discovery_timeout: i32,
    pub discovery_ttl: i32,
    pub tcp_keepalive_time: i32,
    pub tcp_keepalive_intvl: i32,
    pub tcp_keepalive_probes: i32,
    pub tls_certificate: Option<String>,
    pub tls_private_key: Option<String>,
    pub tls_ca_certificate: Option<String>,
    pub tls_check_peer_id: bool,
}

impl Default for Settings {
    /// flom's `flom_config_reset`.
    fn default() -> Settings {
        Settings {
            daemon_trace_file: None,
            command_trace_file: None,
            append_trace_file: false,
            verbose: false,
            resource_name: DEFAULT_RESOURCE.to_owned(),
            resource_create: true,
            resource_timeout: -1,
            resource_quantity: 1,
            lock_mode: LockMode::EX,
            resource_idle_lifespan: 0,
            socket_name: None,
            daemon_lifespan: DEFAULT_DAEMON_LIFESPAN,
            unicast_address: None,
            unicast_port: DEFAULT_PORT,
            multicast_address: None,
            multicast_port: DEFAULT_PORT,
            mount_point_vfs: None,
            ignored_signals: Vec::new(),
            network_interface: None,
            discovery_attempts: DEFAULT_DISCOVERY_ATTEMPTS,
            discovery_timeout: DEFAULT_DISCOVERY_TIMEOUT,
            discovery_ttl: DEFAULT_DISCOVERY_TTL,
            tcp_keepalive_time: DEFAULT_TCP_KEEPALIVE_TIME,
            tcp_keepalive_intvl: DEFAULT_TCP_KEEPALIVE_INTVL,
            tcp_keepalive_probes: DEFAULT_TCP_KEEPALIVE_PROBES,
            tls_certificate: None,
            tls_private_key: None,
            tls_ca_certificate: None,
            tls_check_peer_id: false,
        }
    }
}

/// A configuration file that cannot be used; the message names file, line and key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read configuration file {}: {source}; check the -c path", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {}: {source}; fix the line or remove it", path.display())]
    Syntax { path: PathBuf, source: KeyFileError },
    #[error("configuration file {}: line {line}: [{group}] {key}: '{value}' {why}; fix the value or remove the key", path.display())]
    Value {
        path: PathBuf,
        line: usize,
        group: &'static str,
        key: &'static str,
        value: String,
        why: &'static str,
    },
}

/// flom's `-e`, `AppendTraceFile`, `Create`, `Verbose`, `TlsCheckPeerId`: any text
/// containing "no", "yes", "n" or "y" (case-insensitive, in that order) means
/// no/yes/no/yes; anything else is refused.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    let lower = text.to_ascii_lowercase();
    [("no", false), ("yes", true), ("n", false), ("y", true)]
        .into_iter()
        .find(|(word, _)| lower.contains(word))
        .map(|(_, v)| v)
}

/// flom's `-l`: a case-insensitive substring search, long then short name, in the order
/// NL CR CW PW PR EX (tests/data/flom-transcripts.md, e).
pub(crate) fn parse_mode(text: &str) -> Option<LockMode> {
    let lower = text.to_ascii_lowercase();
    [
        LockMode::NL,
        LockMode::CR,
        LockMode::CW,
        LockMode::PW,
        LockMode::PR,
        LockMode::EX,
    ]
    .into_iter()
    .find(|m| {
        lower.contains(&m.long_name().to_ascii_lowercase())
            || lower.contains(&m.short_name().to_ascii_lowercase())
    })
}

/// Whether flom accepts `name` for `-r` / `[Resource] Name` (the default one is reserved).
pub(crate) fn valid_resource_name(name: &str) -> bool {
    name != DEFAULT_RESOURCE && resource::classify(name).is_some()
}

/// Whether flom accepts `name` for `-s` / `[Daemon] SocketName`.
pub(crate) fn valid_socket_name(name: &str) -> bool {
    name.len() <= MAX_SOCKET_NAME
}

/// The configuration files flom reads, in its order: the system file, the user's, then
/// the one given with `-c`. A missing system or user file is skipped, a missing `-c` file
/// is an error.
pub(crate) fn files(custom: Option<&Path>) -> Vec<(PathBuf, bool)> {
    let system = std::env::var_os(SYSTEM_CONFIG_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CONFIG));
    let mut files = vec![(system, false)];
    if let Some(home) = std::env::var_os("HOME") {
        files.push((PathBuf::from(home).join(USER_CONFIG), false));
    }
    if let Some(custom) = custom {
        files.push((custom.to_owned(), true));
    }
    files
}

impl Settings {
    /// flom's `flom_config_init`: the defaults with every file of [`files`] laid over them.
    pub(crate) fn load(custom: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        for (path, required) in files(custom) {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(ConfigError::Read { path, source }),
            };
            settings.apply_text(&path, &text)?;
        }
        Ok(settings)
    }

    /// One file's keys over the values so far (flom's `flom_config_init_load`); unknown
    /// groups and keys are ignored, as flom does.
    pub(crate) fn apply_text(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let kf = KeyFile::parse(text).map_err(|source| ConfigError::Syntax {
            path: path.to_owned(),
            source,
        })?;
        let reader = Reader { path, kf: &kf };
        if let Some(v) = reader.string("Trace", "DaemonTraceFile")? {
            self.daemon_trace_file = Some(v.value);
        }
        if let Some(v) = reader.string("Trace", "CommandTraceFile")? {
            self.command_trace_file = Some(v.value);
        }
        if let Some(v) = reader.boolean("Trace", "AppendTraceFile")? {
            self.append_trace_file = v;
        }
        if let Some(v) = reader.boolean("Trace", "Verbose")? {
            self.verbose = v;
        }
        if let Some(v) = reader.string("Resource", "Name")? {
            if !valid_resource_name(&v.value) {
                return Err(reader.bad(
                    "Resource",
                    "Name",
                    v,
                    "is not a valid resource name (or is the reserved _RESOURCE)",
                ));
            }
            self.resource_name = v.value;
        }
        if let Some(v) = reader.integer("Resource", "Timeout")? {
            self.resource_timeout = v;
        }
        if let Some(v) = reader.integer("Resource", "Quantity")? {
            self.resource_quantity = v;
        }
        if let Some(v) = reader.string("Resource", "LockMode")? {
            let Some(mode) = parse_mode(&v.value) else {
                return Err(reader.bad(
                    "Resource",
                    "LockMode",
                    v,
                    "is not a lock mode (NL, CR, CW, PR, PW, EX)",
                ));
            };
            self.lock_mode = mode;
        }
        if let Some(v) = reader.boolean("Resource", "Create")? {
            self.resource_create = v;
        }
        if let Some(v) = reader.integer("Resource", "IdleLifespan")? {
            self.resource_idle_lifespan = v;
        }
        if let Some(v) = reader.string("Daemon", "SocketName")? {
            if !valid_socket_name(&v.value) {
                return Err(reader.bad(
                    "Daemon",
                    "SocketName",
                    v,
                    "is longer than a Unix socket path can be (107 bytes)",
                ));
            }
            self.socket_name = Some(v.value);
        }
        if let Some(v) = reader.integer("Daemon", "Lifespan")? {
            self.daemon_lifespan = v;
        }
        if let Some(v) = reader.string("Daemon", "UnicastAddress")? {
            self.unicast_address = Some(v.value);
        }
        if let Some(v) = reader.integer("Daemon", "UnicastPort")? {
            self.unicast_port = v;
        }
        if let Some(v) = reader.string("Daemon", "MulticastAddress")? {
            self.multicast_address = Some(v.value);
        }
        if let Some(v) = reader.integer("Daemon", "MulticastPort")? {
            self.multicast_port = v;
        }
        if let Some(v) = reader.string("Daemon", "MountPointVFS")? {
            self.mount_point_vfs = Some(v.value);
        }
        if let Some(v) = reader
            .kf
            .list("Monitor", "IgnoredSignals")
            .map_err(|e| reader.syntax(e))?
        {
            self.ignored_signals = signals::parse_set(&v.value);
        }
        if let Some(v) = reader.string("Network", "NetworkInterface")? {
            self.network_interface = Some(v.value);
        }
        for (key, field) in [
            ("DiscoveryAttempts", &mut self.discovery_attempts),
            ("DiscoveryTimeout", &mut self.discovery_timeout),
            ("DiscoveryTTL", &mut self.discovery_ttl),
        ] {
            if let Some(v) = reader.integer("Network", key)? {
                *field = v;
            }
        }
        if let Some(v) = reader.integer("Network", "TcpKeepaliveTime")? {
            self.tcp_keepalive_time = v;
        }
        if let Some(v) = reader.integer("Network", "TcpKeepaliveIntvl")? {
            self.tcp_keepalive_intvl = v;
        }
        if let Some(v) = reader.integer("Network", "TcpKeepaliveProbes")? {
            self.tcp_keepalive_probes = v;
        }
        for (key, field) in [
            ("TlsCertificate", &mut self.tls_certificate),
            ("TlsPrivateKey", &mut self.tls_private_key),
            ("TlsCaCertificate", &mut self.tls_ca_certificate),
        ] {
            if let Some(v) = reader.string("TLS", key)? {
                *field = Some(v.value);
            }
        }
        if let Some(v) = reader.boolean("TLS", "TlsCheckPeerId")? {
            self.tls_check_peer_id = v;
        }
        Ok(())
    }

    /// `-V`'s lines, as flom's `flom_config_print` (numbers for modes and booleans).
    pub(crate) fn print_lines(&self) -> Vec<String> {
        fn s(v: &Option<String>) -> &str {
            v.as_deref().unwrap_or("")
        }
        let b = |v: bool| i32::from(v);
        vec![
            format!("[Trace]/DaemonTraceFile='{}'", s(&self.daemon_trace_file)),
            format!("[Trace]/CommandTraceFile='{}'", s(&self.command_trace_file)),
            format!("[Trace]/AppendTraceFile={}", b(self.append_trace_file)),
            format!("[Trace]/Verbose={}", b(self.verbose)),
            format!("[Resource]/Name='{}'", self.resource_name),
            format!("[Resource]/Timeout={}", self.resource_timeout),
            format!("[Resource]/Quantity={}", self.resource_quantity),
            format!("[Resource]/LockMode={}", self.lock_mode.wire()),
            format!("[Resource]/Create={}", b(self.resource_create)),
            format!("[Resource]/IdleLifespan={}", self.resource_idle_lifespan),
            format!("[Daemon]/SocketName='{}'", s(&self.socket_name)),
            format!("[Daemon]/Lifespan={}", self.daemon_lifespan),
            format!("[Daemon]/UnicastAddress='{}'", s(&self.unicast_address)),
            format!("[Daemon]/UnicastPort={}", self.unicast_port),
            format!("[Daemon]/MulticastAddress='{}'", s(&self.multicast_address)),
            format!("[Daemon]/MulticastPort={}", self.multicast_port),
            format!("[Daemon]/MountPointVFS='{}'", s(&self.mount_point_vfs)),
            format!(
                "[Monitor]/IgnoredSignals='{}'",
                signals::names(&self.ignored_signals).join(";")
            ),
            format!(
                "[Network]/NetworkInterface='{}'",
                s(&self.network_interface)
            ),
            format!("[Network]/DiscoveryAttempts={}", self.discovery_attempts),
            format!("[Network]/DiscoveryTimeout={}", self.discovery_timeout),
            format!("[Network]/DiscoveryTTL={}", self.discovery_ttl),
            format!("[Network]/TcpKeepaliveTime={}", self.tcp_keepalive_time),
            format!("[Network]/TcpKeepaliveIntvl={}", self.tcp_keepalive_intvl),
            format!("[Network]/TcpKeepaliveProbes={}", self.tcp_keepalive_probes),
            format!("[TLS]/TlsCertificate='{}'", s(&self.tls_certificate)),
            format!("[TLS]/TlsPrivateKey='{}'", s(&self.tls_private_key)),
            format!("[TLS]/TlsCaCertificate='{}'", s(&self.tls_ca_certificate)),
            format!("[TLS]/TlsCheckPeerId={}", b(self.tls_check_peer_id)),
        ]
    }
}

/// Reads typed values out of one file, turning its errors into [`ConfigError`]s.
struct Reader<'a> {
    path: &'a Path,
    kf: &'a KeyFile,
}

impl Reader<'_> {
    fn syntax(&self, source: KeyFileError) -> ConfigError {
        ConfigError::Syntax {
            path: self.path.to_owned(),
            source,
        }
    }

    fn bad(
        &self,
        group: &'static str,
        key: &'static str,
        v: Value<String>,
        why: &'static str,
    ) -> ConfigError {
        ConfigError::Value {
            path: self.path.to_owned(),
            line: v.line,
            group,
            key,
            value: v.value,
            why,
        }
    }

    fn string(&self, group: &str, key: &str) -> Result<Option<Value<String>>, ConfigError> {
        self.kf.string(group, key).map_err(|e| self.syntax(e))
    }

    fn integer(&self, group: &str, key: &str) -> Result<Option<i32>, ConfigError> {
        Ok(self
            .kf
            .integer(group, key)
            .map_err(|e| self.syntax(e))?
            .map(|v| v.value))
    }

    fn boolean(&self, group: &'static str, key: &'static str) -> Result<Option<bool>, ConfigError> {
        let Some(v) = self.string(group, key)? else {
            return Ok(None);
        };
        match parse_bool(&v.value) {
            Some(b) => Ok(Some(b)),
            None => Err(self.bad(group, key, v, "is not yes or no")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        s.apply_text(Path::new("/f.conf"), text)?;
        Ok(s)
    }

    #[test]
    fn modes_as_flom_reads_them() {
        for (text, mode) in [
            ("NL", LockMode::NL),
            ("ConcurrentRead", LockMode::CR),
            ("cw", LockMode::CW),
            ("ProtectedRead", LockMode::PR),
            ("pw", LockMode::PW),
            ("Ex", LockMode::EX),
            ("EXCL", LockMode::EX),
            ("exclusive", LockMode::EX),
        ] {
            assert_eq!(parse_mode(text), Some(mode), "{text}");
        }
        assert_eq!(parse_mode("xx"), None);
        assert_eq!(parse_mode(""), None);
    }

    #[test]
    fn booleans_as_flom_reads_them() {
        assert_eq!(parse_bool("no"), Some(false));
        assert_eq!(parse_bool("yes"), Some(true));
        assert_eq!(parse_bool("maybe"), Some(true));
        assert_eq!(parse_bool("xyz"), Some(true));
        assert_eq!(parse_bool("n"), Some(false));
        for bad in ["1", "0", "true", "false", ""] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_key_is_read() {
        let s = apply(
            "[Trace]\nDaemonTraceFile=/d\nCommandTraceFile=/c\nAppendTraceFile=yes\nVerbose=yes\n\
             [Resource]\nName=foo\nTimeout=-7\nQuantity=3\nLockMode=PR\nCreate=no\nIdleLifespan=9\n\
             [Daemon]\nSocketName=/tmp/s\nLifespan=-1\nUnicastAddress=127.0.0.1\nUnicastPort=-5\n\
             [Monitor]\nIgnoredSignals=SIGINT;15\n\
             [Network]\nTcpKeepaliveTime=1\nTcpKeepaliveIntvl=2\nTcpKeepaliveProbes=-3\n",
        )
        .unwrap();
        assert_eq!(s.daemon_trace_file.as_deref(), Some("/d"));
        assert_eq!(s.command_trace_file.as_deref(), Some("/c"));
        assert!(s.append_trace_file && s.verbose && !s.resource_create);
        assert_eq!(s.resource_name, "foo");
        assert_eq!(
            (
                s.resource_timeout,
                s.resource_quantity,
                s.resource_idle_lifespan
            ),
            (-7, 3, 9)
        );
        assert_eq!(s.lock_mode, LockMode::PR);
        assert_eq!(s.socket_name.as_deref(), Some("/tmp/s"));
        assert_eq!((s.daemon_lifespan, s.unicast_port), (-1, -5));
        assert_eq!(s.unicast_address.as_deref(), Some("127.0.0.1"));
        assert_eq!(s.ignored_signals, [2, 15]);
        assert_eq!(
            (
                s.tcp_keepalive_time,
                s.tcp_keepalive_intvl,
                s.tcp_keepalive_probes
            ),
            (1, 2, -3)
        );
    }

    #[test]
    fn discovery_vfs_and_tls_keys_are_read() {
        let s = apply(
            "[Daemon]\nMulticastAddress=224.0.0.1\nMulticastPort=1\nMountPointVFS=/mnt\n\
             [Network]\nNetworkInterface=eth0\nDiscoveryAttempts=-1\nDiscoveryTimeout=3\nDiscoveryTTL=4\n\
             [TLS]\nTlsCertificate=/c\nTlsPrivateKey=/k\nTlsCaCertificate=/ca\nTlsCheckPeerId=yes\n",
        )
        .unwrap();
        assert_eq!(s.multicast_address.as_deref(), Some("224.0.0.1"));
        assert_eq!(
            (
                s.multicast_port,
                s.discovery_attempts,
                s.discovery_timeout,
                s.discovery_ttl
            ),
            (1, -1, 3, 4)
        );
        assert!(s.tls_check_peer_id);
        assert_eq!(s.tls_ca_certificate.as_deref(), Some("/ca"));
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        for (text, needle) in [
            (
                "[Resource]\n\nLockMode=xx\n",
                "line 3: [Resource] LockMode: 'xx'",
            ),
            ("[Resource]\nCreate=1\n", "line 2: [Resource] Create: '1'"),
            ("[Resource]\nName=_RESOURCE\n", "line 2: [Resource] Name"),
            ("[Resource]\nName=1bad\n", "line 2: [Resource] Name: '1bad'"),
            ("[Trace]\nVerbose=true\n", "line 2: [Trace] Verbose"),
            (
                "[Daemon]\nLifespan=abc\n",
                "line 2: key Lifespan: 'abc' is not an integer",
            ),
            ("[Resource]\nTimeout=1e3\n", "line 2: key Timeout"),
            ("garbage\n", "line 1"),
        ] {
            let e = apply(text).unwrap_err().to_string();
            assert!(e.contains("/f.conf") && e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn print_lists_every_key_in_flom_order() {
        let lines = Settings::default().print_lines();
        assert_eq!(lines.len(), 29);
        assert_eq!(lines[0], "[Trace]/DaemonTraceFile=''");
        assert_eq!(lines[8], "[Resource]/Create=1");
        assert_eq!(lines[7], "[Resource]/LockMode=5");
        assert_eq!(lines[28], "[TLS]/TlsCheckPeerId=0");
    }
}
