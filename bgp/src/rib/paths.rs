//! A prefix's paths: most prefixes of a table have one, held inline, so a
//! full table costs no allocation per prefix for them.

use std::ops::{Deref, DerefMut};

use super::Path;

#[derive(Debug)]
pub(crate) enum Paths {
    One(Path),
    /// None, or more than one.
    Many(Box<[Path]>),
}

impl Default for Paths {
    fn default() -> Self {
        Paths::Many(Box::default())
    }
}

impl Paths {
    pub(crate) fn push(&mut self, path: Path) {
        *self = match std::mem::take(self) {
            Paths::Many(many) if many.is_empty() => Paths::One(path),
            Paths::Many(many) => {
                // Exactly one more: the boxed slice is made without the
                // reallocations `Vec::push` and shrinking back would cost.
                let mut v = Vec::with_capacity(many.len() + 1);
                v.extend(many.into_vec());
                v.push(path);
                Paths::Many(v.into_boxed_slice())
            }
            Paths::One(one) => Paths::Many(Box::new([one, path])),
        };
    }

    /// Remove the path at `at`, the last one taking its place.
    ///
    /// # Panics
    /// If `at` is out of bounds, as `Vec::swap_remove`.
    pub(crate) fn swap_remove(&mut self, at: usize) -> Path {
        match std::mem::take(self) {
            Paths::One(one) => {
                assert_eq!(at, 0, "index out of bounds");
                one
            }
            Paths::Many(many) => {
                let mut v = many.into_vec();
                let gone = v.swap_remove(at);
                *self = match v.len() {
                    1 => Paths::One(v.remove(0)),
                    _ => Paths::Many(v.into_boxed_slice()),
                };
                gone
            }
        }
    }
}

impl Deref for Paths {
    type Target = [Path];

    fn deref(&self) -> &[Path] {
        match self {
            Paths::One(one) => std::slice::from_ref(one),
            Paths::Many(many) => many,
        }
    }
}

impl DerefMut for Paths {
    fn deref_mut(&mut self) -> &mut [Path] {
        match self {
            Paths::One(one) => std::slice::from_mut(one),
            Paths::Many(many) => many,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::{LossReason, PathAttrs};
    use crate::wire::NextHop;
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    fn path(peer: u32) -> Path {
        Path {
            peer,
            path_id: 0,
            attrs: Arc::new(PathAttrs::new(&[], NextHop::V4(Ipv4Addr::LOCALHOST))),
            stale: false,
            since: 0,
            multipath: false,
            reason: Some(LossReason::PathId),
        }
    }

    #[test]
    fn one_path_is_inline_and_the_enum_costs_nothing() {
        assert_eq!(std::mem::size_of::<Paths>(), std::mem::size_of::<Path>());
        assert_eq!(std::mem::size_of::<Paths>(), 24);
    }

    #[test]
    fn push_and_remove_keep_every_path() {
        let mut ps = Paths::default();
        assert!(ps.is_empty());
        for peer in 0..4 {
            ps.push(path(peer));
            assert_eq!(ps.len(), peer as usize + 1);
        }
        assert!(matches!(ps, Paths::Many(_)));
        assert_eq!(ps.swap_remove(0).peer, 0);
        let peers: Vec<u32> = ps.iter().map(|p| p.peer).collect();
        assert_eq!(peers, [3, 1, 2]);
        ps.swap_remove(2);
        ps.swap_remove(0);
        assert!(matches!(ps, Paths::One(ref p) if p.peer == 1));
        ps[0].stale = true;
        assert!(ps.swap_remove(0).stale);
        assert!(ps.is_empty());
    }
}
