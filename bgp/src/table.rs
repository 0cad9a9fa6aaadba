//! A map keyed by prefix, sized for full tables.
//!
//! A hash map of a million prefixes pays twice: its buckets grow by
//! doubling, so just past a power of two half of them sit empty, and while
//! it grows the old and the new bucket arrays are both alive. Here the
//! entries live in fixed-size chunks that are never moved (freed slots are
//! reused), and the hash index holds only a 4-byte slot number and a tag
//! byte per bucket (see [`index`]), so the slack and the growth spike cost
//! a few bytes per prefix, not the size of an entry; the index is split in
//! 16 by hash, so it grows a sixteenth at a time. IPv4 and IPv6 prefixes
//! are kept apart, so an IPv4 key takes 5 bytes rather than an `IpNet`'s
//! 18.
//!
//! Chunks are about 128 KiB whatever the entry's size: large enough for
//! the allocator to map each on its own (see the daemon's allocator
//! settings), so a table that grows among short-lived allocations leaves
//! no holes behind.

mod index;

use std::hash::{BuildHasher, Hash};

use foldhash::fast::RandomState;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use index::Index;

/// Bytes a chunk aims at.
const CHUNK_BYTES: usize = 128 * 1024;
/// Index shards.
const SHARDS: usize = 16;
/// The end of the free list.
const NONE: u32 = u32::MAX;

/// A map from `IpNet` to `V`.
#[derive(Debug)]
pub struct PrefixMap<V> {
    v4: Slab<Ipv4Net, V>,
    v6: Slab<Ipv6Net, V>,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: Slab::default(),
            v6: Slab::default(),
        }
    }
}

impl<V> PrefixMap<V> {
    pub fn new() -> Self {
        PrefixMap::default()
    }

    pub fn len(&self) -> usize {
        self.v4.len + self.v6.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, prefix: &IpNet) -> Option<&V> {
        match prefix {
            IpNet::V4(p) => self.v4.get(p),
            IpNet::V6(p) => self.v6.get(p),
        }
    }

    pub fn get_mut(&mut self, prefix: &IpNet) -> Option<&mut V> {
        match prefix {
            IpNet::V4(p) => self.v4.get_mut(p),
            IpNet::V6(p) => self.v6.get_mut(p),
        }
    }

    pub fn contains_key(&self, prefix: &IpNet) -> bool {
        self.get(prefix).is_some()
    }

    /// The value for `prefix`, made by `make` if there is none.
    pub fn get_or_insert_with(&mut self, prefix: IpNet, make: impl FnOnce() -> V) -> &mut V {
        match prefix {
            IpNet::V4(p) => self.v4.get_or_insert_with(p, make),
            IpNet::V6(p) => self.v6.get_or_insert_with(p, make),
        }
    }

