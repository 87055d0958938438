//! TLS (`--tls-certificate --tls-private-key --tls-ca-certificate --tls-check-peer-id`):
//! our client with our daemon, over TCP loopback and over the Unix socket, with a CA and
//! certificates this test makes (rcgen): a good peer locks and unlocks; a certificate from
//! another CA, an expired one, a key that is not the certificate's and a peer id that is
//! not the CN are refused, each with FLoM's exit code (99) and return code. OpenSSL, which
//! FLoM's client and daemon speak through, is the peer in two tests (`openssl s_client`
//! locking through our daemon, our client locking through `openssl s_server` playing FLoM's
//! daemon), and makes RSA certificates as FLoM's own test setup does in a third.

use latch_tests::bins::Profile;
use latch_tests::command::TestCommand;
use latch_tests::daemon::{Daemon, DaemonOptions, Endpoint};
use latch_tests::sockets::listening_ports;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

/// FLoM's generic error exit status.
const ERROR: i32 = 99;
const VERIFY_FAILED: &str = "flom_client_connect: ret_cod=-407 (ERROR: 'OpenSSL SSL_get_verify_result' function returned an error)";
const KEY_MISMATCH: &str = "flom_client_connect: ret_cod=-400 (ERROR: 'OpenSSL SSL_CTX_check_private_key' function returned an error)";
const ID_MISMATCH: &str = "flom_client_lock: ret_cod=-23 (ERROR: the unique ID sent by the peer does not match the CN field inside the X.509 provided certificate)";
/// Another machine's id, as FLoM's tests use.
const OTHER_ID: &str = "00112233445566778899aabbccddeeff";

/// A peer's certificate and key files.
#[derive(Clone)]
struct Peer {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl Peer {
    /// The `--tls-*` options for this peer, with `extra` after them.
    fn args(&self) -> Vec<String> {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            format!("--tls-certificate={}", s(&self.cert)),
            format!("--tls-private-key={}", s(&self.key)),
            format!("--tls-ca-certificate={}", s(&self.ca)),
        ]
    }
}

/// Two CAs and the peers this test needs, in a temporary directory.
struct Pki {
    /// Holds the files (removed when the test ends).
    _dir: TempDir,
    /// CA1's peers whose CN is this machine's id: the daemon's and a client's.
    daemon: Peer,
    client: Peer,
    /// From CA2, trusting CA2.
    other_ca: Peer,
    /// From CA1, expired yesterday.
    expired: Peer,
    /// From CA1, its CN another machine's id.
    other_id: Peer,
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    pem: PathBuf,
}

