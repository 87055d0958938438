//! The expressions `print` and `type` take: a static's Rust path (a unique suffix is enough)
//! and then steps, as in Rust: `.field`, `.0`, `[3]`, `[2..5]`, `["key"]`, `[42]`, `.len()`,
//! and a variant by name (`.Some.0`, or `as Some`).
//!
//! Text in, steps out; an error names where the expression went wrong and what was expected
//! there. Nothing is looked up here.

use thiserror::Error;

/// One step after the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `.name`: a field, or a variant of an enum (`.Some`).
    Field(String),
    /// `.0`: a tuple field or a tuple variant's field.
    Position(u64),
    /// `[i]`: an element, or the map entry with the integer key `i`.
    Index(u64),
    /// `[a..b]`: elements `a` to `b - 1`.
    Range(u64, u64),
    /// `["key"]`: the map entry with this string key.
    Key(String),
    /// `.len()`.
    Len,
    /// `as Variant`: the enum must be in this variant.
    As(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    /// The static's path, or a suffix of it (`TABLE`, `table::TABLE`).
    pub root: String,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("in `{expr}` at column {column} (`{rest}`): expected {expected}")]
pub struct ExprError {
    pub expr: String,
    /// 1-based.
    pub column: usize,
    pub rest: String,
    pub expected: String,
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let mut p = Parser { text, at: 0 };
        p.skip_space();
        let root = p.path()?;
        let mut steps = Vec::new();
        loop {
            p.skip_space();
            if p.rest().is_empty() {
                break;
            }
            if p.eat("as ") {
                p.skip_space();
                steps.push(Step::As(p.ident("a variant name after `as`")?));
            } else if p.eat(".len()") {
                steps.push(Step::Len);
            } else if p.eat(".") {
                if let Some(n) = p.number() {
                    steps.push(Step::Position(n));
                } else {
                    steps.push(Step::Field(p.ident(
                        "a field or variant name, a tuple index, or len() after `.`",
                    )?));
                }
            } else if p.eat("[") {
                p.skip_space();
                let step = if let Some(key) = p.string()? {
                    Step::Key(key)
                } else if let Some(a) = p.number() {
                    if p.eat("..") {
                        let b = p
                            .number()
                            .ok_or_else(|| p.error("the end of the range (a number)"))?;
                        if b < a {
                            return Err(p.error("a range end no smaller than its start"));
                        }
                        Step::Range(a, b)
                    } else {
                        Step::Index(a)
                    }
                } else {
                    return Err(p.error("an index (42), a range (2..5) or a key (\"key\")"));
                };
                p.skip_space();
                if !p.eat("]") {
                    return Err(p.error("`]`"));
                }
                steps.push(step);
            } else {
                return Err(p.error("`.field`, `[index]`, `.len()` or `as Variant`"));
            }
        }
        Ok(Expr { root, steps })
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn error(&self, expected: &str) -> ExprError {
        ExprError {
            expr: self.text.to_owned(),
            column: self.text[..self.at].chars().count() + 1,
            rest: self.rest().to_owned(),
            expected: expected.to_owned(),
        }
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.rest().starts_with(token);
        if found {
            self.at += token.len();
        }
        found
    }

    /// `a::b::C`, possibly with generic arguments in angle brackets (`Foo<u32>::BAR`).
    fn path(&mut self) -> Result<String, ExprError> {
        let start = self.at;
        let mut depth = 0usize;
        for (i, c) in self.rest().char_indices() {
            let ends = match c {
                '<' => {
                    depth += 1;
                    false
                }
                '>' => {
                    depth = depth.saturating_sub(1);
                    false
                }
                '.' | '[' | ' ' if depth == 0 => true,
                _ => false,
            };
            if ends {
                self.at = start + i;
                break;
            }
            self.at = start + i + c.len_utf8();
        }
        let path = &self.text[start..self.at];
        let ok = !path.is_empty()
            && path
                .split("::")
                .all(|part| !part.is_empty() && !part.starts_with(|c: char| c.is_ascii_digit()));
        if ok {
            Ok(path.to_owned())
        } else {
            self.at = start;
            Err(self.error("a static's path, e.g. TABLE or app::table::TABLE"))
        }
    }

    fn ident(&mut self, expected: &str) -> Result<String, ExprError> {
        let len = self
            .rest()
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(self.rest().len(), |(i, _)| i);
        let ident = &self.rest()[..len];
        if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(self.error(expected));
        }
        self.at += len;
        Ok(ident.to_owned())
    }

    fn number(&mut self) -> Option<u64> {
        let len = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        let n = self.rest()[..len].parse().ok()?;
        self.at += len;
        Some(n)
    }

    /// A double-quoted key with `\"` and `\\` escapes, if one starts here.
    fn string(&mut self) -> Result<Option<String>, ExprError> {
        if !self.eat("\"") {
            return Ok(None);
        }
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(Some(out));
                }
                '\\' => match chars.next() {
                    Some((_, e)) => out.push(e),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(self.error("a closing `\"`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_step() {
        let e = Expr::parse(r#"TABLE.data.entries[3].waiting[0..2].len()"#).unwrap();
        assert_eq!(e.root, "TABLE");
        assert_eq!(
            e.steps,
            [
                Step::Field("data".into()),
                Step::Field("entries".into()),
                Step::Index(3),
                Step::Field("waiting".into()),
                Step::Range(0, 2),
                Step::Len
            ]
        );
        let e = Expr::parse(r#"fix::MAP["a \"b\""].Some.0 as Rect"#).unwrap();
        assert_eq!(
            e.steps,
            [
                Step::Key("a \"b\"".into()),
                Step::Field("Some".into()),
                Step::Position(0),
                Step::As("Rect".into())
            ]
        );
    }

    #[test]
    fn errors_name_the_place_and_what_was_expected() {
        let e = Expr::parse("TABLE.lockers[x]").unwrap_err();
        assert_eq!((e.column, e.rest.as_str()), (15, "x]"));
        assert!(e.expected.contains("an index"), "{e}");
        assert!(Expr::parse("TABLE[1..0]")
            .unwrap_err()
            .expected
            .contains("range"));
        assert!(Expr::parse("TABLE.")
            .unwrap_err()
            .expected
            .contains("field"));
        assert!(Expr::parse(".x").unwrap_err().expected.contains("path"));
    }
}
