//! Cuts a byte stream into messages at each `</msg>` (FLoM has no length prefix), and
//! bounds what it holds at [`MAX_MESSAGE`].
//!
//! Frames only: what a message says is read by [`super`].

use super::{WireError, MAX_MESSAGE, TERMINATOR};
use std::sync::LazyLock;

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
            // Refused as soon as its first byte is there, not once MAX_MESSAGE bytes are.
            None => match unread.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(&first) if first != b'<' => Err(WireError::NotXml(first)),
                _ => {
                    self.scanned = unread.len();
                    Ok(None)
                }
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="1" step="8"><resource name="Zm9v" mode="5" wait="1" create="1" lifespan="0"/></msg>"#;

    #[test]
    fn what_cannot_begin_a_message_is_refused_at_its_first_byte() {
        let mut f = Framer::default();
        f.push(b"\n <?xm");
        assert_eq!(f.next_message().unwrap(), None);
        let mut tls = Framer::default();
        // A TLS ClientHello's first bytes.
        tls.push(&[0x16, 0x03, 0x01]);
        assert!(matches!(tls.next_message(), Err(WireError::NotXml(0x16))));
        let mut after = Framer::default();
        after.push(LOCK.as_bytes());
        after.push(b"\nGET / HTTP/1.1");
        assert_eq!(after.next_message().unwrap().unwrap(), LOCK.as_bytes());
        assert!(matches!(after.next_message(), Err(WireError::NotXml(b'G'))));
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
