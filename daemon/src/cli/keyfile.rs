//! A GLib key file, as flom's configuration files are read (`g_key_file_load_from_file`):
//! `[Group]` lines, `Key=Value` lines (whitespace around `=` ignored), `#` comment lines and
//! blank lines; values unescaped (`\s \n \t \r \\`) and read as strings, integers or
//! `;`-separated lists. Every entry remembers its line, so errors name file, line and key.
//!
//! Parses text only: which keys mean what is [`super::config`]'s; it opens no file.

#![forbid(unsafe_code)]

use std::fmt;

/// A parsed key file: entries in file order (a later duplicate wins, as in GLib).
#[derive(Debug, Default)]
pub(crate) struct KeyFile {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    group: String,
    key: String,
    raw: String,
    line: usize,
}

/// A value read from a key file, with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value<T> {
    pub value: T,
    /// 1-based line of the key.
    pub line: usize,
}

/// What is wrong with a key file's text, and where (file names are added by the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyFileError {
    #[error("line {line}: the file does not start with a [Group] line; put the key under one")]
    NoGroup { line: usize },
    #[error("line {line}: '{text}' is not a key=value pair, a [Group] or a # comment")]
    BadLine { line: usize, text: String },
    #[error(
        "line {line}: key {key}: invalid escape sequence in '{raw}' (valid: \\s \\n \\t \\r \\\\)"
    )]
    BadEscape {
        line: usize,
        key: String,
        raw: String,
    },
    #[error("line {line}: key {key}: '{raw}' is not an integer")]
    NotInteger {
        line: usize,
        key: String,
        raw: String,
    },
    #[error("line {line}: key {key}: integer '{raw}' is out of range")]
    OutOfRange {
        line: usize,
        key: String,
        raw: String,
    },
}

impl KeyFile {
    /// Parses a whole file's text, as GLib does (a syntax error rejects the whole file).
    pub(crate) fn parse(text: &str) -> Result<KeyFile, KeyFileError> {
        let mut entries = Vec::new();
        let mut group: Option<String> = None;
        for (index, raw_line) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw_line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                match rest.trim_end().strip_suffix(']') {
                    Some(name) if !name.contains(['[', ']']) => group = Some(name.to_owned()),
                    _ => {
                        return Err(KeyFileError::BadLine {
                            line,
                            text: raw_line.to_owned(),
                        })
                    }
                }
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(KeyFileError::BadLine {
                    line,
                    text: raw_line.to_owned(),
                });
            };
            let key = key.trim_end();
            if key.is_empty() {
                return Err(KeyFileError::BadLine {
                    line,
                    text: raw_line.to_owned(),
                });
            }
            let Some(group) = &group else {
                return Err(KeyFileError::NoGroup { line });
            };
            entries.push(Entry {
                group: group.clone(),
                key: key.to_owned(),
                raw: value.trim_start().to_owned(),
                line,
            });
        }
        Ok(KeyFile { entries })
    }

    fn entry(&self, group: &str, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.group == group && e.key == key)
    }

    /// `g_key_file_get_string`: the unescaped value, or `None` if the key is absent.
    pub(crate) fn string(
        &self,
        group: &str,
        key: &str,
    ) -> Result<Option<Value<String>>, KeyFileError> {
        self.entry(group, key)
            .map(|e| {
                Ok(Value {
                    value: unescape(&e.raw, false).ok_or_else(|| e.bad_escape())?.0,
                    line: e.line,
                })
            })
            .transpose()
    }

    /// `g_key_file_get_integer`: a 32-bit decimal integer (sign allowed, surrounding
    /// whitespace ignored), or `None` if the key is absent.
    pub(crate) fn integer(
        &self,
        group: &str,
        key: &str,
    ) -> Result<Option<Value<i32>>, KeyFileError> {
        self.entry(group, key)
            .map(|e| {
                let text = e.raw.trim();
                let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(KeyFileError::NotInteger {
                        line: e.line,
                        key: e.key.clone(),
                        raw: e.raw.clone(),
                    });
                }
                let value = text.parse::<i32>().map_err(|_| KeyFileError::OutOfRange {
                    line: e.line,
                    key: e.key.clone(),
                    raw: e.raw.clone(),
                })?;
                Ok(Value {
                    value,
                    line: e.line,
                })
            })
            .transpose()
    }

    /// `g_key_file_get_string_list`: items separated by `;` (a trailing one optional,
    /// `\;` a literal semicolon), each unescaped; `None` if the key is absent.
    pub(crate) fn list(
        &self,
        group: &str,
        key: &str,
    ) -> Result<Option<Value<Vec<String>>>, KeyFileError> {
        self.entry(group, key)
            .map(|e| {
                let (_, items) = unescape(&e.raw, true).ok_or_else(|| e.bad_escape())?;
                Ok(Value {
                    value: items,
                    line: e.line,
                })
            })
            .transpose()
    }
}

impl Entry {
    fn bad_escape(&self) -> KeyFileError {
        KeyFileError::BadEscape {
            line: self.line,
            key: self.key.clone(),
            raw: self.raw.clone(),
        }
    }
}

