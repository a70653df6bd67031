//! The decoder's fast path: one pass over a record in the shape producers send, finding
//! the raw JSON text of the envelope's attributes and of `data`'s known fields.
//!
//! # Ground rules
//!
//! * [`scan`] answers only when serde_json would read the record into exactly the same
//!   raw texts; for anything else it answers `None` and the record takes serde's path,
//!   which is the reference (its errors name the problem). So this pass never decides a
//!   dead letter, and a record it does not know how to read costs one aborted scan.
//! * It knows: spaces between tokens, objects, arrays (to skip), strings with no escape
//!   (a `\` sends the record to serde, which decodes escapes), numbers by the JSON
//!   grammar, `true`, `false` and `null`, nesting up to [`MAX_DEPTH`]. A record with
//!   any control character (a tab or line break between tokens, or one inside a string,
//!   which serde refuses) goes to serde whole.
//! * It gives up where serde's derived reader would fail or differ: an envelope
//!   attribute given twice, `data` that is not an object, trailing characters.
//! * The differential property test in `decode_tests.rs` holds it to serde's answers.

use crate::core::event::{Field, FIELD_COUNT};

use super::{Raw, RawData};

/// Nesting beyond this goes to serde (its limit is 128).
const MAX_DEPTH: u32 = 32;

/// The raw texts of a record, or `None` to say "ask serde".
pub(super) fn scan_into<'a>(text: &'a str, raw: &mut Raw<'a>) -> bool {
    // A control character is refused inside a string and allowed (`\t`, `\n`, `\r`)
    // between tokens; producers write neither, so any sends the record to serde, and the
    // scan of a string need only look for its closing quote or an escape.
    if text.bytes().fold(false, |control, b| control | (b < 0x20)) {
        return false;
    }
    let mut s = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    if s.envelope(raw).is_none() {
        return false;
    }
    s.ws();
    s.at == s.bytes.len()
}

/// [`scan_into`] a fresh [`Raw`].
#[cfg(test)]
pub(super) fn scan(text: &str) -> Option<Raw<'_>> {
    let mut raw = Raw::default();
    scan_into(text, &mut raw).then_some(raw)
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// JSON whitespace; only spaces are left once [`scan`] has refused control
    /// characters.
    fn ws(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.peek() == Some(b)).then(|| self.at += 1)
    }

    /// A string with nothing escaped, its text without the quotes; at its opening quote.
    fn string(&mut self) -> Option<&'a str> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        let start = self.at + 1;
        let end = start + memchr::memchr2(b'"', b'\\', &self.bytes[start..])?;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        // The quotes are ASCII, so both ends are character boundaries.
        Some(&self.text[start..end])
    }

    /// Skips one value of any kind, checking its grammar; its raw text.
    fn value(&mut self, depth: u32) -> Option<&'a str> {
        self.ws();
        let start = self.at;
        match self.peek()? {
            b'"' => _ = self.string()?,
            b'{' => self.object(depth + 1, |s, _| s.value(depth + 1).map(drop))?,
            b'[' => self.array(depth + 1)?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        }
        Some(&self.text[start..self.at])
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes[self.at..]
            .starts_with(word)
            .then(|| self.at += word.len())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    /// A container at its opening bracket, whose elements `item` reads, up to `close`.
    fn items(
        &mut self,
        depth: u32,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.at += 1,
                b if b == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: u32) -> Option<()> {
        self.items(depth, b']', |s| s.value(depth).map(drop))
    }

    /// An object, at its `{`; `member` reads each member's value after its name.
    fn object(
        &mut self,
        depth: u32,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.items(depth, b'}', |s| {
            s.ws();
            if s.peek() != Some(b'"') {
                return None;
            }
            let name = s.string()?;
            s.eat(b':')?;
            member(s, name)
        })
    }

    /// Fills `raw` (fresh) in place: a record's attributes are hundreds of bytes, not
    /// worth copying out of a return value.
    fn envelope(&mut self, raw: &mut Raw<'a>) -> Option<()> {
        self.ws();
        if self.peek() != Some(b'{') {
            return None;
        }
        self.object(1, |s, name| {
            let attribute = match name {
                "specversion" => &mut raw.specversion,
                "id" => &mut raw.id,
                "source" => &mut raw.source,
                "type" => &mut raw.event_type,
                "time" => &mut raw.time,
                "data" => {
                    if raw.data.is_some() {
                        return None;
                    }
                    let fresh = RawData::Object {
                        fields: [None; FIELD_COUNT],
                        duplicate: None,
                    };
                    let RawData::Object { fields, duplicate } = raw.data.insert(fresh) else {
                        unreachable!("just inserted");
                    };
                    return s.data(fields, duplicate);
                }
                _ => return s.value(1).map(drop),
            };
            if attribute.is_some() {
                return None;
            }
            *attribute = Some(s.value(1)?);
            Some(())
        })
    }

    /// `data`, which must be an object here (serde names any other kind), into the
    /// fields (fresh) and the first known field given twice.
    fn data(
        &mut self,
        fields: &mut [Option<&'a str>; FIELD_COUNT],
        duplicate: &mut Option<Field>,
    ) -> Option<()> {
        self.ws();
        if self.peek() != Some(b'{') {
            return None;
        }
        self.object(2, |s, name| {
            let value = s.value(2)?;
            if let Some(field) = Field::from_name(name) {
                let slot: &mut Option<&str> = &mut fields[field.index()];
                if slot.is_some() {
                    duplicate.get_or_insert(field);
                }
                *slot = Some(value);
            }
            Some(())
        })
    }
}
