//! FLoM's wire protocol, level 3: framing (`</msg>`-terminated XML, no length prefix), and
//! the messages both sides send, parsed and printed.
//!
//! Bytes in, values out (and back); nothing here touches a socket or the lock table.
//!
//! Parsing has two paths that must agree on every input. A message shaped as flom sends
//! it (and as the `format_*` functions print it) is read in one pass over its bytes, with
//! every text borrowed from the message and no allocation but the decoded resource name:
//! that is every message of every lock, and quick-xml costs about six times as much per
//! message (callgrind). Anything else (other spacing or quoting, entities, comments, unknown elements,
//! every error) goes to quick-xml, whose reading is the reference: the fast path may only
//! accept a subset of what quick-xml reads, must read it the same way, and never decides
//! that a message is bad (it hands it over instead), so errors and rcs stay quick-xml's.

use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;
use std::sync::LazyLock;
use thiserror::Error;

pub const LEVEL: u32 = 3;
const TERMINATOR: &[u8] = b"</msg>";
const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>";
/// The longest message accepted. FLoM truncates at 512 bytes (a bug); a lock request for a
/// 16 KiB name still fits here with its base64 and envelope.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Verbs and steps.
pub const VERB_LOCK: u32 = 1;
pub const VERB_UNLOCK: u32 = 2;
pub const VERB_MNGMNT: u32 = 5;
pub const STEP_REQUEST: u32 = 8;
pub const STEP_FIRST_ANSWER: u32 = 16;
pub const STEP_LATER_ANSWER: u32 = 24;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("message longer than {MAX_MESSAGE} bytes")]
    TooLong,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("protocol level {0} is not supported (this daemon speaks level {LEVEL})")]
    Level(u32),
    #[error("unexpected verb {verb} step {step}")]
    UnexpectedVerb { verb: u32, step: u32 },
    #[error("resource name is not valid base64 UTF-8")]
    BadName,
}

/// An answer's return code, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Rc {
    Granted = 0,
    Queued = 1,
    Incubated = 2,
    Busy = 4,
    CannotWait = 5,
    Impossible = 6,
    InvalidName = -14,
    /// Latch's own: the message exceeded [`MAX_MESSAGE`] (FLoM truncates).
    TooLong = -100,
}

/// A return code no daemon of FLoM's protocol sends.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("unknown return code {0}")]
pub struct UnknownRc(pub i32);

impl TryFrom<i32> for Rc {
    type Error = UnknownRc;

    fn try_from(rc: i32) -> Result<Rc, UnknownRc> {
        Ok(match rc {
            0 => Rc::Granted,
            1 => Rc::Queued,
            2 => Rc::Incubated,
            4 => Rc::Busy,
            5 => Rc::CannotWait,
            6 => Rc::Impossible,
            -14 => Rc::InvalidName,
            -100 => Rc::TooLong,
            rc => return Err(UnknownRc(rc)),
        })
    }
}

/// A message a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    Lock(LockMsg),
    Unlock { name: String, rollback: bool },
    Shutdown { immediate: bool },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockMsg {
    pub name: String,
    /// Wire mode number; present for simple and hierarchical resources.
    pub mode: Option<u8>,
    pub wait: bool,
    pub quantity: Option<i64>,
    pub create: bool,
    pub lifespan_ms: i64,
}

/// A message the daemon sends: an answer to a lock, first (step 16) or later (step 24).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerMsg {
    pub step: u32,
    /// As received: a daemon may send a code this side does not know ([`Rc::try_from`]).
    pub rc: i32,
    pub element: Option<String>,
}

/// Splits a byte stream into messages at each `</msg>`.
#[derive(Default)]
pub struct Framer {
    /// Bytes received; those before `start` belong to messages already handed out.
    buf: Vec<u8>,
    start: usize,
    /// How far past `start` the buffer is known to hold no terminator, so a search never
    /// rescans.
    scanned: usize,
}

impl Framer {
    pub fn push(&mut self, bytes: &[u8]) {
        // Handed-out messages are dropped only now, when their bytes can no longer be
        // borrowed: the buffer is reused from one message to the next.
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        Ok(self.next_in_place()?.map(<[u8]>::to_vec))
    }