impl Pki {
    fn new(unique_id: &str) -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("latch-tls-")
            .tempdir()
            .expect("temporary directory");
        let ca1 = ca(dir.path(), "CA1");
        let ca2 = ca(dir.path(), "CA2");
        let now = OffsetDateTime::now_utc();
        let valid = (now - Duration::days(1), now + Duration::days(365));
        let daemon = peer(dir.path(), "daemon", &ca1, unique_id, valid);
        let client = peer(dir.path(), "client", &ca1, unique_id, valid);
        let other_ca = peer(dir.path(), "other-ca", &ca2, unique_id, valid);
        let expired = peer(
            dir.path(),
            "expired",
            &ca1,
            unique_id,
            (now - Duration::days(10), now - Duration::days(1)),
        );
        let other_id = peer(dir.path(), "other-id", &ca1, OTHER_ID, valid);
        Pki {
            _dir: dir,
            daemon,
            client,
            other_ca,
            expired,
            other_id,
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
    path
}

fn ca(dir: &Path, name: &str) -> Ca {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("FLoM {name}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("CA certificate");
    let pem = write(dir, &format!("{name}-cacert.pem"), &cert.pem());
    Ca { cert, key, pem }
}

fn peer(
    dir: &Path,
    name: &str,
    ca: &Ca,
    cn: &str,
    (not_before, not_after): (OffsetDateTime, OffsetDateTime),
) -> Peer {
    let key = KeyPair::generate().expect("peer key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("peer params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params
        .signed_by(&key, &ca.cert, &ca.key)
        .expect("peer certificate");
    Peer {
        cert: write(dir, &format!("{name}-cert.pem"), &cert.pem()),
        key: write(dir, &format!("{name}-key.pem"), &key.serialize_pem()),
        ca: ca.pem.clone(),
    }
}

fn unique_id() -> String {
    let bin = latch_tests::bins::latch_bin(Profile::Debug);
    TestCommand::new(bin)
        .arg("--unique-id")
        .expect_success()
        .trim()
        .to_owned()
}

/// A TLS daemon of `peer` on `endpoint`, with `extra` arguments.
fn tls_daemon(endpoint: Endpoint, peer: &Peer, extra: &[&str]) -> Daemon {
    let mut args = peer.args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    DaemonOptions::new(Profile::Debug)
        .endpoint(endpoint)
        .args(&args)
        .start()
}

/// `latch -d 0 -r tls <peer's TLS options> <extra> -- sh -c 'echo locked'` to `daemon`.
fn client(daemon: &Daemon, peer: &Peer, extra: &[&str]) -> TestCommand {
    let mut cmd = daemon.client();
    cmd.args(["-d", "0", "-r", "tls"])
        .args(peer.args())
        .args(extra);
    cmd.args(["--", "sh", "-c", "echo locked"]);
    cmd
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_good_peer_locks_and_unlocks_over_tcp_and_the_unix_socket() {
    let pki = Pki::new(&unique_id());
    for endpoint in [Endpoint::TcpLoopback, Endpoint::Unix] {
        let daemon = tls_daemon(endpoint, &pki.daemon, &["--tls-check-peer-id"]);
        let out = client(&daemon, &pki.client, &["--tls-check-peer-id=yes"]).expect_success();
        assert_eq!(out.trim(), "locked", "{endpoint:?}");
        // The lock is gone with the client: a second one gets it too.
        client(&daemon, &pki.client, &[]).expect_success();
        // The daemon speaks nothing but TLS: a plain client gets no lock.
        let mut plain = daemon.client();
        plain.args(["-d", "0", "-r", "tls", "--", "true"]);
        plain.expect_exit(ERROR);
    }
}

/// A TLS client and a daemon without TLS: the daemon closes on the ClientHello, which no
/// FLoM message begins like, and the client fails its handshake at once (FLoM's would wait
/// for ever on each other).
#[test]
fn a_tls_client_of_a_plain_daemon_fails_its_handshake_at_once() {
    let pki = Pki::new(&unique_id());
    let plain = DaemonOptions::new(Profile::Debug)
        .endpoint(Endpoint::TcpLoopback)
        .start();
    let out = client(&plain, &pki.client, &[])
        .timeout(std::time::Duration::from_secs(5))
        .expect_exit(ERROR);
    assert!(
        stderr(&out).contains("flom_client_connect: ret_cod=-406"),
        "{}",
        stderr(&out)
    );
    assert!(
        plain.stderr().contains("does not speak FLoM's protocol"),
        "{}",
        plain.stderr()
    );
    // The daemon serves on.
    plain
        .client()
        .args(["-d", "0", "-r", "after", "--", "true"])
        .expect_success();
}

#[test]
fn a_daemon_from_another_ca_is_refused_by_the_client() {
    let pki = Pki::new(&unique_id());
    let daemon = tls_daemon(Endpoint::TcpLoopback, &pki.daemon, &[]);
    let out = client(&daemon, &pki.other_ca, &[]).expect_exit(ERROR);
    assert!(stderr(&out).contains(VERIFY_FAILED), "{}", stderr(&out));
}

#[test]
fn a_client_from_another_ca_is_refused_by_the_daemon() {
    let pki = Pki::new(&unique_id());
    let daemon = tls_daemon(Endpoint::TcpLoopback, &pki.daemon, &[]);
    // Its certificate is CA2's, but it trusts CA1 (the daemon's): the daemon refuses it.
    let peer = Peer {
        ca: pki.daemon.ca.clone(),
        ..pki.other_ca
    };
    let out = client(&daemon, &peer, &[]).expect_exit(ERROR);
    assert!(
        stderr(&out).contains("flom_client_lock: ret_cod="),
        "{}",
        stderr(&out)
    );
    assert!(
        daemon.stderr().contains("ret_cod=-407"),
        "{}",
        daemon.stderr()
    );
}

#[test]
fn an_expired_certificate_is_refused_on_either_side() {
    let pki = Pki::new(&unique_id());
    let daemon = tls_daemon(Endpoint::TcpLoopback, &pki.expired, &[]);
    let out = client(&daemon, &pki.client, &[]).expect_exit(ERROR);
    assert!(stderr(&out).contains(VERIFY_FAILED), "{}", stderr(&out));
    drop(daemon);

    let daemon = tls_daemon(Endpoint::TcpLoopback, &pki.daemon, &[]);
    let out = client(&daemon, &pki.expired, &[]).expect_exit(ERROR);
    assert!(
        stderr(&out).contains("flom_client_lock: ret_cod="),
        "{}",
        stderr(&out)
    );
    assert!(
        daemon.stderr().contains("ret_cod=-407"),
        "{}",
        daemon.stderr()
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let pki = Pki::new(&unique_id());
    let daemon = tls_daemon(Endpoint::TcpLoopback, &pki.daemon, &[]);
    let peer = Peer {
        key: pki.other_id.key.clone(),
        ..pki.client
    };
    let out = client(&daemon, &peer, &[]).expect_exit(ERROR);
    assert!(stderr(&out).contains(KEY_MISMATCH), "{}", stderr(&out));
}

#[test]
fn a_wrong_peer_id_is_refused_where_it_is_checked() {
    let pki = Pki::new(&unique_id());
    // The daemon checks: a client whose CN is another machine's id is closed on.
    let daemon = tls_daemon(Endpoint::TcpLoopback, &pki.daemon, &["--tls-check-peer-id"]);
    let out = client(&daemon, &pki.other_id, &[]).expect_exit(ERROR);
    assert!(
        stderr(&out).contains("flom_client_lock: ret_cod="),
        "{}",
        stderr(&out)
    );
    assert!(
        daemon.stderr().contains("ret_cod=-23"),
        "{}",
        daemon.stderr()
    );
    drop(daemon);

    // Unchecked, the same client locks.
    let daemon = tls_daemon(Endpoint::TcpLoopback, &pki.daemon, &[]);
    client(&daemon, &pki.other_id, &[]).expect_success();
    drop(daemon);

    // The client checks: a daemon whose CN is another machine's id is refused, and is
    // not refused by a client that does not check.
    let daemon = tls_daemon(Endpoint::TcpLoopback, &pki.other_id, &[]);
    let out = client(&daemon, &pki.client, &["--tls-check-peer-id=yes"]).expect_exit(ERROR);
    assert!(stderr(&out).contains(ID_MISMATCH), "{}", stderr(&out));
    client(&daemon, &pki.client, &[]).expect_success();
}

#[test]
fn a_stalled_handshake_does_not_hold_the_daemon() {
    let pki = Pki::new(&unique_id());
    let daemon = tls_daemon(Endpoint::TcpLoopback, &pki.daemon, &[]);
    // A client that sent the start of a TLS record and nothing more.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", daemon.port())).expect("connect");
    std::io::Write::write_all(&mut stalled, &[0x16, 0x03, 0x01]).expect("write");
    let out = client(&daemon, &pki.client, &[])
        .timeout(std::time::Duration::from_secs(10))
        .expect_success();
    assert_eq!(out.trim(), "locked");
    drop(stalled);
}

#[test]
fn tls_from_a_config_file_for_a_started_daemon_and_its_clients() {
    let pki = Pki::new(&unique_id());
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("flom.sock");
    let conf = write(
        dir.path(),
        "flom.conf",
        &format!(
            "[TLS]\nTlsCertificate={}\nTlsPrivateKey={}\nTlsCaCertificate={}\nTlsCheckPeerId=yes\n",
            pki.daemon.cert.display(),
            pki.daemon.key.display(),
            pki.daemon.ca.display()
        ),
    );
    let bin = latch_tests::bins::latch_bin(Profile::Debug);
    let latch = |args: &[&str]| {
        let mut cmd = TestCommand::new(&bin);
        cmd.arg("-c").arg(&conf).arg("-s").arg(&socket).args(args);
        cmd
    };
    // As FLoM's "TLS client/server": the first client starts a daemon with the file's
    // TLS, the second overrides the certificate and key on its command line.
    latch(&["-d", "-1", "--", "true"]).expect_success();
    let cert = format!("--tls-certificate={}", pki.client.cert.display());
    let key = format!("--tls-private-key={}", pki.client.key.display());
    let out = latch(&[&cert, &key, "--", "sh", "-c", "echo locked"]).expect_success();
    assert_eq!(out.trim(), "locked");
    // As "TLS shutdown different CAs" and "… wrong client key": a -X the daemon cannot
    // trust, or whose key is not its certificate's, fails (99) and the daemon goes on.
    let other = pki.other_ca.args();
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    latch(&other).arg("-X").expect_exit(ERROR);
    let wrong_key = format!("--tls-private-key={}", pki.other_id.key.display());
    latch(&[&cert, &wrong_key, "-X"]).expect_exit(ERROR);
    latch(&[&cert, &key, "--", "true"]).expect_success();
    // Stopped over TLS too (-X, with the file's peer-id check); then nobody answers.
    latch(&[&cert, &key, "-X"]).expect_success();
    let gone = latch(&["-d", "0", "--", "true"]).expect_exit(ERROR);
    assert!(stderr(&gone).contains("ret_cod=-105"), "{}", stderr(&gone));
}

/// `openssl` (`s_client`, `s_server`): OpenSSL's TLS, the library FLoM's client and
/// daemon speak through, beside the test, its output read by a thread and ended by pid.
struct OpenSsl {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    out: std::sync::mpsc::Receiver<u8>,
    seen: Vec<u8>,
}

impl OpenSsl {
    fn spawn(args: &[String]) -> OpenSsl {
        use std::process::{Command, Stdio};
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run openssl (scripts/setup.sh installs it): {e}"));
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, out) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                if buf[..n].iter().any(|b| tx.send(*b).is_err()) {
                    break;
                }
            }
        });
        OpenSsl {
            child,
            stdin,
            out,
            seen: Vec::new(),
        }
    }

    /// Writes to its stdin; `Err` when it has exited.
    fn send(&mut self, text: &str) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        std::io::Write::write_all(stdin, text.as_bytes())
    }

