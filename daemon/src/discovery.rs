//! Multicast discovery, the daemon's side (FLoM's `flom_listen_udp` and
//! `flom_accept_discover_reply`): a UDP socket bound to the multicast port on every
//! address and joined to the group, and a thread that answers each discovery request with
//! where the daemon listens on TCP.
//!
//! Answers datagrams and nothing else: it never touches the lock table or a client's
//! connection, so the server's loop does not know it exists. What a request and an answer
//! look like is [`crate::wire`]'s.

#![forbid(unsafe_code)]

use crate::wire::write::format_discover_answer;
use crate::wire::{parse_discover_request, MAX_MESSAGE};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// The multicast group the daemon answers on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub address: IpAddr,
    pub port: u16,
    /// The interface to join an IPv6 group on (`-n`'s index); 0 lets the kernel choose, as
    /// FLoM always does.
    pub interface: u32,
}

/// What the answers say: the TCP address as configured (none when the daemon listens on
/// every address: the client then connects to where the answer came from) and the port
/// the daemon actually listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listening {
    pub address: Option<String>,
    pub port: u16,
}

/// Binds and joins the group now (so that errors are the caller's), then answers on a
/// thread of its own for the rest of the process's life.
pub fn spawn(group: &Group, listening: &Listening) -> io::Result<()> {
    let socket = join(group)?;
    let answer = format_discover_answer(listening.address.as_deref(), listening.port);
    std::thread::Builder::new()
        .name("latch-discovery".into())
        .spawn(move || answer_forever(&socket, &answer))?;
    Ok(())
}

/// A UDP socket on the group's port, every address, SO_REUSEADDR (as FLoM's), joined to
/// the group.
fn join(group: &Group) -> io::Result<UdpSocket> {
    let any: IpAddr = match group.address {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let local = SocketAddr::new(any, group.port);
    let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&local.into())?;
    match group.address {
        IpAddr::V4(g) => socket.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED)?,
        IpAddr::V6(g) => socket.join_multicast_v6(&g, group.interface)?,
    }
    Ok(socket.into())
}

/// Answers every discovery request; anything else is logged and dropped. A failed receive
/// or send is logged and the next datagram served (a pause keeps a persistent error from
/// spinning).
fn answer_forever(socket: &UdpSocket, answer: &[u8]) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("discovery: cannot receive: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let datagram = buf.get(..len).unwrap_or_default();
        if let Err(e) = parse_discover_request(datagram) {
            log::info!("discovery: ignored a datagram from {from}: {e}");
            continue;
        }
        log::info!("discovery: request from {from}");
        if let Err(e) = socket.send_to(answer, from) {
            log::warn!("discovery: cannot answer {from}: {e}");
        }
    }
}
