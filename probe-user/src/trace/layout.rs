//! The event decoder's layout, compiled once from the daemon's DWARF when tracing starts:
//! for every field an event shows, where it sits in the copied `Locker` or `Request`, how
//! wide it is, and which discriminant bits mean which variant. Decoding a record is then a
//! few bounded reads of its bytes, with no value reader, type lookup or allocation.
//!
//! The rules are the value reader's ([`dwarfpeek::value::layout`] computes them from the
//! same DWARF), and the names are the contract's (`docs/contract.md`), the same that
//! [`crate::model`] reads from a snapshot. A record is untrusted: a field outside the bytes
//! that were copied, or bits that name no variant, is an error message, never a panic.

use super::TraceError;
use dwarfpeek::debuginfo::{TypeIndex, TypeRef};
use dwarfpeek::value::layout::{self, Variants};
use dwarfpeek::value::ValueError;
use latch_probe_common::raw::{RawBlock, RawText, Span, TextPlace, BLOCK_BYTES, TEXT_BYTES};
use latch_probe_common::{EntryState, LockMode, ResourceType};

/// Why a field could not be read from a record (the event is undecodable).
pub(super) type Miss = String;

/// The fields of a `Locker` an event shows.
#[derive(Clone, Debug)]
pub(super) struct LockerLayout {
    pub id: Int,
    /// `resource_name` (its pointer and length; the bytes are in the record's texts).
    pub name: TextPlace,
    pub rules: Choice<ResourceType>,
    pub created_ns: Int,
}

/// The fields of a `Request` an event shows.
#[derive(Clone, Debug)]
pub(super) struct RequestLayout {
    pub conn: Int,
    pub name: TextPlace,
    pub resource_type: Choice<ResourceType>,
    pub lock_mode: Optional<Choice<LockMode>>,
    pub quantity: Optional<Int>,
    pub element: Optional<TextPlace>,
    pub since_ns: Int,
    pub fd: Int,
    pub peer_name: TextPlace,
    pub peer_pid: Optional<Int>,
    pub peer_uid: Optional<Int>,
}

impl LockerLayout {
    pub(super) fn compile(
        index: &TypeIndex,
        locker: TypeRef,
        name: TextPlace,
    ) -> Result<LockerLayout, TraceError> {
        let at = Owner {
            index,
            ty: locker,
            name: "Locker",
        };
        Ok(LockerLayout {
            id: at.int(&["id"])?,
            name,
            rules: at.choice(&["rules"], resource_type)?,
            created_ns: at.int(&["created_ns"])?,
        })
    }
}

impl RequestLayout {
    pub(super) fn compile(
        index: &TypeIndex,
        request: TypeRef,
        texts: [TextPlace; 3],
    ) -> Result<RequestLayout, TraceError> {
        let [name, element, peer_name] = texts;
        let at = Owner {
            index,
            ty: request,
            name: "Request",
        };
        Ok(RequestLayout {
            conn: at.int(&["conn"])?,
            name,
            resource_type: at.choice(&["resource_type"], resource_type)?,
            lock_mode: at.optional(&["lock_mode"], |some| at.choice(some, lock_mode))?,
            quantity: at.optional(&["quantity"], |some| at.int(some))?,
            element: at.optional(&["element"], |_| Ok(element))?,
            since_ns: at.int(&["since_ns"])?,
            fd: at.int(&["peer", "fd"])?,
            peer_name,
            peer_pid: at.optional(&["peer", "pid"], |some| at.int(some))?,
            peer_uid: at.optional(&["peer", "uid"], |some| at.int(some))?,
        })
    }
}

impl LockerLayout {
    /// The bytes a request's event reads of its locker: which one, and its type.
    pub(super) fn identity_span(&self) -> Span {
        self.rules.cover(self.id.cover(Span::default()))
    }

    /// The bytes a locker's own event reads.
    pub(super) fn span(&self) -> Span {
        let span = self.name.cover(self.identity_span());
        self.created_ns.cover(span)
    }
}

impl RequestLayout {
    /// The bytes a request's event reads of it (all kinds: an incubated request's type
    /// instead of its element lies within the same span on any layout worth a second one).
    pub(super) fn span(&self) -> Span {
        let fields: [&dyn Extent; 11] = [
            &self.conn,
            &self.name,
            &self.resource_type,
            &self.lock_mode,
            &self.quantity,
            &self.element,
            &self.since_ns,
            &self.fd,
            &self.peer_name,
            &self.peer_pid,
            &self.peer_uid,
        ];
        fields
            .iter()
            .fold(Span::default(), |span, field| field.cover(span))
    }
}

