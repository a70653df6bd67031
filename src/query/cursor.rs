//! The `after` cursor: the sort key of a page's last entry, opaque to clients.
//!
//! It is the key as a JSON array (`[deadline ms, rule, key, topic, partition]`) in
//! base64url without padding (RFC 4648 section 5), so it sits in a query string as it
//! is. A text that does not decode to such a key is refused as a bad `after`.

use serde_json::{json, Value};

use crate::core::time::Millis;

/// The sort key of the last entry of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub deadline: Millis,
    pub rule: String,
    pub key: String,
    pub topic: String,
    pub partition: i32,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Cursor {
    pub(super) fn sort_key(&self) -> (i64, &str, &str, &str, i32) {
        let (rule, key, topic) = (&self.rule, &self.key, &self.topic);
        (self.deadline.0, rule, key, topic, self.partition)
    }

    pub fn encode(&self) -> String {
        let v = json!([
            self.deadline.0,
            self.rule,
            self.key,
            self.topic,
            self.partition
        ]);
        encode_base64url(v.to_string().as_bytes())
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = decode_base64url(text)?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        let [deadline, rule, key, topic, partition] = v.as_array()?.as_slice() else {
            return None;
        };
        Some(Cursor {
            deadline: Millis(deadline.as_i64()?),
            rule: rule.as_str()?.to_string(),
            key: key.as_str()?.to_string(),
            topic: topic.as_str()?.to_string(),
            partition: i32::try_from(partition.as_i64()?).ok()?,
        })
    }
}

fn encode_base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let value = ALPHABET.iter().position(|&a| a == c)? as u32;
            n |= value << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_the_rfc_vectors_without_padding() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode_base64url(plain.as_bytes()), encoded);
            assert_eq!(decode_base64url(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(encode_base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn a_cursor_reads_back_and_anything_else_is_refused() {
        let c = Cursor {
            deadline: Millis(1_700_000_000_000),
            rule: "ship_by".into(),
            key: "ä/ö &=".into(),
            topic: "shipment".into(),
            partition: 2,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "x", "!!!!", "WzFd", "bnVsbA"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
