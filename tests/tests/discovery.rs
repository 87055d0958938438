//! Multicast discovery (`-A -P -D -I`), for real, inside a network namespace each test
//! makes for itself (`latch_tests::netns`): a daemon answering on 224.0.0.1 and on
//! ff01::1 (the groups FLoM's tests use) is found and locked through, two clients contend
//! through it, a client started with nobody answering starts the one daemon they share,
//! and a client that may not start one gives up after `-D` times `-I` ms with FLoM's
//! message.
//!
//! Everything runs inside the namespace (`ip netns exec`); what is still running in it
//! when a test ends is ended by pid, and the namespace deleted.

use latch_tests::background::Background;
use latch_tests::bins::{latch_bin, Profile};
use latch_tests::command::TestCommand;
use latch_tests::netns::{NetNs, IPV4, LINK_LOCAL};
use latch_tests::timeouts::{CHANGE, DAEMON_START, STOP};
use latch_tests::wait::wait_for;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// FLoM's message when discovery found nobody and no daemon may be started (`-d 0`).
const NOBODY: &str =
    "flom_client_connect: ret_cod=-105 (ERROR: 'connect' function returned an error condition)";
const REQUEST: &str =
    r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="4" step="8"></msg>"#;

/// `latch ARGS` inside `ns`.
fn latch(ns: &NetNs, args: &[&str]) -> TestCommand {
    let mut cmd = ns.command(latch_bin(Profile::Debug));
    cmd.args(args);
    cmd
}

/// `-A GROUP -P PORT`.
fn group<'a>(address: &'a str, port: &'a str) -> [&'a str; 4] {
    ["-A", address, "-P", port]
}

/// A `latch daemon` answering discovery on the group (plus `extra`), once a client finds
/// it.
fn daemon(ns: &NetNs, address: &str, port: &str, extra: &[&str]) -> Background {
    let daemon = latch(ns, &["daemon"])
        .args(group(address, port))
        .args(extra)
        .background();
    wait_for("the daemon to answer discovery", DAEMON_START, || {
        latch(ns, &group(address, port))
            .args([
                "-D", "1", "-I", "200", "-d", "0", "-r", "ready", "--", "true",
            ])
            .output()
            .status
            .success()
            .then_some(())
    });
    daemon
}

/// A client holding `resource` (found by discovery on the group) until its stdin closes;
/// returns once it holds the lock (it writes `in` to `flag`).
fn holder(ns: &NetNs, address: &str, port: &str, resource: &str, flag: &Path) -> Background {
    let script = format!("echo in > {}; exec cat", flag.display());
    let holder = latch(ns, &group(address, port))
        .args(["-d", "0", "-r", resource, "--", "sh", "-c", &script])
        .stdin(Stdio::piped())
        .background();
    wait_for("the holder to hold", CHANGE, || flag.exists().then_some(()));
    holder
}

/// Finding the daemon, locking through it, a contender refused while the lock is held,
/// and a shutdown found the same way.
fn finds_locks_and_contends(address: &str, port: &str) {
    let ns = NetNs::create();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = daemon(&ns, address, port, &[]);
    let out = latch(&ns, &group(address, port))
        .args(["-V", "-d", "0", "-r", "disc", "--", "echo", "locked"])
        .expect_success();
    assert!(
        out.contains(&format!(
            "sending UDP multicast datagram to {address}/{port} ('{REQUEST}')"
        )),
        "{out}"
    );
    // The daemon listens on every address: its answer names no address, only its port.
    let reply = format!(
        "reply from {address}/{port} is '<?xml version=\"1.0\" encoding=\"UTF-8\" ?><msg level=\"3\" verb=\"4\" step=\"16\"><network address=\"\" port=\""
    );
    assert!(out.contains(&reply), "{out}");
    assert!(out.ends_with("locked\n"), "{out}");

    let flag = dir.path().join("held");
    let mut held = holder(&ns, address, port, "disc", &flag);
    let busy = latch(&ns, &group(address, port))
        .args(["-d", "0", "-o", "0", "-r", "disc", "--", "true"])
        .expect_exit(98);
    assert_eq!(
        String::from_utf8_lossy(&busy.stderr),
        "Resource already locked, the lock cannot be obtained\n"
    );
    held.close_stdin();
    assert!(held.wait_within(STOP).success());
    latch(&ns, &group(address, port))
        .args(["-d", "0", "-o", "0", "-r", "disc", "--", "true"])
        .expect_success();

    latch(&ns, &group(address, port)).arg("-x").expect_success();
    assert!(daemon.wait_within(STOP).success());
}

#[test]
fn a_client_finds_the_daemon_by_ipv4_multicast() {
    finds_locks_and_contends("224.0.0.1", "28015");
}

#[test]
fn a_client_finds_the_daemon_by_ipv6_multicast() {
    finds_locks_and_contends("ff01::1", "28015");
}

