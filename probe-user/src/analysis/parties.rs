//! Parties: who is behind each connection. A Unix-socket peer belongs to the outermost of
//! its ancestors that is itself a peer (so `latch -r A -- latch -r B -- cmd` is one party,
//! holding A and waiting for B); a TCP peer is its address; a peer with neither is its
//! connection alone.
//!
//! Takes the state and the process table; decides nothing about locks.

use super::processes::ProcessTable;
use latch_probe_common::doc::StateDoc;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// One party, with the connections and processes it is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Party {
    /// `pid 1234`, `tcp 127.0.0.1/40000`, `conn 7`: stable within one state.
    pub name: String,
    /// The outermost process, when known.
    pub pid: Option<u32>,
    pub command: Option<String>,
    /// Every peer process of the party's connections.
    pub pids: Vec<u32>,
    pub conns: Vec<u64>,
    /// Every peer process of the party had exited when the state was taken.
    pub gone: bool,
}

/// The parties of one state, and which one each connection belongs to.
#[derive(Debug, Default)]
pub struct Parties {
    pub list: Vec<Party>,
    by_conn: HashMap<u64, usize>,
}

impl Parties {
    pub fn resolve(state: &StateDoc, processes: &ProcessTable) -> Parties {
        let peers = peers(state);
        let peer_pids: BTreeSet<u32> = peers.iter().filter_map(|p| p.pid).collect();
        let mut parties = Parties::default();
        let mut by_key: HashMap<Key<'_>, usize> = HashMap::with_capacity(peers.len());
        for peer in &peers {
            let key = match (peer.pid, peer.tcp) {
                (Some(pid), _) => Key::Process(
                    processes
                        .ancestry(pid)
                        .filter(|p| peer_pids.contains(p))
                        .last()
                        .unwrap_or(pid),
                ),
                (None, Some(addr)) => Key::Tcp(addr),
                (None, None) => Key::Conn(peer.conn),
            };
            let at = *by_key.entry(key).or_insert_with(|| {
                let root = match key {
                    Key::Process(pid) => Some(pid),
                    Key::Tcp(_) | Key::Conn(_) => None,
                };
                parties.list.push(Party {
                    name: key.to_string(),
                    pid: root,
                    command: root.and_then(|r| processes.command(r)),
                    pids: Vec::new(),
                    conns: Vec::new(),
                    gone: true,
                });
                parties.list.len() - 1
            });
            let party = &mut parties.list[at];
            party.conns.push(peer.conn);
            match peer.pid {
                Some(pid) => {
                    if !party.pids.contains(&pid) {
                        party.pids.push(pid);
                    }
                    party.gone &= processes.gone(pid);
                }
                None => party.gone = false,
            }
            parties.by_conn.insert(peer.conn, at);
        }
        for party in &mut parties.list {
            party.pids.sort_unstable();
            party.conns.sort_unstable();
        }
        parties
    }

    /// The index in [`Parties::list`] of the party of connection `conn`.
    pub fn of(&self, conn: u64) -> Option<usize> {
        self.by_conn.get(&conn).copied()
    }
}

/// What makes two connections one party.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key<'a> {
    /// The outermost peer process among the connection's peer and its ancestors.
    Process(u32),
    Tcp(&'a str),
    Conn(u64),
}

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Process(pid) => write!(f, "pid {pid}"),
            Key::Tcp(addr) => write!(f, "tcp {addr}"),
            Key::Conn(conn) => write!(f, "conn {conn}"),
        }
    }
}

struct Peer<'a> {
    conn: u64,
    pid: Option<u32>,
    tcp: Option<&'a str>,
}

impl<'a> Peer<'a> {
    /// A peer without a pid is a TCP peer, named by its address.
    fn new(conn: u64, name: &'a str, pid: Option<u32>) -> Peer<'a> {
        let tcp = (pid.is_none() && name != "localhost/").then_some(name);
        Peer { conn, pid, tcp }
    }
}

/// The peer pid of every connection of the state that has one, in document order.
pub fn peer_pids(state: &StateDoc) -> Vec<u32> {
    peers(state).iter().filter_map(|p| p.pid).collect()
}

/// Every connection of the state with its peer, in document order.
fn peers(state: &StateDoc) -> Vec<Peer<'_>> {
    let entries = state
        .lockers
        .iter()
        .flat_map(|l| l.holders.iter().chain(&l.waitings))
        .map(|e| Peer::new(e.conn, &e.peer_name, e.peer_pid));
    let incubating = state
        .incubator
        .iter()
        .map(|i| Peer::new(i.conn, &i.peer_name, i.peer_pid));
    entries.chain(incubating).collect()
}
