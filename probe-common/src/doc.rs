//! The JSON documents: `latch.state/1` (a whole lock table) and `latch.event/1` (one change).
//!
//! `latch state --json` (the daemon) and `latch-probe dump --json` (from outside) print the
//! same [`StateDoc`], so one can be checked against the other; the daemon's `events` stream
//! and the probe's `trace --json` print the same [`EventDoc`].

use crate::{EntryState, EventKind, LockMode, ResourceType};
use serde::{Deserialize, Serialize};

pub const STATE_SCHEMA: &str = "latch.state/1";
pub const EVENT_SCHEMA: &str = "latch.event/1";
/// The last record an event reader gets when it was too slow and has been dropped.
pub const DROPPED_SCHEMA: &str = "latch.dropped/1";
/// A note in the probe's event stream that the kernel lost events (its ring buffer was full).
pub const LOST_SCHEMA: &str = "latch.lost/1";
/// An alert of `latch-probe watch`.
pub const ALERT_SCHEMA: &str = "latch.alert/1";

/// Who produced a state document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The daemon's own admin API.
    Daemon,
    /// The probe, reading a running process.
    Live,
    /// The probe, reading a core file.
    Core,
}

/// `latch.state/1`: lockers sorted by id, holders by conn, waitings in queue order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDoc {
    pub schema: String,
    pub source: Source,
    pub pid: u32,
    pub version: String,
    pub generation: u64,
    /// The generation was odd (a change in progress) and could not be waited out.
    pub torn: bool,
    pub lockers: Vec<LockerDoc>,
    pub incubator: Vec<IncubatedDoc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockerDoc {
    pub id: u64,
    /// The name of the request that created the locker (for hierarchical resources, one
    /// locker serves every path under the same first component).
    pub resource_name: String,
    pub resource_type: ResourceType,
    /// Wall-clock Unix nanoseconds.
    pub created_ns: u64,
    pub holders: Vec<EntryDoc>,
    pub waitings: Vec<EntryDoc>,
}

/// One client's request, as a holder, a waiter and an incubated client all show it (an
/// event carries the same fields, see [`EventDoc::request`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestDoc {
    pub conn: u64,
    /// The name this client asked for.
    pub resource_name: String,
    /// `localhost/` for Unix-socket peers, `ADDR/PORT` over TCP.
    pub peer_name: String,
    /// The peer's pid and uid from SO_PEERCRED; null over TCP.
    pub peer_pid: Option<u32>,
    pub peer_uid: Option<u32>,
    /// The daemon's descriptor of the connection (what `latch-probe evict` severs).
    #[serde(default)]
    pub fd: i32,
    /// Simple and hierarchical resources only.
    pub lock_mode: Option<LockMode>,
    /// Numeric resources only.
    pub quantity: Option<u64>,
    /// When the entry reached its present state (wall-clock Unix nanoseconds).
    pub since_ns: u64,
}

/// A holder or a waiter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDoc {
    #[serde(flatten)]
    pub request: RequestDoc,
    /// The granted set element, sequence number or timestamp; null until granted.
    pub element: Option<String>,
}

/// A client waiting for a resource that does not exist yet (`-e no`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncubatedDoc {
    #[serde(flatten)]
    pub request: RequestDoc,
    pub resource_type: ResourceType,
}