/// FLoM's usecase-dist scenario: a client with a unicast address and a group starts a
/// daemon that lives on (`-d -1`); a client with the unicast address reaches it directly,
/// and one with the group alone discovers it, its answer naming the address.
fn a_daemon_started_with_a_unicast_address_names_it(unicast: &[&str], address: &str, port: &str) {
    let ns = NetNs::create();
    let tcp = ["-p", "28021"];
    latch(&ns, unicast)
        .args(tcp)
        .args(group(address, port))
        .args(["-d", "-1", "-r", "named", "--", "true"])
        .expect_success();
    latch(&ns, unicast)
        .args(tcp)
        .args(["-d", "0", "-o", "0", "-r", "named", "--", "echo", "direct"])
        .expect_success();
    let out = latch(&ns, &group(address, port))
        .args(["-V", "-d", "0", "-r", "named", "--", "echo", "discovered"])
        .expect_success();
    assert!(
        out.contains(&format!(
            "<network address=\"{}\" port=\"28021\"/></msg>'",
            unicast[1]
        )),
        "{out}"
    );
    assert!(out.ends_with("discovered\n"), "{out}");
}

#[test]
fn a_daemon_with_an_ipv4_unicast_address_answers_discovery_naming_it() {
    a_daemon_started_with_a_unicast_address_names_it(&["-a", IPV4], "224.0.0.1", "28020");
}

#[test]
fn a_daemon_on_an_ipv6_link_local_address_answers_discovery_naming_it() {
    a_daemon_started_with_a_unicast_address_names_it(
        &["-a", LINK_LOCAL, "-n", "d0"],
        "ff01::1",
        "28020",
    );
}

/// `-D attempts -I ms -d 0` with nobody answering: how long the client took, its output.
fn nobody_answers(ns: &NetNs, address: &str, attempts: u32, timeout_ms: u32) -> (Duration, String) {
    let started = Instant::now();
    let out = latch(ns, &group(address, "28018"))
        .args([
            "-V",
            "-D",
            &attempts.to_string(),
            "-I",
            &timeout_ms.to_string(),
        ])
        .args(["-d", "0", "-r", "nobody", "--", "true"])
        .expect_exit(99);
    let took = started.elapsed();
    assert_eq!(String::from_utf8_lossy(&out.stderr), format!("{NOBODY}\n"));
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn with_nobody_answering_the_client_gives_up_after_attempts_times_timeout() {
    let ns = NetNs::create();
    let cases = [
        ("224.0.0.1", 3, 300),
        ("224.0.0.1", 1, 1200),
        ("ff01::1", 3, 300),
        ("ff01::1", 1, 1200),
    ];
    for (address, attempts, timeout_ms) in cases {
        let (took, out) = nobody_answers(&ns, address, attempts, timeout_ms);
        let sending = format!("sending UDP multicast datagram to {address}/28018");
        let sent = out.lines().filter(|l| l.starts_with(&sending)).count();
        let no_reply = format!("no reply from {address}/28018");
        let unanswered = out.lines().filter(|l| *l == no_reply).count();
        assert_eq!(
            (sent, unanswered),
            (attempts as usize, attempts as usize),
            "{address}: {out}"
        );
        let floor = Duration::from_millis(u64::from(attempts * timeout_ms));
        // Generous above: a debug build starting on a busy machine.
        assert!(
            took >= floor && took < floor + Duration::from_secs(5),
            "{address} -D {attempts} -I {timeout_ms} took {took:?}"
        );
    }
}

#[test]
fn a_negative_discovery_timeout_is_refused_as_flom_refuses_it() {
    let ns = NetNs::create();
    let out = latch(&ns, &group("224.0.0.1", "28018"))
        .args(["-I", "-1", "-d", "0", "-r", "nobody", "--", "true"])
        .expect_exit(99);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "flom_client_connect: ret_cod=-133 (ERROR: 'setsockopt' function returned an error condition)\n"
    );
}

#[test]
fn clients_with_nobody_answering_start_one_daemon_and_take_turns() {
    let ns = NetNs::create();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("turns");
    let script = format!(
        "echo in >> {log}; sleep 0.3; echo out >> {log}",
        log = log.display()
    );
    let mut clients: Vec<Background> = (0..2)
        .map(|_| {
            latch(&ns, &group("224.0.0.1", "28019"))
                .args(["-d", "-1", "-r", "turns", "--", "sh", "-c", &script])
                .background()
        })
        .collect();
    for client in &mut clients {
        assert!(client.wait_within(CHANGE).success());
    }
    let turns = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        turns, "in\nout\nin\nout\n",
        "the critical sections overlapped"
    );
    // The clients are gone; what is left in the namespace is the one daemon they started.
    let left: Vec<Vec<String>> = ns
        .pids()
        .into_iter()
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline
                .split(|&b| b == 0)
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect()
        })
        .collect();
    let [daemon] = &left[..] else {
        panic!("not one process left in the namespace: {left:?}")
    };
    assert_eq!(
        daemon.get(1..3),
        Some(&["daemon".into(), "--spawned".into()][..])
    );
    let answering = ["-A", "224.0.0.1", "-P", "28019"];
    assert!(daemon.windows(4).any(|w| w == answering), "{daemon:?}");
    // It answers discovery: a client that may not start one finds it.
    latch(&ns, &group("224.0.0.1", "28019"))
        .args(["-d", "0", "-r", "turns", "--", "true"])
        .expect_success();
}

