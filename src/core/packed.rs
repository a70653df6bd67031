//! The per-instance text (key, opening event id, order id, seller id, marketplace) that
//! millions of open instances hold, packed into blocks of one slab per partition.
//!
//! # Ground rules
//!
//! * A block holds a few optional strings: its total length as a LEB128 varint, then for
//!   each string a varint header and its bytes. The header is 0 for absent, so an empty
//!   string reads back as absent (text fields are never empty once decoded: blank text
//!   is absent); `2 * len` for a string stored as it is, `len` bytes follow; `2 * n + 1`
//!   for one stored in `n` nibbles, `ceil(n / 2)` bytes follow.
//! * **Nibbles.** Ids are mostly digits and dashes (`302-1234567-0000042`, `T-0000123`),
//!   and a nibble holds one of those: the 15 bytes of [`NIBBLES`] take one nibble each,
//!   any other byte three (an escape, then its two halves). A string of at most
//!   [`MAX_NIBBLE_TEXT`] bytes is stored in nibbles when that takes less than three
//!   quarters of its bytes, else as it is. The choice depends on the string alone, so two
//!   stored strings are equal exactly when their stored forms are ([`Probe`]).
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

/// The bytes that take one nibble each, by their nibble: `-` to `:` (a run of ASCII) and
/// `_`; nibble 15 (`ESCAPE`) introduces any other byte, in the two nibbles that follow
/// (high half first).
pub const NIBBLES: &[u8; 15] = b"-./0123456789:_";
const ESCAPE: u8 = 15;

/// A byte's nibble, or [`ESCAPE`]: computed, not looked up, so a loop over a text can
/// be vectorised.
#[inline]
fn nibble_of(b: u8) -> u8 {
    let run = b.wrapping_sub(b'-');
    if run <= b':' - b'-' {
        run
    } else if b == b'_' {
        14
    } else {
        ESCAPE
    }
}

/// Longest string that may be stored in nibbles (longer ones are stored as they are), so
/// that an unpacked part always fits a [`Room`] slot.
pub const MAX_NIBBLE_TEXT: usize = 64;