/// `latch.event/1`: one state change, with the entry's state before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDoc {
    pub schema: String,
    pub ts_ns: u64,
    pub kind: EventKind,
    /// Null for incubator events, which have no locker yet.
    pub locker: Option<u64>,
    pub resource_name: String,
    pub resource_type: ResourceType,
    /// Null for locker_create and locker_destroy.
    pub conn: Option<u64>,
    pub from: EntryState,
    pub to: EntryState,
    pub lock_mode: Option<LockMode>,
    pub quantity: Option<u64>,
    pub element: Option<String>,
    /// The entry's peer (request events; null for locker events), as in [`RequestDoc`].
    #[serde(default)]
    pub peer_name: Option<String>,
    #[serde(default)]
    pub peer_pid: Option<u32>,
    #[serde(default)]
    pub peer_uid: Option<u32>,
    /// The daemon's descriptor of the entry's connection (request events).
    #[serde(default)]
    pub fd: Option<i32>,
    /// The entry's `since_ns` after the change (request events), or the locker's
    /// `created_ns` (locker events): what a state built from events shows.
    #[serde(default)]
    pub since_ns: Option<u64>,
    /// The daemon thread that made the change (the probe's trace only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// The lock table's generation during the change, odd (the probe's trace only): the
    /// change is in a snapshot of generation G exactly when this is below G.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// A string of this event was longer than the probe copies and is cut (the probe's
    /// trace only; the daemon's own stream never cuts).
    #[serde(default, skip_serializing_if = "is_false")]
    pub cut: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The final record of an event stream whose reader fell behind and was dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedDoc {
    pub schema: String,
    /// How many events this reader did not get.
    pub missed: u64,
}

/// `latch.lost/1`: events the probe's ring buffer had no room for since the last such
/// record. A state built from the stream is no longer exact after one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostDoc {
    pub schema: String,
    pub ts_ns: u64,
    /// Lost since the previous `latch.lost/1` record.
    pub lost: u64,
    /// Lost since the trace began.
    pub total: u64,
}

/// What a `latch.alert/1` record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A waiter (or an incubated client) has waited longer than `--max-wait`.
    MaxWait,
    /// A holder has held longer than `--max-hold`.
    MaxHold,
    /// A holder's client process (its peer pid) is gone while the daemon still counts it
    /// as holding.
    ClientVanished,
    /// Parties wait for each other in a cycle (the events just closed it): none can ever
    /// be granted.
    Deadlock,
}

/// `latch.alert/1`: one entry past a bound, said once per entry and state; or a deadlock,
/// said once per cycle (its entry is the wait that closed it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDoc {
    pub schema: String,
    pub ts_ns: u64,
    pub alert: AlertKind,
    /// Null for a client in the incubator.
    pub locker: Option<u64>,
    pub resource_name: String,
    pub conn: u64,
    pub peer_name: String,
    pub peer_pid: Option<u32>,
    /// When the entry reached its state (Unix ns), and how long ago that was at `ts_ns`.
    pub since_ns: u64,
    pub for_ns: u64,
    /// `deadlock` only: the cycle, party by party, as `latch.report/1` tells it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<CycleStep>,
    /// `deadlock` only: the command that breaks the cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// One party of a deadlock's cycle: what it holds, what it waits for, and the entry of the
/// next party (`held_by`) in its way. Shared by `latch.report/1` and `latch.alert/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleStep {
    /// `pid 1234`, `tcp 127.0.0.1/40000` or `conn 7`.
    pub party: String,
    pub pid: Option<u32>,
    pub command: Option<String>,
    /// Every entry the party holds, in document order.
    pub holds: Vec<EntryRef>,
    pub waits: EntryRef,
    pub held_by: String,
    pub held: EntryRef,
}

/// An entry of a state, named the way a reader finds it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    pub locker: u64,
    pub conn: u64,
    pub resource_name: String,
    pub lock_mode: Option<LockMode>,
    pub quantity: Option<u64>,
    pub since_ns: u64,
}

impl StateDoc {
    /// The lockers and the incubator as text, one line an entry: what `latch state` and
    /// `latch-probe dump` print without `--json` (after their own header lines).
    pub fn entries_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for l in &self.lockers {
            let _ = writeln!(
                out,
                "locker {} {} ({})",
                l.id,
                l.resource_name,
                l.resource_type.name()
            );
            for (what, list) in [("holder ", &l.holders), ("waiting", &l.waitings)] {
                for e in list {
                    let _ = writeln!(out, "  {what} {}", e.request.text("", e.element.as_deref()));
                }
            }
        }
        for i in &self.incubator {
            let kind = format!(" ({})", i.resource_type.name());
            let _ = writeln!(out, "incubating {}", i.request.text(&kind, None));
        }
        out
    }

    /// Every request of the document: each locker's holders and waitings, then the
    /// incubator.
    pub fn requests(&self) -> impl Iterator<Item = &RequestDoc> {
        let entries = self
            .lockers
            .iter()
            .flat_map(|l| l.holders.iter().chain(&l.waitings));
        entries
            .map(|e| &e.request)
            .chain(self.incubator.iter().map(|i| &i.request))
    }

    /// Puts lockers, holders and the incubator in the document's canonical order, so two
    /// documents of one state compare equal whoever made them.
    pub fn canonicalize(&mut self) {
        self.lockers.sort_by_key(|l| l.id);
        for l in &mut self.lockers {
            l.holders.sort_by_key(|h| h.request.conn);
        }
        self.incubator.sort_by_key(|i| i.request.conn);
    }
}