    /// The next whole message, where it lies in the framer's buffer (which the next `push`
    /// reuses): what the daemon parses, without a copy.
    pub fn next_in_place(&mut self) -> Result<Option<&[u8]>, WireError> {
        let unread = self.buf.get(self.start..).unwrap_or_default();
        let from = self.scanned.saturating_sub(TERMINATOR.len() - 1);
        match TERMINATOR_FINDER.find(unread.get(from..).unwrap_or_default()) {
            Some(at) => {
                let end = from + at + TERMINATOR.len();
                if end > MAX_MESSAGE {
                    return Err(WireError::TooLong);
                }
                self.start += end;
                self.scanned = 0;
                Ok(unread.get(..end))
            }
            None if unread.len() > MAX_MESSAGE => Err(WireError::TooLong),
            None => {
                self.scanned = unread.len();
                Ok(None)
            }
        }
    }

    /// Bytes received but not yet part of a whole message.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Built once: building a searcher costs more than searching a message.
static TERMINATOR_FINDER: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(TERMINATOR));

/// What a message says, gathered in one pass over it without keeping the XML: numbers are
/// parsed in place, the two texts (name, element) borrowed from the message when they can be.
#[derive(Debug, Default, PartialEq)]
struct Fields<'a> {
    envelope: Option<(u32, u32, u32)>,
    resource: bool,
    shutdown: bool,
    answer: bool,
    name: Option<Cow<'a, str>>,
    mode: Option<u8>,
    wait: Option<bool>,
    quantity: Option<i64>,
    create: Option<bool>,
    lifespan_ms: Option<i64>,
    rollback: Option<bool>,
    immediate: Option<bool>,
    rc: Option<i32>,
    element: Option<Cow<'a, str>>,
}

/// The fast path: `bytes` read as `[XML_DECL]<msg ATTRS>(<NAME ATTRS/>)*</msg>`, NAME one
/// of the four elements FLoM sends, each at most once, ATTRS ` key="value"` pairs of the
/// keys FLoM sends in it, each at most once (spaces before the close allowed). `None` when
/// the message is anything else, or has a value this path does not read exactly as
/// quick-xml would: the general path then decides. (A repeated attribute is an error for
/// quick-xml; a repeated element is not, but it is no message of FLoM's.)
fn parse_flom(bytes: &[u8]) -> Option<Fields<'_>> {
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

fn malformed(e: impl std::fmt::Display) -> WireError {
    WireError::Malformed(e.to_string())
}

/// Calls `f` with each attribute's name and (unescaped) value.
fn each_attr(
    e: &BytesStart,
    mut f: impl FnMut(&[u8], &str) -> Result<(), WireError>,
) -> Result<(), WireError> {
    for a in e.attributes() {
        let a = a.map_err(malformed)?;
        let value = a.unescape_value().map_err(malformed)?;
        f(a.key.as_ref(), &value)?;
    }
    Ok(())
}

fn number<T: std::str::FromStr>(key: &[u8], text: &str) -> Result<T, WireError> {
    text.trim().parse().map_err(|_| {
        let key = String::from_utf8_lossy(key);
        WireError::Malformed(format!("attribute {key}={text:?} is not a number"))
    })
}

fn flag(key: &[u8], text: &str) -> Result<bool, WireError> {
    Ok(number::<i64>(key, text)? != 0)
}

