//! Multicast discovery, the client's side (FLoM's `flom_client_discover_udp`): send the
//! discovery request to the group up to `-D` times, wait `-I` ms for an answer after each,
//! and tell where the answering daemon listens on TCP; and the group's resolution, which
//! `latch daemon -A` shares.
//!
//! Sends and receives datagrams; connecting to what it found, and starting a daemon when
//! nobody answers, are [`super::autostart`]'s.

#![forbid(unsafe_code)]

use super::stream::is_timeout;
use latch::discovery::Group;
use latch::net::Endpoint;
use latch::wire::write::format_discover_request;
use latch::wire::{parse_discover_answer, MAX_MESSAGE};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

/// The multicast group as configured (`-A`, `-P`, `-n`): what a daemon started for it is
/// given, and what discovery resolves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Multicast {
    pub address: String,
    pub port: i32,
    pub interface: Option<String>,
}

/// How to look for a daemon (`-A -P -n -D -I --discovery-ttl`, and `-V`'s print-out of
/// the datagrams).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Discovery {
    pub multicast: Multicast,
    pub attempts: i32,
    pub timeout_ms: i32,
    pub ttl: i32,
    pub verbose: bool,
}

/// Why discovery found nothing, each with FLoM's return code and text (as
/// `flom_client_connect: ret_cod=RC (TEXT)` prints them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The group's address or interface does not resolve.
    Resolve,
    /// No socket could be set up for the group; also what a client that may not start a
    /// daemon (`-d 0`) says when nobody answers, and a failed TCP connect.
    Connect,
    /// The receive timeout (`-I`) was refused.
    SetSockOpt,
    Send,
    Receive,
    /// The answer is not a discovery answer.
    BadAnswer,
    /// Every attempt went unanswered.
    NoAnswer,
}

impl Failure {
    pub(crate) fn rc(self) -> i32 {
        match self {
            Failure::Resolve => -110,
            Failure::Connect => -105,
            Failure::SetSockOpt => -133,
            Failure::Send => -131,
            Failure::Receive => -127,
            Failure::BadAnswer => -206,
            Failure::NoAnswer => 7,
        }
    }

    pub(crate) fn text(self) -> &'static str {
        match self {
            Failure::Resolve => "ERROR: 'getaddrinfo' function returned an error condition",
            Failure::Connect => "ERROR: 'connect' function returned an error condition",
            Failure::SetSockOpt => "ERROR: 'setsockopt' function returned an error condition",
            Failure::Send => "ERROR: 'sendto' function returned an error condition",
            Failure::Receive => "ERROR: 'recvfrom' function returned an error condition",
            Failure::BadAnswer => {
                "ERROR: 'g_markup_parse_context_parse' function returned an error condition"
            }
            Failure::NoAnswer => "WARNING: peer is not ready to accept a connection",
        }
    }
}

/// The group `m` names: its address resolved (IPv6 only with an interface, as FLoM's
/// `getaddrinfo` hints say), the interface's index.
pub(crate) fn resolve(m: &Multicast) -> Result<Group, String> {
    let port = u16::try_from(m.port)
        .map_err(|_| format!("multicast port {} is not a UDP port (0 to 65535)", m.port))?;
    let interface = match &m.interface {
        Some(name) => nix::net::if_::if_nametoindex(name.as_str())
            .map_err(|e| format!("network interface {name:?}: {e}"))?,
        None => 0,
    };
    let address = (m.address.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("multicast address {:?}: {e}", m.address))?
        .map(|a| a.ip())
        .find(|ip| m.interface.is_none() || ip.is_ipv6())
        .ok_or_else(|| format!("multicast address {:?} has no usable address", m.address))?;
    Ok(Group {
        address,
        port,
        interface,
    })
}

/// Asks the group up to `attempts` times; the TCP endpoint of the first daemon that
/// answers: the address it names, or else the one its answer came from (with its scope,
/// for an IPv6 link-local address).
pub(crate) fn find(d: &Discovery) -> Result<Endpoint, Failure> {
    let group = resolve(&d.multicast).map_err(|e| {
        tracing::info!("discovery: {e}");
        Failure::Resolve
    })?;
    let socket = open(&group, d.ttl).map_err(|e| {
        tracing::info!("discovery: cannot set up a socket for {:?}: {e}", group);
        Failure::Connect
    })?;
    // FLoM's SO_RCVTIMEO: 0 waits for ever, a negative value is refused.
    let timeout = match u64::try_from(d.timeout_ms) {
        Ok(0) => None,
        Ok(ms) => Some(Duration::from_millis(ms)),
        Err(_) => return Err(Failure::SetSockOpt),
    };
    socket
        .set_read_timeout(timeout)
        .map_err(|_| Failure::SetSockOpt)?;
    let request = format_discover_request();
    let to = SocketAddr::new(group.address, group.port);
    let shown = format!("{}/{}", d.multicast.address, group.port);
    let mut buf = vec![0u8; MAX_MESSAGE];
    for attempt in 0..d.attempts {
        tracing::info!("discovery: request {attempt} to {to}");
        if d.verbose {
            say(&format!(
                "sending UDP multicast datagram to {shown} ('{}')",
                String::from_utf8_lossy(&request)
            ));
        }
        socket.send_to(&request, to).map_err(|e| {
            tracing::info!("discovery: cannot send to {to}: {e}");
            Failure::Send
        })?;
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => {
                let answer = buf.get(..len).unwrap_or_default();
                if d.verbose {
                    say(&format!(
                        "reply from {shown} is '{}'",
                        String::from_utf8_lossy(answer)
                    ));
                }
                return endpoint(answer, from);
            }
            Err(e) if is_timeout(&e) => {
                if d.verbose {
                    say(&format!("no reply from {shown}"));
                }
            }
            Err(e) => {
                tracing::info!("discovery: cannot receive: {e}");
                return Err(Failure::Receive);
            }
        }
    }
    Err(Failure::NoAnswer)
}

