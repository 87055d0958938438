//! One eBPF record turned into a `latch.event/1` document: the copied `Locker` and `Request`
//! bytes, with the strings they point to, are decoded by the DWARF value reader exactly as a
//! snapshot of the whole table is, and read with the same rules ([`crate::model`]).
//!
//! A record is untrusted like any memory of the daemon: a struct that does not decode gives
//! an [`EventError`] naming the event, never a panic. A string longer than the eBPF side
//! copies is shown cut (at a character boundary) and the event is marked `cut`.

use super::plan::TracePlan;
use crate::model::{self, Fault};
use dwarfpeek::debuginfo::TypeIndex;
use dwarfpeek::memory::Snapshot;
use dwarfpeek::value::{Limits, Value, ValueReader};
use latch_probe_common::doc::EventDoc;
use latch_probe_common::raw::{RawBlock, RawEvent, TextSlot, BLOCK_BYTES, TEXT_BYTES};
use latch_probe_common::{EntryState, EventKind};
use nix::time::{clock_gettime, ClockId};
use thiserror::Error;

/// An address no copied range can have: where a register's bytes are put to be decoded.
const REGISTER_ADDRESS: u64 = u64::MAX - 16;

/// What a record's structs hold is small: no collection is followed out of the copy.
const EVENT_LIMITS: Limits = Limits {
    max_elements: 64,
    max_string_len: TEXT_BYTES as u64,
    max_depth: 16,
    max_values: 4096,
};

#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("a {kind} event could not be decoded: {what}")]
pub struct EventError {
    pub kind: String,
    pub what: String,
}

/// Decodes the records of one traced daemon.
pub struct EventDecoder<'p> {
    index: &'p TypeIndex,
    plan: &'p TracePlan,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC (what `bpf_ktime_get_ns` counts), in ns.
    realtime_offset_ns: i128,
}

