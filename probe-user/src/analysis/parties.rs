//! Parties: who is behind each connection. A Unix-socket peer belongs to the outermost of
//! its ancestors that is itself a peer (so `latch -r A -- latch -r B -- cmd` is one party,
//! holding A and waiting for B); a TCP peer is its address; a peer with neither is its
//! connection alone.
//!
//! Takes the state and the process table; decides nothing about locks.

use super::processes::ProcessTable;
use latch_probe_common::doc::StateDoc;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

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
    by_conn: FxHashMap<u64, usize>,
}

impl Parties {
    pub fn resolve(state: &StateDoc, processes: &ProcessTable) -> Parties {
        let peers = peers(state);
        let peer_pids: FxHashSet<u32> = peers.iter().filter_map(|p| p.pid).collect();
        let mut outermost = Outermost::new(processes, &peer_pids);
        let mut parties = Parties::default();
        let mut by_key: FxHashMap<Key<'_>, usize> = FxHashMap::default();
        by_key.reserve(peers.len());
        parties.by_conn.reserve(peers.len());
        for peer in &peers {
            let key = match (peer.pid, peer.tcp) {
                (Some(pid), _) => Key::Process(outermost.of(pid)),
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

/// The outermost peer process among a pid and its ancestors, remembered for every process
/// on the way: the peers of one tree share their ancestors, so each is looked up once.
struct Outermost<'a> {
    processes: &'a ProcessTable,
    peers: &'a FxHashSet<u32>,
    /// For each process seen, the outermost peer among it and its ancestors, if any.
    known: FxHashMap<u32, Option<u32>>,
}

impl<'a> Outermost<'a> {
    fn new(processes: &'a ProcessTable, peers: &'a FxHashSet<u32>) -> Outermost<'a> {
        Outermost {
            processes,
            peers,
            known: FxHashMap::default(),
        }
    }

    /// `pid`'s party: its outermost peer ancestor, or itself.
    fn of(&mut self, pid: u32) -> u32 {
        let mut chain = Vec::new();
        let mut above = None;
        for at in self.processes.ancestry(pid) {
            if let Some(&known) = self.known.get(&at) {
                above = known;
                break;
            }
            chain.push(at);
        }
        // From the top down: the first peer met is the outermost.
        for &at in chain.iter().rev() {
            if above.is_none() && self.peers.contains(&at) {
                above = Some(at);
            }
            self.known.insert(at, above);
        }
        above.unwrap_or(pid)
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
    state
        .requests()
        .map(|r| Peer::new(r.conn, &r.peer_name, r.peer_pid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::conflict::tests::entry;
    use super::super::processes::ProcessInfo;
    use super::*;
    use latch_probe_common::doc::{EntryDoc, LockerDoc, Source, STATE_SCHEMA};
    use latch_probe_common::ResourceType;

    #[test]
    fn peers_of_one_tree_are_one_party_whatever_their_order() {
        // 5 → 10 → 11 → {12, 13}; 30 is a child of 12 that is no peer; 40 is alone.
        let mut processes = ProcessTable::unknown();
        for (pid, ppid) in [(10, 5), (11, 10), (12, 11), (13, 11), (30, 12), (40, 5)] {
            processes.processes.insert(
                pid,
                ProcessInfo {
                    ppid,
                    cmdline: vec![format!("cmd{pid}")],
                },
            );
        }
        // The deepest first, so the walk from 13 meets what the walk from 12 remembered.
        let holders: Vec<EntryDoc> = [(1, 12), (2, 13), (3, 10), (4, 40), (5, 30)]
            .iter()
            .map(|&(conn, pid)| {
                let mut holder = entry(conn, "A", None, None);
                holder.request.peer_pid = Some(pid);
                holder
            })
            .collect();
        let state = StateDoc {
            schema: STATE_SCHEMA.into(),
            source: Source::Live,
            pid: 1,
            version: "0".into(),
            generation: 2,
            torn: false,
            lockers: vec![LockerDoc {
                id: 1,
                resource_name: "A".into(),
                resource_type: ResourceType::Simple,
                created_ns: 0,
                holders,
                waitings: vec![],
            }],
            incubator: vec![],
        };
        let parties = Parties::resolve(&state, &processes);
        let of = |conn| &parties.list[parties.of(conn).expect("a party")];
        for conn in [1, 2, 3, 5] {
            assert_eq!(of(conn).name, "pid 10", "conn {conn}");
        }
        assert_eq!(of(1).pids, [10, 12, 13, 30]);
        assert_eq!(of(1).command.as_deref(), Some("cmd10"));
        assert_eq!(
            (of(4).name.as_str(), of(4).conns.as_slice()),
            ("pid 40", &[4][..])
        );
        assert_eq!(parties.list.len(), 2);
    }
}