/// Most parts a block holds.
const MAX_PARTS: usize = 8;

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
        debug_assert!(offset.is_multiple_of(1 << ALIGN_BITS) && offset < CHUNK);
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
    /// Stores the parts in a new block, each in nibbles or as it is (module doc).
    pub fn insert(&mut self, parts: &[Option<&[u8]>]) -> TextRef {
        assert!(
            parts.len() <= MAX_PARTS,
            "at most {MAX_PARTS} parts to a block"
        );
        let mut forms = [Form::Raw(0); MAX_PARTS];
        for (form, part) in forms.iter_mut().zip(parts) {
            *form = Form::of(part.unwrap_or_default());
        }
        let forms = &forms[..parts.len()];
        let body: usize = forms
            .iter()
            .map(|f| varint_len(f.header()) + f.payload_len())
            .sum();
        let size = (varint_len(body) + body).next_multiple_of(1 << ALIGN_BITS);
        let at = self.allocate(size);
        let block = &mut self.chunks[at.chunk()][at.offset()..at.offset() + size];
        let mut w = write_varint(block, 0, body);
        for (part, form) in parts.iter().zip(forms) {
            w = write_varint(block, w, form.header());
            let payload = &mut block[w..w + form.payload_len()];
            match form {
                Form::Raw(_) => payload.copy_from_slice(part.unwrap_or_default()),
                Form::Nibbles(_) => pack_nibbles(part.unwrap_or_default(), payload),
            }
            w += form.payload_len();
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

    /// Whether the `index`th part of a block is the text `probe` was made from.
    pub fn part_is(&self, at: TextRef, index: usize, probe: &Probe<'_>) -> bool {
        Parts(self.body(at))
            .nth(index)
            .flatten()
            .is_some_and(|(form, bytes)| form == probe.form && bytes == probe.payload())
    }

    /// The hash of the `index`th part as stored, seeded (0 when absent): what
    /// [`Probe::hash`] gives for its text, so an index hashes keys with no unpacking.
    pub fn part_hash(&self, at: TextRef, index: usize, seed: u64) -> u64 {
        Parts(self.body(at))
            .nth(index)
            .flatten()
            .map_or(0, |(form, bytes)| stored_hash(form.header(), bytes, seed))
    }

    /// The first `N` parts of a block in one pass, those stored in nibbles unpacked into
    /// `room`.
    pub fn all<'a, const N: usize>(
        &'a self,
        at: TextRef,
        room: &'a mut Room<N>,
    ) -> [Option<&'a [u8]>; N] {
        let mut parts = [None; N];
        let stored = Parts(self.body(at));
        for ((slot, part), space) in parts.iter_mut().zip(stored).zip(room.0.iter_mut()) {
            *slot = part.map(|(form, bytes)| match form {
                Form::Raw(_) => bytes,
                Form::Nibbles(n) => {
                    let len = unpack_nibbles(bytes, n, space);
                    let space: &'a [u8] = space;
                    &space[..len]
                }
            });
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

/// Room for the first `N` parts of a block, unpacked ([`TextSlab::all`]).
pub struct Room<const N: usize>([[u8; MAX_NIBBLE_TEXT]; N]);

impl<const N: usize> Room<N> {
    pub fn new() -> Room<N> {
        Room([[0; MAX_NIBBLE_TEXT]; N])
    }
}

impl<const N: usize> Default for Room<N> {
    fn default() -> Self {
        Room::new()
    }
}

/// How a string is stored in a block: its length, or its number of nibbles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Raw(usize),
    Nibbles(usize),
}

impl Form {
    /// In nibbles when that saves a quarter and the text is short enough, else as it is.
    fn of(text: &[u8]) -> Form {
        // Absent is stored as an empty string, whose header must stay 0.
        if !text.is_empty() && text.len() <= MAX_NIBBLE_TEXT {
            let escaped = text.iter().filter(|&&b| nibble_of(b) == ESCAPE).count();
            let n = text.len() + 2 * escaped;
            // A quarter saved at least: a text of many escapes (a hex UUID) saves
            // little and would cost its unpacking each time it is read.
            if 4 * n.div_ceil(2) < 3 * text.len() {
                return Form::Nibbles(n);
            }
        }
        Form::Raw(text.len())
    }

    fn header(self) -> usize {
        match self {
            Form::Raw(len) => len << 1,
            Form::Nibbles(n) => (n << 1) | 1,
        }
    }

    fn payload_len(self) -> usize {
        match self {
            Form::Raw(len) => len,
            Form::Nibbles(n) => n.div_ceil(2),
        }
    }
}

/// A text in the form a block would store it, to find a stored part equal to it without
/// unpacking any ([`TextSlab::part_is`]) and to hash it as stored ([`Probe::hash`]).
pub struct Probe<'a> {
    text: &'a [u8],
    form: Form,
    /// The nibbles, when stored in nibbles.
    packed: [u8; MAX_NIBBLE_TEXT],
}

impl<'a> Probe<'a> {
    pub fn new(text: &'a [u8]) -> Probe<'a> {
        let mut packed = [0; MAX_NIBBLE_TEXT];
        let form = Form::of(text);
        if let Form::Nibbles(n) = form {
            pack_nibbles(text, &mut packed[..n.div_ceil(2)]);
        }
        Probe { text, form, packed }
    }

    fn payload(&self) -> &[u8] {
        match self.form {
            Form::Raw(_) => self.text,
            Form::Nibbles(n) => &self.packed[..n.div_ceil(2)],
        }
    }

    /// The hash of the text as stored, seeded: what [`TextSlab::part_hash`] gives for a
    /// part stored from it.
    pub fn hash(&self, seed: u64) -> u64 {
        stored_hash(self.form.header(), self.payload(), seed)
    }
}

fn stored_hash(header: usize, payload: &[u8], seed: u64) -> u64 {
    let seed = seed ^ (header as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    xxhash_rust::xxh3::xxh3_64_with_seed(payload, seed)
}

/// Two bytes of [`NIBBLES`] in one byte, by that byte; meaningful where [`PLAIN`] says.
const PAIRS: [[u8; 2]; 256] = {
    let mut table = [[0; 2]; 256];
    let mut b = 0;
    while b < 256 {
        let (hi, lo) = (b >> 4, b & 15);
        if hi < 15 && lo < 15 {
            table[b] = [NIBBLES[hi], NIBBLES[lo]];
        }
        b += 1;
    }
    table
};
/// Whether neither nibble of a byte is [`ESCAPE`].
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b >> 4 < 15 && b & 15 < 15;
        b += 1;
    }
    table
};

/// Writes `text` in nibbles into `out`, exactly as long as they need (module doc).
fn pack_nibbles(text: &[u8], out: &mut [u8]) {
    fn put(out: &mut [u8], k: &mut usize, v: u8) {
        if k.is_multiple_of(2) {
            out[*k / 2] = v << 4;
        } else {
            out[*k / 2] |= v;
        }
        *k += 1;
    }
    let (mut k, mut i) = (0, 0);
    while i < text.len() {
        // Eight bytes of the run `-` to `:` at a byte boundary: four bytes of nibbles,
        // in a form the compiler vectorises.
        if k % 2 == 0 && i + 8 <= text.len() {
            let run: [u8; 8] = std::array::from_fn(|j| text[i + j].wrapping_sub(b'-'));
            if run.iter().all(|&d| d <= b':' - b'-') {
                let packed: [u8; 4] = std::array::from_fn(|j| (run[2 * j] << 4) | run[2 * j + 1]);
                out[k / 2..k / 2 + 4].copy_from_slice(&packed);
                (k, i) = (k + 8, i + 8);
                continue;
            }
        }
        // Two plain bytes at a byte boundary: one byte of nibbles.
        if k % 2 == 0 && i + 1 < text.len() {
            let (hi, lo) = (nibble_of(text[i]), nibble_of(text[i + 1]));
            if hi != ESCAPE && lo != ESCAPE {
                out[k / 2] = (hi << 4) | lo;
                (k, i) = (k + 2, i + 2);
                continue;
            }
        }
        let b = text[i];
        match nibble_of(b) {
            ESCAPE => {
                put(out, &mut k, ESCAPE);
                put(out, &mut k, b >> 4);
                put(out, &mut k, b & 15);
            }
            nibble => put(out, &mut k, nibble),
        }
        i += 1;
    }
}

/// Unpacks `n` nibbles of `packed` into `out`, returning the bytes written.
fn unpack_nibbles(packed: &[u8], n: usize, out: &mut [u8]) -> usize {
    let nibble = |k: usize| (packed[k / 2] >> (4 * (1 - k % 2))) & 15;
    let (mut k, mut w) = (0, 0);
    while k < n {
        // Four bytes of nibbles of the run `-` to `:`: eight bytes out, vectorised.
        if k % 2 == 0 && k + 8 <= n {
            let bytes = &packed[k / 2..k / 2 + 4];
            let run: [u8; 8] = std::array::from_fn(|j| (bytes[j / 2] >> (4 * (1 - j % 2))) & 15);
            if run.iter().all(|&d| d <= b':' - b'-') {
                let text: [u8; 8] = std::array::from_fn(|j| run[j] + b'-');
                out[w..w + 8].copy_from_slice(&text);
                (k, w) = (k + 8, w + 8);
                continue;
            }
        }
        // A byte of two plain nibbles: two bytes out.
        if k % 2 == 0 && k + 2 <= n {
            let b = packed[k / 2] as usize;
            if PLAIN[b] {
                out[w..w + 2].copy_from_slice(&PAIRS[b]);
                (k, w) = (k + 2, w + 2);
                continue;
            }
        }
        out[w] = match nibble(k) {
            ESCAPE => {
                k += 3;
                (nibble(k - 2) << 4) | nibble(k - 1)
            }
            c => {
                k += 1;
                NIBBLES[c as usize]
            }
        };
        w += 1;
    }
    w
}

/// The parts of a block's body, in order: each its form and its stored bytes.
struct Parts<'a>(&'a [u8]);

