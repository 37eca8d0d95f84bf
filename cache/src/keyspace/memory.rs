//! Memory accounting: how many bytes an allocation of `n` bytes really costs.
//!
//! The estimate models glibc `malloc` (Rust's default global allocator on Linux):
//! a chunk carries an 8-byte header and is rounded up to 16 bytes with a 32-byte
//! minimum; requests of 128 KiB and more are served by `mmap` in whole pages.

/// glibc's default `mmap` threshold.
const MMAP_THRESHOLD: usize = 128 * 1024;
const PAGE: usize = 4096;

/// Bytes the allocator really spends on a request of `n` bytes (0 for no allocation).
pub(crate) fn alloc_size(n: usize) -> u64 {
    if n == 0 {
        0
    } else if n >= MMAP_THRESHOLD {
        round_up(n.saturating_add(16), PAGE) as u64
    } else {
        round_up(n + 8, 16).max(32) as u64
    }
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to).saturating_mul(to)
}

/// Bytes a `hashbrown` table of `u32`s with the given `capacity()` occupies.
pub(crate) fn table_size(capacity: usize) -> u64 {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity / 7 * 8).next_power_of_two()
    };
    // One u32 per bucket (rounded to the 16-byte group alignment), one control byte
    // per bucket, and one trailing group of control bytes.
    alloc_size(round_up(buckets * 4, 16) + buckets + 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_size_classes() {
        assert_eq!(alloc_size(0), 0);
        assert_eq!(alloc_size(1), 32);
        assert_eq!(alloc_size(24), 32);
        assert_eq!(alloc_size(25), 48);
        assert_eq!(alloc_size(48), 64);
        assert_eq!(alloc_size(10 << 20), ((10 << 20) + 4096) as u64);
    }

    #[test]
    fn table_sizes_grow_with_capacity() {
        assert_eq!(table_size(0), 0);
        assert!(table_size(3) < table_size(7));
        assert!(table_size(7) < table_size(14));
        // 7/8 load factor: capacity 3584 means 4096 buckets.
        assert_eq!(table_size(3584), alloc_size(4096 * 5 + 16));
    }
}
