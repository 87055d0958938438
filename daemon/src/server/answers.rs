//! The answers the server writes: an answer without an element depends only on its step
//! and return code, so each is formatted once and copied after (a handful in all).
//!
//! Formats into a connection's output buffer; sending it is the connection's business.

use crate::engine::Answer;
use crate::wire::write::write_answer;
use crate::wire::Rc;

pub(super) struct AnswerCache {
    /// The session id put in first answers (FLoM uses the machine id).
    peerid: String,
    /// (step, rc) → the whole message.
    formatted: Vec<((u32, Rc), Vec<u8>)>,
}

impl AnswerCache {
    pub(super) fn new(peerid: String) -> AnswerCache {
        AnswerCache {
            peerid,
            formatted: Vec::new(),
        }
    }

    /// Appends `answer` as a step-`step` message to `out`.
    // Inlined as it was when this was part of the server's send: it is on every answer.
    #[inline]
    pub(super) fn write(&mut self, out: &mut Vec<u8>, step: u32, answer: &Answer) {
        let Some(element) = &answer.element else {
            let key = (step, answer.rc);
            let i = match self.formatted.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    let mut msg = Vec::new();
                    write_answer(&mut msg, step, &self.peerid, answer.rc, None);
                    self.formatted.push((key, msg));
                    self.formatted.len() - 1
                }
            };
            if let Some((_, msg)) = self.formatted.get(i) {
                out.extend_from_slice(msg);
            }
            return;
        };
        write_answer(out, step, &self.peerid, answer.rc, Some(element));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    #[test]
    fn a_cached_answer_is_what_formatting_it_gives() {
        let mut cache = AnswerCache::new("p".into());
        for (step, answer) in [
            (wire::STEP_FIRST_ANSWER, Answer::rc(Rc::Queued)),
            (wire::STEP_LATER_ANSWER, Answer::rc(Rc::Granted)),
            (wire::STEP_FIRST_ANSWER, Answer::rc(Rc::Queued)),
            (
                wire::STEP_LATER_ANSWER,
                Answer {
                    rc: Rc::Granted,
                    element: Some("red".into()),
                },
            ),
        ] {
            let mut want = Vec::new();
            write_answer(&mut want, step, "p", answer.rc, answer.element.as_deref());
            let mut out = b"before".to_vec();
            cache.write(&mut out, step, &answer);
            assert_eq!(out.strip_prefix(b"before"), Some(&want[..]));
        }
        assert_eq!(
            cache.formatted.len(),
            2,
            "one per step and rc, none with an element"
        );
    }
}