    /// Waits (bounded) until its output holds `needle`; all it printed so far.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + latch_tests::timeouts::REPLY;
        while !String::from_utf8_lossy(&self.seen).contains(needle) {
            self.next_byte(deadline, needle);
        }
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

impl OpenSsl {
    /// The port of an `s_server -accept 127.0.0.1:0`, from its `ACCEPT 127.0.0.1:PORT`.
    fn accepting_port(&mut self) -> u16 {
        const MARK: &str = "ACCEPT 127.0.0.1:";
        let deadline = std::time::Instant::now() + latch_tests::timeouts::REPLY;
        loop {
            let out = String::from_utf8_lossy(&self.seen).into_owned();
            let line = out
                .find(MARK)
                .and_then(|i| out[i + MARK.len()..].split_once('\n'))
                .map(|(line, _)| line.trim().to_owned());
            if let Some(line) = line {
                return line
                    .parse()
                    .unwrap_or_else(|e| panic!("s_server's port {line:?}: {e}"));
            }
            self.next_byte(deadline, MARK);
        }
    }

    /// Takes one more byte of its output; the test fails past `deadline`.
    fn next_byte(&mut self, deadline: std::time::Instant, awaited: &str) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match self.out.recv_timeout(left) {
            Ok(b) => self.seen.push(b),
            Err(_) => panic!(
                "openssl did not print {awaited:?}; it printed:\n{}",
                String::from_utf8_lossy(&self.seen)
            ),
        }
    }
}

