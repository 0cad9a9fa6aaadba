//! Interned sets: a full table has a million prefixes but only a handful
//! of distinct next-hop sets, so each prefix keeps a 4-byte id.

use std::hash::Hash;

/// Maps keyed by what the writer looks up per prefix: ids, next hops.
/// A fast hash: none of these keys comes from outside unchecked in
/// numbers that could be made to collide (a peer chooses next hops, but
/// there are a handful).
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Sets of `T` by id; id 0 is the empty set.
#[derive(Debug)]
pub struct Sets<T> {
    list: Vec<Vec<T>>,
    index: FastMap<Vec<T>, u32>,
}

impl<T: Clone + Eq + Hash + Ord> Sets<T> {
    pub fn new() -> Self {
        let mut index = FastMap::default();
        index.insert(Vec::new(), 0);
        Sets {
            list: vec![Vec::new()],
            index,
        }
    }

    /// The id of the set of `one` alone, without making a vector unless
    /// it is new.
    pub fn id_of_one(&mut self, one: T) -> u32 {
        match self.index.get(std::slice::from_ref(&one)) {
            Some(id) => *id,
            None => self.id(vec![one]),
        }
    }

    /// The id of this set (sorted and deduplicated first).
    pub fn id(&mut self, mut set: Vec<T>) -> u32 {
        set.sort();
        set.dedup();
        if let Some(id) = self.index.get(&set) {
            return *id;
        }
        let id = self.list.len() as u32;
        self.list.push(set.clone());
        self.index.insert(set, id);
        id
    }

    pub fn get(&self, id: u32) -> &[T] {
        self.list.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// The ids of the sets for which `f` holds.
    pub fn ids_where(&self, f: impl Fn(&[T]) -> bool) -> Vec<u32> {
        (0..self.list.len() as u32)
            .filter(|&id| f(&self.list[id as usize]))
            .collect()
    }
}

/// Pairs of set ids (what BGP wants, what of ours the kernel has) by id:
/// a prefix keeps one 4-byte id for both; id 0 is `(0, 0)`.
#[derive(Debug)]
pub struct Pairs {
    list: Vec<(u32, u32)>,
    index: FastMap<(u32, u32), u32>,
}

impl Pairs {
    pub fn new() -> Self {
        Pairs {
            list: vec![(0, 0)],
            index: FastMap::from_iter([((0, 0), 0)]),
        }
    }

    pub fn id(&mut self, pair: (u32, u32)) -> u32 {
        if let Some(id) = self.index.get(&pair) {
            return *id;
        }
        let id = self.list.len() as u32;
        self.list.push(pair);
        self.index.insert(pair, id);
        id
    }

    pub fn get(&self, id: u32) -> (u32, u32) {
        self.list.get(id as usize).copied().unwrap_or((0, 0))
    }
}
