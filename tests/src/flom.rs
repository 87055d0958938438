//! FLoM's wire format as the tests write and read it over raw connections: answers' return
//! codes and base64 names.
//!
//! It may not be a second implementation of the daemon's parser: it reads only what the
//! tests check.

use base64::Engine as _;

/// The `rc` of one FLoM answer (`<answer rc="N"/>`); the test fails on an answer without one.
pub fn answer_rc(answer: &[u8]) -> i32 {
    let text = String::from_utf8_lossy(answer);
    text.split("rc=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|rc| rc.parse().ok())
        .unwrap_or_else(|| panic!("an answer without rc: {text}"))
}

/// The XML declaration every FLoM message starts with.
pub const XML_DECL: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>"#;

/// A lock request as the flom client sends it for a simple exclusive lock that waits
/// (mode 5, wait 1, create 1, lifespan 0), with the resource name already encoded.
pub fn lock_request(encoded_name: &str, peerid: &str) -> String {
    format!(
        r#"{XML_DECL}<msg level="3" verb="1" step="8"><session peerid="{peerid}"/><resource name="{encoded_name}" mode="5" wait="1" create="1" lifespan="0"/></msg>"#
    )
}

/// `bytes` in standard base64, as FLoM sends resource names.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
