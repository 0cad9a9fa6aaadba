//! The hash index of a slab: for each key, the number of its slot.
//!
//! Open addressing with linear probing over two arrays, a tag byte per
//! bucket (seven bits of the key's hash, or empty, or gone) and the slot
//! number, 5 bytes a bucket in all. Unlike a general-purpose hash table's,
//! the bucket a lookup starts at follows from the hash alone, so a batch
//! of lookups can have the processor fetch each one's buckets ahead of
//! time ([`Index::prefetch`]): in a full table's index, far larger than
//! the caches, that is a cache miss each, and one after another they add
//! up to a good part of the time an UPDATE takes.
//!
//! A removal leaves its bucket gone (a probe goes past it, an insertion
//! may take it); the gone ones are cleared when the index is rebuilt, as
//! it grows or as they pile up.

/// A bucket never used since the last rebuild: a probe stops here.
const EMPTY: u8 = 0;
/// A bucket whose entry was removed: a probe goes on past it.
const GONE: u8 = 1;
/// The smallest index that holds anything, in buckets.
const MIN_BUCKETS: usize = 16;

#[derive(Default)]
pub(super) struct Index {
    /// Per bucket: `EMPTY`, `GONE`, or [`tag`] of the entry's hash.
    tags: Box<[u8]>,
    /// Per bucket, the entry's slot number where the tag is a hash's.
    slots: Box<[u32]>,
    /// Buckets holding an entry.
    len: usize,
    /// Buckets `GONE`.
    gone: usize,
}

/// The tag of a hash: its top seven bits, with the high bit set so that
/// no tag is `EMPTY` or `GONE`. (The slab picks its shard from bits 52 to
/// 55, the bucket comes from the low bits.)
fn tag(hash: u64) -> u8 {
    0x80 | (hash >> 57) as u8
}

impl Index {
    /// The slot of the entry with this hash for which `is` holds.
    pub fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        self.bucket(hash, is).map(|b| self.slots[b])
    }

    /// Have the processor fetch the buckets a lookup of `hash` starts at,
    /// without waiting for them.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if self.tags.is_empty() {
            return;
        }
        let b = hash as usize & (self.tags.len() - 1);
        prefetch(&self.tags[b]);
        prefetch(&self.slots[b]);
    }

    /// Enter `slot`, whose key (not in the index yet) has `hash`. Growing
    /// rehashes every entry, with `hash_of` telling a slot's hash.
    pub fn insert(&mut self, hash: u64, slot: u32, hash_of: impl Fn(u32) -> u64) {
        // At most seven in eight buckets taken, gone ones counted: a probe
        // always meets an empty bucket.
        if (self.len + self.gone + 1) * 8 > self.tags.len() * 7 {
            self.rebuild(hash_of);
        }
        let mask = self.tags.len() - 1;
        let mut b = hash as usize & mask;
        while self.tags[b] >= 0x80 {
            b = (b + 1) & mask;
        }
        if self.tags[b] == GONE {
            self.gone -= 1;
        }
        self.tags[b] = tag(hash);
        self.slots[b] = slot;
        self.len += 1;
    }

    /// Remove the entry with this hash for which `is` holds; its slot.
    pub fn remove(&mut self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        let b = self.bucket(hash, is)?;
        self.len -= 1;
        if self.len == 0 {
            // Nothing left: the memory goes back.
            let slot = self.slots[b];
            *self = Index::default();
            return Some(slot);
        }
        self.tags[b] = GONE;
        self.gone += 1;
        Some(self.slots[b])
    }

    /// The bucket of the entry with this hash for which `is` holds.
    fn bucket(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<usize> {
        if self.tags.is_empty() {
            return None;
        }
        let mask = self.tags.len() - 1;
        let want = tag(hash);
        let mut b = hash as usize & mask;
        loop {
            match self.tags[b] {
                EMPTY => return None,
                t if t == want && is(self.slots[b]) => return Some(b),
                _ => b = (b + 1) & mask,
            }
        }
    }

    /// Rebuild with room for one more entry and no gone buckets: twice
    /// the entries' number of buckets (rounded up to a power of two), so a
    /// rebuild that only clears gone buckets keeps the size.
    fn rebuild(&mut self, hash_of: impl Fn(u32) -> u64) {
        let buckets = ((self.len + 1) * 2).next_power_of_two().max(MIN_BUCKETS);
        let old = std::mem::replace(
            self,
            Index {
                tags: vec![EMPTY; buckets].into_boxed_slice(),
                slots: vec![0; buckets].into_boxed_slice(),
                len: 0,
                gone: 0,
            },
        );
        let mask = buckets - 1;
        for (&t, &slot) in old.tags.iter().zip(old.slots.iter()) {
            if t < 0x80 {
                continue;
            }
            let hash = hash_of(slot);
            let mut b = hash as usize & mask;
            while self.tags[b] != EMPTY {
                b = (b + 1) & mask;
            }
            self.tags[b] = tag(hash);
            self.slots[b] = slot;
            self.len += 1;
        }
    }
}

/// Ask for the cache line holding `at`, without waiting for it.
#[inline(always)]
fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache; it reads nothing the
    // program sees and cannot fault, and `at` is a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slot `i`'s hash, chosen to collide: many keys share a home bucket.
    fn hash_of(slot: u32) -> u64 {
        u64::from(slot % 7).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (u64::from(slot) << 57)
    }

    #[test]
    fn finds_what_it_holds_past_collisions_and_removals() {
        let mut index = Index::default();
        for slot in 0..1000 {
            index.insert(hash_of(slot), slot, hash_of);
        }
        assert_eq!(index.len, 1000);
        for slot in 0..1000 {
            assert_eq!(index.find(hash_of(slot), |s| s == slot), Some(slot));
        }
        assert_eq!(index.find(hash_of(5000), |s| s == 5000), None);
        // Every other one removed: the rest still found past gone buckets.
        for slot in (0..1000).step_by(2) {
            assert_eq!(index.remove(hash_of(slot), |s| s == slot), Some(slot));
        }
        assert_eq!(index.remove(hash_of(0), |s| s == 0), None);
        for slot in 0..1000 {
            let found = index.find(hash_of(slot), |s| s == slot);
            assert_eq!(found, (slot % 2 == 1).then_some(slot));
        }
        // Insertions and removals churning at one size clear gone buckets
        // rather than grow.
        let buckets = index.tags.len();
        for round in 0..20u32 {
            for slot in (0..1000).step_by(2) {
                let slot = slot + 1000 * (round + 1);
                index.insert(hash_of(slot), slot, hash_of);
            }
            for slot in (0..1000).step_by(2) {
                let slot = slot + 1000 * (round + 1);
                assert_eq!(index.remove(hash_of(slot), |s| s == slot), Some(slot));
            }
        }
        assert_eq!(index.tags.len(), buckets);
        assert_eq!(index.len, 500);
        assert!((index.len + index.gone) * 8 <= index.tags.len() * 7);
        for slot in (1..1000).step_by(2) {
            assert_eq!(index.find(hash_of(slot), |s| s == slot), Some(slot));
        }
        // Emptied: nothing held.
        for slot in (1..1000).step_by(2) {
            index.prefetch(hash_of(slot));
            assert_eq!(index.remove(hash_of(slot), |s| s == slot), Some(slot));
        }
        assert!(index.tags.is_empty() && index.slots.is_empty());
        index.prefetch(hash_of(1));
        assert_eq!(index.find(hash_of(1), |s| s == 1), None);
    }
}
