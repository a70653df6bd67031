//! The per-instance text (key, opening event id, order id, seller id, marketplace) that
//! millions of open instances hold, packed into blocks of one slab per partition.
//!
//! # Ground rules
//!
//! * A block holds a few optional strings: its total length as a LEB128 varint, then for
//!   each string its length as a varint and its UTF-8 bytes. Absent is stored as length
//!   0, so an empty string reads back as absent (text fields are never empty once
//!   decoded: blank text is absent).
//! * Blocks are rounded up to 4 bytes and live in 1 MiB chunks that are never moved or
//!   copied; a freed block goes on a free list for its size and is reused by the next
//!   block of that size. A block larger than a chunk gets a chunk of its own.
//! * A block is named by a 4-byte [`TextRef`] instead of a 16-byte boxed slice, and pays
//!   no allocator header or 16-byte rounding: with a 50-byte text that is 56 bytes per
//!   instance where a `Box<[u8]>` costs 80 (16 in the slot, 64 in the heap).
//! * Texts that many instances share (a seller id, a marketplace) are stored once in an
//!   [`Interner`], counted by their users, and the blocks hold their number.

use std::collections::HashMap;

use hashbrown::HashTable;

/// Bytes per chunk, `2^CHUNK_BITS`.
const CHUNK_BITS: u32 = 20;
const CHUNK: usize = 1 << CHUNK_BITS;
/// Blocks are aligned to `2^ALIGN_BITS` bytes within their chunk.
const ALIGN_BITS: u32 = 2;
/// Bits of a [`TextRef`] that give the block's offset in its chunk, in 4-byte units.
const OFFSET_BITS: u32 = CHUNK_BITS - ALIGN_BITS;

/// Names one block of a [`TextSlab`]: chunk index (high 14 bits) and offset in 4-byte
/// units (low 18 bits), so a slab may hold up to 16 GiB.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TextRef(u32);

impl TextRef {
    /// Names no block (a freed slot's).
    pub const NONE: TextRef = TextRef(u32::MAX);

    fn new(chunk: usize, offset: usize) -> TextRef {
        debug_assert!(offset % (1 << ALIGN_BITS) == 0 && offset < CHUNK);
        let chunk = u32::try_from(chunk)
            .ok()
            .filter(|&c| c < (1 << (32 - OFFSET_BITS)) - 1);
        let chunk = chunk.expect("a text slab holds at most 16 GiB");
        TextRef((chunk << OFFSET_BITS) | (offset >> ALIGN_BITS) as u32)
    }

    fn chunk(self) -> usize {
        (self.0 >> OFFSET_BITS) as usize
    }

    fn offset(self) -> usize {
        ((self.0 & ((1 << OFFSET_BITS) - 1)) as usize) << ALIGN_BITS
    }
}

/// Blocks of packed optional byte strings, see the module doc.
#[derive(Clone, Debug, Default)]
pub struct TextSlab {
    /// Each allocated with capacity `CHUNK` (or one oversized block) and never grown past
    /// it, so blocks never move.
    chunks: Vec<Vec<u8>>,
    /// Freed blocks by size in bytes (a multiple of 4).
    free: HashMap<usize, Vec<TextRef>>,
    /// Bytes in live blocks.
    live: usize,
}

impl TextSlab {
    /// Stores the parts in a new block.
    pub fn insert(&mut self, parts: &[Option<&[u8]>]) -> TextRef {
        let body: usize = parts
            .iter()
            .map(|p| varint_len(p.map_or(0, <[u8]>::len)) + p.map_or(0, <[u8]>::len))
            .sum();
        let size = (varint_len(body) + body).next_multiple_of(1 << ALIGN_BITS);
        let at = self.allocate(size);
        let block = &mut self.chunks[at.chunk()][at.offset()..at.offset() + size];
        let mut w = write_varint(block, 0, body);
        for part in parts {
            let s = part.unwrap_or_default();
            w = write_varint(block, w, s.len());
            block[w..w + s.len()].copy_from_slice(s);
            w += s.len();
        }
        self.live += size;
        at
    }

