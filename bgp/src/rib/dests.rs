//! Every prefix's paths: the prefix map and the store of the paths'
//! arrays, kept together so that no array is lost or handed out twice.

use ipnet::IpNet;

use super::paths::{Paths, PathsMut, Store};
use super::Path;
use crate::table::{Position, PrefixMap};

#[derive(Debug, Default)]
pub(super) struct Dests {
    map: PrefixMap<Paths>,
    store: Store,
}

impl Drop for Dests {
    /// The paths in the store go with the prefixes that name them (the
    /// store alone does not know how many each array holds).
    fn drop(&mut self) {
        for (_, paths) in self.map.iter_mut() {
            self.store.clear(paths);
        }
    }
}

impl Dests {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// See [`PrefixMap::locate`].
    pub fn locate(&self, prefix: &IpNet) -> Option<Position> {
        self.map.locate(prefix)
    }

    /// See [`PrefixMap::locate_all`].
    pub fn locate_all<'a>(
        &self,
        prefixes: impl Iterator<Item = &'a IpNet> + Clone,
        out: &mut Vec<Option<Position>>,
    ) {
        self.map.locate_all(prefixes, out);
    }

    pub fn get(&self, prefix: &IpNet) -> Option<&[Path]> {
        Some(self.store.get(self.map.get(prefix)?))
    }

    pub fn get_mut(&mut self, prefix: &IpNet) -> Option<PathsMut<'_>> {
        let paths = self.map.get_mut(prefix)?;
        Some(PathsMut {
            paths,
            store: &mut self.store,
        })
    }

    /// The paths of `prefix` at `at`, if it is still there.
    pub fn at(&self, at: Position, prefix: &IpNet) -> Option<&[Path]> {
        Some(self.store.get(self.map.at(at, prefix)?))
    }

    /// The same, to change.
    pub fn at_mut(&mut self, at: Position, prefix: &IpNet) -> Option<PathsMut<'_>> {
        let paths = self.map.at_mut(at, prefix)?;
        Some(PathsMut {
            paths,
            store: &mut self.store,
        })
    }

    /// The paths of `prefix`, none if it is new.
    pub fn entry(&mut self, prefix: IpNet) -> PathsMut<'_> {
        PathsMut {
            paths: self.map.get_or_insert_with(prefix, Paths::default),
            store: &mut self.store,
        }
    }

    /// Forget `prefix`, and any paths it still has.
    pub fn remove(&mut self, prefix: &IpNet) {
        if let Some(mut paths) = self.map.remove(prefix) {
            self.store.clear(&mut paths);
        }
    }

    /// Every prefix with its paths, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &[Path])> {
        self.map
            .iter()
            .map(|(prefix, paths)| (prefix, self.store.get(paths)))
    }

    /// Run `f` on every prefix's paths, which it may change.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(IpNet, &mut PathsMut<'_>)) {
        let store = &mut self.store;
        for (prefix, paths) in self.map.iter_mut() {
            f(
                prefix,
                &mut PathsMut {
                    paths,
                    store: &mut *store,
                },
            );
        }
    }

    pub fn path_count(&self) -> usize {
        self.map.values().map(|p| self.store.get(p).len()).sum()
    }

    /// See [`PrefixMap::compact`].
    pub fn compact(&mut self) -> bool {
        self.map.compact()
    }
}