impl<'a> Iterator for Parts<'a> {
    type Item = Option<(Form, &'a [u8])>;

    fn next(&mut self) -> Option<Option<(Form, &'a [u8])>> {
        if self.0.is_empty() {
            return None;
        }
        let (header, used) = read_varint(self.0);
        let form = match header & 1 {
            0 => Form::Raw(header >> 1),
            _ => Form::Nibbles(header >> 1),
        };
        let (part, rest) = self.0[used..].split_at(form.payload_len());
        self.0 = rest;
        Some((header > 0).then_some((form, part)))
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
        fn text(&self, at: TextRef, index: usize) -> Option<String> {
            let mut room = Room::<5>::new();
            self.all::<5>(at, &mut room)[index].map(|b| String::from_utf8(b.to_vec()).unwrap())
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
        assert_eq!(slab.text(at, 0).as_deref(), Some("T-1"));
        assert_eq!(slab.text(at, 1), None);
        assert_eq!(slab.text(at, 2).as_deref(), Some(long.as_str()));
        assert_eq!(slab.text(at, 3).as_deref(), Some("NL"));
        assert_eq!(slab.text(at, 4), None);
        assert_eq!(
            slab.all::<5>(at, &mut Room::new()),
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
        let b = slab.put(&[Some("abcdefghij")]);
        assert_eq!((a.offset(), b.offset()), (0, 8), "1 + 1 + 3 bytes take 8");
        assert_eq!(slab.live_bytes(), 8 + 12);
        slab.remove(a);
        assert_eq!(
            slab.put(&[Some("xyz")]),
            a,
            "a freed block is reused by one of its size"
        );
        assert_ne!(slab.put(&[Some("abcdefghij")]), b);
    }

    #[test]
    fn chunks_fill_up_and_a_block_larger_than_a_chunk_gets_its_own() {
        let mut slab = TextSlab::default();
        let text = "k".repeat(1000);
        let refs: Vec<TextRef> = (0..2_000).map(|_| slab.put(&[Some(&text)])).collect();
        assert!(refs
            .iter()
            .all(|&at| slab.text(at, 0).as_deref() == Some(text.as_str())));
        assert_eq!(slab.chunks.len(), 2, "1004-byte blocks: 1044 to a chunk");
        let huge = "h".repeat(3 * CHUNK);
        let at = slab.put(&[Some("key"), Some(&huge)]);
        assert_eq!(
            (
                slab.text(at, 0).as_deref(),
                slab.text(at, 1).map(|t| t.len())
            ),
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
                .all(|&at| slab.text(at, 0).as_deref() == Some(text.as_str())),
            "no block moved"
        );
    }

    #[test]
    fn ids_of_digits_and_dashes_take_half_their_bytes() {
        let mut slab = TextSlab::default();
        let sizes = |slab: &mut TextSlab, text: &str| {
            let before = slab.live_bytes();
            let at = slab.put(&[Some(text)]);
            assert_eq!(slab.text(at, 0).as_deref(), Some(text));
            slab.live_bytes() - before
        };
        // Length varint, header, payload; rounded to 4.
        assert_eq!(
            sizes(&mut slab, "302-1234567-0000042"),
            12,
            "19 nibbles: 10 bytes"
        );
        assert_eq!(
            sizes(&mut slab, "T-0000000123"),
            12,
            "14 nibbles (T escaped): 7 bytes"
        );
        assert_eq!(sizes(&mut slab, "hd-0000000123"), 12, "17 nibbles: 9 bytes");
        assert_eq!(sizes(&mut slab, "Hello"), 8, "shorter as it is");
        assert_eq!(
            sizes(&mut slab, "aeb1a206-0737-4b4c-5692-161d100b05e5"),
            40,
            "a hex UUID with 9 letters would save a quarter, not more: stored as it is"
        );
        assert_eq!(sizes(&mut slab, "12"), 4, "one byte saved: 1 + 1 + 1");
        let digits = "7".repeat(MAX_NIBBLE_TEXT);
        assert_eq!(
            sizes(&mut slab, &digits),
            36,
            "the longest packed text: 1 + 1 + 32 + 2"
        );
        let longer = "7".repeat(MAX_NIBBLE_TEXT + 1);
        assert_eq!(
            sizes(&mut slab, &longer),
            68,
            "a longer one is stored as it is: 1 + 1 + 65 + 1"
        );
    }

    #[test]
    fn a_probe_matches_exactly_the_part_made_from_its_text() {
        let mut slab = TextSlab::default();
        let at = slab.put(&[Some("302-1234567-0000042"), Some("Zoë"), None]);
        let is = |index, text: &str| slab.part_is(at, index, &Probe::new(text.as_bytes()));
        assert!(is(0, "302-1234567-0000042") && is(1, "Zoë"));
        assert!(!is(0, "302-1234567-0000043") && !is(0, "302-1234567-000004"));
        assert!(!is(1, "Zoe") && !is(2, "") && !is(2, "x") && !is(3, "x"));
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Any texts come back as they went in, whichever way each is stored, and each
        /// matches its own probe and no other part's.
        #[test]
        fn any_texts_come_back_and_match_only_their_probe(
            parts in proptest::collection::vec(
                proptest::option::of(prop_oneof![
                    "[0-9_.:/-]{1,70}",
                    "[0-9A-Za-z_.:/-]{1,70}",
                    "\\PC{1,30}",
                    proptest::collection::vec(any::<u8>(), 1..8)
                        .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                ]),
                0..=5,
            )
        ) {
            let mut slab = TextSlab::default();
            let texts: Vec<Option<&str>> = parts.iter().map(|p| p.as_deref()).collect();
            let at = slab.put(&texts);
            let mut room = Room::<5>::new();
            let back = slab.all::<5>(at, &mut room);
            for (i, text) in texts.iter().enumerate() {
                prop_assert_eq!(back[i], text.map(str::as_bytes));
                for (j, other) in texts.iter().enumerate() {
                    if let Some(other) = other {
                        prop_assert_eq!(
                            slab.part_is(at, i, &Probe::new(other.as_bytes())),
                            *text == Some(*other),
                            "part {} against the text of part {}", i, j
                        );
                    }
                }
            }
        }
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
