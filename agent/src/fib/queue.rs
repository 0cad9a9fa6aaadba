//! Which prefixes wait for the FIB writer: a flag in each entry and a
//! count, found again by scanning the entries from where the last pass
//! stopped. A full table waiting costs nothing beyond the entries; one
//! prefix waiting in a table of a million costs a scan of a few
//! milliseconds at most.

use bgp::table::{Position, PrefixMap};
use ipnet::IpNet;

use super::Entry;

#[derive(Debug, Default)]
pub(super) struct Queue {
    /// Entries flagged.
    waiting: usize,
    /// Where the next scan starts, a slot position of the entries.
    cursor: usize,
}

impl Queue {
    /// Mark `e` as waiting.
    pub(super) fn mark(&mut self, e: &mut Entry) {
        if !e.queued {
            e.queued = true;
            self.waiting += 1;
        }
    }

    /// `e` is being removed.
    pub(super) fn forget(&mut self, e: &Entry) {
        if e.queued {
            self.waiting = self.waiting.saturating_sub(1);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    /// Up to `n` waiting prefixes, no longer marked, with where each sits.
    pub(super) fn take(
        &mut self,
        entries: &mut PrefixMap<Entry>,
        n: usize,
    ) -> Vec<(IpNet, Position)> {
        let mut found = Vec::with_capacity(n.min(self.waiting));
        let slots = entries.slots();
        let mut scanned = 0;
        while found.len() < n && self.waiting > 0 && scanned < slots {
            if self.cursor >= slots {
                self.cursor = 0;
            }
            let at = entries.position(self.cursor);
            if let Some((prefix, e)) = entries.slot_mut(self.cursor) {
                if e.queued {
                    e.queued = false;
                    self.waiting -= 1;
                    found.push((prefix, at));
                }
            }
            self.cursor += 1;
            scanned += 1;
        }
        if scanned == slots && found.len() < n {
            // A whole round: nothing else waits, whatever the count said.
            self.waiting = 0;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    #[test]
    fn an_entry_is_seven_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 7);
        assert_eq!(std::mem::align_of::<Entry>(), 1);
    }

    #[test]
    fn each_waiting_prefix_is_taken_once() {
        let mut entries: PrefixMap<Entry> = PrefixMap::new();
        let mut q = Queue::default();
        let prefixes: Vec<IpNet> = (0..10_000u32)
            .map(|i| IpNet::V4(ipnet::Ipv4Net::new((i << 8).into(), 24).expect("len")))
            .chain(["fd00::/64".parse().expect("prefix")])
            .collect();
        for p in &prefixes {
            entries.insert(*p, Entry::new(Status::Pending));
        }
        for p in prefixes.iter().step_by(3) {
            let e = entries.get_mut(p).expect("entry");
            q.mark(e);
            q.mark(e);
        }
        let mut taken = Vec::new();
        while !q.is_empty() {
            let batch = q.take(&mut entries, 100);
            assert!(batch.len() <= 100);
            for (p, at) in batch {
                // Each comes with where it sits.
                assert!(entries.at_mut(at, &p).is_some());
                taken.push(p);
            }
        }
        let want: Vec<IpNet> = prefixes.iter().step_by(3).copied().collect();
        taken.sort();
        assert_eq!(taken, want);
        assert!(entries.iter().all(|(_, e)| !e.queued));

        // Marked again after the cursor passed: found on the next round.
        let first = prefixes[0];
        q.mark(entries.get_mut(&first).expect("entry"));
        let again: Vec<IpNet> = q
            .take(&mut entries, 10)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(again, [first]);
        // A removed entry no longer counts.
        let e = entries.get_mut(&prefixes[1]).expect("entry");
        q.mark(e);
        q.forget(e);
        assert!(q.is_empty());
    }
}