    /// Frees a block; `at` must not be used again.
    pub fn remove(&mut self, at: TextRef) {
        let size = self.block(at).len().next_multiple_of(1 << ALIGN_BITS);
        self.live -= size;
        self.free.entry(size).or_default().push(at);
    }

    /// The `index`th part of a block, `None` when absent or past the end.
    pub fn get(&self, at: TextRef, index: usize) -> Option<&[u8]> {
        Parts(self.body(at)).nth(index).flatten()
    }

    /// The first `N` parts of a block in one pass.
    pub fn all<const N: usize>(&self, at: TextRef) -> [Option<&[u8]>; N] {
        let mut parts = [None; N];
        for (slot, part) in parts.iter_mut().zip(Parts(self.body(at))) {
            *slot = part;
        }
        parts
    }

    /// Bytes of heap held: chunks (used or not), free lists.
    pub fn heap_bytes(&self) -> usize {
        let chunks: usize = self.chunks.iter().map(Vec::capacity).sum();
        let free: usize = self.free.values().map(|v| v.capacity() * 4 + 32).sum();
        chunks + free + self.chunks.capacity() * size_of::<Vec<u8>>()
    }

    /// Bytes in live blocks.
    pub fn live_bytes(&self) -> usize {
        self.live
    }

    /// A block of `size` bytes (a multiple of 4): a freed one of that size, else the end
    /// of the last chunk, else a new chunk.
    fn allocate(&mut self, size: usize) -> TextRef {
        if let Some(at) = self.free.get_mut(&size).and_then(Vec::pop) {
            return at;
        }
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() == CHUNK && c.len() + size <= CHUNK);
        if !fits {
            self.chunks.push(Vec::with_capacity(size.max(CHUNK)));
        }
        let chunk = self.chunks.len() - 1;
        let last = &mut self.chunks[chunk];
        let offset = last.len();
        last.resize(offset + size, 0);
        TextRef::new(chunk, offset)
    }

    /// The block's bytes after its length varint.
    fn body(&self, at: TextRef) -> &[u8] {
        let chunk = &self.chunks[at.chunk()][at.offset()..];
        let (len, used) = read_varint(chunk);
        &chunk[used..used + len]
    }

    /// The whole block (length varint and body), without the rounding.
    fn block(&self, at: TextRef) -> &[u8] {
        let chunk = &self.chunks[at.chunk()][at.offset()..];
        let (len, used) = read_varint(chunk);
        &chunk[..used + len]
    }
}

/// Texts shared by many instances, each stored once and counted by its users: a
/// number names one while anyone uses it, and may be given to another text once nobody
/// does. A text whose last user leaves is kept (idle) for a while, since another user
/// of it usually comes soon; idle texts are dropped once they outnumber those in use.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    /// The text and its users, by number; a dropped text is empty, its number free.
    entries: Vec<(Box<str>, u32)>,
    /// Numbers of texts kept (in use or idle), hashed by their text.
    index: HashTable<u32>,
    free: Vec<u32>,
    /// Texts kept with no user.
    idle: usize,
}

impl Interner {
    /// The number of `text`, one more user of it.
    pub fn acquire(&mut self, text: &str) -> u32 {
        let h = hash_text(text);
        let entries = &mut self.entries;
        if let Some(&n) = self.index.find(h, |&n| &*entries[n as usize].0 == text) {
            let users = &mut entries[n as usize].1;
            if *users == 0 {
                self.idle -= 1;
            }
            *users += 1;
            return n;
        }
        let n = match self.free.pop() {
            Some(n) => {
                entries[n as usize] = (text.into(), 1);
                n
            }
            None => {
                let n = u32::try_from(entries.len()).expect("fewer than 2^32 shared texts");
                entries.push((text.into(), 1));
                n
            }
        };
        self.index
            .insert_unique(h, n, |&m| hash_text(&entries[m as usize].0));
        n
    }