/// The general path: any XML quick-xml reads, every error.
fn parse_xml(bytes: &[u8]) -> Result<Fields<'static>, WireError> {
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    let mut f = Fields::default();
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
            Event::Start(e) if f.envelope.is_none() && e.name().as_ref() == b"msg" => {
                let (mut level, mut verb, mut step) = (None, None, None);
                each_attr(&e, |k, v| {
                    match k {
                        b"level" => level = Some(number(k, v)?),
                        b"verb" => verb = Some(number(k, v)?),
                        b"step" => step = Some(number(k, v)?),
                        _ => {}
                    }
                    Ok(())
                })?;
                match (level, verb, step) {
                    (Some(l), Some(v), Some(s)) => f.envelope = Some((l, v, s)),
                    _ => return Err(malformed("<msg> lacks level, verb or step")),
                }
            }
            Event::Empty(e) | Event::Start(e) if f.envelope.is_some() => match e.name().as_ref() {
                b"resource" => {
                    f.resource = true;
                    each_attr(&e, |k, v| {
                        match k {
                            b"name" => f.name = Some(Cow::Owned(v.to_owned())),
                            b"mode" => f.mode = Some(number(k, v)?),
                            b"wait" => f.wait = Some(flag(k, v)?),
                            b"quantity" => f.quantity = Some(number(k, v)?),
                            b"create" => f.create = Some(flag(k, v)?),
                            b"lifespan" => f.lifespan_ms = Some(number(k, v)?),
                            b"rollback" => f.rollback = Some(flag(k, v)?),
                            _ => {}
                        }
                        Ok(())
                    })?;
                }
                b"shutdown" => {
                    f.shutdown = true;
                    each_attr(&e, |k, v| {
                        if k == b"immediate" {
                            f.immediate = Some(flag(k, v)?);
                        }
                        Ok(())
                    })?;
                }
                b"answer" => {
                    f.answer = true;
                    each_attr(&e, |k, v| {
                        match k {
                            b"rc" => f.rc = Some(number(k, v)?),
                            b"element" => f.element = Some(Cow::Owned(v.to_owned())),
                            _ => {}
                        }
                        Ok(())
                    })?;
                }
                // <session> (whose peer id nobody needs) and anything unknown.
                _ => each_attr(&e, |_, _| Ok(()))?,
            },
            Event::End(e) if e.name().as_ref() == b"msg" => break,
            Event::End(_) => {}
            Event::Eof => return Err(malformed("no <msg> element")),
            other => return Err(WireError::Malformed(format!("unexpected {other:?}"))),
        }
    }
    Ok(f)
}

/// What a message says: the fast path's reading if it has one, quick-xml's otherwise.
fn fields(bytes: &[u8]) -> Result<Fields<'_>, WireError> {
    match parse_flom(bytes) {
        Some(f) => Ok(f),
        None => parse_xml(bytes),
    }
}

fn decode_name(b64: &str) -> Result<String, WireError> {
    let bytes = match decode_canonical(b64.as_bytes()) {
        Some(bytes) => bytes,
        None => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| WireError::BadName)?,
    };
    String::from_utf8(bytes).map_err(|_| WireError::BadName)
}

