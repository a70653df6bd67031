//! JSON text at the byte level, shared by the decoder and the alert writer.

/// The length of the longest prefix with nothing to escape (no `"`, `\` or control
/// character): checked a word of 8 bytes at a time, since alert text almost never needs
/// escaping, then byte by byte.
pub fn plain_prefix_len(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
        if control
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\')))
        {
            break;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b < 0x20 || b == b'"' || b == b'\\' {
            break;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_prefix_stops_at_the_first_escape() {
        assert_eq!(plain_prefix_len(b"abcdefghijklmnopq"), 17);
        for (i, special) in [b'"', b'\\', b'\n', 0x00, 0x1F].into_iter().enumerate() {
            for at in [0, 3, 9 + i, 23] {
                let mut text = *b"abcdefghijklmnopqrstuvwx";
                text[at] = special;
                assert_eq!(plain_prefix_len(&text), at, "{special:#x} at {at}");
            }
        }
        let text = "ééééééééé ✓✓✓✓";
        assert_eq!(
            plain_prefix_len(text.as_bytes()),
            text.len(),
            "bytes above 0x7F need no escape"
        );
    }
}
