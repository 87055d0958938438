//! FLoM's `--debug-feature`: the checks of a machine's network set-up that FLoM's own test
//! suite runs before it trusts multicast and TLS there (`tests/debug-features.at`). An IPv6
//! multicast replier (`ipv6.multicast.server`: waits for one datagram on the group, prints
//! it, answers `WELCOME`) and requester (`ipv6.multicast.client`: sends `HELLO`, prints the
//! answer); a TLS server (`tls.server`: accepts one connection on `-a`/`-p`) and client
//! (`tls.client`) that swap their unique ids after the handshake, each checking the other's
//! certificate and, with `--tls-check-peer-id`, that the id it got is that certificate's CN.
//!
//! Each prints what FLoM's prints and gives flom's status: 0 when it worked, 1 when not (with
//! the reason on stderr, where FLoM has only its trace). It speaks no lock protocol.

#![forbid(unsafe_code)]

use super::autostart::Route;
use super::client::TlsJob;
use super::discover::{self, say, Discovery};
use super::session::machine_id;
use super::stream::{self, is_timeout, ClientStream};
use latch::net::Endpoint;
use latch::tls::{PeerCert, Tls, TlsError};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

/// One of FLoM's debug features, by the name `--debug-feature` takes (in any case, as
/// FLoM's `strcasecmp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feature {
    MulticastServer,
    MulticastClient,
    TlsServer,
    TlsClient,
}

impl Feature {
    const NAMES: [(&'static str, Feature); 4] = [
        ("ipv6.multicast.server", Feature::MulticastServer),
        ("ipv6.multicast.client", Feature::MulticastClient),
        ("tls.server", Feature::TlsServer),
        ("tls.client", Feature::TlsClient),
    ];

    /// The feature `name` names; else the message that lists them.
    pub(crate) fn named(name: &str) -> Result<Feature, String> {
        Feature::NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, feature)| *feature)
            .ok_or_else(|| {
                let known: Vec<&str> = Feature::NAMES.iter().map(|(n, _)| *n).collect();
                format!(
                    "--debug-feature: there is no feature '{name}' (there are {})",
                    known.join(", ")
                )
            })
    }
}

/// What the ids are sent with, and end at: FLoM's closing tag of a message.
const END: &str = "</msg>";
/// The replier's answer and the requester's datagram.
const WELCOME: &str = "WELCOME";
const HELLO: &str = "HELLO";
/// The longest datagram or id read: FLoM's buffers are 2048 and 512 bytes.
const MAX_READ: usize = 2048;

/// Runs `feature` with the configuration's route (`-A`… or `-a`/`-p`) and TLS; the exit
/// status.
pub(crate) fn run(feature: Feature, route: &Route, tls: Option<&TlsJob>) -> i32 {
    let done = match feature {
        Feature::MulticastServer => discovery(route).and_then(multicast_server),
        Feature::MulticastClient => discovery(route).and_then(multicast_client),
        Feature::TlsServer => tls_endpoint(route, tls).and_then(|(e, t)| tls_server(e, t)),
        Feature::TlsClient => tls_endpoint(route, tls).and_then(|(e, t)| tls_client(e, t)),
    };
    match done {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("latch: --debug-feature: {e}");
            1
        }
    }
}

fn discovery(route: &Route) -> Result<&Discovery, String> {
    match route {
        Route::Discover(d) => Ok(d),
        Route::Direct(_) => Err("an IPv6 multicast group is needed: give -A ADDRESS".into()),
    }
}

fn tls_endpoint<'a>(
    route: &'a Route,
    tls: Option<&'a TlsJob>,
) -> Result<(&'a Endpoint, &'a TlsJob), String> {
    let tls = tls.ok_or(
        "TLS is needed: give --tls-certificate, --tls-private-key and --tls-ca-certificate",
    )?;
    match route {
        Route::Direct(endpoint @ Endpoint::Tcp(..)) => Ok((endpoint, tls)),
        _ => Err("a TCP address is needed: give -a ADDRESS (and -p PORT)".into()),
    }
}

/// The group's IPv6 address and its socket address.
fn ipv6_group(d: &Discovery) -> Result<(Ipv6Addr, latch::discovery::Group), String> {
    let group = discover::resolve(&d.multicast)?;
    match group.address {
        IpAddr::V6(address) => Ok((address, group)),
        IpAddr::V4(_) => Err(format!(
            "{} is not an IPv6 multicast group",
            d.multicast.address
        )),
    }
}

/// Waits (for ever, as FLoM's) for one datagram to the group, answers it.
fn multicast_server(d: &Discovery) -> Result<(), String> {
    let (address, group) = ipv6_group(d)?;
    let socket = (|| {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        let any = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), group.port);
        socket.bind(&any.into())?;
        socket.join_multicast_v6(&address, group.interface)?;
        std::io::Result::Ok(UdpSocket::from(socket))
    })()
    .map_err(|e| format!("cannot join {address} port {}: {e}", group.port))?;
    let mut buf = [0u8; MAX_READ];
    let (len, from) = socket
        .recv_from(&mut buf)
        .map_err(|e| format!("cannot receive on {address}: {e}"))?;
    say(&format!(
        "Arrived datagram is '{}'",
        String::from_utf8_lossy(buf.get(..len).unwrap_or_default())
    ));
    socket
        .send_to(WELCOME.as_bytes(), from)
        .map_err(|e| format!("cannot answer {from}: {e}"))?;
    say(&format!("Sent datagram is '{WELCOME}'"));
    Ok(())
}