/// Standard base64 with canonical padding and no stray bits, as flom sends it, decoded
/// without the base64 crate's general machinery (several times the cost on a short name).
/// `None` for anything else, which the crate then reads or refuses: such a text has only
/// one reading, so the two agree wherever this one answers.
fn decode_canonical(text: &[u8]) -> Option<Vec<u8>> {
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

/// Parses one whole message from a client (as the daemon does).
pub fn parse_client(bytes: &[u8]) -> Result<ClientMessage, WireError> {
    let f = fields(bytes)?;
    let (level, verb, step) = f.envelope.ok_or_else(|| malformed("no <msg> element"))?;
    if level != LEVEL {
        return Err(WireError::Level(level));
    }
    let missing = |what: &str| WireError::Malformed(format!("missing {what}"));
    let name = || -> Result<String, WireError> {
        if !f.resource {
            return Err(missing("<resource> element"));
        }
        decode_name(f.name.as_deref().ok_or_else(|| missing("resource name"))?)
    };
    match (verb, step) {
        (VERB_LOCK, STEP_REQUEST) => Ok(ClientMessage::Lock(LockMsg {
            name: name()?,
            mode: f.mode,
            wait: f.wait.unwrap_or(true),
            quantity: f.quantity,
            create: f.create.unwrap_or(true),
            lifespan_ms: f.lifespan_ms.unwrap_or(0),
        })),
        (VERB_UNLOCK, STEP_REQUEST) => Ok(ClientMessage::Unlock {
            name: name()?,
            rollback: f.rollback.unwrap_or(false),
        }),
        (VERB_MNGMNT, STEP_REQUEST) if f.shutdown => Ok(ClientMessage::Shutdown {
            immediate: f.immediate.unwrap_or(false),
        }),
        (VERB_MNGMNT, STEP_REQUEST) => Err(missing("<shutdown> element")),
        (verb, step) => Err(WireError::UnexpectedVerb { verb, step }),
    }
}

/// Parses one whole answer from the daemon (as a client does).
pub fn parse_answer(bytes: &[u8]) -> Result<AnswerMsg, WireError> {
    let f = fields(bytes)?;
    let (level, verb, step) = f.envelope.ok_or_else(|| malformed("no <msg> element"))?;
    if level != LEVEL {
        return Err(WireError::Level(level));
    }
    if verb != VERB_LOCK || !(step == STEP_FIRST_ANSWER || step == STEP_LATER_ANSWER) {
        return Err(WireError::UnexpectedVerb { verb, step });
    }
    match (f.answer, f.rc) {
        (true, Some(rc)) => Ok(AnswerMsg {
            step,
            rc,
            element: f.element.map(Cow::into_owned),
        }),
        _ => Err(malformed("missing <answer rc=...>")),
    }
}

/// Appends `text` to `out` as an attribute value.
fn push_escaped(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(quick_xml::escape::escape(text).as_bytes());
}

/// Appends `n` in decimal to `out` (what `format!` would print, without its machinery).
fn push_int(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    // 20 places hold u64::MAX, so `at` never underflows.
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        at -= 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

/// Appends ` key="n"`.
fn push_int_attribute(out: &mut Vec<u8>, key: &str, n: i64) {
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"=\"");
    push_int(out, n);
    out.push(b'"');
}

/// Appends the start of a message, up to and including `<msg ...>`; `</msg>` must follow
/// its body.
fn push_envelope(out: &mut Vec<u8>, verb: u32, step: u32) {
    out.extend_from_slice(XML_DECL.as_bytes());
    out.extend_from_slice(b"<msg");
    push_int_attribute(out, "level", LEVEL.into());
    push_int_attribute(out, "verb", verb.into());
    push_int_attribute(out, "step", step.into());
    out.push(b'>');
}

fn push_session(out: &mut Vec<u8>, peerid: &str) {
    out.extend_from_slice(b"<session peerid=\"");
    push_escaped(out, peerid);
    out.extend_from_slice(b"\"/>");
}

fn push_name(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b"<resource name=\"");
    out.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(name)
            .as_bytes(),
    );
    out.push(b'"');
}

/// Appends an answer to `out`, as the daemon sends it: step 16 carries the daemon's session
/// id, step 24 none.
pub fn write_answer(out: &mut Vec<u8>, step: u32, peerid: &str, rc: Rc, element: Option<&str>) {
    push_envelope(out, VERB_LOCK, step);
    if step == STEP_FIRST_ANSWER {
        push_session(out, peerid);
    }
    out.extend_from_slice(b"<answer");
    push_int_attribute(out, "rc", (rc as i32).into());
    if let Some(element) = element {
        out.extend_from_slice(b" element=\"");
        push_escaped(out, element);
        out.push(b'"');
    }
    out.extend_from_slice(b"/></msg>");
}

/// A lock request, byte for byte as the flom client sends it.
pub fn format_lock(peerid: &str, m: &LockMsg) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    push_envelope(&mut out, VERB_LOCK, STEP_REQUEST);
    push_session(&mut out, peerid);
    push_name(&mut out, &m.name);
    if let Some(mode) = m.mode {
        push_int_attribute(&mut out, "mode", mode.into());
    }
    push_int_attribute(&mut out, "wait", m.wait.into());
    if let Some(quantity) = m.quantity {
        push_int_attribute(&mut out, "quantity", quantity);
    }
    push_int_attribute(&mut out, "create", m.create.into());
    push_int_attribute(&mut out, "lifespan", m.lifespan_ms);
    out.extend_from_slice(b"/></msg>");
    out
}

/// An unlock, byte for byte as the flom client sends it (note the space before `/>`).
pub fn format_unlock(name: &str, rollback: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    push_envelope(&mut out, VERB_UNLOCK, STEP_REQUEST);
    push_name(&mut out, name);
    push_int_attribute(&mut out, "rollback", rollback.into());
    out.extend_from_slice(b" /></msg>");
    out
}

