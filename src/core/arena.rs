//! A growable array addressed by `u32` that grows by whole chunks and never moves an
//! element: the storage behind the timer wheel's nodes and the slot table's slots.
//!
//! A `Vec` that doubles holds up to twice what it needs and, while it grows, both the
//! old and the new buffer: with ten million 40-byte slots that is a 400 MB copy and a
//! peak of 1.2 GB. Chunks of `2^CHUNK_BITS` elements waste at most one partly filled
//! chunk and are never copied. Freeing is the caller's business (a free list of indices).

/// Elements per chunk, `2^16`: 1.3 to 2.6 MiB for 20- to 40-byte elements, so the one
/// partly used chunk wastes little and the chunk table stays tiny.
pub const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;

#[derive(Clone, Debug)]
pub struct Arena<T> {
    chunks: Vec<Vec<T>>,
    len: u32,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Arena<T> {
    /// Appends an element, returning its index. Panics past `limit` elements (callers
    /// reserve the indices above it for markers).
    pub fn push(&mut self, value: T, limit: u32) -> u32 {
        assert!(
            self.len < limit,
            "the arena is full ({} elements)",
            self.len
        );
        if self.chunks.last().is_none_or(|chunk| chunk.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks
            .last_mut()
            .expect("a chunk was just ensured")
            .push(value);
        self.len += 1;
        self.len - 1
    }

    pub fn get(&self, index: u32) -> &T {
        &self.chunks[(index >> CHUNK_BITS) as usize][index as usize & (CHUNK - 1)]
    }

    pub fn get_mut(&mut self, index: u32) -> &mut T {
        &mut self.chunks[(index >> CHUNK_BITS) as usize][index as usize & (CHUNK - 1)]
    }

    /// Elements ever pushed: every index below this is valid.
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of heap held by the chunks and the chunk table (not what elements own).
    pub fn heap_bytes(&self) -> usize {
        let chunks: usize = self
            .chunks
            .iter()
            .map(|c| c.capacity() * size_of::<T>())
            .sum();
        chunks + self.chunks.capacity() * size_of::<Vec<T>>()
    }

    /// Chunks allocated so far.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_keep_their_index_across_chunks() {
        let mut arena = Arena::default();
        for i in 0..CHUNK as u32 + 10 {
            assert_eq!(arena.push(i * 3, u32::MAX), i);
        }
        assert_eq!((arena.len(), arena.chunks()), (CHUNK as u32 + 10, 2));
        assert_eq!(*arena.get(CHUNK as u32 + 9), (CHUNK as u32 + 9) * 3);
        *arena.get_mut(7) = 1;
        assert_eq!(*arena.get(7), 1);
    }

    #[test]
    #[should_panic(expected = "the arena is full")]
    fn pushing_past_the_limit_panics() {
        let mut arena = Arena::default();
        arena.push(1u8, 1);
        arena.push(2u8, 1);
    }
}