    /// One user fewer of text `n`.
    pub fn release(&mut self, n: u32) {
        let users = &mut self.entries[n as usize].1;
        *users -= 1;
        if *users == 0 {
            self.idle += 1;
            if self.idle > 64 + self.len() {
                self.drop_idle();
            }
        }
    }

    /// Drops every idle text, freeing its number.
    fn drop_idle(&mut self) {
        let entries = &mut self.entries;
        let free = &mut self.free;
        self.index.retain(|&mut n| {
            let entry = &mut entries[n as usize];
            if entry.1 > 0 {
                return true;
            }
            entry.0 = Box::default();
            free.push(n);
            false
        });
        self.idle = 0;
    }

    /// Text `n`, which someone uses.
    pub fn get(&self, n: u32) -> &str {
        &self.entries[n as usize].0
    }

    /// Texts in use.
    pub fn len(&self) -> usize {
        self.index.len() - self.idle
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_bytes(&self) -> usize {
        let texts: usize = self.entries.iter().map(|(t, _)| t.len()).sum();
        self.entries.capacity() * size_of::<(Box<str>, u32)>()
            + texts
            + self.index.capacity() * 8 / 7 * 5
            + self.free.capacity() * 4
    }
}

fn hash_text(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// The parts of a block's body, in order.
struct Parts<'a>(&'a [u8]);

impl<'a> Iterator for Parts<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Option<&'a [u8]>> {
        if self.0.is_empty() {
            return None;
        }
        let (len, used) = read_varint(self.0);
        let (part, rest) = self.0[used..].split_at(len);
        self.0 = rest;
        Some((len > 0).then_some(part))
    }
}

fn varint_len(n: usize) -> usize {
    (usize::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
}

/// Writes `n` at `at`, returning the position after it.
pub(super) fn write_varint(out: &mut [u8], mut at: usize, mut n: usize) -> usize {
    while n >= 0x80 {
        out[at] = (n as u8) | 0x80;
        n >>= 7;
        at += 1;
    }
    out[at] = n as u8;
    at + 1
}

/// The value of the varint at the start of `bytes`, and its length.
pub(super) fn read_varint(bytes: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    for (i, b) in bytes.iter().enumerate() {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (n, i + 1);
        }
    }
    panic!("a packed varint ran off the end of its chunk")
}

#[cfg(test)]
mod tests {
    use super::*;

    impl TextSlab {
        fn text(&self, at: TextRef, index: usize) -> Option<&str> {
            self.get(at, index).map(|b| std::str::from_utf8(b).unwrap())
        }

        fn put(&mut self, parts: &[Option<&str>]) -> TextRef {
            let parts: Vec<Option<&[u8]>> = parts.iter().map(|p| p.map(str::as_bytes)).collect();
            self.insert(&parts)
        }
    }

    #[test]
    fn strings_come_back_as_they_went_in() {
        let long = "x".repeat(300);
        let mut slab = TextSlab::default();
        let at = slab.put(&[Some("T-1"), None, Some(&long), Some("NL")]);
        assert_eq!(slab.text(at, 0), Some("T-1"));
        assert_eq!(slab.text(at, 1), None);
        assert_eq!(slab.text(at, 2), Some(long.as_str()));
        assert_eq!(slab.text(at, 3), Some("NL"));
        assert_eq!(slab.text(at, 4), None);
        assert_eq!(
            slab.all::<5>(at),
            [
                Some(&b"T-1"[..]),
                None,
                Some(long.as_bytes()),
                Some(b"NL"),
                None
            ]
        );
    }