/// A UDP socket on an ephemeral port of every address, sending to the group with the
/// given hop limit (IPv4 keeps its low byte, as FLoM's `u_char` does).
pub(crate) fn open(group: &Group, ttl: i32) -> std::io::Result<UdpSocket> {
    let any: IpAddr = match group.address {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let local = SocketAddr::new(any, 0);
    let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    match group.address {
        IpAddr::V4(_) => {
            socket.set_multicast_if_v4(&Ipv4Addr::UNSPECIFIED)?;
            socket.set_multicast_ttl_v4(u32::from(ttl as u8))?;
        }
        IpAddr::V6(_) => {
            socket.set_multicast_if_v6(group.interface)?;
            let hops = u32::try_from(ttl)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
            socket.set_multicast_hops_v6(hops)?;
        }
    }
    socket.bind(&local.into())?;
    Ok(socket.into())
}

/// Where the answer says to connect.
fn endpoint(answer: &[u8], from: SocketAddr) -> Result<Endpoint, Failure> {
    let answer = parse_discover_answer(answer).map_err(|e| {
        tracing::info!("discovery: bad answer from {from}: {e}");
        Failure::BadAnswer
    })?;
    // An IPv6 address (named, or the source's) takes the scope the answer came with, as
    // FLoM's `flom_config_set_sin6_scope_id` does: a link-local one needs it.
    let scope = match from {
        SocketAddr::V6(a) if a.scope_id() != 0 => Some(a.scope_id()),
        _ => None,
    };
    let address = answer.address.unwrap_or_else(|| from.ip().to_string());
    let address = match scope {
        Some(id) if address.parse::<Ipv6Addr>().is_ok() => format!("{address}%{id}"),
        _ => address,
    };
    tracing::info!("discovery: {from} answered: {address} port {}", answer.port);
    Ok(Endpoint::Tcp(address, answer.port))
}

/// `-V`'s lines (and the debug features') go to stdout at once, as FLoM's `g_print`.
pub(crate) fn say(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use latch::wire::write::format_discover_answer;

    fn multicast(address: &str, port: i32, interface: Option<&str>) -> Multicast {
        Multicast {
            address: address.into(),
            port,
            interface: interface.map(str::to_owned),
        }
    }

    #[test]
    fn the_group_resolves_as_flom_s_hints_say() {
        let v6 = resolve(&multicast("ff01::1", 28015, None)).unwrap();
        assert_eq!(
            (v6.address, v6.port, v6.interface),
            ("ff01::1".parse().unwrap(), 28015, 0)
        );
        let lo = resolve(&multicast("ff01::1", 1, Some("lo"))).unwrap();
        assert_ne!(lo.interface, 0);
        // An interface asks for IPv6 only.
        let e = resolve(&multicast("224.0.0.1", 1, Some("lo"))).unwrap_err();
        assert!(e.contains("no usable address"), "{e}");
        let e = resolve(&multicast("224.0.0.1", 70000, None)).unwrap_err();
        assert!(e.contains("70000"), "{e}");
        let e = resolve(&multicast("ff01::1", 1, Some("no-such-if0"))).unwrap_err();
        assert!(e.contains("no-such-if0"), "{e}");
    }

    #[test]
    fn the_answer_says_where_to_connect() {
        let from4: SocketAddr = "10.0.0.9:28015".parse().unwrap();
        let from6 = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::9".parse().unwrap(),
            28015,
            0,
            3,
        ));
        let anonymous = format_discover_answer(None, 4242);
        let named = format_discover_answer(Some("fe80::7"), 4242);
        let named4 = format_discover_answer(Some("10.0.0.7"), 4242);
        let tcp = |a: &str| Ok(Endpoint::Tcp(a.into(), 4242));
        assert_eq!(endpoint(&anonymous, from4), tcp("10.0.0.9"));
        assert_eq!(endpoint(&anonymous, from6), tcp("fe80::9%3"));
        assert_eq!(endpoint(&named, from6), tcp("fe80::7%3"));
        assert_eq!(endpoint(&named4, from6), tcp("10.0.0.7"));
        assert_eq!(endpoint(b"<msg", from4), Err(Failure::BadAnswer));
    }
}
