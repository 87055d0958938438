//! Resource names: which of FLoM's six types a name is, and the parameters it carries.
//!
//! Pure functions of the name; nothing here knows about lockers or connections.
//! The daemon classifies every request with it; the probe reads capacities with it.

use crate::ResourceType;

/// The default resource of a client given no `-r`; clients may not name it themselves.
pub const DEFAULT_RESOURCE: &str = "_RESOURCE";

/// A resource name, classified, with what its type needs from the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    Simple,
    Numeric {
        total: u64,
    },
    Set {
        elements: Vec<String>,
    },
    /// `components` are the path's parts; the locker is keyed by the first.
    Hierarchical {
        components: Vec<String>,
    },
    Sequence {
        transactional: bool,
        max: u64,
    },
    Timestamp {
        format: String,
        max: u64,
        grain_ns: u64,
    },
}

impl Spec {
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Spec::Simple => ResourceType::Simple,
            Spec::Numeric { .. } => ResourceType::Numeric,
            Spec::Set { .. } => ResourceType::Set,
            Spec::Hierarchical { .. } => ResourceType::Hierarchical,
            Spec::Sequence { .. } => ResourceType::Sequence,
            Spec::Timestamp { .. } => ResourceType::Timestamp,
        }
    }
}

/// Classifies `name` by the first of FLoM's rules that matches; `None` if none does.
pub fn classify(name: &str) -> Option<Spec> {
    if is_alnum_word(name) || name == DEFAULT_RESOURCE {
        return Some(Spec::Simple);
    }
    if let Some(rest) = name
        .strip_prefix("_s_")
        .or_else(|| name.strip_prefix("_S_"))
    {
        let transactional = name.starts_with("_S_");
        let (base, max) = bracketed(rest)?;
        return is_alnum_word(base).then_some(Spec::Sequence { transactional, max });
    }
    if let Some(rest) = name.strip_prefix("_t_") {
        let (format, max) = bracketed(rest)?;
        let grain_ns = timestamp_grain_ns(format)?;
        return Some(Spec::Timestamp {
            format: format.to_owned(),
            max,
            grain_ns,
        });
    }
    if let Some((base, total)) = bracketed(name) {
        return is_alnum_word(base).then_some(Spec::Numeric { total });
    }
    if name.contains('.') {
        let elements: Vec<&str> = name.split('.').collect();
        let ok = elements.len() >= 2 && elements.iter().all(|e| is_alnum(e));
        return ok.then(|| Spec::Set {
            elements: elements.into_iter().map(str::to_owned).collect(),
        });
    }
    if let Some(path) = name.strip_prefix('/') {
        let components: Vec<&str> = path.split('/').collect();
        let ok = components.iter().all(|c| !c.is_empty());
        return ok.then(|| Spec::Hierarchical {
            components: components.into_iter().map(str::to_owned).collect(),
        });
    }
    None
}

/// `^[A-Za-z][A-Za-z0-9]*$`
fn is_alnum_word(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric())
}

fn is_alnum(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Splits `base[N]` into `("base", N)`.
fn bracketed(s: &str) -> Option<(&str, u64)> {
    let inner = s.strip_suffix(']')?;
    let open = inner.rfind('[')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((&inner[..open], digits.parse().ok()?))
}

/// The finest time unit a timestamp format distinguishes: a new element may be handed out
/// only once the clock has entered a new grain, so that elements are unique. `None` when the
/// format has no specifier that changes at least hourly (FLoM refuses those).
pub fn timestamp_grain_ns(format: &str) -> Option<u64> {
    const SEC: u64 = 1_000_000_000;
    if let Some(digits) = fraction_digits(format) {
        return Some(10u64.pow(9 - digits as u32));
    }
    let mut grain: Option<u64> = None;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let g = match chars.next() {
            Some('S' | 'T' | 's' | 'c' | 'r' | 'X') => SEC,
            Some('M' | 'R') => 60 * SEC,
            Some('H' | 'I') => 3600 * SEC,
            _ => continue,
        };
        grain = Some(grain.map_or(g, |old| old.min(g)));
    }
    grain
}

/// The number of fraction digits of the longest `#f…` run (1 to 6), if any.
pub fn fraction_digits(format: &str) -> Option<usize> {
    let bytes = format.as_bytes();
    let mut best = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'#' {
            let run = bytes[i + 1..]
                .iter()
                .take_while(|&&b| b == b'f')
                .count()
                .min(6);
            if run > 0 {
                best = Some(best.map_or(run, |b: usize| b.max(run)));
            }
            i += run + 1;
        } else {
            i += 1;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_type() {
        assert_eq!(classify("foo"), Some(Spec::Simple));
        assert_eq!(classify("_RESOURCE"), Some(Spec::Simple));
        assert_eq!(classify("num[3]"), Some(Spec::Numeric { total: 3 }));
        assert_eq!(
            classify("red.green.blue"),
            Some(Spec::Set {
                elements: vec!["red".into(), "green".into(), "blue".into()]
            })
        );
        assert_eq!(
            classify("/a/b"),
            Some(Spec::Hierarchical {
                components: vec!["a".into(), "b".into()]
            })
        );
        assert_eq!(
            classify("_s_seq[3]"),
            Some(Spec::Sequence {
                transactional: false,
                max: 3
            })
        );
        assert_eq!(
            classify("_S_seq[3]"),
            Some(Spec::Sequence {
                transactional: true,
                max: 3
            })
        );
        assert_eq!(
            classify("_t_%H:%M:%S#fff[1]"),
            Some(Spec::Timestamp {
                format: "%H:%M:%S#fff".into(),
                max: 1,
                grain_ns: 1_000_000
            })
        );
    }

    #[test]
    fn refuses_what_flom_refuses() {
        for bad in [
            "1bad",
            "a_b",
            "foo bar",
            "",
            "num[x]",
            "red..blue",
            "/a//b",
            "a/b",
            "_s_x",
            "/",
            "_t_[1]",
            "/a/",
            ".a.b",
            "café",
            "_t_%Y-%m-%d[1]",
        ] {
            assert_eq!(classify(bad), None, "{bad:?}");
        }
        for good in ["Foo", "x9", "num[0]", "_s_x[0]", "a.b"] {
            assert!(classify(good).is_some(), "{good:?}");
        }
    }

    #[test]
    fn timestamp_grains() {
        assert_eq!(timestamp_grain_ns("%H:%M:%S"), Some(1_000_000_000));
        assert_eq!(timestamp_grain_ns("%H:%M"), Some(60_000_000_000));
        assert_eq!(timestamp_grain_ns("%H"), Some(3_600_000_000_000));
        assert_eq!(timestamp_grain_ns("%R"), Some(60_000_000_000));
        assert_eq!(timestamp_grain_ns("%T#f"), Some(100_000_000));
        assert_eq!(timestamp_grain_ns("%T#ffffff"), Some(1_000));
        assert_eq!(timestamp_grain_ns("%Y%m%d"), None);
    }
}
