//! The nexthop objects the FIB keeps in the kernel, and how many routes
//! name each.
//!
//! One object stands for one set of BGP next hops (what a prefix's best
//! paths want): a single object when the set has one next hop, a group of
//! single objects (the members, one per gateway) when it has more. When a
//! next hop comes to resolve another way (the route to it moved, its link
//! changed), its object is replaced and every route naming it follows, in
//! one write however many routes there are.
//!
//! A route of ours names an object through its entry's `ours`: `SLOT | n`
//! for slot `n`; any other non-zero `ours` is a set of gateways written
//! into the route itself (the kernel has no objects, they are turned off,
//! or a gateway's device is not known).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::kernel::Gateway;
use super::nexthop::{Body, Object, Write};
use super::sets::Sets;

/// Marks an `ours` that is a slot.
pub const SLOT: u32 = 1 << 31;
/// Object ids of ours start here, clear of the small ids `ip nexthop`
/// users and other daemons pick.
const FIRST_ID: u32 = 1 << 24;

/// The slot an `ours` names, if it names one.
pub fn slot_of(ours: u32) -> Option<u32> {
    (ours & SLOT != 0).then_some(ours & !SLOT)
}

#[derive(Debug)]
pub struct Slot {
    /// The kernel's id of the object.
    pub id: u32,
    /// The next-hop set it stands for (a set of `State::hops`); 0 when
    /// found at start and not yet claimed.
    pub want: u32,
    pub group: bool,
    /// The gateways it holds in the kernel (a set of `Fib::gateways`); 0
    /// while it is not there.
    pub held: u32,
    /// The gateways it should hold, when they differ from `held`.
    pub target: Option<u32>,
    /// Routes of ours that name it.
    pub routes: u32,
}

/// A single object that groups are made of.
#[derive(Debug)]
struct Member {
    id: u32,
    in_kernel: bool,
}

#[derive(Debug, Default)]
pub struct Objects {
    /// New routes name objects (the kernel has them and they are on).
    pub enabled: bool,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    by_want: HashMap<u32, u32>,
    by_id: HashMap<u32, u32>,
    members: HashMap<Gateway, Member>,
    /// Ids of every object seen in the kernel, anyone's, and ours.
    taken: HashSet<u32>,
    next_id: u32,
    /// Slots with a write to make.
    stale: BTreeSet<u32>,
    /// Slots whose write the kernel refused: tried again on `retry`.
    failed: BTreeSet<u32>,
    /// An object may have lost its last route.
    gc: bool,
}

impl Objects {
    pub fn new(enabled: bool) -> Objects {
        Objects {
            enabled,
            slots: vec![None],
            next_id: FIRST_ID,
            ..Objects::default()
        }
    }

