//! Printing messages byte for byte as flom's client and daemon send them: the daemon's
//! answers and the client's lock, unlock and shutdown requests, and both sides of
//! multicast discovery.
//!
//! Appends to or returns a buffer; writes to no socket.

use super::{
    LockMsg, Rc, LEVEL, STEP_FIRST_ANSWER, STEP_REQUEST, VERB_DISCOVER, VERB_LOCK, VERB_MNGMNT,
    VERB_UNLOCK, XML_DECL,
};
use base64::Engine as _;

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

/// A discovery request, byte for byte as the flom client multicasts it (an empty body).
pub fn format_discover_request() -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    push_envelope(&mut out, VERB_DISCOVER, STEP_REQUEST);
    out.extend_from_slice(b"</msg>");
    out
}

/// A discovery answer, byte for byte as flom's daemon sends it: `address` empty when the
/// daemon listens on every address (the client then connects to where the answer came
/// from).
pub fn format_discover_answer(address: Option<&str>, port: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    push_envelope(&mut out, VERB_DISCOVER, STEP_FIRST_ANSWER);
    out.extend_from_slice(b"<network address=\"");
    push_escaped(&mut out, address.unwrap_or_default());
    out.push(b'"');
    push_int_attribute(&mut out, "port", port.into());
    out.extend_from_slice(b"/></msg>");
    out
}
