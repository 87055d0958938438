//! Property tests (the fuzz target) for the FLoM message parser and framer: whatever bytes
//! arrive, parsing returns a value or an error, never panics; framing is independent of how
//! the stream is cut.

#![forbid(unsafe_code)]

use latch::wire::framer::Framer;
use latch::wire::write::format_lock;
use latch::wire::{self, ClientMessage, LockMsg, MAX_MESSAGE};
use proptest::prelude::*;

const LOCK: &str = r#"<?xml version="1.0" encoding="UTF-8" ?><msg level="3" verb="1" step="8"><session peerid="3d1219c7c4c5404aaa1f6d2a48adfda4"/><resource name="Zm9v" mode="5" wait="1" create="1" lifespan="0"/></msg>"#;

fn lock_msg() -> impl Strategy<Value = LockMsg> {
    (
        "[ -~]{0,300}",
        proptest::option::of(0u8..6),
        any::<bool>(),
        proptest::option::of(any::<i64>()),
        any::<bool>(),
        any::<i64>(),
    )
        .prop_map(
            |(name, mode, wait, quantity, create, lifespan_ms)| LockMsg {
                name,
                mode,
                wait,
                quantity,
                create,
                lifespan_ms,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = wire::parse_client(&bytes);
        let _ = wire::parse_answer(&bytes);
    }

    #[test]
    fn mutated_lock_messages_never_panic(at in 0..LOCK.len(), len in 0usize..20, junk in "[<>/=\"a-z0-9 ]{0,20}") {
        let mut s = LOCK.as_bytes().to_vec();
        let end = (at + len).min(s.len());
        s.splice(at..end, junk.bytes());
        let _ = wire::parse_client(&s);
    }

    #[test]
    fn lock_messages_round_trip(m in lock_msg()) {
        let bytes = format_lock("peer", &m);
        prop_assert_eq!(wire::parse_client(&bytes), Ok(ClientMessage::Lock(m)));
    }

    #[test]
    fn framing_ignores_how_the_stream_is_cut(cuts in proptest::collection::vec(1usize..64, 1..40), copies in 1usize..5) {
        let stream: Vec<u8> = LOCK.repeat(copies).into_bytes();
        let mut framer = Framer::default();
        let mut got = Vec::new();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= stream.len() { break; }
            let end = (at + cut).min(stream.len());
            framer.push(&stream[at..end]);
            at = end;
            while let Some(m) = framer.next_message().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got.len(), copies);
        prop_assert!(got.iter().all(|m| m == LOCK.as_bytes()));
    }

    #[test]
    fn framer_bounds_memory(chunk in proptest::collection::vec(any::<u8>().prop_filter("no terminator start", |b| *b != b'<'), 1..4096)) {
        // Begun as a message (what cannot begin one is refused at once: the test below).
        let mut framer = Framer::default();
        framer.push(b"<msg ");
        let mut fed = 5;
        loop {
            framer.push(&chunk);
            fed += chunk.len();
            match framer.next_message() {
                Err(wire::WireError::TooLong) => break,
                Ok(None) => prop_assert!(fed <= MAX_MESSAGE, "accepted {} bytes without a terminator", fed),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }

    #[test]
    fn what_cannot_begin_a_message_is_refused_at_once(
        space in "[ \t\r\n]{0,8}",
        first in any::<u8>().prop_filter("not a message start", |b| *b != b'<' && !b.is_ascii_whitespace()),
        rest in proptest::collection::vec(any::<u8>().prop_filter("no terminator", |b| *b != b'<'), 0..64),
    ) {
        let mut framer = Framer::default();
        framer.push(space.as_bytes());
        prop_assert!(matches!(framer.next_message(), Ok(None)));
        framer.push(&[first]);
        framer.push(&rest);
        prop_assert!(matches!(framer.next_message(), Err(wire::WireError::NotXml(b)) if b == first));
    }
}