    pub fn get(&self, slot: u32) -> Option<&Slot> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, slot: u32) -> Option<&mut Slot> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// How many objects of ours the kernel holds (slots and members).
    pub fn count(&self) -> usize {
        self.by_id.len() + self.members.values().filter(|m| m.in_kernel).count()
    }

    /// An `ours` changed from `old` to `new`: count the routes per slot.
    pub fn moved(&mut self, old: u32, new: u32) {
        if old == new {
            return;
        }
        if let Some(s) = slot_of(old).and_then(|s| self.get_mut(s)) {
            s.routes = s.routes.saturating_sub(1);
            if s.routes == 0 {
                self.gc = true;
            }
        }
        if let Some(s) = slot_of(new).and_then(|s| self.get_mut(s)) {
            s.routes += 1;
        }
    }

    fn allocate_id(&mut self) -> u32 {
        while self.taken.contains(&self.next_id) || self.next_id == 0 {
            self.next_id = self.next_id.wrapping_add(1).max(FIRST_ID);
        }
        let id = self.next_id;
        self.taken.insert(id);
        self.next_id = self.next_id.wrapping_add(1).max(FIRST_ID);
        id
    }

    fn add_slot(&mut self, slot: Slot) -> u32 {
        let id = slot.id;
        let n = match self.free.pop() {
            Some(n) => {
                self.slots[n as usize] = Some(slot);
                n
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_id.insert(id, n);
        n
    }

    /// The slot for routes wanting next-hop set `want` (of `hops` next
    /// hops) and gateways `gateways`, made or claimed as needed and
    /// marked for a write if it does not hold them. A route already naming
    /// an object found at start (`ours`) keeps it if it can.
    pub fn slot_for(&mut self, want: u32, hops: usize, ours: u32, gateways: u32) -> u32 {
        let group = hops > 1;
        let n = if let Some(&n) = self.by_want.get(&want) {
            n
        } else if let Some(n) =
            slot_of(ours).filter(|&n| self.get(n).is_some_and(|s| s.want == 0 && s.group == group))
        {
            if let Some(s) = self.get_mut(n) {
                s.want = want;
            }
            self.by_want.insert(want, n);
            n
        } else {
            let id = self.allocate_id();
            let n = self.add_slot(Slot {
                id,
                want,
                group,
                held: 0,
                target: None,
                routes: 0,
            });
            self.by_want.insert(want, n);
            n
        };
        if let Some(s) = self.get_mut(n) {
            if s.held != gateways {
                s.target = Some(gateways);
            } else {
                s.target = None;
            }
            if s.target.is_some() {
                self.stale.insert(n);
            }
        }
        n
    }

    /// The writes that bring stale objects to what they should hold:
    /// members first, then the objects naming them. Each comes with the
    /// slot it is for (`None` for a member).
    pub fn writes(&mut self, gateways: &Sets<Gateway>, protocol: u8) -> Vec<(Option<u32>, Write)> {
        let mut out = Vec::new();
        let stale: Vec<u32> = std::mem::take(&mut self.stale).into_iter().collect();
        for n in stale {
            let Some((held, target, group, id)) = self
                .get(n)
                .and_then(|s| s.target.map(|t| (s.held, t, s.group, s.id)))
            else {
                continue;
            };
            let list = gateways.get(target);
            let body = if group {
                let mut ids = Vec::with_capacity(list.len());
                for g in list {
                    let Some(oif) = g.oif else { continue };
                    let member = match self.members.get(g) {
                        Some(m) => m.id,
                        None => {
                            let id = self.allocate_id();
                            self.members.insert(
                                *g,
                                Member {
                                    id,
                                    in_kernel: false,
                                },
                            );
                            id
                        }
                    };
                    if self.members.get(g).is_some_and(|m| !m.in_kernel) {
                        out.push((
                            None,
                            Write::Create(Object {
                                id: member,
                                protocol,
                                body: Body::One {
                                    gateway: g.addr,
                                    oif,
                                },
                            }),
                        ));
                    }
                    ids.push(member);
                }
                Body::Group(ids)
            } else {
                match list {
                    [Gateway {
                        addr,
                        oif: Some(oif),
                    }] => Body::One {
                        gateway: *addr,
                        oif: *oif,
                    },
                    _ => continue,
                }
            };
            let object = Object { id, protocol, body };
            let write = if held == 0 {
                Write::Create(object)
            } else {
                Write::Replace(object)
            };
            out.push((Some(n), write));
        }
        out
    }

    /// A write from `writes` was carried out (`ok`) or refused.
    pub fn written(&mut self, slot: Option<u32>, write: &Write, ok: bool, exists: bool) {
        let (Write::Create(o) | Write::Replace(o)) = write else {
            return;
        };
        match slot {
            None => {
                if let Some(m) = self.members.values_mut().find(|m| m.id == o.id) {
                    m.in_kernel = ok;
                }
            }
            Some(n) => {
                if ok {
                    if let Some(s) = self.get_mut(n) {
                        if let Some(t) = s.target.take() {
                            s.held = t;
                        }
                    }
                } else if exists && matches!(write, Write::Create(_)) {
                    // Someone else took the id: take another.
                    let id = self.allocate_id();
                    if let Some(s) = self.get_mut(n) {
                        let old = std::mem::replace(&mut s.id, id);
                        self.by_id.remove(&old);
                        self.by_id.insert(id, n);
                    }
                    self.stale.insert(n);
                } else {
                    self.failed.insert(n);
                }
            }
        }
    }

    /// Writes to make, or objects that may be unused.
    pub fn busy(&self) -> bool {
        !self.stale.is_empty() || self.gc
    }

    /// Look for unused objects at the next pass (those found at start are
    /// kept until BGP has converged).
    pub fn collect(&mut self) {
        self.gc = true;
    }

    /// Refused writes are tried again.
    pub fn retry(&mut self) {
        self.stale.append(&mut self.failed);
    }

    /// Whether slot `n`'s object is in the kernel, under which id.
    pub fn kernel_id(&self, n: u32) -> Option<u32> {
        self.get(n).filter(|s| s.held != 0).map(|s| s.id)
    }

    /// Objects no route names any more (only those found at start once
    /// `converged`), and members no group holds: removed from the books,
    /// their deletions returned, groups before members.
    pub fn garbage(&mut self, gateways: &Sets<Gateway>, converged: bool) -> Vec<Write> {
        self.gc = false;
        let mut out = Vec::new();
        for n in 1..self.slots.len() as u32 {
            let unused = self
                .get(n)
                .is_some_and(|s| s.routes == 0 && (s.want != 0 || converged));
            if unused {
                if let Some(s) = self.slots[n as usize].take() {
                    self.by_id.remove(&s.id);
                    if self.by_want.get(&s.want) == Some(&n) {
                        self.by_want.remove(&s.want);
                    }
                    self.stale.remove(&n);
                    self.failed.remove(&n);
                    self.free.push(n);
                    if s.held != 0 {
                        out.push(Write::Delete(s.id));
                    } else {
                        self.taken.remove(&s.id);
                    }
                }
            }
        }
        let mut held: HashSet<Gateway> = HashSet::new();
        for s in self.slots.iter().flatten().filter(|s| s.group) {
            held.extend(gateways.get(s.held).iter().copied());
            if let Some(t) = s.target {
                held.extend(gateways.get(t).iter().copied());
            }
        }
        let unheld: Vec<Gateway> = self
            .members
            .keys()
            .filter(|g| !held.contains(g))
            .copied()
            .collect();
        for g in unheld {
            if let Some(m) = self.members.remove(&g) {
                if m.in_kernel {
                    out.push(Write::Delete(m.id));
                } else {
                    self.taken.remove(&m.id);
                }
            }
        }
        out
    }

    /// An object was deleted: forget the id.
    pub fn deleted(&mut self, id: u32) {
        self.taken.remove(&id);
    }

    /// Take in the objects the kernel holds: every id is noted as taken;
    /// ours are matched to what we know, or adopted (a group's singles as
    /// its members). Our objects the kernel lost are marked not there.
    /// `gateways` interns what each holds.
    pub fn adopt(&mut self, found: &[Object], protocol: u8, gateways: &mut Sets<Gateway>) {
        let ours: HashMap<u32, &Object> = found
            .iter()
            .filter(|o| o.protocol == protocol)
            .map(|o| (o.id, o))
            .collect();
        self.taken.extend(found.iter().map(|o| o.id));
        self.gc = true;
        // What we thought was there and is not.
        for n in 1..self.slots.len() as u32 {
            if let Some(s) = self.get_mut(n) {
                if s.held != 0 && !ours.contains_key(&s.id) {
                    let had = s.held;
                    s.held = 0;
                    s.target.get_or_insert(had);
                    self.stale.insert(n);
                }
            }
        }
        for m in self.members.values_mut() {
            m.in_kernel = m.in_kernel && ours.contains_key(&m.id);
        }
        let in_groups: HashSet<u32> = ours
            .values()
            .filter_map(|o| match &o.body {
                Body::Group(ids) => Some(ids.iter().copied()),
                Body::One { .. } => None,
            })
            .flatten()
            .collect();
        let single = |id: &u32| match ours.get(id).map(|o| &o.body) {
            Some(Body::One { gateway, oif }) => Some(Gateway {
                addr: *gateway,
                oif: Some(*oif),
            }),
            _ => None,
        };
        for id in &in_groups {
            if let Some(g) = single(id) {
                if self.members.values().all(|m| m.id != *id) {
                    self.members.entry(g).or_insert(Member {
                        id: *id,
                        in_kernel: true,
                    });
                }
            }
        }
        // Ours, and known: does it hold what we wrote? A group loses a
        // member the kernel drops (its device went down) without a word
        // to us; it is written again, as it should be.
        for o in ours.values() {
            let Some(&n) = self.by_id.get(&o.id) else {
                continue;
            };
            let holds = match &o.body {
                Body::Group(ids) => ids.iter().filter_map(single).collect(),
                Body::One { .. } => single(&o.id).into_iter().collect(),
            };
            let holds = gateways.id(holds);
            if let Some(s) = self.get_mut(n) {
                if s.held != 0 && s.held != holds {
                    let had = s.held;
                    s.held = holds;
                    s.target.get_or_insert(had);
                    self.stale.insert(n);
                }
            }
        }
        for o in ours.values() {
            if self.by_id.contains_key(&o.id) || self.members.values().any(|m| m.id == o.id) {
                continue;
            }
            let (group, held) = match &o.body {
                Body::Group(ids) => (true, ids.iter().filter_map(single).collect()),
                Body::One { .. } if in_groups.contains(&o.id) => continue,
                Body::One { .. } => (false, single(&o.id).into_iter().collect()),
            };
            let held = gateways.id(held);
            self.add_slot(Slot {
                id: o.id,
                want: 0,
                group,
                held,
                target: None,
                routes: 0,
            });
        }
    }

    /// Whether an object stands for next-hop set `want`.
    pub fn stands_for(&self, want: u32) -> bool {
        self.by_want.contains_key(&want)
    }

    /// The slot of the object with kernel id `id`, if ours.
    pub fn slot_by_id(&self, id: u32) -> Option<u32> {
        self.by_id.get(&id).copied()
    }

    /// Whether `id` is an object of ours (a slot or a member).
    pub fn is_ours(&self, id: u32) -> bool {
        self.by_id.contains_key(&id) || self.members.values().any(|m| m.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(a: &str, oif: u32) -> Gateway {
        Gateway {
            addr: a.parse().unwrap(),
            oif: Some(oif),
        }
    }

    #[test]
    fn one_object_per_next_hop_set_replaced_when_it_resolves_anew() {
        let mut sets = Sets::new();
        let mut o = Objects::new(true);
        let g1 = sets.id(vec![gw("10.0.0.2", 2)]);
        let s = o.slot_for(5, 1, 0, g1);
        assert_eq!(o.slot_for(5, 1, 0, g1), s, "the same set, the same object");
        let w = o.writes(&sets, 200);
        assert!(matches!(&w[..], [(Some(n), Write::Create(_))] if *n == s));
        o.written(w[0].0, &w[0].1, true, false);
        assert_eq!(o.kernel_id(s), Some(FIRST_ID));
        // Nothing more to write while it holds what it should.
        o.slot_for(5, 1, SLOT | s, g1);
        assert!(o.writes(&sets, 200).is_empty());
        // Its next hop moves: one replace, same id.
        let g2 = sets.id(vec![gw("10.0.1.2", 3)]);
        o.slot_for(5, 1, SLOT | s, g2);
        let w = o.writes(&sets, 200);
        assert!(matches!(&w[..], [(_, Write::Replace(ob))] if ob.id == FIRST_ID));
    }

    #[test]
    fn a_group_is_made_of_members_written_first_and_dropped_when_unused() {
        let mut sets = Sets::new();
        let mut o = Objects::new(true);
        let both = sets.id(vec![gw("10.0.0.2", 2), gw("10.0.0.3", 2)]);
        let s = o.slot_for(9, 2, 0, both);
        let w = o.writes(&sets, 200);
        assert_eq!(w.len(), 3);
        assert!(w[..2].iter().all(|(n, _)| n.is_none()));
        assert!(
            matches!(&w[2], (Some(_), Write::Create(Object { body: Body::Group(m), .. })) if m.len() == 2)
        );
        for (n, write) in &w {
            o.written(*n, write, true, false);
        }
        o.moved(0, SLOT | s);
        assert!(o.garbage(&sets, true).is_empty(), "in use");
        // One path goes: the group is replaced, a member left over.
        let one = sets.id(vec![gw("10.0.0.2", 2)]);
        o.slot_for(9, 2, SLOT | s, one);
        let w = o.writes(&sets, 200);
        assert!(
            matches!(&w[..], [(Some(_), Write::Replace(Object { body: Body::Group(m), .. }))] if m.len() == 1)
        );
        o.written(w[0].0, &w[0].1, true, false);
        assert_eq!(o.garbage(&sets, true).len(), 1);
        // The last route goes: the group, then its member.
        o.moved(SLOT | s, 0);
        let g = o.garbage(&sets, true);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0], Write::Delete(o_id(&w)));
        assert_eq!(o.count(), 0);
    }

    #[test]
    fn a_group_found_short_of_a_member_is_written_again() {
        let mut sets = Sets::new();
        let mut o = Objects::new(true);
        let both = sets.id(vec![gw("10.0.0.2", 2), gw("10.0.0.3", 3)]);
        let s = o.slot_for(9, 2, 0, both);
        let w = o.writes(&sets, 200);
        for (n, write) in &w {
            o.written(*n, write, true, false);
        }
        o.moved(0, SLOT | s);
        let ids: Vec<u32> = w
            .iter()
            .map(|(_, write)| match write {
                Write::Replace(ob) | Write::Create(ob) => ob.id,
                Write::Delete(id) => *id,
            })
            .collect();
        let single = |id, gateway: &str, oif| Object {
            id,
            protocol: 200,
            body: Body::One {
                gateway: gateway.parse().unwrap(),
                oif,
            },
        };
        // As written, the dump changes nothing.
        let intact = vec![
            single(ids[0], "10.0.0.2", 2),
            single(ids[1], "10.0.0.3", 3),
            Object {
                id: ids[2],
                protocol: 200,
                body: Body::Group(vec![ids[0], ids[1]]),
            },
        ];
        o.adopt(&intact, 200, &mut sets);
        assert!(o.writes(&sets, 200).is_empty(), "holds what was written");
        // The device of 10.0.0.3 went down: the kernel dropped that member
        // from the group, and the member with it.
        let short = vec![
            single(ids[0], "10.0.0.2", 2),
            Object {
                id: ids[2],
                protocol: 200,
                body: Body::Group(vec![ids[0]]),
            },
        ];
        o.adopt(&short, 200, &mut sets);
        let w = o.writes(&sets, 200);
        assert!(
            matches!(w.last(), Some((Some(_), Write::Replace(Object { id, body: Body::Group(m), .. }))) if *id == ids[2] && m.len() == 2),
            "{w:?}"
        );
    }

    fn o_id(w: &[(Option<u32>, Write)]) -> u32 {
        match &w[0].1 {
            Write::Replace(o) | Write::Create(o) => o.id,
            Write::Delete(id) => *id,
        }
    }

    #[test]
    fn objects_found_at_start_are_claimed_not_rewritten() {
        let mut sets = Sets::new();
        let mut o = Objects::new(true);
        let found = vec![
            Object {
                id: 40,
                protocol: 200,
                body: Body::One {
                    gateway: "10.0.0.2".parse().unwrap(),
                    oif: 2,
                },
            },
            Object {
                id: 41,
                protocol: 7,
                body: Body::Group(vec![40]),
            },
        ];
        o.adopt(&found, 200, &mut sets);
        let s = o.slot_by_id(40).expect("adopted");
        assert!(o.slot_by_id(41).is_none(), "not ours");
        o.moved(0, SLOT | s);
        let g1 = sets.id(vec![gw("10.0.0.2", 2)]);
        assert_eq!(o.slot_for(3, 1, SLOT | s, g1), s);
        assert!(o.writes(&sets, 200).is_empty());
        // A new object takes an id no one holds.
        let g2 = sets.id(vec![gw("10.0.0.9", 2)]);
        let t = o.slot_for(4, 1, 0, g2);
        assert!(o.kernel_id(t).is_none());
        let w = o.writes(&sets, 200);
        assert!(matches!(&w[..], [(_, Write::Create(ob))] if ob.id != 40 && ob.id != 41));
    }

    #[test]
    fn an_id_someone_else_took_is_given_up_for_another() {
        let mut sets = Sets::new();
        let mut o = Objects::new(true);
        let g = sets.id(vec![gw("10.0.0.2", 2)]);
        let s = o.slot_for(1, 1, 0, g);
        let w = o.writes(&sets, 200);
        o.written(w[0].0, &w[0].1, false, true);
        let again = o.writes(&sets, 200);
        assert!(matches!(&again[..], [(_, Write::Create(ob))] if ob.id != o_id(&w)));
        assert_eq!(o.slot_by_id(o_id(&again)), Some(s));
    }
}