impl RequestDoc {
    /// `conn 2 num[3] quantity 2 peer localhost/ pid 42`, with `kind` after the name: the
    /// request's part of a line of [`StateDoc::entries_text`].
    fn text(&self, kind: &str, element: Option<&str>) -> String {
        format!(
            "conn {} {}{kind}{} peer {}{}",
            self.conn,
            self.resource_name,
            details(self.lock_mode, self.quantity, element),
            self.peer_name,
            self.peer_pid
                .map(|p| format!(" pid {p}"))
                .unwrap_or_default(),
        )
    }
}

impl EventDoc {
    /// An event of `kind` at `ts_ns` taking an entry from `from` to `to`, with nothing else
    /// known yet (no locker, entry, peer or name): builders fill in what they have.
    pub fn new(ts_ns: u64, kind: EventKind, from: EntryState, to: EntryState) -> EventDoc {
        EventDoc {
            schema: EVENT_SCHEMA.to_owned(),
            ts_ns,
            kind,
            locker: None,
            resource_name: String::new(),
            resource_type: ResourceType::Simple,
            conn: None,
            from,
            to,
            lock_mode: None,
            quantity: None,
            element: None,
            peer_name: None,
            peer_pid: None,
            peer_uid: None,
            fd: None,
            since_ns: None,
            tid: None,
            generation: None,
            cut: false,
        }
    }

    /// The request the event is about, as a state entry built from events shows it after
    /// the change; none for locker events (no conn). What a stream of before the peer
    /// fields does not carry reads as unknown: no peer name, descriptor -1, and the
    /// event's own time as `since_ns`.
    pub fn request(&self) -> Option<RequestDoc> {
        Some(RequestDoc {
            conn: self.conn?,
            resource_name: self.resource_name.clone(),
            peer_name: self.peer_name.clone().unwrap_or_default(),
            peer_pid: self.peer_pid,
            peer_uid: self.peer_uid,
            fd: self.fd.unwrap_or(-1),
            lock_mode: self.lock_mode,
            quantity: self.quantity,
            since_ns: self.since_ns.unwrap_or(self.ts_ns),
        })
    }

    /// Makes this the event of `request` (its conn, name, peer, mode, quantity and since).
    pub fn set_request(&mut self, request: RequestDoc) {
        // Taken apart whole, so a field added to the request cannot be forgotten here.
        let RequestDoc {
            conn,
            resource_name,
            peer_name,
            peer_pid,
            peer_uid,
            fd,
            lock_mode,
            quantity,
            since_ns,
        } = request;
        self.conn = Some(conn);
        self.resource_name = resource_name;
        self.peer_name = Some(peer_name);
        self.peer_pid = peer_pid;
        self.peer_uid = peer_uid;
        self.fd = Some(fd);
        self.lock_mode = lock_mode;
        self.quantity = quantity;
        self.since_ns = Some(since_ns);
    }

    /// The event as one line of text, in the manner of vminfod's `events`:
    /// `[2026-11-21T22:01:24.123Z] locker 3 num[3]: conn 4 enqueued, quantity 2`. What
    /// `latch events` and `latch-probe trace` print without `--json`.
    pub fn line(&self) -> String {
        self.borrowed().to_string()
    }

