//! Interned path attribute sets. A full table from one peer usually has a
//! handful of distinct attribute sets, so each path holds a reference to a
//! shared set instead of its own copy.

type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::wire::{AttrValue, NextHop, Origin, PathAttribute, Update};

/// The LOCAL_PREF of a path that carries none (RFC 4271 §5.1.5 leaves the
/// value to local policy; 100 is what every implementation uses).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The attributes of a route as the RIB keeps them: the path attributes
/// without NEXT_HOP and the MP attributes, and the next hop on its own.
/// The values the decision process reads are worked out once, when the set
/// is built.
#[derive(Debug, Clone)]
pub struct PathAttrs {
    attributes: Vec<PathAttribute>,
    next_hop: NextHop,
    cache: Decision,
}

/// What the decision process needs from a path's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub local_pref: u32,
    pub as_path_len: u32,
    pub origin: Origin,
    pub med: u32,
    /// The neighbouring AS: the first AS of the path, if it starts with a sequence.
    pub neighbor_as: Option<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list_len: u32,
}

impl PathAttrs {
    /// An attribute set from the attributes of an UPDATE and the next hop
    /// its routes use (NEXT_HOP or the MP_REACH_NLRI next hop).
    pub fn new(attributes: &[PathAttribute], next_hop: NextHop) -> Self {
        let attributes: Vec<PathAttribute> = attributes
            .iter()
            .filter(|a| !a.carries_nlri())
            .cloned()
            .collect();
        let cache = Decision::of(&attributes);
        PathAttrs {
            attributes,
            next_hop,
            cache,
        }
    }

    /// The attribute set of the routes in an UPDATE's NLRI field, if it has a NEXT_HOP.
    pub fn of_update(update: &Update) -> Option<Self> {
        let next_hop = NextHop::V4(update.next_hop()?);
        Some(PathAttrs::new(&update.attributes, next_hop))
    }

    pub fn attributes(&self) -> &[PathAttribute] {
        &self.attributes
    }

    pub fn next_hop(&self) -> NextHop {
        self.next_hop
    }

    /// The address the next hop resolves through: the global one.
    pub fn next_hop_addr(&self) -> IpAddr {
        match self.next_hop {
            NextHop::V4(a) => IpAddr::V4(a),
            NextHop::V6 { global, .. } => IpAddr::V6(global),
        }
    }

    pub(crate) fn decision(&self) -> &Decision {
        &self.cache
    }
}

impl Decision {
    fn of(attributes: &[PathAttribute]) -> Self {
        let mut d = Decision {
            local_pref: DEFAULT_LOCAL_PREF,
            as_path_len: 0,
            origin: Origin::Incomplete,
            med: 0,
            neighbor_as: None,
            originator_id: None,
            cluster_list_len: 0,
        };
        for a in attributes {
            match &a.value {
                AttrValue::LocalPref(v) => d.local_pref = *v,
                AttrValue::AsPath(p) => {
                    d.as_path_len = u32::try_from(p.path_len()).unwrap_or(u32::MAX);
                    d.neighbor_as = p.first_as();
                }
                AttrValue::Origin(o) => d.origin = *o,
                AttrValue::MultiExitDisc(m) => d.med = *m,
                AttrValue::OriginatorId(id) => d.originator_id = Some(*id),
                AttrValue::ClusterList(ids) => {
                    d.cluster_list_len = u32::try_from(ids.len()).unwrap_or(u32::MAX)
                }
                _ => {}
            }
        }
        d
    }
}

// Identity is the attributes and next hop; the cache follows from them.
impl PartialEq for PathAttrs {
    fn eq(&self, other: &Self) -> bool {
        self.next_hop == other.next_hop && self.attributes == other.attributes
    }
}

impl Eq for PathAttrs {}

impl Hash for PathAttrs {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.next_hop.hash(state);
        self.attributes.hash(state);
    }
}

/// The set of attribute sets in use, each held once.
///
/// A set leaves the table when its last path does. Routes handed out (in
/// best-path changes) also hold sets; one that outlives its paths is swept
/// later, once new sets have grown the table by half since the last sweep.
#[derive(Debug, Default)]
pub(crate) struct AttrTable {
    sets: HashSet<Arc<PathAttrs>>,
    added_since_sweep: usize,
}

impl AttrTable {
    /// The shared copy of `attrs`, added if it is new.
    pub fn intern(&mut self, attrs: PathAttrs) -> Arc<PathAttrs> {
        if let Some(shared) = self.sets.get(&attrs) {
            return Arc::clone(shared);
        }
        // Sweeping once additions pass half the table keeps the cost of
        // sweeps at two visits per set added, and orphans to a fraction.
        self.added_since_sweep += 1;
        if self.added_since_sweep * 2 > self.sets.len() {
            self.sweep();
        }
        let shared = Arc::new(attrs);
        self.sets.insert(Arc::clone(&shared));
        shared
    }

    /// Give back a reference; the set goes when the table holds the last one.
    pub fn release(&mut self, attrs: Arc<PathAttrs>) {
        if Arc::strong_count(&attrs) == 2 {
            self.sets.remove(&*attrs);
        }
    }

    /// Drop the sets nothing but the table holds.
    fn sweep(&mut self) {
        self.sets.retain(|s| Arc::strong_count(s) > 1);
        self.added_since_sweep = 0;
    }

    /// How many sets the table holds, unswept ones included.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// How many sets are in use (held by more than the table).
    pub fn live(&self) -> usize {
        self.sets
            .iter()
            .filter(|s| Arc::strong_count(s) > 1)
            .count()
    }
}