/// A shutdown request (`-x` quiesce, `-X` immediate).
pub fn format_shutdown(peerid: &str, immediate: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    push_envelope(&mut out, VERB_MNGMNT, STEP_REQUEST);
    push_session(&mut out, peerid);
    out.extend_from_slice(b"<shutdown");
    push_int_attribute(&mut out, "immediate", immediate.into());
    out.extend_from_slice(b"/></msg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="1" step="8"><session peerid="3d1219c7c4c5404aaa1f6d2a48adfda4"/><resource name="Zm9v" mode="5" wait="1" create="1" lifespan="0"/></msg>"#;

    #[test]
    fn lock_round_trips_byte_for_byte() {
        let ClientMessage::Lock(m) = parse_client(LOCK.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(
            m,
            LockMsg {
                name: "foo".into(),
                mode: Some(5),
                wait: true,
                quantity: None,
                create: true,
                lifespan_ms: 0
            }
        );
        assert_eq!(
            format_lock("3d1219c7c4c5404aaa1f6d2a48adfda4", &m),
            LOCK.as_bytes()
        );
    }

    #[test]
    fn unlock_and_answers_match_the_recordings() {
        let unlock = r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="2" step="8"><resource name="Zm9v" rollback="1" /></msg>"#;
        assert_eq!(format_unlock("foo", true), unlock.as_bytes());
        assert_eq!(
            parse_client(unlock.as_bytes()).unwrap(),
            ClientMessage::Unlock {
                name: "foo".into(),
                rollback: true
            }
        );
        let later = r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="1" step="24"><answer rc="0" element="green"/></msg>"#;
        let mut answer = Vec::new();
        write_answer(&mut answer, 24, "x", Rc::Granted, Some("green"));
        assert_eq!(answer, later.as_bytes());
        assert_eq!(
            parse_answer(later.as_bytes()).unwrap(),
            AnswerMsg {
                step: 24,
                rc: 0,
                element: Some("green".into())
            }
        );
    }

    #[test]
    fn refuses_what_it_must() {
        assert_eq!(
            parse_client(LOCK.replace("level=\"3\"", "level=\"2\"").as_bytes()),
            Err(WireError::Level(2))
        );
        assert!(matches!(
            parse_client(b"hello world</msg>"),
            Err(WireError::Malformed(_))
        ));
        assert_eq!(
            parse_client(LOCK.replace("step=\"8\"", "step=\"16\"").as_bytes()),
            Err(WireError::UnexpectedVerb { verb: 1, step: 16 })
        );
        assert_eq!(
            parse_client(LOCK.replace("Zm9v", "@@@").as_bytes()),
            Err(WireError::BadName)
        );
        // Accepted by FLoM too: no <session>, no XML declaration.
        assert!(parse_client(br#"<msg level="3" verb="1" step="8"><resource name="Zm9v" mode="5" wait="1" create="1" lifespan="0"/></msg>"#).is_ok());
    }

    #[test]
    fn framer_splits_and_bounds() {
        let mut f = Framer::default();
        f.push(&LOCK.as_bytes()[..10]);
        assert_eq!(f.next_message().unwrap(), None);
        f.push(&LOCK.as_bytes()[10..]);
        f.push(LOCK.as_bytes());
        assert_eq!(f.next_message().unwrap().unwrap(), LOCK.as_bytes());
        assert_eq!(f.next_message().unwrap().unwrap(), LOCK.as_bytes());
        assert_eq!(f.next_message().unwrap(), None);
        f.push(&vec![b'x'; MAX_MESSAGE + 1]);
        assert_eq!(f.next_message(), Err(WireError::TooLong));
    }

    fn both_paths(bytes: &[u8]) -> (Option<Fields<'_>>, Result<Fields<'static>, WireError>) {
        (parse_flom(bytes), parse_xml(bytes))
    }

    #[test]
    fn fast_path_reads_every_message_flom_sends() {
        let lock = |mode, quantity| LockMsg {
            name: "/a/b".into(),
            mode,
            wait: false,
            quantity,
            create: false,
            lifespan_ms: -1,
        };
        let mut messages = vec![
            format_lock("3d1219c7c4c5404aaa1f6d2a48adfda4", &lock(Some(3), None)),
            format_lock("p", &lock(None, Some(4))),
            format_lock("p", &lock(None, None)),
            format_unlock("foo", false),
            format_shutdown("p", true),
            LOCK.as_bytes().to_vec(),
        ];
        for (step, element) in [(16, None), (16, Some("22:05:39.708")), (24, Some("red"))] {
            let mut answer = Vec::new();
            write_answer(&mut answer, step, "p", Rc::InvalidName, element);
            messages.push(answer);
        }
        for m in &messages {
            let (fast, general) = both_paths(m);
            assert!(fast.is_some(), "{}", String::from_utf8_lossy(m));
            assert_eq!(fast, general.ok(), "{}", String::from_utf8_lossy(m));
        }
    }

    #[test]
    fn fast_path_hands_over_what_it_cannot_read_exactly() {
        for m in [
            LOCK.replace("Zm9v", "Zm&#57;v"),
            LOCK.replace("mode=\"5\"", "mode = \"5\""),
            LOCK.replace("mode=\"5\"", "mode='5'"),
            LOCK.replace("mode=\"5\"", "mode=\" 5\""),
            LOCK.replace("mode=\"5\"", "mode=\"+5\""),
            LOCK.replace("mode=\"5\"", "mode=\"-0\""),
            LOCK.replace("mode=\"5\"", "mode=\"5\" x=\"1\""),
            LOCK.replace("wait=\"1\"", "wait=\"1\" wait=\"0\""),
            LOCK.replace("<session", "\n<session"),
            LOCK.replace("</msg>", "</msg >"),
            LOCK.replace(
                "<session peerid=\"3d1219c7c4c5404aaa1f6d2a48adfda4\"/>",
                "<!-- c -->",
            ),
            format!("{LOCK}{LOCK}"),
        ] {
            assert_eq!(parse_flom(m.as_bytes()), None, "{m}");
        }
    }

    #[test]
    fn canonical_base64_is_decoded_as_the_crate_does() {
        use base64::engine::general_purpose::STANDARD;
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\xfe\xfd\x00"] {
            let text = STANDARD.encode(bytes);
            assert_eq!(decode_canonical(text.as_bytes()).as_deref(), Some(bytes));
        }
        // Stray bits, missing or misplaced padding, other alphabets: the crate decides.
        for text in [
            "Zh==", "Zm9=", "Zg", "Zg=", "Z===", "Zg==Zg==", "Zm9v ", "Zm-_", "====", "=",
        ] {
            assert_eq!(decode_canonical(text.as_bytes()), None, "{text}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]

        /// Wherever the fast path reads a message, quick-xml reads the same.
        #[test]
        fn both_paths_agree(
            base in 0usize..4,
            at in 0usize..200,
            len in 0usize..12,
            junk in "[<>/=\"'&#;!?a-z0-9 +-]{0,12}",
        ) {
            let base = [
                LOCK.to_owned(),
                String::from_utf8(format_unlock("a/b", true)).unwrap(),
                String::from_utf8(format_shutdown("p", false)).unwrap(),
                r#"<msg level="3" verb="1" step="24"><answer rc="0" element="green"/></msg>"#.to_owned(),
            ][base].clone().into_bytes();
            let at = at.min(base.len());
            let end = (at + len).min(base.len());
            let mut m = base;
            m.splice(at..end, junk.bytes());
            let (fast, general) = both_paths(&m);
            if let Some(fast) = fast {
                proptest::prop_assert_eq!(Ok(fast), general);
            }
        }

        /// Wherever the fast base64 decoder answers, the crate gives the same answer.
        #[test]
        fn both_base64_decoders_agree(text in "[A-Za-z0-9+/= ]{0,16}") {
            use base64::Engine as _;
            if let Some(fast) = decode_canonical(text.as_bytes()) {
                let general = base64::engine::general_purpose::STANDARD.decode(text.trim());
                proptest::prop_assert_eq!(Ok(fast), general);
            }
        }
    }
}