/// A field whose bytes a decoder reads: the span of a struct to copy is the cover of them.
pub(super) trait Extent {
    /// `span` grown to hold this field's bytes.
    fn cover(&self, span: Span) -> Span;
}

impl Extent for TextPlace {
    fn cover(&self, span: Span) -> Span {
        span.cover(self.pointer_offset, 8).cover(self.len_offset, 8)
    }
}

/// The variant of `Rules` or `ResourceType` (the contract gives both the same six names).
fn resource_type(name: &str) -> Option<ResourceType> {
    Some(match name {
        "Simple" => ResourceType::Simple,
        "Numeric" => ResourceType::Numeric,
        "Set" => ResourceType::Set,
        "Hierarchical" => ResourceType::Hierarchical,
        "Sequence" => ResourceType::Sequence,
        "Timestamp" => ResourceType::Timestamp,
        _ => return None,
    })
}

fn lock_mode(name: &str) -> Option<LockMode> {
    LockMode::ALL.into_iter().find(|m| m.short_name() == name)
}

/// `EntryState`'s variants by their names.
pub(super) fn entry_state(name: &str) -> Option<EntryState> {
    Some(match name {
        "None" => EntryState::None,
        "Incubating" => EntryState::Incubating,
        "Waiting" => EntryState::Waiting,
        "Holding" => EntryState::Holding,
        _ => return None,
    })
}

/// A struct type whose fields are being compiled, named as the contract names it.
struct Owner<'i> {
    index: &'i TypeIndex,
    ty: TypeRef,
    name: &'static str,
}

impl Owner<'_> {
    fn error(&self, path: &[&str]) -> impl Fn(ValueError) -> TraceError {
        let what = format!("{}.{}", self.name, path.join("."));
        move |error| TraceError::Layout {
            what: what.clone(),
            error,
        }
    }

    fn int(&self, path: &[&str]) -> Result<Int, TraceError> {
        let place = layout::place(self.index, self.ty, path).map_err(self.error(path))?;
        let (size, signed) = layout::integer(self.index, place.ty).map_err(self.error(path))?;
        Ok(Int {
            at: offset(place.offset, path, self.error(path))?,
            size: size as u8,
            signed,
        })
    }

    fn choice<T: Copy>(
        &self,
        path: &[&str],
        value: impl Fn(&str) -> Option<T>,
    ) -> Result<Choice<T>, TraceError> {
        let place = layout::place(self.index, self.ty, path).map_err(self.error(path))?;
        Choice::compile(self.index, place.ty, place.offset, value).map_err(self.error(path))
    }

    /// An `Option<T>` at `path`: its variant test, and `some` compiled at the path of its
    /// content (`path`, `Some`, `0`).
    fn optional<T>(
        &self,
        path: &[&str],
        some: impl FnOnce(&[&str]) -> Result<T, TraceError>,
    ) -> Result<Optional<T>, TraceError> {
        let is_some = self.choice(path, |name| match name {
            "None" => Some(false),
            "Some" => Some(true),
            _ => None,
        })?;
        let inner: Vec<&str> = path.iter().copied().chain(["Some", "0"]).collect();
        Ok(Optional {
            is_some,
            some: some(&inner)?,
        })
    }
}

fn offset(
    at: u64,
    path: &[&str],
    error: impl Fn(ValueError) -> TraceError,
) -> Result<u32, TraceError> {
    u32::try_from(at).map_err(|_| {
        error(ValueError::Shape {
            type_name: path.join("."),
            what: format!("an offset of {at} bytes"),
        })
    })
}

/// An integer field: offset and size (1 to 8 bytes) in its struct, and its signedness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Int {
    at: u32,
    size: u8,
    signed: bool,
}

impl Extent for Int {
    fn cover(&self, span: Span) -> Span {
        span.cover(self.at, u32::from(self.size))
    }
}

impl Int {
    /// Its value, sign-extended if signed.
    fn read(&self, bytes: Copied<'_>) -> Option<i128> {
        let bits = bytes.word(self.at, self.size)?;
        let shift = 64 - 8 * u32::from(self.size);
        Some(if self.signed {
            i128::from(((bits << shift) as i64) >> shift)
        } else {
            i128::from(bits)
        })
    }

