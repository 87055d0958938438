//! The reference path of reading a message: any XML quick-xml reads, and every error.
//!
//! Gathers what a message says into [`Fields`]; what the fields mean is [`super`]'s.

use super::{malformed, Fields, WireError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;

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
pub(super) fn parse_xml(bytes: &[u8]) -> Result<Fields<'static>, WireError> {
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
                b"network" => {
                    f.network = true;
                    each_attr(&e, |k, v| {
                        match k {
                            b"address" => f.address = Some(Cow::Owned(v.to_owned())),
                            b"port" => f.port = Some(number(k, v)?),
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
