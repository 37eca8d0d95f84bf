//! One key/value pair, stored compactly.
//!
//! An [`Entry`] is 32 bytes in its shard's dense vector and points at exactly one
//! heap block holding the key followed by the value. The LRU stamp is atomic so a
//! reader holding only the shard's read lock can refresh it.

use std::sync::atomic::{AtomicU32, Ordering};

use super::memory::alloc_size;
use super::options::Encoding;

/// Marks an entry without a TTL (not in its shard's volatile list).
pub(crate) const NOT_VOLATILE: u32 = u32::MAX;

/// A key/value pair.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The key's bytes followed by the value's bytes.
    data: Box<[u8]>,
    key_len: u32,
    /// Coarse LRU clock of the last access (see `clock::lru_clock`).
    lru: AtomicU32,
    /// Index into the shard's volatile list, or [`NOT_VOLATILE`].
    pub(crate) volatile: u32,
    /// How Redis would have encoded the value (`OBJECT ENCODING`); fits in padding.
    pub(crate) encoding: Encoding,
}

impl Entry {
    /// A new persistent entry; key and value are copied into one allocation.
    pub(crate) fn new(key: &[u8], value: &[u8], lru: u32) -> Entry {
        let mut data = Vec::with_capacity(key.len() + value.len());
        data.extend_from_slice(key);
        data.extend_from_slice(value);
        Entry {
            data: data.into_boxed_slice(),
            key_len: key.len() as u32,
            lru: AtomicU32::new(lru),
            volatile: NOT_VOLATILE,
            encoding: Encoding::Compact,
        }
    }

    /// The value, writable in place (its length cannot change).
    #[inline]
    pub(crate) fn value_mut(&mut self) -> &mut [u8] {
        let key_len = self.key_len as usize;
        self.data.get_mut(key_len..).unwrap_or_default()
    }

    /// Grows the value to `len` bytes with trailing zero bytes (no-op when it is
    /// already that long).
    pub(crate) fn grow_value(&mut self, len: usize) {
        let key_len = self.key_len as usize;
        if self.data.len() >= key_len + len {
            return;
        }
        let mut data = Vec::with_capacity(key_len + len);
        data.extend_from_slice(&self.data);
        data.resize(key_len + len, 0);
        self.data = data.into_boxed_slice();
    }

    /// The key.
    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        self.data.get(..self.key_len as usize).unwrap_or_default()
    }

    /// The value.
    #[inline]
    pub(crate) fn value(&self) -> &[u8] {
        self.data.get(self.key_len as usize..).unwrap_or_default()
    }

    /// Replaces the value, reusing the allocation when the size is unchanged.
    pub(crate) fn set_value(&mut self, value: &[u8]) {
        let key_len = self.key_len as usize;
        if self.data.len() == key_len + value.len() {
            if let Some(dst) = self.data.get_mut(key_len..) {
                dst.copy_from_slice(value);
                return;
            }
        }
        let mut data = Vec::with_capacity(key_len + value.len());
        data.extend_from_slice(self.key());
        data.extend_from_slice(value);
        self.data = data.into_boxed_slice();
    }

    /// Heap bytes this entry owns, as the allocator counts them.
    #[inline]
    pub(crate) fn heap_size(&self) -> u64 {
        alloc_size(self.data.len())
    }

    /// The LRU stamp.
    #[inline]
    pub(crate) fn lru(&self) -> u32 {
        self.lru.load(Ordering::Relaxed)
    }

    /// Refreshes the LRU stamp (skips the store when unchanged, sparing the cache line).
    #[inline]
    pub(crate) fn touch(&self, lru: u32) {
        if self.lru.load(Ordering::Relaxed) != lru {
            self.lru.store(lru, Ordering::Relaxed);
        }
    }

    /// Whether the entry has a TTL.
    #[inline]
    pub(crate) fn is_volatile(&self) -> bool {
        self.volatile != NOT_VOLATILE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_compact() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    #[test]
    fn key_value_split_and_replace() {
        let mut e = Entry::new(b"key", b"value", 7);
        assert_eq!(e.key(), b"key");
        assert_eq!(e.value(), b"value");
        e.set_value(b"VALUE");
        assert_eq!(e.value(), b"VALUE");
        e.set_value(b"");
        assert_eq!((e.key(), e.value()), (&b"key"[..], &b""[..]));
        e.set_value(b"much longer value");
        assert_eq!(e.value(), b"much longer value");
        e.grow_value(20);
        assert_eq!(e.value(), b"much longer value\0\0\0");
        e.value_mut()[0] = b'M';
        assert_eq!((e.key(), &e.value()[..4]), (&b"key"[..], &b"Much"[..]));
        assert_eq!(e.lru(), 7);
        e.touch(9);
        assert_eq!(e.lru(), 9);
        assert!(!e.is_volatile());
    }
}
