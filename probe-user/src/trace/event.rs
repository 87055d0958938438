//! One eBPF record turned into a `latch.event/1` document: the copied `Locker` and `Request`
//! bytes, with the strings they point to, read at the offsets [`super::layout`] compiled
//! from the DWARF when tracing started, by the same rules (and names) [`crate::model`] reads
//! a snapshot with. The document borrows its strings from the record ([`EventRef`]), so
//! decoding and writing an event allocate nothing.
//!
//! A record is untrusted like any memory of the daemon: a struct that does not decode gives
//! an [`EventError`] naming the event, never a panic. A string longer than the eBPF side
//! copies is shown cut (at a character boundary) and the event is marked `cut`.

use super::layout::{self, Copied, Miss};
use super::plan::TracePlan;
use latch_probe_common::doc::{EventRef, EVENT_SCHEMA};
use latch_probe_common::raw::{RawBlock, RawEvent, TextSlot};
use latch_probe_common::{EntryState, EventKind};
use nix::time::{clock_gettime, ClockId};
use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("a {kind} event could not be decoded: {what}")]
pub struct EventError {
    pub kind: String,
    pub what: String,
}

/// Decodes the records of one traced daemon.
pub struct EventDecoder<'p> {
    plan: &'p TracePlan,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC (what `bpf_ktime_get_ns` counts), in ns.
    realtime_offset_ns: i128,
}