    /// Set the value for `prefix`; returns the one it replaces.
    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        let mut value = Some(value);
        let slot = self.get_or_insert_with(prefix, || value.take().expect("taken once"));
        value.map(|v| std::mem::replace(slot, v))
    }

    pub fn remove(&mut self, prefix: &IpNet) -> Option<V> {
        match prefix {
            IpNet::V4(p) => self.v4.remove(p),
            IpNet::V6(p) => self.v6.remove(p),
        }
    }

    /// Every entry, IPv4 first, in no particular order within a family.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> {
        let v4 = self.v4.iter().map(|(p, v)| (IpNet::V4(p), v));
        v4.chain(self.v6.iter().map(|(p, v)| (IpNet::V6(p), v)))
    }

    /// Every value, the map consumed.
    pub fn into_values(self) -> impl Iterator<Item = V> {
        self.v4.into_values().chain(self.v6.into_values())
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (IpNet, &mut V)> {
        let v4 = self.v4.iter_mut().map(|(p, v)| (IpNet::V4(p), v));
        v4.chain(self.v6.iter_mut().map(|(p, v)| (IpNet::V6(p), v)))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Keep only the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(IpNet, &mut V) -> bool) {
        self.v4.retain(|p, v| keep(IpNet::V4(p), v));
        self.v6.retain(|p, v| keep(IpNet::V6(p), v));
    }

    /// How many slots there are, used or free: positions for [`Self::slot_mut`].
    pub fn slots(&self) -> usize {
        self.v4.slots() + self.v6.slots()
    }

    /// The entry at slot position `i`, if that slot is in use. Positions
    /// stay put while entries come and go, so a scan can stop and go on.
    pub fn slot_mut(&mut self, i: usize) -> Option<(IpNet, &mut V)> {
        let v4 = self.v4.slots();
        if i < v4 {
            self.v4.slot_mut(i).map(|(k, v)| (IpNet::V4(k), v))
        } else {
            self.v6.slot_mut(i - v4).map(|(k, v)| (IpNet::V6(k), v))
        }
    }

    /// Where slot position `i` sits, to come back to it without a lookup
    /// (`at_mut`). Unlike the position, this stays valid while entries of
    /// the other family come and go.
    pub fn position(&self, i: usize) -> Position {
        let v4 = self.v4.slots();
        if i < v4 {
            Position {
                v6: false,
                i: i as u32,
            }
        } else {
            Position {
                v6: true,
                i: (i - v4) as u32,
            }
        }
    }

    /// Where the entry of `prefix` sits, if there is one. Looking up many
    /// prefixes this way before working on any lets the processor overlap
    /// the cache misses of a large map's lookups.
    pub fn locate(&self, prefix: &IpNet) -> Option<Position> {
        match prefix {
            IpNet::V4(p) => self.v4.find(p).map(|i| Position { v6: false, i }),
            IpNet::V6(p) => self.v6.find(p).map(|i| Position { v6: true, i }),
        }
    }

    /// [`Self::locate`] each of `prefixes`, in order, onto `out`: the
    /// index buckets of the lookups a few places ahead are fetched while
    /// one is made, so their cache misses overlap rather than follow one
    /// another.
    pub fn locate_all<'a>(
        &self,
        prefixes: impl Iterator<Item = &'a IpNet> + Clone,
        out: &mut Vec<Option<Position>>,
    ) {
        const AHEAD: usize = 8;
        // Each prefix is hashed once, when its buckets are asked for; the
        // hashes wait here until its turn.
        let mut hashes = [0u64; AHEAD];
        let mut ahead = prefixes.clone();
        for (hash, prefix) in hashes.iter_mut().zip(ahead.by_ref()) {
            *hash = self.prefetch(prefix);
        }
        for (i, prefix) in prefixes.enumerate() {
            let hash = hashes[i % AHEAD];
            if let Some(next) = ahead.next() {
                hashes[i % AHEAD] = self.prefetch(next);
            }
            out.push(match prefix {
                IpNet::V4(p) => self
                    .v4
                    .find_hashed(p, hash)
                    .map(|i| Position { v6: false, i }),
                IpNet::V6(p) => self
                    .v6
                    .find_hashed(p, hash)
                    .map(|i| Position { v6: true, i }),
            });
        }
    }

    /// Fetch the index buckets of `prefix`'s lookup; its hash.
    fn prefetch(&self, prefix: &IpNet) -> u64 {
        match prefix {
            IpNet::V4(p) => self.v4.prefetch(p),
            IpNet::V6(p) => self.v6.prefetch(p),
        }
    }

    /// The entry of `prefix` at `at`, if it is still there.
    pub fn at(&self, at: Position, prefix: &IpNet) -> Option<&V> {
        match (at.v6, prefix) {
            (false, IpNet::V4(p)) => self
                .v4
                .slot(at.i as usize)
                .filter(|(k, _)| k == p)
                .map(|(_, v)| v),
            (true, IpNet::V6(p)) => self
                .v6
                .slot(at.i as usize)
                .filter(|(k, _)| k == p)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The entry of `prefix` at `at`, if it is still there.
    pub fn at_mut(&mut self, at: Position, prefix: &IpNet) -> Option<&mut V> {
        match (at.v6, prefix) {
            (false, IpNet::V4(p)) => self
                .v4
                .slot_mut(at.i as usize)
                .filter(|(k, _)| k == p)
                .map(|(_, v)| v),
            (true, IpNet::V6(p)) => self
                .v6
                .slot_mut(at.i as usize)
                .filter(|(k, _)| k == p)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn clear(&mut self) {
        self.v4 = Slab::default();
        self.v6 = Slab::default();
    }

    /// Move the entries of a family whose slots are mostly free (a
    /// quarter or fewer in use, over more than one chunk) into the chunks
    /// they need, in the same order, with an index sized to them: the
    /// memory a withdrawn table took goes back, and scans are as long as
    /// the table again. A removal only frees a slot for reuse, so without
    /// this a map keeps the size of the largest table it ever held. Every
    /// [`Position`] taken before is void (`at` then finds nothing).
    /// Whether anything moved.
    pub fn compact(&mut self) -> bool {
        let v4 = self.v4.compact_if_sparse();
        let v6 = self.v6.compact_if_sparse();
        v4 || v6
    }
}

/// Where an entry sits in a `PrefixMap`, until it is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    v6: bool,
    i: u32,
}

enum Slot<K, V> {
    Used(K, V),
    /// Free, with the next free slot.
    Free(u32),
}

/// One family's entries: chunks of slots and an index of slot numbers.
struct Slab<K, V> {
    index: [Index; SHARDS],
    chunks: Vec<Vec<Slot<K, V>>>,
    free: u32,
    len: usize,
    hasher: RandomState,
}

impl<K, V> std::fmt::Debug for Slab<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab").field("len", &self.len).finish()
    }
}