    #[test]
    fn blocks_are_rounded_to_four_bytes_and_reused_by_size() {
        let mut slab = TextSlab::default();
        let a = slab.put(&[Some("abc")]);
        let b = slab.put(&[Some("0123456789")]);
        assert_eq!((a.offset(), b.offset()), (0, 8), "1 + 1 + 3 bytes take 8");
        assert_eq!(slab.live_bytes(), 8 + 12);
        slab.remove(a);
        assert_eq!(
            slab.put(&[Some("xyz")]),
            a,
            "a freed block is reused by one of its size"
        );
        assert_ne!(slab.put(&[Some("0123456789")]), b);
    }

    #[test]
    fn chunks_fill_up_and_a_block_larger_than_a_chunk_gets_its_own() {
        let mut slab = TextSlab::default();
        let text = "k".repeat(1000);
        let refs: Vec<TextRef> = (0..2_000).map(|_| slab.put(&[Some(&text)])).collect();
        assert!(refs
            .iter()
            .all(|&at| slab.text(at, 0) == Some(text.as_str())));
        assert_eq!(slab.chunks.len(), 2, "1004-byte blocks: 1044 to a chunk");
        let huge = "h".repeat(3 * CHUNK);
        let at = slab.put(&[Some("key"), Some(&huge)]);
        assert_eq!(
            (slab.text(at, 0), slab.text(at, 1).map(str::len)),
            (Some("key"), Some(3 * CHUNK))
        );
        let after = slab.put(&[Some(&text)]);
        assert_eq!(
            after.chunk(),
            3,
            "the oversized chunk is not filled further"
        );
        assert!(
            refs.iter()
                .all(|&at| slab.text(at, 0) == Some(text.as_str())),
            "no block moved"
        );
    }

    #[test]
    fn a_shared_text_is_stored_once_and_freed_with_its_last_user() {
        let mut shared = Interner::default();
        let (a, b) = (
            shared.acquire("ATVPDKIKX0DER"),
            shared.acquire("A1PA6795UKMFR9"),
        );
        assert_ne!(a, b);
        assert_eq!(shared.acquire("ATVPDKIKX0DER"), a);
        assert_eq!(
            (shared.get(a), shared.get(b), shared.len()),
            ("ATVPDKIKX0DER", "A1PA6795UKMFR9", 2)
        );
        shared.release(a);
        assert_eq!(shared.get(a), "ATVPDKIKX0DER", "one user is left");
        shared.release(a);
        assert_eq!(shared.len(), 1);
        assert_eq!(shared.acquire("ATVPDKIKX0DER"), a, "an idle text is kept");
        shared.release(a);
        shared.drop_idle();
        let c = shared.acquire("A13V1IB3VIYZZH");
        assert_eq!(c, a, "the freed number is given again");
        assert_eq!(
            (shared.get(c), shared.get(b)),
            ("A13V1IB3VIYZZH", "A1PA6795UKMFR9")
        );
        assert_eq!(shared.acquire("ATVPDKIKX0DER"), 2);
    }

    #[test]
    fn idle_texts_are_dropped_once_they_outnumber_those_in_use() {
        let mut shared = Interner::default();
        let kept = shared.acquire("kept");
        for k in 0..10_000 {
            let n = shared.acquire(&format!("seller-{k}"));
            shared.release(n);
            assert!(
                shared.index.len() <= 64 + 2 + 1,
                "{} kept",
                shared.index.len()
            );
        }
        assert_eq!((shared.len(), shared.get(kept)), (1, "kept"));
        assert!(shared.entries.len() <= 64 + 3, "numbers are reused");
    }

    #[test]
    fn varint_lengths_match_what_is_written() {
        for n in [0, 1, 127, 128, 16_383, 16_384, 1 << 30] {
            let mut buf = [0u8; 10];
            assert_eq!(write_varint(&mut buf, 0, n), varint_len(n), "{n}");
            assert_eq!(read_varint(&buf), (n, varint_len(n)));
        }
    }
}