    /// The value as a `T`, or what is wrong with it.
    pub(super) fn get<T: TryFrom<i128>>(&self, bytes: Copied<'_>, what: &str) -> Result<T, Miss> {
        let value = self
            .read(bytes)
            .ok_or_else(|| format!("{what} lies beyond the copied bytes"))?;
        T::try_from(value).map_err(|_| format!("{what} is {value}, out of range"))
    }
}

/// The bytes of a struct that a record holds: those from `start` to the end of `bytes`,
/// each at its offset in the struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Copied<'r> {
    bytes: &'r [u8],
    start: usize,
}

impl<'r> Copied<'r> {
    /// What the eBPF side copied into `block`, bounded by the block whatever it says.
    pub(super) fn of(block: &'r RawBlock) -> Copied<'r> {
        let start = (block.start as usize).min(BLOCK_BYTES);
        let end = start.saturating_add(block.len as usize).min(BLOCK_BYTES);
        Copied {
            bytes: &block.bytes[..end],
            start,
        }
    }

    /// All of `bytes`, from offset 0.
    pub(super) fn whole(bytes: &'r [u8]) -> Copied<'r> {
        Copied { bytes, start: 0 }
    }

    /// Whether nothing was copied.
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.len() <= self.start
    }

    /// The little-endian word of `size` bytes at `at`, if those bytes were copied.
    fn word(&self, at: u32, size: u8) -> Option<u64> {
        let at = at as usize;
        if at < self.start || size > 8 {
            return None;
        }
        let part = self.bytes.get(at..at.checked_add(usize::from(size))?)?;
        // One load and a mask where 8 bytes are there to read: a copy of `size` bytes is a
        // call to memcpy, and this runs a dozen times an event.
        if let Some(eight) = self.bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(eight.try_into().ok()?);
            let mask = match size {
                8 => u64::MAX,
                n => (1 << (8 * u32::from(n))) - 1,
            };
            return Some(word & mask);
        }
        let mut word = [0u8; 8];
        word.get_mut(..part.len())?.copy_from_slice(part);
        Some(u64::from_le_bytes(word))
    }
}

/// An enum field: its variants' test, and the value each variant stands for.
#[derive(Clone, Debug)]
pub(super) struct Choice<T> {
    /// Where the enum starts in its struct.
    at: u32,
    variants: Variants,
    values: Vec<T>,
}

impl<T: Copy> Choice<T> {
    /// The enum `ty` at `at`, each variant given the value `value` maps its name to; a name
    /// it does not know is a broken contract.
    pub(super) fn compile(
        index: &TypeIndex,
        ty: TypeRef,
        at: u64,
        value: impl Fn(&str) -> Option<T>,
    ) -> Result<Choice<T>, ValueError> {
        let variants = layout::variants(index, ty)?;
        let values = variants
            .variants
            .iter()
            .map(|(name, _)| {
                value(name).ok_or_else(|| ValueError::Shape {
                    type_name: name.clone(),
                    what: "a variant the contract does not name".to_owned(),
                })
            })
            .collect::<Result<_, _>>()?;
        let fits = |end: u64| u32::try_from(end).is_ok();
        let end = at.saturating_add(variants.discriminant.map_or(0, |(o, s)| o + s));
        if !fits(end) {
            return Err(ValueError::Shape {
                type_name: format!("{ty}"),
                what: format!("a discriminant ending at byte {end}"),
            });
        }
        Ok(Choice {
            at: at as u32,
            variants,
            values,
        })
    }

    /// The value of the variant `bytes` hold.
    pub(super) fn get(&self, bytes: Copied<'_>, what: &str) -> Result<T, Miss> {
        let bits = match self.variants.discriminant {
            None => 0,
            Some((offset, size)) => bytes
                .word(self.at + offset as u32, size as u8)
                .ok_or_else(|| format!("{what} lies beyond the copied bytes"))?,
        };
        self.variants
            .active(bits)
            .and_then(|i| self.values.get(i))
            .copied()
            .ok_or_else(|| format!("{what}'s discriminant {bits:#x} names no variant"))
    }
}

impl<T> Extent for Choice<T> {
    fn cover(&self, span: Span) -> Span {
        match self.variants.discriminant {
            // Checked to fit a u32 at compile time.
            Some((offset, size)) => span.cover(self.at + offset as u32, size as u32),
            None => span,
        }
    }
}

/// An `Option<T>` field.
#[derive(Clone, Debug)]
pub(super) struct Optional<T> {
    pub is_some: Choice<bool>,
    pub some: T,
}

impl<T: Extent> Extent for Optional<T> {
    fn cover(&self, span: Span) -> Span {
        self.some.cover(self.is_some.cover(span))
    }
}