impl<K, V> Default for Slab<K, V> {
    fn default() -> Self {
        Slab {
            index: std::array::from_fn(|_| Index::default()),
            chunks: Vec::new(),
            free: NONE,
            len: 0,
            hasher: RandomState::default(),
        }
    }
}

/// Slots per chunk: the power of two nearest below `CHUNK_BYTES` of them.
const fn chunk_bits(slot: usize) -> u32 {
    let slots = CHUNK_BYTES / if slot == 0 { 1 } else { slot };
    if slots <= 1 {
        0
    } else {
        slots.ilog2()
    }
}

fn at<K, V>(chunks: &[Vec<Slot<K, V>>], i: u32) -> &Slot<K, V> {
    let bits = Slab::<K, V>::BITS;
    &chunks[(i >> bits) as usize][i as usize & ((1 << bits) - 1)]
}

fn at_mut<K, V>(chunks: &mut [Vec<Slot<K, V>>], i: u32) -> &mut Slot<K, V> {
    let bits = Slab::<K, V>::BITS;
    &mut chunks[(i >> bits) as usize][i as usize & ((1 << bits) - 1)]
}

/// The index shard for a hash: bits 52 to 55 (the index takes its bucket
/// from the low bits and its tag from the top seven).
fn shard(hash: u64) -> usize {
    (hash >> 52) as usize % SHARDS
}

/// The key in slot `i`; every slot the index names is in use.
fn key_at<K: Copy, V>(chunks: &[Vec<Slot<K, V>>], i: u32) -> Option<K> {
    match at(chunks, i) {
        Slot::Used(k, _) => Some(*k),
        Slot::Free(_) => None,
    }
}

impl<K, V> Slab<K, V> {
    const BITS: u32 = chunk_bits(std::mem::size_of::<Slot<K, V>>());
    const CHUNK: usize = 1 << Self::BITS;
}

impl<K: Copy + Eq + Hash, V> Slab<K, V> {
    fn find(&self, key: &K) -> Option<u32> {
        self.find_hashed(key, self.hasher.hash_one(key))
    }

    /// `find` with the key's hash already made.
    fn find_hashed(&self, key: &K, hash: u64) -> Option<u32> {
        let chunks = &self.chunks;
        self.index[shard(hash)].find(hash, |i| key_at(chunks, i).as_ref() == Some(key))
    }

    /// See [`Index::prefetch`]; the key's hash.
    fn prefetch(&self, key: &K) -> u64 {
        let hash = self.hasher.hash_one(key);
        self.index[shard(hash)].prefetch(hash);
        hash
    }