impl Drop for OpenSsl {
    fn drop(&mut self) {
        drop(self.stdin.take());
        latch_tests::procs::end_child(&mut self.child);
    }
}

fn openssl_peer_args(peer: &Peer) -> Vec<String> {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        "-cert".into(),
        s(&peer.cert),
        "-key".into(),
        s(&peer.key),
        "-CAfile".into(),
        s(&peer.ca),
        "-verify_return_error".into(),
    ]
}

/// `openssl s_server` for one connection on the loopback port the kernel chooses, as
/// `peer`, with `extra` options; and that port, as it says.
fn openssl_server(peer: &Peer, extra: &[&str]) -> (OpenSsl, u16) {
    let mut args: Vec<String> = ["s_server", "-accept", "127.0.0.1:0", "-naccept", "1"]
        .into_iter()
        .chain(extra.iter().copied())
        .map(str::to_owned)
        .collect();
    args.extend(openssl_peer_args(peer));
    let mut server = OpenSsl::spawn(&args);
    let port = server.accepting_port();
    (server, port)
}

/// Our client locking `foo` at the daemon on loopback `port`, as `peer`.
fn client_at(port: u16, peer: &Peer) -> TestCommand {
    let mut cmd = TestCommand::new(latch_tests::bins::latch_bin(Profile::Debug));
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .args(["-d", "0", "-r", "foo"])
        .args(peer.args());
    cmd
}

