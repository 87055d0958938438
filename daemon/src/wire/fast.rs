//! The fast path of reading a message: the exact shape flom sends, in one pass over its
//! bytes, with every text borrowed, and the canonical base64 of a resource name.
//!
//! May only answer where [`super::xml`] reads the same (the tests in [`super`] check it);
//! never refuses a message: `None` hands it to the reference path, which decides.

use super::{Fields, TERMINATOR, XML_DECL};
use std::borrow::Cow;

/// The fast path: `bytes` read as `[XML_DECL]<msg ATTRS>(<NAME ATTRS/>)*</msg>`, NAME one
/// of the four elements FLoM sends, each at most once, ATTRS ` key="value"` pairs of the
/// keys FLoM sends in it, each at most once (spaces before the close allowed). `None` when
/// the message is anything else, or has a value this path does not read exactly as
/// quick-xml would: the general path then decides. (A repeated attribute is an error for
/// quick-xml; a repeated element is not, but it is no message of FLoM's.)
pub(super) fn parse_flom(bytes: &[u8]) -> Option<Fields<'_>> {
    let mut c = Cursor(bytes);
    // The declaration is optional (flom's daemon accepts messages without one).
    c.eat(XML_DECL.as_bytes());
    if !c.eat(b"<msg") {
        return None;
    }
    let (mut level, mut verb, mut step) = (None, None, None);
    attributes(&mut c, b">", |k, v| match k {
        b"level" => once(&mut level, int(v)?),
        b"verb" => once(&mut verb, int(v)?),
        b"step" => once(&mut step, int(v)?),
        _ => None,
    })?;
    let mut f = Fields {
        envelope: Some((level?, verb?, step?)),
        ..Fields::default()
    };
    let mut session = false;
    loop {
        if c.eat(TERMINATOR) {
            // What follows a message is the next one's (the framer never leaves any).
            return c.0.is_empty().then_some(f);
        }
        if !c.eat(b"<") {
            return None;
        }
        let tag = c.take(LETTER);
        let seen = match tag {
            b"resource" => &mut f.resource,
            b"shutdown" => &mut f.shutdown,
            b"answer" => &mut f.answer,
            b"session" => &mut session,
            _ => return None,
        };
        if std::mem::replace(seen, true) {
            return None;
        }
        let mut peerid = None;
        attributes(&mut c, b"/>", |k, v| match (tag, k) {
            (b"resource", b"name") => once(&mut f.name, Cow::Borrowed(ascii(v)?)),
            (b"resource", b"mode") => once(&mut f.mode, int(v)?),
            (b"resource", b"wait") => once(&mut f.wait, int::<i64>(v)? != 0),
            (b"resource", b"quantity") => once(&mut f.quantity, int(v)?),
            (b"resource", b"create") => once(&mut f.create, int::<i64>(v)? != 0),
            (b"resource", b"lifespan") => once(&mut f.lifespan_ms, int(v)?),
            (b"resource", b"rollback") => once(&mut f.rollback, int::<i64>(v)? != 0),
            (b"shutdown", b"immediate") => once(&mut f.immediate, int::<i64>(v)? != 0),
            (b"answer", b"rc") => once(&mut f.rc, int(v)?),
            (b"answer", b"element") => once(&mut f.element, Cow::Borrowed(ascii(v)?)),
            (b"session", b"peerid") => once(&mut peerid, ()),
            _ => None,
        })?;
    }
}

/// The unread rest of a message.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    /// Consumes `prefix` if the rest starts with it.
    fn eat(&mut self, prefix: &[u8]) -> bool {
        match self.0.strip_prefix(prefix) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// Consumes and returns the longest prefix of bytes of `class`.
    fn take(&mut self, class: u8) -> &'a [u8] {
        let n = self
            .0
            .iter()
            .position(|&b| CLASSES[usize::from(b)] & class == 0)
            .unwrap_or(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken
    }
}

/// Byte classes of the fast path, as bits of [`CLASSES`]: ASCII letters (element and
/// attribute names), the space, and what it reads in a value: printable ASCII but quotes,
/// `&`, `<` and `>`, so that no value needs unescaping and the whole message is ASCII (hence
/// UTF-8, which quick-xml's path checks first).
const LETTER: u8 = 1;
const SPACE: u8 = 2;
const PLAIN: u8 = 4;
static CLASSES: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut classes = [0; 256];
    let mut b = 0;
    while b < classes.len() {
        let c = b as u8;
        if c.is_ascii_alphabetic() {
            classes[b] |= LETTER;
        }
        if c == b' ' {
            classes[b] |= SPACE;
        }
        if c.is_ascii_graphic() && !matches!(c, b'"' | b'\'' | b'&' | b'<' | b'>') {
            classes[b] |= PLAIN;
        }
        b += 1;
    }
    classes
}

/// Reads ` key="value"` pairs up to `close`, calling `f` with each; keys are [`LETTER`]s,
/// values [`PLAIN`].
fn attributes<'a>(
    c: &mut Cursor<'a>,
    close: &[u8],
    mut f: impl FnMut(&[u8], &'a [u8]) -> Option<()>,
) -> Option<()> {
    loop {
        let spaces = c.take(SPACE);
        if c.eat(close) {
            return Some(());
        }
        if spaces.is_empty() {
            return None;
        }
        let key = c.take(LETTER);
        if key.is_empty() || !c.eat(b"=\"") {
            return None;
        }
        let value = c.take(PLAIN);
        if !c.eat(b"\"") {
            return None;
        }
        f(key, value)?;
    }
}

/// Fills `slot`, which must be empty: a key given twice gives `None`.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

/// A value as text ([`PLAIN`] bytes are ASCII, so this never fails).
fn ascii(value: &[u8]) -> Option<&str> {
    std::str::from_utf8(value).ok()
}

/// A decimal integer, optionally negative. `None` for anything `str::parse` might read
/// otherwise or refuse (a `+`, `-0` for an unsigned type, spaces, overflow), and for
/// `i64::MIN`: quick-xml's path reads those.
fn int<T: TryFrom<i64>>(text: &[u8]) -> Option<T> {
    let (negative, digits) = match text {
        [b'-', digits @ ..] => (true, digits),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    match (negative, n) {
        (false, n) => T::try_from(n).ok(),
        (true, 0) => None,
        (true, n) => T::try_from(-n).ok(),
    }
}

/// Standard base64 with canonical padding and no stray bits, as flom sends it, decoded
/// without the base64 crate's general machinery (several times the cost on a short name).
/// `None` for anything else, which the crate then reads or refuses: such a text has only
/// one reading, so the two agree wherever this one answers.
pub(super) fn decode_canonical(text: &[u8]) -> Option<Vec<u8>> {
    let quads = text.chunks_exact(4);
    if !quads.remainder().is_empty() {
        return None;
    }
    let last = quads.len().checked_sub(1);
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for (i, quad) in quads.enumerate() {
        let &[a, b, c, d] = quad else {
            return None;
        };
        let head = sextet(a)? << 18 | sextet(b)? << 12;
        match (c, d) {
            (b'=', b'=') if Some(i) == last && head & 0xffff == 0 => {
                out.push((head >> 16) as u8);
            }
            (c, b'=') if Some(i) == last => {
                let v = head | sextet(c)? << 6;
                if v & 0xff != 0 {
                    return None;
                }
                out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8]);
            }
            (c, d) => {
                let v = head | sextet(c)? << 6 | sextet(d)?;
                out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
            }
        }
    }
    Some(out)
}

/// The value of a character of the standard base64 alphabet.
fn sextet(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(v.into())
}