impl<'p> EventDecoder<'p> {
    /// A decoder of the records made with `plan`; `realtime_offset_ns` is
    /// [`realtime_offset_ns`] measured once for the whole trace.
    pub fn new(plan: &'p TracePlan, realtime_offset_ns: i128) -> EventDecoder<'p> {
        EventDecoder {
            plan,
            realtime_offset_ns,
        }
    }

    pub fn decode<'r>(&self, raw: &'r RawEvent) -> Result<EventRef<'r>, EventError> {
        let kind = EventKind::from_raw(raw.kind).ok_or_else(|| EventError {
            kind: format!("#{}", raw.kind),
            what: "the record names no known event kind".to_owned(),
        })?;
        self.fields(kind, raw).map_err(|what| EventError {
            kind: format!("{kind:?}"),
            what,
        })
    }

    fn fields<'r>(&self, kind: EventKind, raw: &'r RawEvent) -> Result<EventRef<'r>, Miss> {
        let (l, r) = (&self.plan.locker, &self.plan.request);
        let locker = block_bytes(&raw.locker, "locker")?;
        let request = block_bytes(&raw.request, "request")?;
        let identity = match locker {
            Some(bytes) => Some((
                l.id.get(bytes, "Locker.id")?,
                l.rules.get(bytes, "Locker.rules")?,
            )),
            None => None,
        };
        let (from, to) = self.transition(kind, raw, identity.is_some())?;
        let text = |bytes, place, slot: TextSlot, what| {
            layout::text(bytes, place, &raw.texts[slot as usize], what)
        };
        let mut doc = EventRef {
            schema: EVENT_SCHEMA,
            ts_ns: self.wall_clock(raw.ktime_ns),
            kind,
            locker: identity.map(|(id, _)| id),
            resource_name: "",
            resource_type: identity.map_or(latch_probe_common::ResourceType::Simple, |i| i.1),
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
            tid: Some(raw.tid),
            generation: Some(raw.generation),
            cut: false,
        };
        match (locker, request) {
            (Some(bytes), None) => {
                // A locker event: the locker's own name was copied (and only then).
                let (name, cut) =
                    text(bytes, l.name, TextSlot::LockerName, "Locker.resource_name")?;
                doc.resource_name = name;
                doc.cut = cut;
                doc.since_ns = Some(l.created_ns.get(bytes, "Locker.created_ns")?);
            }
            (_, Some(bytes)) => {
                let (name, name_cut) =
                    text(bytes, r.name, TextSlot::Name, "Request.resource_name")?;
                let (peer, peer_cut) = text(bytes, r.peer_name, TextSlot::Peer, "Peer.name")?;
                doc.cut = name_cut || peer_cut;
                doc.resource_name = name;
                doc.peer_name = Some(peer);
                doc.conn = Some(r.conn.get(bytes, "Request.conn")?);
                doc.peer_pid = r
                    .peer_pid
                    .get(bytes, "Peer.pid", |i| i.get(bytes, "Peer.pid"))?;
                doc.peer_uid = r
                    .peer_uid
                    .get(bytes, "Peer.uid", |i| i.get(bytes, "Peer.uid"))?;
                doc.fd = Some(r.fd.get(bytes, "Peer.fd")?);
                let what = "Request.lock_mode";
                doc.lock_mode = r.lock_mode.get(bytes, what, |c| c.get(bytes, what))?;
                let what = "Request.quantity";
                doc.quantity = r.quantity.get(bytes, what, |i| i.get(bytes, what))?;
                doc.since_ns = Some(r.since_ns.get(bytes, "Request.since_ns")?);
                if locker.is_some() {
                    let what = "Request.element";
                    let element = r.element.get(bytes, what, |place| {
                        text(bytes, *place, TextSlot::Element, what)
                    })?;
                    doc.element = element.map(|(e, _)| e);
                    doc.cut |= element.is_some_and(|(_, cut)| cut);
                } else {
                    // An incubated request: its type is its own, there is no locker yet.
                    doc.resource_type = r.resource_type.get(bytes, "Request.resource_type")?;
                }
            }
            (None, None) => {
                return Err("neither its locker nor its request could be copied".to_owned())
            }
        }
        Ok(doc)
    }

    /// The entry's state before and after: fixed by each function (docs/contract.md), but
    /// for `grant`, whose `from` argument says, and `cancel`, which leaves the incubator
    /// when it has no locker.
    fn transition(
        &self,
        kind: EventKind,
        raw: &RawEvent,
        has_locker: bool,
    ) -> Result<(EntryState, EntryState), Miss> {
        use EntryState::*;
        Ok(match kind {
            EventKind::LockerCreate | EventKind::LockerDestroy => (None, None),
            EventKind::Incubate => (None, Incubating),
            EventKind::Promote => (Incubating, Waiting),
            EventKind::Enqueue => (None, Waiting),
            EventKind::Grant => (self.grant_from(raw)?, Holding),
            EventKind::Release => (Holding, None),
            EventKind::Cancel if has_locker => (Waiting, None),
            EventKind::Cancel => (Incubating, None),
        })
    }

    /// `grant`'s `from`, decoded from its register as the DWARF types it.
    fn grant_from(&self, raw: &RawEvent) -> Result<EntryState, Miss> {
        let (register, from) = &self.plan.grant_from;
        let bits = raw
            .args
            .get(*register as usize)
            .ok_or_else(|| format!("no argument register {register}"))?;
        from.get(Copied::whole(&bits.to_le_bytes()), "its `from` argument")
    }

    /// A `bpf_ktime_get_ns` time as wall-clock Unix nanoseconds.
    fn wall_clock(&self, ktime_ns: u64) -> u64 {
        u64::try_from(i128::from(ktime_ns) + self.realtime_offset_ns).unwrap_or(0)
    }
}