#[test]
fn an_openssl_client_locks_through_our_daemon() {
    let id = unique_id();
    let pki = Pki::new(&id);
    let daemon = tls_daemon(Endpoint::TcpLoopback, &pki.daemon, &["--tls-check-peer-id"]);
    let mut args = vec![
        "s_client".to_string(),
        "-connect".into(),
        format!("127.0.0.1:{}", daemon.port()),
        "-verify".into(),
        "4".into(),
    ];
    args.extend(openssl_peer_args(&pki.client));
    let mut client = OpenSsl::spawn(&args);
    // FLoM's lock of "foo", which it then holds.
    client
        .send(&format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="1" step="8"><session peerid="{id}"/><resource name="Zm9v" mode="5" wait="1" create="1" lifespan="0"/></msg>"#
    ))
        .expect("write to openssl s_client");
    let out = client.wait_for(r#"<answer rc="0"/></msg>"#);
    assert!(
        out.contains(&format!(r#"<session peerid="{id}"/>"#)),
        "{out}"
    );
    // Held by the OpenSSL client: ours cannot have it now.
    let mut busy = daemon.client();
    busy.args(["-d", "0", "-r", "foo", "-o", "0"])
        .args(pki.client.args())
        .args(["--", "true"]);
    busy.expect_exit(98);
}

#[test]
fn our_client_locks_through_an_openssl_daemon() {
    let id = unique_id();
    let pki = Pki::new(&id);
    let (mut server, port) = openssl_server(&pki.daemon, &["-Verify", "4"]);
    let mut cmd = client_at(port, &pki.client);
    cmd.args(["--tls-check-peer-id=yes", "--", "sh", "-c", "echo locked"]);
    // Run by a thread (bounded by TestCommand's timeout) while this one plays the daemon.
    let client = std::thread::spawn(move || cmd.output());
    server.wait_for(r#"<resource name="Zm9v""#);
    let answer = format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="1" step="16"><session peerid="{id}"/><answer rc="0"/></msg>"#
    );
    // s_server sends what it reads of a line. One write: the client may lock, run, unlock
    // and close, and s_server (-naccept 1) exit, before a second one.
    if let Err(e) = server.send(&format!("{answer}\n")) {
        let out = client.join().expect("the client's thread");
        panic!(
            "openssl s_server is gone ({e}) after printing:\n{}\nthe client ({}) said: {}",
            String::from_utf8_lossy(&server.seen),
            out.status,
            stderr(&out)
        );
    }
    // The unlock.
    server.wait_for(r#"verb="2""#);
    let out = client.join().expect("the client's thread");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "locked");
}

/// Runs `openssl ARGS` in `dir` to its end; the test fails if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = TestCommand::new("openssl");
    cmd.current_dir(dir).args(args);
    cmd.expect_success();
}

#[test]
fn rsa_certificates_made_by_openssl_as_flom_s_setup_makes_them() {
    let id = unique_id();
    let dir = tempfile::tempdir().expect("temporary directory");
    let subject = format!("/C=IT/O=FLoM Software/OU=peer1/CN={id}");
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "cakey.pem",
            "-out",
            "cacert.pem",
            "-days",
            "2",
            "-subj",
            "/O=FLoM Software/CN=FLoM CA1",
        ],
    );
    write(dir.path(), "usr_cert.cnf", "basicConstraints=CA:FALSE\n");
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "peer1_key.pem",
            "-out",
            "peer1.csr",
            "-subj",
            &subject,
        ],
    );
    // `-text` as `openssl ca` writes them: the certificate in words before its PEM.
    openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "peer1.csr",
            "-CA",
            "cacert.pem",
            "-CAkey",
            "cakey.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "usr_cert.cnf",
            "-text",
            "-out",
            "peer1_cert.pem",
        ],
    );
    let peer = Peer {
        cert: dir.path().join("peer1_cert.pem"),
        key: dir.path().join("peer1_key.pem"),
        ca: dir.path().join("cacert.pem"),
    };
    let daemon = tls_daemon(Endpoint::Unix, &peer, &["--tls-check-peer-id"]);
    let out = client(&daemon, &peer, &["--tls-check-peer-id=yes"]).expect_success();
    assert_eq!(out.trim(), "locked");
}