    /// The same event with its strings borrowed.
    pub fn borrowed(&self) -> EventRef<'_> {
        EventRef {
            schema: &self.schema,
            ts_ns: self.ts_ns,
            kind: self.kind,
            locker: self.locker,
            resource_name: &self.resource_name,
            resource_type: self.resource_type,
            conn: self.conn,
            from: self.from,
            to: self.to,
            lock_mode: self.lock_mode,
            quantity: self.quantity,
            element: self.element.as_deref(),
            peer_name: self.peer_name.as_deref(),
            peer_pid: self.peer_pid,
            peer_uid: self.peer_uid,
            fd: self.fd,
            since_ns: self.since_ns,
            tid: self.tid,
            generation: self.generation,
            cut: self.cut,
        }
    }
}

/// A `latch.event/1` whose strings are borrowed (from a trace record, say): it serializes
/// to exactly the JSON of the [`EventDoc`] with the same fields (the same names, order and
/// omissions), and its `Display` is [`EventDoc::line`], so a writer needs no owned copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct EventRef<'a> {
    pub schema: &'a str,
    pub ts_ns: u64,
    pub kind: EventKind,
    pub locker: Option<u64>,
    pub resource_name: &'a str,
    pub resource_type: ResourceType,
    pub conn: Option<u64>,
    pub from: EntryState,
    pub to: EntryState,
    pub lock_mode: Option<LockMode>,
    pub quantity: Option<u64>,
    pub element: Option<&'a str>,
    pub peer_name: Option<&'a str>,
    pub peer_pid: Option<u32>,
    pub peer_uid: Option<u32>,
    pub fd: Option<i32>,
    pub since_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    #[serde(skip_serializing_if = "is_false")]
    pub cut: bool,
}

impl EventRef<'_> {
    /// The event with its strings owned.
    pub fn to_doc(&self) -> EventDoc {
        EventDoc {
            schema: self.schema.to_owned(),
            ts_ns: self.ts_ns,
            kind: self.kind,
            locker: self.locker,
            resource_name: self.resource_name.to_owned(),
            resource_type: self.resource_type,
            conn: self.conn,
            from: self.from,
            to: self.to,
            lock_mode: self.lock_mode,
            quantity: self.quantity,
            element: self.element.map(str::to_owned),
            peer_name: self.peer_name.map(str::to_owned),
            peer_pid: self.peer_pid,
            peer_uid: self.peer_uid,
            fd: self.fd,
            since_ns: self.since_ns,
            tid: self.tid,
            generation: self.generation,
            cut: self.cut,
        }
    }
}

impl EventRef<'_> {
    /// The event as JSON: byte for byte what `serde_json` writes for it (a property test
    /// says so), with the keys written as constants and the strings escaped by `serde_json`
    /// itself, for a trace that writes tens of thousands a second.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let w = &mut *out;
        w.write_all(b"{\"schema\":")?;
        json_str(w, self.schema)?;
        w.write_all(b",\"ts_ns\":")?;
        json_uint(w, self.ts_ns)?;
        json_name(w, b",\"kind\":", self.kind.name())?;
        w.write_all(b",\"locker\":")?;
        json_opt(w, self.locker, json_uint)?;
        w.write_all(b",\"resource_name\":")?;
        json_str(w, self.resource_name)?;
        json_name(w, b",\"resource_type\":", self.resource_type.name())?;
        w.write_all(b",\"conn\":")?;
        json_opt(w, self.conn, json_uint)?;
        json_name(w, b",\"from\":", self.from.name())?;
        json_name(w, b",\"to\":", self.to.name())?;
        w.write_all(b",\"lock_mode\":")?;
        match self.lock_mode {
            Some(mode) => json_name(w, b"", mode.short_name())?,
            None => w.write_all(b"null")?,
        }
        w.write_all(b",\"quantity\":")?;
        json_opt(w, self.quantity, json_uint)?;
        w.write_all(b",\"element\":")?;
        json_opt(w, self.element, json_str)?;
        w.write_all(b",\"peer_name\":")?;
        json_opt(w, self.peer_name, json_str)?;
        w.write_all(b",\"peer_pid\":")?;
        json_opt(w, self.peer_pid, json_uint)?;
        w.write_all(b",\"peer_uid\":")?;
        json_opt(w, self.peer_uid, json_uint)?;
        w.write_all(b",\"fd\":")?;
        json_opt(w, self.fd, |w, fd| {
            w.write_all(itoa::Buffer::new().format(fd).as_bytes())
        })?;
        w.write_all(b",\"since_ns\":")?;
        json_opt(w, self.since_ns, json_uint)?;
        if let Some(tid) = self.tid {
            w.write_all(b",\"tid\":")?;
            json_uint(w, tid)?;
        }
        if let Some(generation) = self.generation {
            w.write_all(b",\"generation\":")?;
            json_uint(w, generation)?;
        }
        if self.cut {
            w.write_all(b",\"cut\":true")?;
        }
        w.write_all(b"}")
    }
}

