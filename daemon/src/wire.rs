//! FLoM's wire protocol, level 3: framing (`</msg>`-terminated XML, no length prefix), and
//! the messages both sides send, parsed and printed.
//!
//! Bytes in, values out (and back); nothing here touches a socket or the lock table.

use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
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
    pub rc: i32,
    pub element: Option<String>,
}

/// Splits a byte stream into messages at each `</msg>`.
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// How far `buf` is known to hold no terminator, so a search never rescans.
    scanned: usize,
}

impl Framer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        let from = self.scanned.saturating_sub(TERMINATOR.len() - 1);
        match find(&self.buf[from..], TERMINATOR) {
            Some(at) => {
                let end = from + at + TERMINATOR.len();
                if end > MAX_MESSAGE {
                    return Err(WireError::TooLong);
                }
                let rest = self.buf.split_off(end);
                let msg = std::mem::replace(&mut self.buf, rest);
                self.scanned = 0;
                Ok(Some(msg))
            }
            None if self.buf.len() > MAX_MESSAGE => Err(WireError::TooLong),
            None => {
                self.scanned = self.buf.len();
                Ok(None)
            }
        }
    }

    /// Bytes received but not yet part of a whole message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// What a message says, gathered in one pass over it without keeping the XML: numbers are
/// parsed in place, only the two texts (name, element) are copied.
#[derive(Default)]
struct Fields {
    envelope: Option<(u32, u32, u32)>,
    resource: bool,
    shutdown: bool,
    answer: bool,
    name: Option<String>,
    mode: Option<u8>,
    wait: Option<bool>,
    quantity: Option<i64>,
    create: Option<bool>,
    lifespan_ms: Option<i64>,
    rollback: Option<bool>,
    immediate: Option<bool>,
    rc: Option<i32>,
    element: Option<String>,
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

fn parse(bytes: &[u8]) -> Result<Fields, WireError> {
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
                            b"name" => f.name = Some(v.to_owned()),
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
                            b"element" => f.element = Some(v.to_owned()),
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

fn decode_name(b64: &str) -> Result<String, WireError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| WireError::BadName)?;
    String::from_utf8(bytes).map_err(|_| WireError::BadName)
}

fn encode_name(name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(name)
}

/// Parses one whole message from a client (as the daemon does).
pub fn parse_client(bytes: &[u8]) -> Result<ClientMessage, WireError> {
    let f = parse(bytes)?;
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
    let f = parse(bytes)?;
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
            element: f.element,
        }),
        _ => Err(malformed("missing <answer rc=...>")),
    }
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

fn envelope(verb: u32, step: u32, body: &str) -> Vec<u8> {
    format!("{XML_DECL}<msg level=\"{LEVEL}\" verb=\"{verb}\" step=\"{step}\">{body}</msg>")
        .into_bytes()
}

/// An answer, as the daemon sends it: step 16 carries the daemon's session id, step 24 none.
pub fn format_answer(step: u32, peerid: &str, rc: i32, element: Option<&str>) -> Vec<u8> {
    let session = if step == STEP_FIRST_ANSWER {
        format!("<session peerid=\"{}\"/>", escape(peerid))
    } else {
        String::new()
    };
    let element = element
        .map(|e| format!(" element=\"{}\"", escape(e)))
        .unwrap_or_default();
    envelope(
        VERB_LOCK,
        step,
        &format!("{session}<answer rc=\"{rc}\"{element}/>"),
    )
}

/// A lock request, byte for byte as the flom client sends it.
pub fn format_lock(peerid: &str, m: &LockMsg) -> Vec<u8> {
    let mode = m.mode.map(|v| format!(" mode=\"{v}\"")).unwrap_or_default();
    let quantity = m
        .quantity
        .map(|q| format!(" quantity=\"{q}\""))
        .unwrap_or_default();
    let body = format!(
        "<session peerid=\"{}\"/><resource name=\"{}\"{mode} wait=\"{}\"{quantity} create=\"{}\" lifespan=\"{}\"/>",
        escape(peerid),
        encode_name(&m.name),
        u8::from(m.wait),
        u8::from(m.create),
        m.lifespan_ms
    );
    envelope(VERB_LOCK, STEP_REQUEST, &body)
}

/// An unlock, byte for byte as the flom client sends it (note the space before `/>`).
pub fn format_unlock(name: &str, rollback: bool) -> Vec<u8> {
    let body = format!(
        "<resource name=\"{}\" rollback=\"{}\" />",
        encode_name(name),
        u8::from(rollback)
    );
    envelope(VERB_UNLOCK, STEP_REQUEST, &body)
}

/// A shutdown request (`-x` quiesce, `-X` immediate).
pub fn format_shutdown(peerid: &str, immediate: bool) -> Vec<u8> {
    let body = format!(
        "<session peerid=\"{}\"/><shutdown immediate=\"{}\"/>",
        escape(peerid),
        u8::from(immediate)
    );
    envelope(VERB_MNGMNT, STEP_REQUEST, &body)
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
        assert_eq!(format_answer(24, "x", 0, Some("green")), later.as_bytes());
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
}