/// Sends `HELLO` to the group, prints the answer. Sent again after each `-I` ms without
/// one, `-D` times in all, as discovery does (FLoM's sends once and waits for ever, so a
/// replier that joins the group a moment late is never answered).
fn multicast_client(d: &Discovery) -> Result<(), String> {
    let (address, group) = ipv6_group(d)?;
    let socket = discover::open(&group, d.ttl)
        .map_err(|e| format!("cannot set up a socket for {address}: {e}"))?;
    let wait = u64::try_from(d.timeout_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    socket
        .set_read_timeout(wait)
        .map_err(|e| format!("cannot wait {} ms: {e}", d.timeout_ms))?;
    let to = SocketAddr::new(address.into(), group.port);
    let mut buf = [0u8; MAX_READ];
    for attempt in 0..d.attempts.max(1) {
        socket
            .send_to(HELLO.as_bytes(), to)
            .map_err(|e| format!("cannot send to {to}: {e}"))?;
        if attempt == 0 {
            say(&format!("Sent datagram is '{HELLO}'"));
        }
        match socket.recv_from(&mut buf) {
            Ok((len, _)) => {
                say(&format!(
                    "Arrived datagram is '{}'",
                    String::from_utf8_lossy(buf.get(..len).unwrap_or_default())
                ));
                return Ok(());
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(format!("cannot receive from {to}: {e}")),
        }
    }
    Err(format!(
        "no answer from {to} after {} attempts of {} ms",
        d.attempts.max(1),
        d.timeout_ms
    ))
}

/// Accepts one TLS connection, takes the client's id, checks it, sends its own.
fn tls_server(endpoint: &Endpoint, job: &TlsJob) -> Result<(), String> {
    let tls = Tls::server(&job.files).map_err(tls_error)?;
    let Endpoint::Tcp(address, port) = endpoint else {
        return Err(format!("{endpoint:?} is not a TCP address"));
    };
    let at = Endpoint::socket_addr(address, *port).map_err(|e| format!("{address}: {e}"))?;
    let listener = TcpListener::bind(at).map_err(|e| format!("cannot listen on {at}: {e}"))?;
    let (mut sock, from) = listener
        .accept()
        .map_err(|e| format!("cannot accept on {at}: {e}"))?;
    let mut conn = tls.accept().map_err(tls_error)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| {
            tracing::info!("TLS handshake with {from} failed: {e}");
            tls_error(TlsError::Accept)
        })?;
    }
    let peer = tls
        .check_peer(conn.peer_certificates())
        .map_err(tls_error)?;
    let mut stream = rustls::StreamOwned::new(conn, sock);
    swap_ids(&mut stream, &peer, job.check_peer_id, Order::ReceiveFirst)
}

/// Connects over TLS, sends its id, takes the server's and checks it.
fn tls_client(endpoint: &Endpoint, job: &TlsJob) -> Result<(), String> {
    let tls = Tls::client(&job.files).map_err(tls_error)?;
    let sock = stream::connect(endpoint).map_err(|e| format!("cannot connect: {e}"))?;
    let (mut stream, peer) = stream::secure(sock, &tls).map_err(tls_error)?;
    swap_ids(&mut stream, &peer, job.check_peer_id, Order::SendFirst)?;
    if let ClientStream::Tls(tls) = &mut stream {
        tls.conn.send_close_notify();
        let _ = tls.flush();
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    SendFirst,
    ReceiveFirst,
}

/// FLoM's exchange after the handshake: this machine's id then [`END`] one way, the
/// peer's the other, the peer's checked against its certificate when asked.
fn swap_ids(
    stream: &mut (impl Read + Write),
    peer: &PeerCert,
    check_peer_id: bool,
    order: Order,
) -> Result<(), String> {
    let send = |stream: &mut dyn Write| {
        stream
            .write_all(format!("{}{END}", machine_id()).as_bytes())
            .and_then(|()| stream.flush())
            .map_err(|e| format!("cannot send this machine's id: {e}"))
    };
    if order == Order::SendFirst {
        send(stream)?;
    }
    let id = read_id(stream)?;
    if check_peer_id {
        peer.check_id(Some(&id)).map_err(tls_error)?;
    }
    if order == Order::ReceiveFirst {
        send(stream)?;
    }
    Ok(())
}

/// The peer's id: what it sends before [`END`].
fn read_id(stream: &mut impl Read) -> Result<String, String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        if let Some(at) = got.windows(END.len()).position(|w| w == END.as_bytes()) {
            got.truncate(at);
            return String::from_utf8(got).map_err(|_| "the peer's id is not UTF-8".into());
        }
        if got.len() > MAX_READ {
            return Err(format!("the peer sent {MAX_READ} bytes and no {END}"));
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err(format!("the peer closed the connection before {END}")),
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot receive the peer's id: {e}")),
        }
    }
}

/// FLoM's error and its return code, as the client prints them.
fn tls_error(e: TlsError) -> String {
    format!("ret_cod={} ({e})", e.rc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_named_as_flom_names_them_in_any_case() {
        assert_eq!(
            Feature::named("ipv6.multicast.server"),
            Ok(Feature::MulticastServer)
        );
        assert_eq!(Feature::named("TLS.Client"), Ok(Feature::TlsClient));
        let e = Feature::named("tls").unwrap_err();
        assert!(
            e.contains("'tls'") && e.contains("ipv6.multicast.client"),
            "{e}"
        );
    }

    #[test]
    fn an_id_is_what_comes_before_the_closing_tag() {
        let mut bytes: &[u8] = b"abc-123</msg>trailing";
        assert_eq!(read_id(&mut bytes), Ok("abc-123".to_owned()));
        let mut cut: &[u8] = b"abc";
        let e = read_id(&mut cut).unwrap_err();
        assert!(e.contains("closed"), "{e}");
        let endless = vec![b'x'; 3 * MAX_READ];
        let e = read_id(&mut endless.as_slice()).unwrap_err();
        assert!(e.contains("no </msg>"), "{e}");
    }
}
