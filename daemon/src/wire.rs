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
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The envelope's attributes and the elements inside it, by name.
struct Parsed {
    level: u32,
    verb: u32,
    step: u32,
    elements: Vec<(String, Vec<(String, String)>)>,
}

impl Parsed {
    fn element(&self, name: &str) -> Option<&[(String, String)]> {
        self.elements
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.as_slice())
    }
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn attrs_of(e: &BytesStart) -> Result<Vec<(String, String)>, WireError> {
    e.attributes()
        .map(|a| {
            let a = a.map_err(|err| WireError::Malformed(err.to_string()))?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let value = a
                .unescape_value()
                .map_err(|err| WireError::Malformed(err.to_string()))?;
            Ok((key, value.into_owned()))
        })
        .collect()
}

fn number<T: std::str::FromStr>(attrs: &[(String, String)], key: &str) -> Result<T, WireError> {
    let text =
        attr(attrs, key).ok_or_else(|| WireError::Malformed(format!("missing attribute {key}")))?;
    text.trim()
        .parse()
        .map_err(|_| WireError::Malformed(format!("attribute {key}={text:?} is not a number")))
}

fn parse(bytes: &[u8]) -> Result<Parsed, WireError> {
    let text = std::str::from_utf8(bytes).map_err(|_| WireError::Malformed("not UTF-8".into()))?;
    let mut reader = Reader::from_str(text);
    let mut envelope: Option<(u32, u32, u32)> = None;
    let mut elements = Vec::new();
    let mut depth = 0usize;
    loop {
        match reader
            .read_event()
            .map_err(|e| WireError::Malformed(e.to_string()))?
        {
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
            Event::Start(e) if depth == 0 && e.name().as_ref() == b"msg" => {
                let a = attrs_of(&e)?;
                envelope = Some((
                    number(&a, "level")?,
                    number(&a, "verb")?,
                    number(&a, "step")?,
                ));
                depth = 1;
            }
            Event::Empty(e) | Event::Start(e) if depth >= 1 => {
                elements.push((
                    String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    attrs_of(&e)?,
                ));
            }
            Event::End(e) if e.name().as_ref() == b"msg" => break,
            Event::End(_) => {}
            Event::Eof => return Err(WireError::Malformed("no <msg> element".into())),
            other => return Err(WireError::Malformed(format!("unexpected {other:?}"))),
        }
    }
    let (level, verb, step) =
        envelope.ok_or_else(|| WireError::Malformed("no <msg> element".into()))?;
    Ok(Parsed {
        level,
        verb,
        step,
        elements,
    })
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

fn flag(attrs: &[(String, String)], key: &str, default: bool) -> Result<bool, WireError> {
    match attr(attrs, key) {
        None => Ok(default),
        Some(_) => Ok(number::<i64>(attrs, key)? != 0),
    }
}

/// Parses one whole message from a client (as the daemon does).
pub fn parse_client(bytes: &[u8]) -> Result<ClientMessage, WireError> {
    let p = parse(bytes)?;
    if p.level != LEVEL {
        return Err(WireError::Level(p.level));
    }
    let missing = |what: &str| WireError::Malformed(format!("missing <{what}> element"));
    match (p.verb, p.step) {
        (VERB_LOCK, STEP_REQUEST) => {
            let r = p.element("resource").ok_or_else(|| missing("resource"))?;
            let name = decode_name(attr(r, "name").ok_or_else(|| missing("resource name"))?)?;
            let mode = match attr(r, "mode") {
                Some(_) => Some(number::<u8>(r, "mode")?),
                None => None,
            };
            let quantity = match attr(r, "quantity") {
                Some(_) => Some(number::<i64>(r, "quantity")?),
                None => None,
            };
            let lifespan_ms = match attr(r, "lifespan") {
                Some(_) => number::<i64>(r, "lifespan")?,
                None => 0,
            };
            Ok(ClientMessage::Lock(LockMsg {
                name,
                mode,
                wait: flag(r, "wait", true)?,
                quantity,
                create: flag(r, "create", true)?,
                lifespan_ms,
            }))
        }
        (VERB_UNLOCK, STEP_REQUEST) => {
            let r = p.element("resource").ok_or_else(|| missing("resource"))?;
            let name = decode_name(attr(r, "name").ok_or_else(|| missing("resource name"))?)?;
            Ok(ClientMessage::Unlock {
                name,
                rollback: flag(r, "rollback", false)?,
            })
        }
        (VERB_MNGMNT, STEP_REQUEST) => {
            let s = p.element("shutdown").ok_or_else(|| missing("shutdown"))?;
            Ok(ClientMessage::Shutdown {
                immediate: flag(s, "immediate", false)?,
            })
        }
        (verb, step) => Err(WireError::UnexpectedVerb { verb, step }),
    }
}

/// Parses one whole answer from the daemon (as a client does).
pub fn parse_answer(bytes: &[u8]) -> Result<AnswerMsg, WireError> {
    let p = parse(bytes)?;
    if p.level != LEVEL {
        return Err(WireError::Level(p.level));
    }
    if p.verb != VERB_LOCK || !(p.step == STEP_FIRST_ANSWER || p.step == STEP_LATER_ANSWER) {
        return Err(WireError::UnexpectedVerb {
            verb: p.verb,
            step: p.step,
        });
    }
    let a = p
        .element("answer")
        .ok_or_else(|| WireError::Malformed("missing <answer>".into()))?;
    Ok(AnswerMsg {
        step: p.step,
        rc: number(a, "rc")?,
        element: attr(a, "element").map(str::to_owned),
    })
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
