//! FLoM's wire protocol, level 3: framing (`</msg>`-terminated XML, no length prefix), and
//! the messages both sides send, parsed and printed.
//!
//! Bytes in, values out (and back); nothing here touches a socket or the lock table.
//!
//! [`framer`] cuts a byte stream into messages; this module reads a message into a
//! [`ClientMessage`] or an [`AnswerMsg`]; [`write`] prints them. Reading has two paths that
//! must agree on every input. A message shaped as flom sends it (and as [`write`] prints
//! it) is read by `fast`, in one pass over its bytes, with every text borrowed from the
//! message and no allocation but the decoded resource name: that is every message of every
//! lock, and quick-xml costs about six times as much per message (callgrind). Anything else
//! (other spacing or quoting, entities, comments, unknown elements, every error) goes to
//! `xml`, quick-xml's reading, which is the reference: the fast path may only accept a
//! subset of what quick-xml reads, must read it the same way, and never decides that a
//! message is bad (it hands it over instead), so errors and rcs stay quick-xml's.

#![forbid(unsafe_code)]

mod fast;
pub mod framer;
pub mod write;
mod xml;

use base64::Engine as _;
use std::borrow::Cow;
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
/// Multicast discovery: a request (step 8) in a UDP datagram, answered (step 16) with
/// where the daemon listens on TCP.
pub const VERB_DISCOVER: u32 = 4;
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
    /// What arrived cannot begin a FLoM message, which is XML: a TLS client talking to a
    /// plain daemon, say (its first byte 0x16), which would otherwise wait for ever.
    #[error("the peer does not speak FLoM's protocol (its message begins with byte {0:#04x}, not '<'); a TLS client needs a TLS daemon")]
    NotXml(u8),
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

/// A discovery answer: where the daemon listens on TCP. No address means "the address
/// the answer came from" (a daemon listening on every address says none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoverAnswer {
    pub address: Option<String>,
    pub port: u16,
}

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
    network: bool,
    address: Option<Cow<'a, str>>,
    port: Option<u16>,
}

/// What a message says: the fast path's reading if it has one, quick-xml's otherwise.
fn fields(bytes: &[u8]) -> Result<Fields<'_>, WireError> {
    match fast::parse_flom(bytes) {
        Some(f) => Ok(f),
        None => xml::parse_xml(bytes),
    }
}

fn malformed(e: impl std::fmt::Display) -> WireError {
    WireError::Malformed(e.to_string())
}

/// A resource name from its base64, as flom sends it, or in any form the crate reads.
fn decode_name(b64: &str) -> Result<String, WireError> {
    let bytes = match fast::decode_canonical(b64.as_bytes()) {
        Some(bytes) => bytes,
        None => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| WireError::BadName)?,
    };
    String::from_utf8(bytes).map_err(|_| WireError::BadName)
}

/// The peer id of a message's `<session peerid="...">`, as it stands (FLoM's ids are hex:
/// nothing to unescape), for the TLS peer-id check.
pub fn session_peerid(bytes: &[u8]) -> Option<&str> {
    const ATTR: &[u8] = b"<session peerid=\"";
    let start = memchr::memmem::find(bytes, ATTR)? + ATTR.len();
    let rest = bytes.get(start..)?;
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(rest.get(..end)?).ok()
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

/// The level, verb and step of a message, its level checked.
fn envelope(f: &Fields) -> Result<(u32, u32), WireError> {
    let (level, verb, step) = f.envelope.ok_or_else(|| malformed("no <msg> element"))?;
    if level != LEVEL {
        return Err(WireError::Level(level));
    }
    Ok((verb, step))
}

/// Checks that a datagram is a discovery request (as the daemon's responder does).
pub fn parse_discover_request(bytes: &[u8]) -> Result<(), WireError> {
    match envelope(&fields(bytes)?)? {
        (VERB_DISCOVER, STEP_REQUEST) => Ok(()),
        (verb, step) => Err(WireError::UnexpectedVerb { verb, step }),
    }
}

/// Parses a discovery answer (as a client does); an empty address is none.
pub fn parse_discover_answer(bytes: &[u8]) -> Result<DiscoverAnswer, WireError> {
    let f = fields(bytes)?;
    match envelope(&f)? {
        (VERB_DISCOVER, STEP_FIRST_ANSWER) => {}
        (verb, step) => return Err(WireError::UnexpectedVerb { verb, step }),
    }
    match (f.network, f.port) {
        (true, Some(port)) => Ok(DiscoverAnswer {
            address: f.address.filter(|a| !a.is_empty()).map(Cow::into_owned),
            port,
        }),
        _ => Err(malformed("discovery answer without <network port=...>")),
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

#[cfg(test)]
mod tests {
    use super::fast::{decode_canonical, parse_flom};
    use super::write::{
        format_discover_answer, format_discover_request, format_lock, format_shutdown,
        format_unlock, write_answer,
    };
    use super::xml::parse_xml;
    use super::*;

    // As flom_msg_serialize prints them (flom_client_discover_udp, flom_accept_discover_reply).
    const DISCOVER: &str =
        r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="4" step="8"></msg>"#;
    const DISCOVERED: &str = r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="4" step="16"><network address="" port="41234"/></msg>"#;

    #[test]
    fn discovery_messages_are_flom_s_bytes() {
        assert_eq!(format_discover_request(), DISCOVER.as_bytes());
        assert_eq!(parse_discover_request(DISCOVER.as_bytes()), Ok(()));
        assert_eq!(format_discover_answer(None, 41234), DISCOVERED.as_bytes());
        assert_eq!(
            parse_discover_answer(DISCOVERED.as_bytes()),
            Ok(DiscoverAnswer {
                address: None,
                port: 41234
            })
        );
        let named = format_discover_answer(Some("10.0.0.7"), 28015);
        assert_eq!(
            parse_discover_answer(&named),
            Ok(DiscoverAnswer {
                address: Some("10.0.0.7".into()),
                port: 28015
            })
        );
    }

    #[test]
    fn discovery_refuses_other_messages() {
        assert_eq!(
            parse_discover_request(LOCK.as_bytes()),
            Err(WireError::UnexpectedVerb { verb: 1, step: 8 })
        );
        assert_eq!(
            parse_discover_request(br#"<msg level="2" verb="4" step="8"></msg>"#),
            Err(WireError::Level(2))
        );
        assert!(parse_discover_answer(DISCOVER.as_bytes()).is_err());
        assert!(parse_discover_answer(
            br#"<msg level="3" verb="4" step="16"><network address=""/></msg>"#
        )
        .is_err());
        assert!(parse_discover_answer(
            br#"<msg level="3" verb="4" step="16"><network port="70000"/></msg>"#
        )
        .is_err());
    }

    const LOCK: &str = r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="1" step="8"><session peerid="3d1219c7c4c5404aaa1f6d2a48adfda4"/><resource name="Zm9v" mode="5" wait="1" create="1" lifespan="0"/></msg>"#;

    #[test]
    fn session_peerid_is_the_attribute_as_sent() {
        assert_eq!(
            session_peerid(LOCK.as_bytes()),
            Some("3d1219c7c4c5404aaa1f6d2a48adfda4")
        );
        assert_eq!(
            session_peerid(b"<msg><resource name=\"Zm9v\"/></msg>"),
            None
        );
        assert_eq!(session_peerid(b"<session peerid=\"unterminated"), None);
    }

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