/// FLoM's debug-features.at "IPv6 multicast": a replier (`ipv6.multicast.server`) waits for
/// one datagram on ff01::1 and answers it; the requester (`ipv6.multicast.client`) sends
/// `HELLO`; each prints what FLoM's test expects, and both exit 0.
#[test]
fn flom_s_ipv6_multicast_debug_features_say_hello_and_welcome() {
    let ns = NetNs::create();
    let dir = tempfile::tempdir().unwrap();
    let out1 = dir.path().join("out1");
    let file = std::fs::File::create(&out1).unwrap();
    let mut server = latch(&ns, &["--debug-feature=ipv6.multicast.server"])
        .args(group("ff01::1", "28017"))
        .stdout(file)
        .background_keeping_stdout();
    // Sent again every 200 ms until the replier, starting beside it, has joined the group.
    let out2 = latch(&ns, &["--debug-feature=ipv6.multicast.client"])
        .args(group("ff01::1", "28017"))
        .args(["-D", "50", "-I", "200"])
        .expect_success();
    assert_eq!(
        out2,
        "Sent datagram is 'HELLO'\nArrived datagram is 'WELCOME'\n"
    );
    assert!(server.wait_within(STOP).success());
    assert_eq!(
        std::fs::read_to_string(&out1).unwrap(),
        "Arrived datagram is 'HELLO'\nSent datagram is 'WELCOME'\n"
    );
}

/// The multicast debug features without a replier, or without an IPv6 group: flom's
/// status 1, and why.
#[test]
fn the_multicast_debug_features_fail_with_status_1_saying_why() {
    let ns = NetNs::create();
    let started = Instant::now();
    let out = latch(&ns, &["--debug-feature=ipv6.multicast.client"])
        .args(group("ff01::1", "28018"))
        .args(["-D", "2", "-I", "100"])
        .expect_exit(1);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no answer from [ff01::1]:28018 after 2 attempts"),
        "{said}"
    );
    for feature in ["ipv6.multicast.server", "ipv6.multicast.client"] {
        let out = latch(&ns, &[&format!("--debug-feature={feature}")])
            .args(group("224.0.0.1", "28018"))
            .expect_exit(1);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("224.0.0.1 is not an IPv6 multicast group"),
            "{said}"
        );
        let out = latch(&ns, &[&format!("--debug-feature={feature}")]).expect_exit(1);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("give -A ADDRESS"), "{said}");
    }
}

/// `--discovery-ttl` (and `[Network] DiscoveryTTL`): the hop limit of the discovery
/// requests on the wire, as `tcpdump` inside the namespace sees them (IPv4's TTL, IPv6's hop
/// limit). IPv4 from a `-c` file's keys (`[Daemon] MulticastAddress MulticastPort`,
/// `[Network] DiscoveryTTL DiscoveryAttempts DiscoveryTimeout`), IPv6 from the options, on
/// ff02::1 out of `d0` (`-n`): an interface-local group's datagrams are only looped back,
/// which a capture does not see.
#[test]
fn the_discovery_ttl_is_the_requests_hop_limit_on_the_wire() {
    let files = tempfile::tempdir().unwrap();
    let conf = files.path().join("discovery.conf");
    std::fs::write(
        &conf,
        "[Daemon]\nMulticastAddress=224.0.0.1\nMulticastPort=28023\n\
         [Network]\nDiscoveryTTL=7\nDiscoveryAttempts=1\nDiscoveryTimeout=100\n",
    )
    .unwrap();
    let conf = conf.to_str().expect("a UTF-8 path");
    let options = [
        "-A",
        "ff02::1",
        "-n",
        "d0",
        "-P",
        "28023",
        "--discovery-ttl",
        "7",
        "-D",
        "1",
        "-I",
        "100",
    ];
    let cases: [(&[&str], &str, &str); 2] = [
        (&["-c", conf], "224.0.0.1", "ttl 7,"),
        (&options, "ff02::1", "hlim 7,"),
    ];
    for (args, address, seen) in cases {
        let ns = NetNs::create();
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        let file = |path: &Path| std::fs::File::create(path).unwrap();
        let mut dump = ns
            .command("tcpdump")
            .args(["-l", "-n", "-v", "-i", "any", "-c", "1"])
            .args(["udp", "port", "28023"])
            .stdout(file(&out))
            .stderr(file(&err))
            .background_keeping_stdout();
        wait_for("tcpdump to listen", DAEMON_START, || {
            let said = std::fs::read_to_string(&err).ok()?;
            said.contains("listening on").then_some(())
        });
        latch(&ns, args)
            .args(["-d", "0", "--", "true"])
            .expect_exit(99);
        assert!(dump.wait_within(STOP).success(), "tcpdump failed");
        let dumped = std::fs::read_to_string(&out).unwrap();
        assert!(dumped.contains(seen), "{address}: {seen} in {dumped}");
        assert!(dumped.contains(&format!("{address}.28023")), "{dumped}");
    }
}