/// A JSON string. One without a byte `serde_json` escapes (a control character, a quote or a
/// backslash; nothing else) is written as it is, which is what `serde_json` writes for it.
fn json_str<W: std::io::Write>(w: &mut W, s: &str) -> std::io::Result<()> {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        return serde_json::to_writer(w, s).map_err(std::io::Error::from);
    }
    w.write_all(b"\"")?;
    w.write_all(s.as_bytes())?;
    w.write_all(b"\"")
}

fn json_uint<W: std::io::Write>(w: &mut W, n: impl itoa::Integer) -> std::io::Result<()> {
    w.write_all(itoa::Buffer::new().format(n).as_bytes())
}

/// `key` then `name` as a JSON string: names are plain ASCII, with nothing to escape.
fn json_name<W: std::io::Write>(w: &mut W, key: &[u8], name: &str) -> std::io::Result<()> {
    w.write_all(key)?;
    w.write_all(b"\"")?;
    w.write_all(name.as_bytes())?;
    w.write_all(b"\"")
}

fn json_opt<W: std::io::Write, T>(
    w: &mut W,
    value: Option<T>,
    some: impl FnOnce(&mut W, T) -> std::io::Result<()>,
) -> std::io::Result<()> {
    match value {
        Some(v) => some(w, v),
        None => w.write_all(b"null"),
    }
}

impl std::fmt::Display for EventRef<'_> {
    /// [`EventDoc::line`], written piece by piece (no string is built for it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.ts_ns);
        write!(f, "[{}] ", humantime::format_rfc3339_millis(at))?;
        match self.locker {
            Some(id) => write!(f, "locker {id}")?,
            None => f.write_str("incubator")?,
        }
        let cut = if self.cut { " (cut)" } else { "" };
        write!(f, " {}{cut}: ", self.resource_name)?;
        let Some(conn) = self.conn else {
            return write!(f, "{} ({})", self.kind.verb(), self.resource_type.name());
        };
        write!(f, "conn {conn} {}", self.kind.verb())?;
        // The details after ", ", each but the first after a space.
        let mut sep = ", ";
        let mut part = |f: &mut std::fmt::Formatter<'_>, what: std::fmt::Arguments<'_>| {
            let written = write!(f, "{sep}{what}");
            sep = " ";
            written
        };
        if let Some(m) = self.lock_mode {
            part(f, format_args!("{}", m.short_name()))?;
        }
        if let Some(q) = self.quantity {
            part(f, format_args!("quantity {q}"))?;
        }
        if let Some(e) = self.element {
            part(f, format_args!("element {e}"))?;
        }
        Ok(())
    }
}