impl<T> Optional<T> {
    /// `read` of the content if the option is `Some`.
    pub(super) fn get<V>(
        &self,
        bytes: Copied<'_>,
        what: &str,
        read: impl FnOnce(&T) -> Result<V, Miss>,
    ) -> Result<Option<V>, Miss> {
        if self.is_some.get(bytes, what)? {
            read(&self.some).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The `String` whose pointer and length sit at `place` in the copied struct `bytes`, with
/// its bytes from the record's `text`: all of it, or (`true`) its start when it was longer
/// than the eBPF side copies, cut at a character boundary.
pub(super) fn text<'r>(
    bytes: Copied<'_>,
    place: TextPlace,
    text: &'r RawText,
    what: &str,
) -> Result<(&'r str, bool), Miss> {
    let beyond = || format!("{what} lies beyond the copied bytes");
    let pointer = bytes.word(place.pointer_offset, 8).ok_or_else(beyond)?;
    let len = bytes.word(place.len_offset, 8).ok_or_else(beyond)?;
    if len == 0 {
        return Ok(("", false));
    }
    if pointer == 0 {
        return Err(format!("{what} has a null buffer"));
    }
    if text.address != pointer {
        return Err(format!("{what}'s bytes at {pointer:#x} were not copied"));
    }
    let copied = &text.bytes[..(text.len as usize).min(TEXT_BYTES)];
    match copied.get(..len as usize) {
        Some(whole) => std::str::from_utf8(whole)
            .map(|s| (s, false))
            .map_err(|e| format!("{what} is not UTF-8 ({e})")),
        None => {
            let valid = match std::str::from_utf8(copied) {
                Ok(_) => copied.len(),
                Err(e) => e.valid_up_to(),
            };
            // The prefix up to `valid_up_to` is UTF-8 by definition.
            Ok((
                std::str::from_utf8(&copied[..valid]).unwrap_or_default(),
                true,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_copied_bytes_are_read() {
        let mut block = RawBlock::EMPTY;
        block.bytes[16..24].copy_from_slice(&7u64.to_le_bytes());
        block.start = 16;
        block.len = 8;
        let copied = Copied::of(&block);
        assert_eq!(copied.word(16, 8), Some(7));
        assert_eq!(copied.word(16, 2), Some(7));
        // Before the copy, or reaching past it.
        assert_eq!(copied.word(8, 8), None);
        assert_eq!(copied.word(20, 8), None);
        // A start and a length from the record are bounded by the block.
        block.start = u32::MAX;
        block.len = u32::MAX;
        assert!(Copied::of(&block).is_empty());
        block.start = 0;
        let whole = Copied::of(&block);
        assert_eq!(whole.word(BLOCK_BYTES as u32 - 8, 8), Some(0));
        assert_eq!(whole.word(BLOCK_BYTES as u32 - 4, 8), None);
        assert_eq!(whole.word(u32::MAX, 8), None);
    }

    #[test]
    fn a_word_is_its_bytes_little_endian_with_none_of_its_neighbours() {
        let mut block = RawBlock::EMPTY;
        for (i, b) in block.bytes.iter_mut().enumerate() {
            *b = i as u8 | 0x80;
        }
        block.start = 16;
        block.len = 16;
        let copied = Copied::of(&block);
        // Every place and size, those read by one load and those near the copy's end.
        for at in 16..32u32 {
            for size in 0..=8u8 {
                let end = at as usize + usize::from(size);
                let expected = (end <= 32).then(|| {
                    let mut word = [0u8; 8];
                    word[..usize::from(size)].copy_from_slice(&block.bytes[at as usize..end]);
                    u64::from_le_bytes(word)
                });
                assert_eq!(copied.word(at, size), expected, "{size} bytes at {at}");
            }
        }
        assert_eq!(copied.word(16, 9), None);
    }

    #[test]
    fn a_span_covers_every_field_given_and_nothing_before_the_first() {
        let fields: [&dyn Extent; 3] = [
            &Int {
                at: 40,
                size: 4,
                signed: false,
            },
            &TextPlace {
                pointer_offset: 8,
                len_offset: 24,
            },
            &Int {
                at: 60,
                size: 8,
                signed: true,
            },
        ];
        let span = fields.iter().fold(Span::default(), |s, f| f.cover(s));
        assert_eq!(span, Span { offset: 8, len: 60 });
        // Covering from nothing is the field alone.
        assert_eq!(
            fields[0].cover(Span::default()),
            Span { offset: 40, len: 4 }
        );
    }
}