#[test]
fn flom_s_configuration_checks_of_tls() {
    let pki = Pki::new(&unique_id());
    let bin = latch_tests::bins::latch_bin(Profile::Debug);
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("flom.sock");
    let latch = |args: &[&str]| {
        let mut cmd = TestCommand::new(&bin);
        cmd.arg("-s").arg(&socket).args(["-d", "0"]).args(args);
        cmd
    };
    // The peer-id check without the three files.
    let out = latch(&["--tls-check-peer-id=yes", "--", "true"]).expect_exit(ERROR);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "ERROR: TLS check peer id can not be specified without full TLS configuration."
        ),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = latch(&["--tls-check-peer-id=xx", "--", "true"]).expect_exit(ERROR);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("tls-check-peer-id: 'xx' is an invalid value"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A daemon whose key is not its certificate's does not start (FLoM's "TLS wrong
    // server key"), saying why.
    let wrong_key = Peer {
        key: pki.other_id.key.clone(),
        ..pki.daemon
    };
    let mut daemon = TestCommand::new(&bin);
    daemon
        .arg("-s")
        .arg(&socket)
        .arg("daemon")
        .args(wrong_key.args());
    let out = daemon.expect_exit(ERROR);
    assert!(stderr(&out).contains("ret_cod=-400"), "{}", stderr(&out));
    assert!(
        !socket.exists(),
        "a daemon that cannot set up TLS must not listen"
    );
}

#[test]
fn a_failed_handshake_is_flom_s_connect_error() {
    let pki = Pki::new(&unique_id());
    // A daemon offering only a cipher suite rustls does not speak: no handshake.
    let (_server, port) = openssl_server(
        &pki.daemon,
        &["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_8_SHA256"],
    );
    let mut cmd = client_at(port, &pki.client);
    cmd.args(["--", "true"]);
    let out = cmd.expect_exit(ERROR);
    assert!(
        stderr(&out).contains(
            "flom_client_connect: ret_cod=-406 (ERROR: 'OpenSSL SSL_connect' function returned an error)"
        ),
        "{}",
        stderr(&out)
    );
}

/// FLoM's debug-features.at "TLS …" groups: `tls.server` accepts one connection on `-a`/`-p`,
/// `tls.client` connects; they swap unique ids and check each other's certificate (and,
/// with `--tls-check-peer-id`, that the id is its CN). Status 0 when it worked, 1 when not.
#[test]
fn flom_s_tls_debug_features_as_debug_features_at() {
    let pki = Pki::new(&unique_id());
    let bin = latch_tests::bins::latch_bin(Profile::Debug);
    let wrong_key = Peer {
        key: pki.daemon.key.clone(),
        ..pki.client.clone()
    };
    let wrong_ca = Peer {
        ca: pki.other_ca.ca.clone(),
        ..pki.client.clone()
    };
    // (group, the server's peer, the client's peer, peer-id check, the client's status and
    // FLoM's return code for why)
    let cases = [
        (
            "TLS basic handshake",
            &pki.daemon,
            &pki.client,
            false,
            0,
            "",
        ),
        (
            "TLS mutual authentication",
            &pki.daemon,
            &pki.client,
            true,
            0,
            "",
        ),
        (
            "TLS peers with different cert. auth.",
            &pki.daemon,
            &pki.other_ca,
            true,
            1,
            "-407",
        ),
        (
            "TLS wrong private key",
            &pki.daemon,
            &wrong_key,
            true,
            1,
            "-400",
        ),
        (
            "TLS wrong cert. auth.",
            &pki.daemon,
            &wrong_ca,
            true,
            1,
            "-407",
        ),
        (
            "TLS wrong unique id",
            &pki.other_id,
            &pki.client,
            true,
            1,
            "-23",
        ),
    ];
    for (name, server_peer, client_peer, check, status, rc) in cases {
        let feature = |feature: &str, peer: &Peer, port: u16| {
            let mut cmd = TestCommand::new(&bin);
            cmd.arg(format!("--debug-feature={feature}"))
                .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .args(peer.args());
            if check {
                cmd.arg("--tls-check-peer-id=yes");
            }
            cmd
        };
        // On the port the kernel chooses, read off its listening socket (a connection
        // would be the one it accepts).
        let mut server = feature("tls.server", server_peer, 0).background();
        let port = latch_tests::wait::wait_for(
            "the tls.server to listen",
            latch_tests::timeouts::DAEMON_START,
            || listening_ports(server.pid()).first().copied(),
        );
        let out = feature("tls.client", client_peer, port).output();
        assert_eq!(out.status.code(), Some(status), "{name}: {}", stderr(&out));
        if status == 0 {
            assert!(
                server.wait_within(latch_tests::timeouts::STOP).success(),
                "{name}: the server failed"
            );
        } else {
            // Why, on stderr (FLoM has only its trace).
            let why = format!("latch: --debug-feature: ret_cod={rc} ");
            assert!(stderr(&out).contains(&why), "{name}: {}", stderr(&out));
        }
        // A server whose client never came is ended by pid here.
        drop(server);
    }
}