    fn get(&self, key: &K) -> Option<&V> {
        match at(&self.chunks, self.find(key)?) {
            Slot::Used(_, v) => Some(v),
            Slot::Free(_) => None,
        }
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.find(key)?;
        match at_mut(&mut self.chunks, i) {
            Slot::Used(_, v) => Some(v),
            Slot::Free(_) => None,
        }
    }

    fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Some(i) => i,
            None => {
                let i = self.store(key, make());
                self.index_slot(key, i);
                i
            }
        };
        match at_mut(&mut self.chunks, i) {
            Slot::Used(_, v) => v,
            Slot::Free(_) => unreachable!("slot {i} was just filled"),
        }
    }

    /// See [`PrefixMap::compact`].
    fn compact_if_sparse(&mut self) -> bool {
        if self.chunks.len() <= 1 || self.len * 4 > self.slots() {
            return false;
        }
        let old = std::mem::take(self);
        for slot in old.chunks.into_iter().flatten() {
            if let Slot::Used(key, value) = slot {
                let i = self.store(key, value);
                self.index_slot(key, i);
            }
        }
        true
    }

    /// Enter slot `i`, holding `key` (not in the index yet), in the index.
    fn index_slot(&mut self, key: K, i: u32) {
        let hasher = &self.hasher;
        let chunks = &self.chunks;
        let hash = hasher.hash_one(key);
        self.index[shard(hash)].insert(hash, i, |j| {
            key_at(chunks, j).map_or(0, |k| hasher.hash_one(k))
        });
    }

    /// Put an entry in a free slot, or a new one.
    fn store(&mut self, key: K, value: V) -> u32 {
        self.len += 1;
        if self.free != NONE {
            let i = self.free;
            let slot = at_mut(&mut self.chunks, i);
            if let Slot::Free(next) = slot {
                self.free = *next;
            }
            *slot = Slot::Used(key, value);
            return i;
        }
        if self.chunks.last().is_none_or(|c| c.len() == Self::CHUNK) {
            self.chunks.push(Vec::with_capacity(Self::CHUNK));
        }
        let n = self.chunks.len() - 1;
        let last = &mut self.chunks[n];
        last.push(Slot::Used(key, value));
        ((n << Self::BITS) + last.len() - 1) as u32
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        let hash = self.hasher.hash_one(key);
        let chunks = &self.chunks;
        let i =
            self.index[shard(hash)].remove(hash, |i| key_at(chunks, i).as_ref() == Some(key))?;
        Some(self.release(i))
    }

    /// Free slot `i` (already out of the index) and return its value.
    fn release(&mut self, i: u32) -> V {
        let slot = std::mem::replace(at_mut(&mut self.chunks, i), Slot::Free(self.free));
        self.free = i;
        self.len -= 1;
        if self.len == 0 {
            // Empty: give the memory back rather than keep a full table's.
            *self = Slab::default();
        }
        match slot {
            Slot::Used(_, v) => v,
            Slot::Free(_) => unreachable!("slot {i} was in the index"),
        }
    }

    fn slots(&self) -> usize {
        self.chunks.len().saturating_sub(1) * Self::CHUNK + self.chunks.last().map_or(0, Vec::len)
    }

    fn slot(&self, i: usize) -> Option<(K, &V)> {
        let slot = self
            .chunks
            .get(i >> Self::BITS)?
            .get(i & (Self::CHUNK - 1))?;
        match slot {
            Slot::Used(k, v) => Some((*k, v)),
            Slot::Free(_) => None,
        }
    }

    fn slot_mut(&mut self, i: usize) -> Option<(K, &mut V)> {
        let slot = self
            .chunks
            .get_mut(i >> Self::BITS)?
            .get_mut(i & (Self::CHUNK - 1))?;
        match slot {
            Slot::Used(k, v) => Some((*k, v)),
            Slot::Free(_) => None,
        }
    }

    fn into_values(self) -> impl Iterator<Item = V> {
        self.chunks.into_iter().flatten().filter_map(|s| match s {
            Slot::Used(_, v) => Some(v),
            Slot::Free(_) => None,
        })
    }

    fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.chunks.iter().flatten().filter_map(|s| match s {
            Slot::Used(k, v) => Some((*k, v)),
            Slot::Free(_) => None,
        })
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (K, &mut V)> {
        self.chunks.iter_mut().flatten().filter_map(|s| match s {
            Slot::Used(k, v) => Some((*k, v)),
            Slot::Free(_) => None,
        })
    }

    fn retain(&mut self, mut keep: impl FnMut(K, &mut V) -> bool) {
        let mut gone = Vec::new();
        for slot in self.chunks.iter_mut().flatten() {
            if let Slot::Used(k, v) = slot {
                if !keep(*k, v) {
                    gone.push(*k);
                }
            }
        }
        for k in gone {
            self.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn p(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }

    #[test]
    fn a_position_stays_with_its_entry_while_the_other_family_grows() {
        let mut m: PrefixMap<u32> = PrefixMap::default();
        let v6: IpNet = "fd00::/64".parse().unwrap();
        m.insert("10.0.0.0/24".parse().unwrap(), 1);
        m.insert(v6, 2);
        let at = m.position(1);
        assert_eq!(m.at_mut(at, &v6).copied(), Some(2));
        for i in 0..100u32 {
            let p = IpNet::V4(
                Ipv4Net::new(std::net::Ipv4Addr::from(0x0b00_0000 + (i << 8)), 24).unwrap(),
            );
            m.insert(p, i);
        }
        assert_eq!(m.at_mut(at, &v6).copied(), Some(2), "v4 slots grew");
        assert_eq!(
            m.at_mut(at, &"10.0.0.0/24".parse().unwrap()),
            None,
            "another prefix"
        );
        m.remove(&v6);
        assert_eq!(m.at_mut(at, &v6), None, "removed");
    }

    #[test]
    fn a_withdrawn_table_gives_its_chunks_back_and_keeps_the_rest_in_order() {
        let mut m: PrefixMap<u32> = PrefixMap::default();
        let prefix = |i: u32| {
            IpNet::V4(Ipv4Net::new(std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap())
        };
        for i in 0..100_000 {
            m.insert(prefix(i), i);
        }
        let full = m.slots();
        // Half gone: the slots stay for reuse.
        for i in (0..100_000).filter(|i| i % 2 == 0) {
            m.remove(&prefix(i));
        }
        assert!(!m.compact(), "half the slots in use is not sparse");
        assert_eq!(m.slots(), full);
        // All but one in ten of the rest gone: compacted, same order.
        for i in (0..100_000).filter(|i| i % 2 == 1 && i % 10 != 1) {
            m.remove(&prefix(i));
        }
        let before: Vec<(IpNet, u32)> = m.iter().map(|(p, v)| (p, *v)).collect();
        let at = m.locate(&prefix(11)).expect("present");
        assert!(m.compact());
        assert_eq!(m.slots(), 10_000);
        assert_eq!(m.iter().map(|(p, v)| (p, *v)).collect::<Vec<_>>(), before);
        for (p, v) in &before {
            assert_eq!(m.get(p), Some(v));
        }
        assert_eq!(m.get(&prefix(2)), None);
        // A position from before names another entry's slot now: void.
        assert_eq!(m.at(at, &prefix(11)), None);
        // New entries go on after the kept ones.
        m.insert(prefix(2), 2);
        assert_eq!(m.len(), 10_001);
        assert_eq!(m.slots(), 10_001);
        assert!(!m.compact(), "a map without free slots is not compacted");
    }

    #[test]
    fn slots_take_their_state_from_the_value() {
        // An IPv4 key and a 24-byte value with a niche: 32 bytes a slot.
        assert_eq!(
            std::mem::size_of::<Slot<Ipv4Net, (u64, u32, u32, bool)>>(),
            32
        );
        // Chunks of about 128 KiB.
        assert_eq!(Slab::<Ipv4Net, (u64, u32, u32, bool)>::CHUNK, 4096);
        assert_eq!(Slab::<Ipv4Net, ([u8; 4], bool, bool, u8)>::CHUNK, 8192);
        // A 7-byte value with a niche and no alignment: 12 bytes a slot.
        assert_eq!(
            std::mem::size_of::<Slot<Ipv4Net, ([u8; 4], bool, bool, u8)>>(),
            12
        );
    }

    #[test]
    fn behaves_as_a_map() {
        let mut m: PrefixMap<u32> = PrefixMap::new();
        let mut model: HashMap<IpNet, u32> = HashMap::new();
        // A pseudo-random mix of inserts and removals over both families.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 5000) as u32;
            let prefix = if n.is_multiple_of(3) {
                IpNet::V6(Ipv6Net::new((u128::from(n) << 64).into(), 64).expect("len"))
            } else {
                IpNet::V4(Ipv4Net::new((n << 8).into(), 24).expect("len"))
            };
            if x.is_multiple_of(3) {
                assert_eq!(m.remove(&prefix), model.remove(&prefix));
            } else {
                assert_eq!(m.insert(prefix, step), model.insert(prefix, step));
            }
            assert_eq!(m.len(), model.len());
        }
        for (k, v) in &model {
            assert_eq!(m.get(k), Some(v));
        }
        let mut seen: Vec<(IpNet, u32)> = m.iter().map(|(k, v)| (k, *v)).collect();
        let mut want: Vec<(IpNet, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        seen.sort();
        want.sort();
        assert_eq!(seen, want);

        m.retain(|k, v| {
            *v += 1;
            matches!(k, IpNet::V4(_))
        });
        model.retain(|k, _| matches!(k, IpNet::V4(_)));
        assert_eq!(m.len(), model.len());
        for (k, v) in &model {
            assert_eq!(m.get(k), Some(&(v + 1)));
        }
        // Every entry is at some slot position, once.
        let mut by_slot: Vec<IpNet> = (0..m.slots())
            .filter_map(|i| m.slot_mut(i).map(|(k, _)| k))
            .collect();
        by_slot.sort();
        let mut keys: Vec<IpNet> = model.keys().copied().collect();
        keys.sort();
        assert_eq!(by_slot, keys);
    }

    #[test]
    fn located_all_at_once_as_one_by_one() {
        let mut m: PrefixMap<u32> = PrefixMap::new();
        let prefix = |i: u32| {
            if i.is_multiple_of(4) {
                IpNet::V6(Ipv6Net::new((u128::from(i) << 64).into(), 64).expect("len"))
            } else {
                IpNet::V4(Ipv4Net::new((i << 8).into(), 24).expect("len"))
            }
        };
        for i in (0..3000).filter(|i| i % 3 != 0) {
            m.insert(prefix(i), i);
        }
        // Both families, present and absent, one listed twice, and lists
        // shorter and longer than the lookups fetched ahead.
        let mut all: Vec<IpNet> = (0..3000).map(prefix).collect();
        all.push(prefix(1));
        for list in [&all[..0], &all[..3], &all[..] as &[IpNet]] {
            let mut found = Vec::new();
            m.locate_all(list.iter(), &mut found);
            let one_by_one: Vec<Option<Position>> = list.iter().map(|p| m.locate(p)).collect();
            assert_eq!(found, one_by_one);
        }
        assert!(m.locate(&prefix(1)).is_some() && m.locate(&prefix(3)).is_none());
    }

    #[test]
    fn emptied_gives_memory_back_and_fills_again() {
        let mut m: PrefixMap<u8> = PrefixMap::new();
        for i in 0..40_000u32 {
            m.insert(
                IpNet::V4(Ipv4Net::new((i << 8).into(), 24).expect("len")),
                1,
            );
        }
        assert!(m.v4.chunks.len() > 1);
        let keys: Vec<IpNet> = m.iter().map(|(k, _)| k).collect();
        for k in &keys {
            assert_eq!(m.remove(k), Some(1));
        }
        assert!(m.is_empty());
        assert!(m.v4.chunks.is_empty());
        assert_eq!(m.slots(), 0);
        m.insert(p("10.0.0.0/8"), 7);
        *m.get_or_insert_with(p("10.0.0.0/8"), || 0) += 1;
        assert_eq!(m.get(&p("10.0.0.0/8")), Some(&8));
        assert!(m.contains_key(&p("10.0.0.0/8")));
        assert!(!m.contains_key(&p("10.0.0.0/9")));
    }
}