/// The copied bytes of a struct: none if the function has no such argument, an error if the
/// copy failed.
fn block_bytes<'r>(block: &'r RawBlock, what: &str) -> Result<Option<Copied<'r>>, Miss> {
    if block.address == 0 {
        return Ok(None);
    }
    let copied = Copied::of(block);
    if copied.is_empty() {
        return Err(format!(
            "the {what} at {:#x} could not be copied",
            block.address
        ));
    }
    Ok(Some(copied))
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC now: what turns an eBPF time into a wall-clock one.
pub fn realtime_offset_ns() -> i128 {
    let ns = |clock| {
        clock_gettime(clock)
            .map(|t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
            .unwrap_or(0)
    };
    // Both clocks are always there on Linux; a failure would give times of 1970, not a panic.
    let monotonic = ns(ClockId::CLOCK_MONOTONIC);
    ns(ClockId::CLOCK_REALTIME) - monotonic
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::plan::{self, TracePlan};
    use dwarfpeek::debuginfo::{Executable, TypeIndex};
    use dwarfpeek::memory::{LiveProcess, MemorySource};
    use latch_probe_common::doc::EventDoc;
    use latch_probe_common::raw::{RawText, Span, TraceConfig, BLOCK_BYTES, TEXT_BYTES};
    use latch_probe_common::{LockMode, ResourceType};
    use proptest::prelude::*;

    // Stand-ins for the daemon's types, with the contract's names (docs/contract.md), in
    // this test binary's DWARF: the decoder is compiled from them as from the daemon's.

    /// `grant`'s `from`: the shape of the daemon's entry state.
    #[allow(dead_code)]
    #[derive(Clone, Copy, Debug)]
    pub(super) enum Before {
        None,
        Incubating,
        Waiting,
        Holding,
    }

    #[allow(dead_code)]
    #[derive(Clone, Debug)]
    pub(super) enum Rules {
        Simple,
        Numeric { total: u64 },
        Set { elements: Vec<String>, next: usize },
        Hierarchical,
        Sequence { max: u64, next: u64 },
        Timestamp { format: String },
    }

    #[allow(dead_code)]
    #[derive(Clone, Debug)]
    pub(super) struct Locker {
        pub id: u64,
        pub resource_name: String,
        pub rules: Rules,
        pub created_ns: u64,
        pub lifespan_ms: u64,
        pub holders: Vec<Request>,
    }

    #[allow(dead_code)]
    #[derive(Clone, Debug)]
    pub(super) struct Peer {
        pub fd: i32,
        pub name: String,
        pub pid: Option<u32>,
        pub uid: Option<u32>,
    }

    #[allow(dead_code)]
    #[derive(Clone, Debug)]
    pub(super) struct Request {
        pub conn: u64,
        pub resource_name: String,
        pub resource_type: ResourceType,
        pub lock_mode: Option<LockMode>,
        pub quantity: Option<u64>,
        pub element: Option<String>,
        pub since_ns: u64,
        pub wait: bool,
        pub lifespan_ms: u64,
        pub peer: Peer,
    }

    /// All the stand-ins in one static: `.debug_aranges` leads to the unit that holds
    /// their types, so the index reads that unit and not every one.
    #[allow(dead_code)]
    pub(super) struct StandIns {
        locker: Option<Locker>,
        request: Option<Request>,
        before: Before,
    }
    pub(super) static STAND_INS: StandIns = StandIns {
        locker: None,
        request: None,
        before: Before::Waiting,
    };

    /// The register `grant`'s `from` is in, for these tests.
    const FROM_REGISTER: u32 = 2;
    const OFFSET_NS: i128 = 1_000;

    fn raw(kind: EventKind) -> RawEvent {
        RawEvent {
            generation: 3,
            tid: 7,
            kind: kind as u32,
            ..RawEvent::EMPTY
        }
    }

    /// The plan compiled from this binary's stand-ins, as `TracePlan::from_image` compiles
    /// it from the daemon's types; compiled once (reading the DWARF is slow).
    fn plan() -> &'static TracePlan {
        static PLAN: std::sync::OnceLock<TracePlan> = std::sync::OnceLock::new();
        PLAN.get_or_init(|| {
            let exe = Executable::open(&std::env::current_exe().expect("exe")).expect("open");
            let index = TypeIndex::on_demand(&exe).expect("index");
            std::hint::black_box(&STAND_INS);
            index
                .find_static(&exe, "latch_probe::trace::event::tests::STAND_INS")
                .expect("the stand-ins' static");
            let ty = |name: &str| {
                index
                    .by_name(&format!("latch_probe::trace::event::tests::{name}"))
                    .unwrap_or_else(|| panic!("{name} in this test's DWARF"))
            };
            let mut config = TraceConfig::EMPTY;
            let (locker, request, from) = plan::compile_types(
                &index,
                ty("Locker"),
                ty("Request"),
                ty("Before"),
                &mut config,
            )
            .expect("the stand-ins compile");
            TracePlan {
                probes: Vec::new(),
                config,
                locker,
                request,
                grant_from: (FROM_REGISTER, from),
            }
        })
    }

    /// The decoder of [`plan`].
    fn with_decoder(check: impl FnOnce(&EventDecoder<'_>)) {
        check(&EventDecoder::new(plan(), OFFSET_NS));
    }

    /// The bytes of `span` of a value of this process, read as the eBPF side reads the
    /// daemon's; the others are garbage, as in a reused ring buffer.
    fn block<T>(value: &T, span: Span) -> RawBlock {
        let (start, end) = (span.offset as usize, span.end() as usize);
        assert!(end <= std::mem::size_of::<T>().min(BLOCK_BYTES), "{span:?}");
        let mut block = RawBlock::EMPTY;
        block.bytes.fill(0xa5);
        block.address = (value as *const T) as u64;
        block.start = span.offset;
        block.len = span.len;
        LiveProcess::new(nix::unistd::getpid())
            .read(
                block.address + span.offset as u64,
                &mut block.bytes[start..end],
            )
            .expect("own memory");
        block
    }

    /// A string's bytes as the eBPF side copies them: at most TEXT_BYTES.
    fn text(s: &str) -> RawText {
        let mut text = RawText::EMPTY;
        let copied = s.len().min(TEXT_BYTES);
        text.address = s.as_ptr() as u64;
        text.claimed = s.len() as u64;
        text.len = copied as u32;
        text.bytes[..copied].copy_from_slice(&s.as_bytes()[..copied]);
        text
    }

    /// The record the uprobe on `kind`'s function writes for these arguments.
    fn record(kind: EventKind, locker: Option<&Locker>, request: Option<&Request>) -> RawEvent {
        let mut event = raw(kind);
        event.ktime_ns = 5;
        let config = &plan().config;
        if let Some(l) = locker {
            event.locker = block(l, config.locker_span[kind as usize]);
            if request.is_none() {
                event.texts[TextSlot::LockerName as usize] = text(&l.resource_name);
            }
        }
        if let Some(r) = request {
            event.request = block(r, config.request_span[kind as usize]);
            event.texts[TextSlot::Name as usize] = text(&r.resource_name);
            event.texts[TextSlot::Peer as usize] = text(&r.peer.name);
            if let Some(e) = &r.element {
                event.texts[TextSlot::Element as usize] = text(e);
            }
        }
        event
    }

    /// What the record of these arguments must decode to.
    fn expected(kind: EventKind, locker: Option<&Locker>, request: Option<&Request>) -> EventDoc {
        let (from, to) = match (kind, locker.is_some()) {
            (EventKind::Incubate, _) => (EntryState::None, EntryState::Incubating),
            (EventKind::Enqueue, _) => (EntryState::None, EntryState::Waiting),
            (EventKind::Release, _) => (EntryState::Holding, EntryState::None),
            (EventKind::Cancel, true) => (EntryState::Waiting, EntryState::None),
            (EventKind::Cancel, false) => (EntryState::Incubating, EntryState::None),
            _ => (EntryState::None, EntryState::None),
        };
        let cut = |s: &str| -> (String, bool) {
            let mut end = s.len().min(TEXT_BYTES);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            (s[..end].to_owned(), end < s.len())
        };
        let mut doc = EventDoc {
            tid: Some(7),
            generation: Some(3),
            ..EventDoc::new(1_005, kind, from, to)
        };
        if let Some(l) = locker {
            doc.locker = Some(l.id);
            doc.resource_type = match l.rules {
                Rules::Simple => ResourceType::Simple,
                Rules::Numeric { .. } => ResourceType::Numeric,
                Rules::Set { .. } => ResourceType::Set,
                Rules::Hierarchical => ResourceType::Hierarchical,
                Rules::Sequence { .. } => ResourceType::Sequence,
                Rules::Timestamp { .. } => ResourceType::Timestamp,
            };
            if request.is_none() {
                (doc.resource_name, doc.cut) = cut(&l.resource_name);
                doc.since_ns = Some(l.created_ns);
            }
        }
        if let Some(r) = request {
            let (name, name_cut) = cut(&r.resource_name);
            let (peer, peer_cut) = cut(&r.peer.name);
            doc.resource_name = name;
            doc.peer_name = Some(peer);
            doc.cut = name_cut || peer_cut;
            doc.conn = Some(r.conn);
            doc.lock_mode = r.lock_mode;
            doc.quantity = r.quantity;
            doc.peer_pid = r.peer.pid;
            doc.peer_uid = r.peer.uid;
            doc.fd = Some(r.peer.fd);
            doc.since_ns = Some(r.since_ns);
            if locker.is_some() {
                if let Some(e) = &r.element {
                    let (element, element_cut) = cut(e);
                    doc.element = Some(element);
                    doc.cut |= element_cut;
                }
            } else {
                doc.resource_type = r.resource_type;
            }
        }
        doc
    }

    fn resource_types() -> impl Strategy<Value = ResourceType> {
        proptest::sample::select(vec![
            ResourceType::Simple,
            ResourceType::Numeric,
            ResourceType::Set,
            ResourceType::Hierarchical,
            ResourceType::Sequence,
            ResourceType::Timestamp,
        ])
    }

    /// Names short and long (past TEXT_BYTES, with multi-byte characters to cut inside).
    fn names() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z/\\[\\]0-9]{0,12}", "[aé😀]{60,120}", "[a-z]{250,300}",]
    }

    fn requests() -> impl Strategy<Value = Request> {
        (
            (any::<u64>(), names(), resource_types()),
            proptest::option::of(proptest::sample::select(LockMode::ALL.to_vec())),
            proptest::option::of(any::<u64>()),
            proptest::option::of(names()),
            any::<u64>(),
            (any::<i32>(), names(), proptest::option::of(any::<u32>())),
            proptest::option::of(any::<u32>()),
        )
            .prop_map(
                |((conn, name, resource_type), lock_mode, quantity, element, since, peer, uid)| {
                    Request {
                        conn,
                        resource_name: name,
                        resource_type,
                        lock_mode,
                        quantity,
                        element,
                        since_ns: since,
                        wait: true,
                        lifespan_ms: 0,
                        peer: Peer {
                            fd: peer.0,
                            name: peer.1,
                            pid: peer.2,
                            uid,
                        },
                    }
                },
            )
    }

    fn lockers() -> impl Strategy<Value = Locker> {
        let rules = prop_oneof![
            Just(Rules::Simple),
            any::<u64>().prop_map(|total| Rules::Numeric { total }),
            Just(Rules::Set {
                elements: vec!["a".into()],
                next: 0
            }),
            Just(Rules::Hierarchical),
            any::<u64>().prop_map(|next| Rules::Sequence { max: 9, next }),
            Just(Rules::Timestamp {
                format: "%s".into()
            }),
        ];
        (any::<u64>(), names(), rules, any::<u64>()).prop_map(|(id, name, rules, created)| Locker {
            id,
            resource_name: name,
            rules,
            created_ns: created,
            lifespan_ms: 0,
            holders: Vec::new(),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Every kind of event, from the bytes of real values laid out by rustc: the
        /// compiled decoder gives the document those values make.
        #[test]
        fn records_of_real_values_decode_to_their_documents(
            locker in lockers(),
            request in requests(),
            kind in proptest::sample::select(vec![
                EventKind::LockerCreate,
                EventKind::LockerDestroy,
                EventKind::Incubate,
                EventKind::Enqueue,
                EventKind::Release,
                EventKind::Cancel,
            ]),
            incubated in any::<bool>(),
        ) {
            let (l, r) = match kind {
                EventKind::LockerCreate | EventKind::LockerDestroy => (Some(&locker), None),
                EventKind::Incubate => (None, Some(&request)),
                EventKind::Cancel if incubated => (None, Some(&request)),
                _ => (Some(&locker), Some(&request)),
            };
            let raw = record(kind, l, r);
            with_decoder(|decoder| {
                let decoded = decoder.decode(&raw).map(|e| e.to_doc());
                assert_eq!(decoded, Ok(expected(kind, l, r)));
            });
        }

        /// Garbage in any byte of a record is an error or a document, never a panic.
        #[test]
        fn garbage_records_do_not_panic(
            bytes in proptest::collection::vec(any::<u8>(), BLOCK_BYTES * 2),
            lens in (0u32..400, 0u32..400, 0u32..400),
            starts in (0u32..300, 0u32..300),
            kind in 0u32..9,
        ) {
            let request = Request {
                conn: 1,
                resource_name: "r".into(),
                resource_type: ResourceType::Simple,
                lock_mode: None,
                quantity: None,
                element: Some("e".into()),
                since_ns: 2,
                wait: false,
                lifespan_ms: 0,
                peer: Peer { fd: 3, name: "p".into(), pid: None, uid: None },
            };
            let mut raw = record(EventKind::Enqueue, None, Some(&request));
            raw.kind = kind;
            raw.locker.address = 0x1000;
            raw.locker.len = lens.0;
            raw.locker.bytes.copy_from_slice(&bytes[..BLOCK_BYTES]);
            raw.request.len = lens.1;
            (raw.locker.start, raw.request.start) = starts;
            raw.request.bytes.copy_from_slice(&bytes[BLOCK_BYTES..]);
            raw.texts[TextSlot::Name as usize].len = lens.2;
            with_decoder(|decoder| {
                let _ = decoder.decode(&raw);
            });
        }
    }

    #[test]
    fn grant_from_is_read_from_its_register_as_the_dwarf_types_it() {
        with_decoder(|decoder| {
            let mut grant = raw(EventKind::Grant);
            for (bits, state) in [
                (0, EntryState::None),
                (1, EntryState::Incubating),
                (2, EntryState::Waiting),
                (3, EntryState::Holding),
            ] {
                grant.args[FROM_REGISTER as usize] = bits;
                assert_eq!(decoder.grant_from(&grant), Ok(state), "register {bits}");
                assert_eq!(
                    decoder.transition(EventKind::Grant, &grant, true),
                    Ok((state, EntryState::Holding))
                );
            }
            grant.args[FROM_REGISTER as usize] = 9;
            let error = decoder.grant_from(&grant).unwrap_err();
            assert!(error.contains("`from` argument"), "{error}");
        });
    }

    #[test]
    fn every_other_kind_has_its_fixed_transition() {
        use EntryState::*;
        with_decoder(|decoder| {
            let cases = [
                (EventKind::LockerCreate, true, (None, None)),
                (EventKind::LockerDestroy, true, (None, None)),
                (EventKind::Incubate, false, (None, Incubating)),
                (EventKind::Promote, true, (Incubating, Waiting)),
                (EventKind::Enqueue, true, (None, Waiting)),
                (EventKind::Release, true, (Holding, None)),
                // A cancel leaves the queue, or the incubator when it has no locker.
                (EventKind::Cancel, true, (Waiting, None)),
                (EventKind::Cancel, false, (Incubating, None)),
            ];
            for (kind, has_locker, expected) in cases {
                assert_eq!(
                    decoder.transition(kind, &raw(kind), has_locker),
                    Ok(expected),
                    "{kind:?}"
                );
            }
        });
    }

    #[test]
    fn records_that_cannot_decode_are_errors_naming_the_event() {
        with_decoder(|decoder| {
            let mut unknown = raw(EventKind::Grant);
            unknown.kind = 99;
            let error = decoder.decode(&unknown).unwrap_err();
            assert_eq!(error.kind, "#99");

            // Neither struct was copied: nothing to decode.
            let error = decoder.decode(&raw(EventKind::Release)).unwrap_err();
            assert_eq!(error.kind, "Release");
            assert!(error.what.contains("neither"), "{error}");

            // A struct whose copy failed.
            let mut failed = raw(EventKind::Release);
            failed.locker.address = 0x1000;
            let error = decoder.decode(&failed).unwrap_err();
            assert!(error.what.contains("could not be copied"), "{error}");
        });
    }

    #[test]
    fn a_block_is_its_copied_bytes_or_none() {
        let mut block = RawBlock::EMPTY;
        block.address = 0x1000;
        block.start = 16;
        block.len = 12;
        assert!(block_bytes(&block, "x").is_ok_and(|b| b == Some(Copied::of(&block))));
        // Nothing copied: the copy failed.
        block.len = 0;
        let error = block_bytes(&block, "x").unwrap_err();
        assert!(error.contains("could not be copied"), "{error}");
        // No address: the function has no such argument, whatever the length says.
        block.address = 0;
        assert_eq!(block_bytes(&block, "x"), Ok(None));
    }

    #[test]
    fn kernel_times_become_wall_clock_times() {
        with_decoder(|decoder| {
            assert_eq!(decoder.wall_clock(5), 1_005);
        });
        let offset = realtime_offset_ns();
        // The realtime clock is past 2020 on any machine that runs this.
        assert!(offset > 1_577_836_800 * 1_000_000_000, "{offset}");
    }
}