/// GLib's unescaping; with `split`, also cuts at unescaped `;` (the items are the second
/// half of the answer). `None` on an unknown escape or a trailing backslash.
fn unescape(raw: &str, split: bool) -> Option<(String, Vec<String>)> {
    let mut whole = String::with_capacity(raw.len());
    let mut items = Vec::new();
    let mut item = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        let out = match c {
            '\\' => match chars.next()? {
                's' => ' ',
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\\' => '\\',
                ';' if split => ';',
                _ => return None,
            },
            ';' if split => {
                items.push(std::mem::take(&mut item));
                whole.push(';');
                continue;
            }
            c => c,
        };
        whole.push(out);
        item.push(out);
    }
    if !item.is_empty() {
        items.push(item);
    }
    Some((whole, items))
}

impl<T: fmt::Display> fmt::Display for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn groups_keys_comments_and_whitespace() {
        let kf = KeyFile::parse(
            "# a comment\n\n[Resource]\n  Name = foo  \nTimeout=-5\n[Daemon]\nSocketName=/tmp/x\n[Resource]\nName=bar\n",
        )
        .unwrap();
        let name = kf.string("Resource", "Name").unwrap().unwrap();
        assert_eq!((name.value.as_str(), name.line), ("bar", 9));
        assert_eq!(
            kf.integer("Resource", "Timeout").unwrap().unwrap().value,
            -5
        );
        assert_eq!(
            kf.string("Daemon", "SocketName").unwrap().unwrap().value,
            "/tmp/x"
        );
        assert_eq!(kf.string("Daemon", "Name").unwrap(), None);
    }

    #[test]
    fn escapes_as_glib() {
        let kf = KeyFile::parse("[G]\nK=\\sa\\tb\\nc\\rd\\\\e\nBad=x\\q\nEnd=x\\\n").unwrap();
        assert_eq!(
            kf.string("G", "K").unwrap().unwrap().value,
            " a\tb\nc\rd\\e"
        );
        assert!(matches!(
            kf.string("G", "Bad"),
            Err(KeyFileError::BadEscape { line: 3, .. })
        ));
        assert!(matches!(
            kf.string("G", "End"),
            Err(KeyFileError::BadEscape { line: 4, .. })
        ));
    }

    #[test]
    fn integers_as_glib() {
        let kf = KeyFile::parse("[G]\nA= 12 \nB=1x\nC=99999999999\nD=\nE=+7\n").unwrap();
        assert_eq!(kf.integer("G", "A").unwrap().unwrap().value, 12);
        assert!(matches!(
            kf.integer("G", "B"),
            Err(KeyFileError::NotInteger { line: 3, .. })
        ));
        assert!(matches!(
            kf.integer("G", "C"),
            Err(KeyFileError::OutOfRange { line: 4, .. })
        ));
        assert!(kf.integer("G", "D").is_err());
        assert_eq!(kf.integer("G", "E").unwrap().unwrap().value, 7);
    }

    #[test]
    fn lists_as_glib() {
        let kf = KeyFile::parse("[G]\nL=SIGINT;15;\nM=a\\;b;c\n").unwrap();
        assert_eq!(kf.list("G", "L").unwrap().unwrap().value, ["SIGINT", "15"]);
        assert_eq!(kf.list("G", "M").unwrap().unwrap().value, ["a;b", "c"]);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            KeyFile::parse("K=v\n").unwrap_err(),
            KeyFileError::NoGroup { line: 1 }
        );
        assert!(matches!(
            KeyFile::parse("[G]\n\njust text\n").unwrap_err(),
            KeyFileError::BadLine { line: 3, .. }
        ));
        assert!(matches!(
            KeyFile::parse("[G\n").unwrap_err(),
            KeyFileError::BadLine { line: 1, .. }
        ));
        assert!(matches!(
            KeyFile::parse("[G]\n=v\n").unwrap_err(),
            KeyFileError::BadLine { line: 2, .. }
        ));
    }

    /// Escapes a string the way GLib's writer does, so it reads back unchanged.
    fn escape(s: &str) -> String {
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            match c {
                ' ' if i == 0 => out.push_str("\\s"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\\' => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn strings_round_trip(value in "[ -~\t\n\r]{0,40}", key in "[A-Za-z][A-Za-z0-9]{0,12}") {
            let text = format!("[Group]\n{key} = {}\n", escape(&value));
            let kf = KeyFile::parse(&text).unwrap();
            let got = kf.string("Group", &key).unwrap().unwrap();
            prop_assert_eq!(got.value, value);
            prop_assert_eq!(got.line, 2);
        }

        #[test]
        fn integers_round_trip(n in any::<i32>(), pad in " {0,3}") {
            let text = format!("[G]\nN={pad}{n}{pad}\n");
            prop_assert_eq!(KeyFile::parse(&text).unwrap().integer("G", "N").unwrap().unwrap().value, n);
        }

        #[test]
        fn any_text_parses_or_names_a_line(text in "[\\[\\]=# a-z\n]{0,80}") {
            match KeyFile::parse(&text) {
                Ok(_) => {}
                Err(KeyFileError::NoGroup { line } | KeyFileError::BadLine { line, .. }) => {
                    prop_assert!(line >= 1 && line <= text.lines().count());
                }
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
    }
}