/// ` EX`, ` quantity 2`, ` element red`: the parts an entry has.
fn details(mode: Option<LockMode>, quantity: Option<u64>, element: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(m) = mode {
        s += " ";
        s += m.short_name();
    }
    if let Some(q) = quantity {
        s += &format!(" quantity {q}");
    }
    if let Some(e) = element {
        s += &format!(" element {e}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn option<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
        proptest::option::of(s)
    }

    /// Any event: every field, strings with quotes, escapes and non-ASCII.
    fn event() -> impl Strategy<Value = EventDoc> {
        let text = "[a-z\\\\\"\n\t\u{1}é😀 /\\[\\]0-9]{0,12}";
        let states = proptest::sample::select(vec![
            EntryState::None,
            EntryState::Incubating,
            EntryState::Waiting,
            EntryState::Holding,
        ]);
        let types = proptest::sample::select(vec![
            ResourceType::Simple,
            ResourceType::Numeric,
            ResourceType::Set,
            ResourceType::Hierarchical,
            ResourceType::Sequence,
            ResourceType::Timestamp,
        ]);
        (
            (
                any::<u64>(),
                proptest::sample::select(EventKind::ALL.to_vec()),
                option(any::<u64>()),
                text,
                types,
                option(any::<u64>()),
                states.clone(),
                states,
            ),
            (
                option(proptest::sample::select(LockMode::ALL.to_vec())),
                option(any::<u64>()),
                option(text),
                option(text),
                option(any::<u32>()),
                option(any::<u32>()),
                option(any::<i32>()),
                option(any::<u64>()),
            ),
            (option(any::<u32>()), option(any::<u64>()), any::<bool>()),
        )
            .prop_map(|(a, b, c)| EventDoc {
                schema: EVENT_SCHEMA.to_owned(),
                ts_ns: a.0 / 4,
                kind: a.1,
                locker: a.2,
                resource_name: a.3,
                resource_type: a.4,
                conn: a.5,
                from: a.6,
                to: a.7,
                lock_mode: b.0,
                quantity: b.1,
                element: b.2,
                peer_name: b.3,
                peer_pid: b.4,
                peer_uid: b.5,
                fd: b.6,
                since_ns: b.7,
                tid: c.0,
                generation: c.1,
                cut: c.2,
            })
    }

    proptest! {
        /// The borrowed form serializes, and its writer writes, exactly the owned form's
        /// JSON, and it converts back.
        #[test]
        fn a_borrowed_event_serializes_as_the_owned_one(doc in event()) {
            let owned = serde_json::to_string(&doc).expect("serializes");
            let borrowed = serde_json::to_string(&doc.borrowed()).expect("serializes");
            prop_assert_eq!(&borrowed, &owned);
            let mut written = Vec::new();
            doc.borrowed().write_json(&mut written).expect("writes");
            prop_assert_eq!(std::str::from_utf8(&written).expect("UTF-8"), &owned);
            prop_assert_eq!(doc.borrowed().to_doc(), doc.clone());
            let back: EventDoc = serde_json::from_str(&borrowed).expect("parses");
            prop_assert_eq!(back, doc);
        }
    }

    #[test]
    fn names_are_the_serialized_ones() {
        for kind in EventKind::ALL {
            assert_eq!(serde_json::to_value(kind).ok(), Some(kind.name().into()));
        }
        for state in [
            EntryState::None,
            EntryState::Incubating,
            EntryState::Waiting,
            EntryState::Holding,
        ] {
            assert_eq!(serde_json::to_value(state).ok(), Some(state.name().into()));
        }
        for mode in LockMode::ALL {
            assert_eq!(
                serde_json::to_value(mode).ok(),
                Some(mode.short_name().into())
            );
        }
    }

    #[test]
    fn an_event_line_says_whose_what_and_the_details() {
        let mut doc = EventDoc::new(
            1_795_298_484_123_000_000,
            EventKind::Enqueue,
            EntryState::None,
            EntryState::Waiting,
        );
        doc.resource_name = "num[3]".into();
        doc.resource_type = ResourceType::Numeric;
        doc.locker = Some(3);
        doc.conn = Some(4);
        doc.quantity = Some(2);
        assert_eq!(
            doc.line(),
            "[2026-11-21T22:01:24.123Z] locker 3 num[3]: conn 4 enqueued, quantity 2"
        );
        doc.lock_mode = Some(LockMode::EX);
        doc.element = Some("red".into());
        doc.cut = true;
        assert_eq!(
            doc.line(),
            "[2026-11-21T22:01:24.123Z] locker 3 num[3] (cut): conn 4 enqueued, EX quantity 2 \
             element red"
        );
        doc.lock_mode = None;
        doc.quantity = None;
        doc.element = None;
        doc.locker = None;
        assert_eq!(
            doc.line(),
            "[2026-11-21T22:01:24.123Z] incubator num[3] (cut): conn 4 enqueued"
        );
        doc.conn = None;
        doc.kind = EventKind::LockerCreate;
        assert_eq!(
            doc.line(),
            "[2026-11-21T22:01:24.123Z] incubator num[3] (cut): created (numeric)"
        );
    }

    /// A `latch.state/1` document with every field of every kind of entry set (and one
    /// waiter with its nullable fields null), as the daemon and the probe print it.
    const STATE_TEXT: &str = concat!(
        r#"{"schema":"latch.state/1","source":"live","pid":4242,"version":"0.1.0","#,
        r#""generation":8,"torn":false,"lockers":[{"id":3,"resource_name":"colors","#,
        r#""resource_type":"set","created_ns":1795301152200217053,"holders":[{"conn":2,"#,
        r#""resource_name":"colors","peer_name":"localhost/","peer_pid":4243,"peer_uid":1000,"#,
        r#""fd":7,"lock_mode":"EX","quantity":2,"element":"red","#,
        r#""since_ns":18446744073709551615}],"waitings":[{"conn":4,"resource_name":"colors","#,
        r#""peer_name":"127.0.0.1/6000","peer_pid":null,"peer_uid":null,"fd":9,"#,
        r#""lock_mode":null,"quantity":null,"element":null,"since_ns":1795301152200217054}]}],"#,
        r#""incubator":[{"conn":5,"resource_name":"later","resource_type":"numeric","#,
        r#""peer_name":"localhost/","peer_pid":4244,"peer_uid":0,"fd":11,"lock_mode":"PR","#,
        r#""quantity":3,"since_ns":1795301152200217055}]}"#,
    );

    /// A `latch.event/1` record with every field set, the probe's own ones too.
    const EVENT_TEXT: &str = concat!(
        r#"{"schema":"latch.event/1","ts_ns":1795301152200217056,"kind":"grant","locker":3,"#,
        r#""resource_name":"colors","resource_type":"set","conn":2,"from":"waiting","#,
        r#""to":"holding","lock_mode":"EX","quantity":2,"element":"red","#,
        r#""peer_name":"localhost/","peer_pid":4243,"peer_uid":1000,"fd":7,"#,
        r#""since_ns":18446744073709551615,"tid":4245,"generation":9,"cut":true}"#,
    );

    /// The documents read back and printed again are the same JSON: every key and value as
    /// it was; an event byte for byte. A state entry writes its request's fields first and
    /// its own (`element`, `resource_type`) after them, which moves those keys within the
    /// entry's object (a change of order only, which JSON readers do not see).
    #[test]
    fn documents_round_trip_to_the_same_text() {
        let state: StateDoc = serde_json::from_str(STATE_TEXT).unwrap();
        assert_eq!(state.lockers[0].holders[0].element.as_deref(), Some("red"));
        assert_eq!(state.incubator[0].resource_type, ResourceType::Numeric);
        let text: serde_json::Value = serde_json::from_str(STATE_TEXT).unwrap();
        assert_eq!(serde_json::to_value(&state).unwrap(), text);
        assert_eq!(
            serde_json::to_string(&state.lockers[0].waitings[0]).unwrap(),
            concat!(
                r#"{"conn":4,"resource_name":"colors","peer_name":"127.0.0.1/6000","#,
                r#""peer_pid":null,"peer_uid":null,"fd":9,"lock_mode":null,"quantity":null,"#,
                r#""since_ns":1795301152200217054,"element":null}"#,
            )
        );
        assert_eq!(
            serde_json::to_string(&state.incubator[0]).unwrap(),
            concat!(
                r#"{"conn":5,"resource_name":"later","peer_name":"localhost/","peer_pid":4244,"#,
                r#""peer_uid":0,"fd":11,"lock_mode":"PR","quantity":3,"#,
                r#""since_ns":1795301152200217055,"resource_type":"numeric"}"#,
            )
        );
        let event: EventDoc = serde_json::from_str(EVENT_TEXT).unwrap();
        assert_eq!(event.since_ns, Some(u64::MAX));
        assert_eq!(serde_json::to_string(&event).unwrap(), EVENT_TEXT);
        assert_eq!(
            event.request(),
            Some(RequestDoc {
                conn: 2,
                resource_name: "colors".into(),
                peer_name: "localhost/".into(),
                peer_pid: Some(4243),
                peer_uid: Some(1000),
                fd: 7,
                lock_mode: Some(LockMode::EX),
                quantity: Some(2),
                since_ns: u64::MAX,
            })
        );
        let mut rebuilt = EventDoc {
            element: event.element.clone(),
            locker: event.locker,
            resource_type: event.resource_type,
            tid: event.tid,
            generation: event.generation,
            cut: event.cut,
            ..EventDoc::new(event.ts_ns, event.kind, event.from, event.to)
        };
        rebuilt.set_request(event.request().unwrap());
        assert_eq!(rebuilt, event);
    }

    /// What an event of before the peer fields leaves unknown, and a locker event's lack
    /// of a request.
    #[test]
    fn event_requests_fill_in_the_unknown() {
        let mut event = EventDoc::new(5, EventKind::Enqueue, EntryState::None, EntryState::Waiting);
        assert_eq!(event.request(), None);
        event.conn = Some(2);
        let request = event.request().unwrap();
        assert_eq!((request.fd, request.since_ns), (-1, 5));
        assert_eq!(request.peer_name, "");
    }

    /// Documents of before `fd` was added still read, as descriptor 0.
    #[test]
    fn entries_without_fd_still_read() {
        let without_fd = STATE_TEXT
            .replace(r#""fd":7,"#, "")
            .replace(r#""fd":11,"#, "");
        let state: StateDoc = serde_json::from_str(&without_fd).unwrap();
        assert_eq!(state.lockers[0].holders[0].request.fd, 0);
        assert_eq!(state.lockers[0].waitings[0].request.fd, 9);
        assert_eq!(state.incubator[0].request.fd, 0);
    }

    #[test]
    fn entries_text_names_every_entry() {
        let request = RequestDoc {
            conn: 2,
            resource_name: "num[3]".into(),
            peer_name: "localhost/".into(),
            peer_pid: Some(42),
            peer_uid: Some(0),
            fd: 7,
            lock_mode: None,
            quantity: Some(2),
            since_ns: 1,
        };
        let entry = |request| EntryDoc {
            request,
            element: None,
        };
        let doc = StateDoc {
            schema: STATE_SCHEMA.into(),
            source: Source::Live,
            pid: 1,
            version: "0".into(),
            generation: 2,
            torn: false,
            lockers: vec![LockerDoc {
                id: 3,
                resource_name: "num[3]".into(),
                resource_type: ResourceType::Numeric,
                created_ns: 1,
                holders: vec![entry(request.clone())],
                waitings: vec![entry(RequestDoc {
                    conn: 4,
                    peer_pid: None,
                    ..request
                })],
            }],
            incubator: vec![IncubatedDoc {
                request: RequestDoc {
                    conn: 5,
                    resource_name: "x".into(),
                    peer_name: "127.0.0.1/6000".into(),
                    peer_pid: None,
                    peer_uid: None,
                    fd: 9,
                    lock_mode: Some(LockMode::PR),
                    quantity: None,
                    since_ns: 1,
                },
                resource_type: ResourceType::Simple,
            }],
        };
        assert_eq!(
            doc.entries_text(),
            "locker 3 num[3] (numeric)\n\
             \x20 holder  conn 2 num[3] quantity 2 peer localhost/ pid 42\n\
             \x20 waiting conn 4 num[3] quantity 2 peer localhost/\n\
             incubating conn 5 x (simple) PR peer 127.0.0.1/6000\n"
        );
    }
}