impl<'p> EventDecoder<'p> {
    /// A decoder of the records made with `plan`; `realtime_offset_ns` is
    /// [`realtime_offset_ns`] measured once for the whole trace.
    pub fn new(
        index: &'p TypeIndex,
        plan: &'p TracePlan,
        realtime_offset_ns: i128,
    ) -> EventDecoder<'p> {
        EventDecoder {
            index,
            plan,
            realtime_offset_ns,
        }
    }

    pub fn decode(&self, raw: &RawEvent) -> Result<EventDoc, EventError> {
        let kind = EventKind::from_raw(raw.kind).ok_or_else(|| EventError {
            kind: format!("#{}", raw.kind),
            what: "the record names no known event kind".to_owned(),
        })?;
        let fail = |what: String| EventError {
            kind: format!("{kind:?}"),
            what,
        };
        let fault = |fault: Fault| match fault {
            Fault::Contract(what) | Fault::Garbage(what) => fail(what),
        };

        let mut locker = block_bytes(&raw.locker);
        let mut request = block_bytes(&raw.request);
        let mut ranges = Vec::with_capacity(6);
        for slot in TextSlot::ALL {
            let text = &raw.texts[slot as usize];
            let owner = if slot.in_locker() {
                &mut locker
            } else {
                &mut request
            };
            if owner.is_empty() || text.address == 0 {
                continue;
            }
            let copied = &text.bytes[..(text.len as usize).min(TEXT_BYTES)];
            let mut usable = copied;
            if text.claimed > copied.len() as u64 {
                // Cut: shorten the copied struct's length to what was copied, at a character
                // boundary, so the value reader decodes the string's start.
                let valid = match std::str::from_utf8(copied) {
                    Ok(_) => copied.len(),
                    Err(e) => e.valid_up_to(),
                };
                usable = &copied[..valid];
                let place = self.plan.config.texts[slot as usize];
                let at = place.len_offset as usize;
                if let Some(len) = owner.get_mut(at..at + 8) {
                    len.copy_from_slice(&(usable.len() as u64).to_le_bytes());
                }
            }
            // A garbage pointer (an element that is None) may point anywhere, even into a
            // copied struct: such a range is left out rather than shadow the struct.
            let overlaps = |start: u64, len: usize| {
                let end = start.saturating_add(len as u64);
                text.address < end && start < text.address.saturating_add(usable.len() as u64)
            };
            if overlaps(raw.locker.address, block_len(&raw.locker))
                || overlaps(raw.request.address, block_len(&raw.request))
            {
                continue;
            }
            ranges.push((text.address, usable.to_vec()));
        }
        if !locker.is_empty() {
            ranges.push((raw.locker.address, locker));
        }
        if !request.is_empty() {
            ranges.push((raw.request.address, request));
        }
        let memory = Snapshot::from_ranges(ranges);
        let reader = ValueReader::new(self.index, &memory, EVENT_LIMITS);
        let read = |address: u64, ty, what: &str| -> Result<Option<Value>, EventError> {
            if address == 0 {
                return Ok(None);
            }
            reader
                .read(ty, address)
                .map(Some)
                .map_err(|e| fail(format!("the {what} at {address:#x}: {e}")))
        };
        let locker_value = read(raw.locker.address, self.plan.locker_type, "locker")?;
        let request_value = read(raw.request.address, self.plan.request_type, "request")?;
        let identity = locker_value
            .as_ref()
            .map(|v| model::locker_identity(v.innermost()))
            .transpose()
            .map_err(fault)?;

        let (from, to) = self.transition(kind, raw, identity.is_some())?;
        // Whether a string was cut is known below: the element slot is garbage without one.
        let mut doc = EventDoc {
            locker: identity.map(|(id, _)| id),
            tid: Some(raw.tid),
            generation: Some(raw.generation),
            ..EventDoc::new(self.wall_clock(raw.ktime_ns), kind, from, to)
        };
        match (&locker_value, &request_value) {
            (Some(locker), None) => {
                // A locker event: the locker's own name was copied (and only then).
                let h = model::locker_header(locker.innermost()).map_err(fault)?;
                doc.resource_name = h.resource_name;
                doc.resource_type = h.resource_type;
                doc.since_ns = Some(h.created_ns);
                // Only the locker's own name could have been cut.
                doc.cut = cut_text(raw, TextSlot::LockerName);
            }
            (Some(_), Some(request)) => {
                let entry = model::entry(request.innermost()).map_err(fault)?;
                if let Some((_, resource_type)) = identity {
                    doc.resource_type = resource_type;
                }
                doc.cut = [TextSlot::Name, TextSlot::Peer]
                    .into_iter()
                    .any(|slot| cut_text(raw, slot))
                    || (entry.element.is_some() && cut_text(raw, TextSlot::Element));
                doc.set_request(entry.request);
                doc.element = entry.element;
            }
            (None, Some(request)) => {
                let incubated = model::incubated(request.innermost()).map_err(fault)?;
                doc.cut = [TextSlot::Name, TextSlot::Peer]
                    .into_iter()
                    .any(|slot| cut_text(raw, slot));
                doc.set_request(incubated.request);
                doc.resource_type = incubated.resource_type;
            }
            (None, None) => {
                return Err(fail(
                    "neither its locker nor its request could be copied".to_owned(),
                ))
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
    ) -> Result<(EntryState, EntryState), EventError> {
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
    fn grant_from(&self, raw: &RawEvent) -> Result<EntryState, EventError> {
        let (register, ty) = self.plan.grant_from;
        let fail = |what: String| EventError {
            kind: "Grant".to_owned(),
            what,
        };
        let bits = raw
            .args
            .get(register as usize)
            .ok_or_else(|| fail(format!("no argument register {register}")))?;
        let memory = Snapshot::from_ranges(vec![(REGISTER_ADDRESS, bits.to_le_bytes().to_vec())]);
        let value = ValueReader::new(self.index, &memory, EVENT_LIMITS)
            .read(ty, REGISTER_ADDRESS)
            .map_err(|e| fail(format!("its `from` argument: {e}")))?;
        match value.variant() {
            Some("None") => Ok(EntryState::None),
            Some("Incubating") => Ok(EntryState::Incubating),
            Some("Waiting") => Ok(EntryState::Waiting),
            Some("Holding") => Ok(EntryState::Holding),
            other => Err(fail(format!("its `from` argument is {other:?}"))),
        }
    }

    /// A `bpf_ktime_get_ns` time as wall-clock Unix nanoseconds.
    fn wall_clock(&self, ktime_ns: u64) -> u64 {
        u64::try_from(i128::from(ktime_ns) + self.realtime_offset_ns).unwrap_or(0)
    }
}

/// The copied bytes of a struct (none if the copy failed or there was no such argument).
fn block_bytes(block: &RawBlock) -> Vec<u8> {
    if block.address == 0 {
        return Vec::new();
    }
    block.bytes[..block_len(block)].to_vec()
}

fn block_len(block: &RawBlock) -> usize {
    (block.len as usize).min(BLOCK_BYTES)
}

fn cut_text(raw: &RawEvent, slot: TextSlot) -> bool {
    let text = &raw.texts[slot as usize];
    text.claimed > u64::from(text.len)
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
    use dwarfpeek::debuginfo::Executable;
    use latch_probe_common::raw::{RawText, TraceConfig, ARGUMENT_REGISTERS, TEXT_SLOTS};

    /// The shape of the daemon's entry state, which `grant`'s `from` register holds.
    #[allow(dead_code)]
    #[derive(Clone, Copy)]
    pub enum Before {
        None,
        Incubating,
        Waiting,
        Holding,
    }

    /// Keeps [`Before`] in this test binary's DWARF.
    pub static BEFORE: Before = Before::Waiting;

    /// The register `grant`'s `from` is in, for these tests.
    const FROM_REGISTER: u32 = 2;

    const EMPTY_BLOCK: RawBlock = RawBlock {
        address: 0,
        len: 0,
        _pad: 0,
        bytes: [0; BLOCK_BYTES],
    };
    const EMPTY_TEXT: RawText = RawText {
        address: 0,
        claimed: 0,
        len: 0,
        _pad: 0,
        bytes: [0; TEXT_BYTES],
    };

    fn raw(kind: EventKind) -> RawEvent {
        RawEvent {
            ktime_ns: 0,
            generation: 3,
            tid: 7,
            kind: kind as u32,
            args: [0; ARGUMENT_REGISTERS],
            locker: EMPTY_BLOCK,
            request: EMPTY_BLOCK,
            texts: [EMPTY_TEXT; TEXT_SLOTS],
        }
    }

    /// A plan over this binary's own types: enough for what decodes without the daemon's.
    fn with_decoder(check: impl FnOnce(&EventDecoder<'_>)) {
        let _ = std::hint::black_box(&BEFORE);
        let exe = Executable::open(&std::env::current_exe().expect("current exe")).expect("open");
        let index = TypeIndex::on_demand(&exe).expect("index");
        let before = index
            .by_name("latch_probe::trace::event::tests::Before")
            .expect("the test's enum");
        let plan = TracePlan {
            probes: Vec::new(),
            config: TraceConfig::EMPTY,
            locker_type: before,
            request_type: before,
            grant_from: (FROM_REGISTER, before),
        };
        check(&EventDecoder::new(&index, &plan, 1_000));
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
            assert!(error.what.contains("`from` argument"), "{error}");
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
        });
    }

    #[test]
    fn lengths_from_the_record_are_bounded() {
        let mut block = EMPTY_BLOCK;
        block.address = 0x1000;
        block.len = u32::MAX;
        assert_eq!(block_bytes(&block).len(), BLOCK_BYTES);
        block.len = 12;
        assert_eq!(block_bytes(&block).len(), 12);
        // No address: the function has no such argument, whatever the length says.
        block.address = 0;
        assert!(block_bytes(&block).is_empty());

        let mut event = raw(EventKind::Enqueue);
        event.texts[TextSlot::Name as usize].len = 4;
        event.texts[TextSlot::Name as usize].claimed = 4;
        assert!(!cut_text(&event, TextSlot::Name));
        event.texts[TextSlot::Name as usize].claimed = 5000;
        assert!(cut_text(&event, TextSlot::Name));
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
