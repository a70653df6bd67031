//! A few optional strings packed into one heap allocation, for the per-instance text
//! (key, opening event id, order id, seller id, marketplace) that millions of open
//! instances hold.
//!
//! # Ground rules
//!
//! * Layout: for each string, its length as a LEB128 varint, then its UTF-8 bytes.
//!   Absent is stored as length 0, so an empty string reads back as absent (text fields
//!   are never empty once decoded: blank text is absent).
//! * One allocation per instance instead of one per string: five `Option<String>` cost
//!   120 bytes of fields plus five allocations; this costs 16 bytes plus one.

/// Packed optional strings; the count is fixed by the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packed(Box<[u8]>);

impl Packed {
    pub fn new(parts: &[Option<&str>]) -> Packed {
        let len: usize = parts.iter().map(|p| p.map_or(0, str::len) + 5).sum();
        let mut bytes = Vec::with_capacity(len);
        for part in parts {
            let s = part.unwrap_or("");
            write_varint(&mut bytes, s.len());
            bytes.extend_from_slice(s.as_bytes());
        }
        Packed(bytes.into_boxed_slice())
    }

    /// The `index`th string, `None` when absent or past the end.
    pub fn get(&self, index: usize) -> Option<&str> {
        let bytes = self.get_bytes(index)?;
        Some(std::str::from_utf8(bytes).expect("packed from &str, so valid UTF-8"))
    }

    /// The `index`th string's bytes, without the UTF-8 check (for comparisons on the
    /// hot path).
    pub fn get_bytes(&self, index: usize) -> Option<&[u8]> {
        let mut at = 0;
        for i in 0.. {
            if at >= self.0.len() {
                return None;
            }
            let (len, used) = read_varint(&self.0[at..]);
            at += used;
            if i == index {
                return (len > 0).then(|| &self.0[at..at + len]);
            }
            at += len;
        }
        unreachable!("the loop returns")
    }

    /// The first `N` strings in one pass (`None` when absent or past the end).
    pub fn all<const N: usize>(&self) -> [Option<&str>; N] {
        let mut parts = [None; N];
        let mut at = 0;
        for part in &mut parts {
            if at >= self.0.len() {
                break;
            }
            let (len, used) = read_varint(&self.0[at..]);
            at += used;
            if len > 0 {
                *part = Some(std::str::from_utf8(&self.0[at..at + len]).expect("packed from &str, so valid UTF-8"));
            }
            at += len;
        }
        parts
    }

    pub fn heap_bytes(&self) -> usize {
        self.0.len()
    }
}

fn write_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(bytes: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    for (i, b) in bytes.iter().enumerate() {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (n, i + 1);
        }
    }
    panic!("a packed varint ran off the end: {bytes:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_come_back_as_they_went_in() {
        let long = "x".repeat(300);
        let p = Packed::new(&[Some("T-1"), None, Some(&long), Some("NL")]);
        assert_eq!(p.get(0), Some("T-1"));
        assert_eq!(p.get(1), None);
        assert_eq!(p.get(2), Some(long.as_str()));
        assert_eq!(p.get(3), Some("NL"));
        assert_eq!(p.get(4), None);
        assert_eq!(p.all::<5>(), [Some("T-1"), None, Some(long.as_str()), Some("NL"), None]);
    }
}
