//! Interned sets: a full table has a million prefixes but only a handful
//! of distinct next-hop sets, so each prefix keeps a 4-byte id.

use std::collections::HashMap;
use std::hash::Hash;

/// Sets of `T` by id; id 0 is the empty set.
#[derive(Debug)]
pub struct Sets<T> {
    list: Vec<Vec<T>>,
    index: HashMap<Vec<T>, u32>,
}

impl<T: Clone + Eq + Hash + Ord> Sets<T> {
    pub fn new() -> Self {
        let mut index = HashMap::new();
        index.insert(Vec::new(), 0);
        Sets {
            list: vec![Vec::new()],
            index,
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
}

/// Pairs of set ids (what BGP wants, what of ours the kernel has) by id:
/// a prefix keeps one 4-byte id for both; id 0 is `(0, 0)`.
#[derive(Debug)]
pub struct Pairs {
    list: Vec<(u32, u32)>,
    index: HashMap<(u32, u32), u32>,
}

impl Pairs {
    pub fn new() -> Self {
        Pairs {
            list: vec![(0, 0)],
            index: HashMap::from([((0, 0), 0)]),
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
