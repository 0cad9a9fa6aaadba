//! Bringing the kernel in line: resolve next hops, decide per prefix what
//! to write, write it with many requests in flight, record the outcome.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use bgp::rib::Reachability;
use futures::stream::{self, StreamExt};
use ipnet::IpNet;
use tracing::{debug, warn};

use super::guard;
use super::kernel::Gateway;
use super::nexthop::Write;
use super::objects;
use super::sets::{FastMap, Sets};
use super::writer::Request;
use super::{Entry, Feed, Fib, FibEntry, Op, Status, IN_FLIGHT, PASS};
use crate::daemon::owner::Command;
use crate::events::Reason;
use crate::metrics::FamilyLabel;
use bgp::table::Position;
use tokio::sync::mpsc;

impl Fib {
    /// Do what the dirty prefixes call for.
    pub(super) async fn apply(&mut self, feed: &mut mpsc::UnboundedReceiver<Feed>) {
        // No position into the entries outlives a pass: here a table the
        // kernel no longer holds gives its memory back.
        self.state.entries.compact();
        if self.local_again || self.addresses_again {
            match self.kernel.local().await {
                Ok(local) => self.local = local,
                Err(e) => warn!("{e}"),
            }
            if self.local_again {
                if let Err(e) = self.resync().await {
                    warn!("{e}");
                }
            }
            self.local_again = false;
            self.addresses_again = false;
            self.resolve_again = true;
        }
        if self.resolve_again {
            self.resolve_again = false;
            let changed = self.refresh_resolutions().await;
            self.follow(&changed);
        }
        if self.state.converged && !self.objects_collected {
            self.objects_collected = true;
            self.objects.collect();
        }
        if self.state.dirty.is_empty() {
            if self.objects.busy() {
                self.write(Vec::new(), feed).await;
            }
            return;
        }
        let dirty = self.state.dirty.take(&mut self.state.entries, PASS);
        let changed = self.resolve_missing(&dirty).await;
        self.follow(&changed);
        let mut refused = Vec::new();
        let ops: Vec<(IpNet, Position, Op)> = dirty
            .iter()
            .filter_map(|&(p, at)| self.decide(&p, at, &mut refused).map(|op| (p, at, op)))
            .collect();
        self.tell_refused(&refused);
        self.write(ops, feed).await;
        self.publish();
    }

    /// Prefixes newly kept out of the kernel in a pass: one Event for
    /// them all, naming the first few.
    fn tell_refused(&self, refused: &[(IpNet, String)]) {
        const NAMED: usize = 5;
        let Some((first, why)) = refused.first() else {
            return;
        };
        let mut note = if refused.len() == 1 {
            format!("{first} kept out of the kernel: {why}")
        } else {
            let named: Vec<String> = refused
                .iter()
                .take(NAMED)
                .map(|(p, why)| format!("{p} ({why})"))
                .collect();
            format!(
                "{} learned prefixes kept out of the kernel: {}",
                refused.len(),
                named.join(", ")
            )
        };
        if refused.len() > NAMED {
            note.push_str(&format!(" and {} more", refused.len() - NAMED));
        }
        self.settings.events.raise(Reason::RouteRefused, note);
    }

    /// Resolve the next hops of `prefixes` that were never resolved; those
    /// that resolve now.
    async fn resolve_missing(&mut self, prefixes: &[(IpNet, Position)]) -> Vec<IpAddr> {
        let entries = &mut self.state.entries;
        let pairs = &self.state.pairs;
        let mut sets: Vec<u32> = prefixes
            .iter()
            .filter_map(|(p, at)| entries.at_mut(*at, p).map(|e| e.want(pairs)))
            .collect();
        sets.sort_unstable();
        sets.dedup();
        let mut wanted: Vec<IpAddr> = sets
            .iter()
            .flat_map(|id| self.state.hops.get(*id).iter().copied())
            .filter(|nh| !self.resolved.contains_key(nh))
            .collect();
        wanted.sort();
        wanted.dedup();
        self.resolve(wanted).await
    }

    /// Resolve these next hops again, and tell the core what changed;
    /// the next hops that resolve another way now.
    async fn resolve(&mut self, next_hops: Vec<IpAddr>) -> Vec<IpAddr> {
        let kernel = self.kernel.clone();
        let local = self.local.clone();
        let protocol = self.settings.protocol;

        let results: Vec<(IpAddr, Option<(Gateway, u32)>)> = stream::iter(next_hops)
            .map(|nh| {
                let kernel = kernel.clone();
                let local = &local;
                async move {
                    if local.on_link(nh) {
                        // Its device too: a nexthop object must name one,
                        // the kernel states it for a route read back, and
                        // a next hop that moves to another device (a more
                        // specific route to it) moves its routes along.
                        let oif = kernel
                            .lookup(nh)
                            .await
                            .filter(|l| l.gateway.is_none() && l.protocol != protocol)
                            .map(|l| l.oif);
                        return (nh, Some((Gateway { addr: nh, oif }, 0)));
                    }
                    // Recursive: through the kernel's own table, never
                    // through a route of ours.
                    let found = kernel.lookup(nh).await.filter(|l| l.protocol != protocol);
                    let via = found.map(|l| {
                        let gw = Gateway {
                            addr: l.gateway.unwrap_or(nh),
                            oif: Some(l.oif),
                        };
                        (gw, l.metric)
                    });
                    (nh, via)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut changed = Vec::new();
        for (nh, via) in results {
            if self.resolved.get(&nh) != Some(&via) {
                self.resolves_to.clear();
            }
            let before = self.resolved.insert(nh, via);
            if before.as_ref() != Some(&via) {
                let reach = match via {
                    Some((_, cost)) => Reachability::Reachable { igp_cost: cost },
                    None => Reachability::Unreachable,
                };
                let _ = self.owner.try_send(Command::NextHop { addr: nh, reach });
                changed.push(nh);
            }
        }
        changed
    }

    /// The kernel's routes changed: resolve again what goes through them.
    async fn refresh_resolutions(&mut self) -> Vec<IpAddr> {
        let recursive: Vec<IpAddr> = self.resolved.keys().copied().collect();
        self.resolve(recursive).await
    }

    /// These next hops resolve another way: the objects standing for them
    /// are to be changed first (each one write, however many routes name
    /// it), then every prefix using them is looked at again.
    fn follow(&mut self, changed: &[IpAddr]) {
        if changed.is_empty() {
            return;
        }
        let affected: HashSet<u32> = self
            .state
            .hops
            .ids_where(|set| set.iter().any(|nh| changed.contains(nh)))
            .into_iter()
            .collect();
        if self.objects.enabled {
            for &want in &affected {
                if !self.objects.stands_for(want) {
                    continue;
                }
                let gateways = self.gateways_of(want);
                if gateways != 0 && self.gateways.get(gateways).iter().all(|g| g.oif.is_some()) {
                    let hops = self.state.hops.get(want).len();
                    self.objects.slot_for(want, hops, 0, gateways);
                }
            }
        }
        for (_, e) in self.state.entries.iter_mut() {
            if affected.contains(&e.want(&self.state.pairs)) {
                self.state.dirty.mark(e);
            }
        }
    }

    /// The gateways next-hop set `want` resolves to, as a set.
    fn gateways_of(&mut self, want: u32) -> u32 {
        resolves_to(
            &mut self.resolves_to,
            &self.state.hops,
            &self.resolved,
            &mut self.gateways,
            want,
        )
    }

    /// What to write for `prefix`, with its new status.
    /// A prefix newly refused is added to `refused`, with why.
    fn decide(
        &mut self,
        prefix: &IpNet,
        at: Position,
        refused: &mut Vec<(IpNet, String)>,
    ) -> Option<Op> {
        let refusal = guard::check(prefix, &self.settings.accept, &self.local).err();
        let foreign = self.foreign.get(prefix).copied();
        let converged = self.state.converged;
        let e = self.state.entries.at_mut(at, prefix)?;
        let (want, ours) = e.pair(&self.state.pairs);
        let gateways = if want == 0 {
            0
        } else {
            resolves_to(
                &mut self.resolves_to,
                &self.state.hops,
                &self.resolved,
                &mut self.gateways,
                want,
            )
        };
        if want == 0 {
            if ours != 0 && (converged || e.status != Status::Adopted) {
                return Some(Op::Remove);
            }
            if ours == 0 {
                self.state.remove(prefix);
            }
            return None;
        }
        let blocked = if let Some(r) = refusal {
            Some(Status::Refused(r))
        } else {
            foreign.map(Status::Conflict)
        };
        if let Some(status) = blocked {
            if e.status != status {
                e.status = status;
                if let (_, Some(why)) = describe(e) {
                    refused.push((*prefix, why));
                }
            }
            return (ours != 0).then_some(Op::Remove);
        }
        if gateways == 0 {
            e.status = Status::Unreachable;
            return (ours != 0).then_some(Op::Remove);
        }
        // Through the next-hop set's object where there can be one (every
        // gateway's device known); else the gateways in the route itself.
        let objects_fit =
            self.objects.enabled && self.gateways.get(gateways).iter().all(|g| g.oif.is_some());
        let target = if objects_fit {
            let hops = self.state.hops.get(want).len();
            objects::SLOT | self.objects.slot_for(want, hops, ours, gateways)
        } else {
            gateways
        };
        if ours == target {
            // Already so in the kernel (adopted at start, or its object
            // is being changed under it): no route write.
            e.status = Status::Installed;
            return None;
        }
        e.status = Status::Pending;
        Some(Op::Install(target))
    }

    /// Write, many requests in flight; record each outcome.
    async fn write(
        &mut self,
        ops: Vec<(IpNet, Position, Op)>,
        feed: &mut mpsc::UnboundedReceiver<Feed>,
    ) {
        // Objects before the routes naming them; those no route names
        // any more after.
        self.write_objects(feed).await;
        self.write_routes(ops, feed).await;
        self.drop_objects(feed).await;
    }

    async fn write_routes(
        &mut self,
        ops: Vec<(IpNet, Position, Op)>,
        feed: &mut mpsc::UnboundedReceiver<Feed>,
    ) {
        if ops.is_empty() {
            return;
        }
        let kernel = &self.kernel;
        let sets = &self.gateways;
        let held = &self.objects;
        let make = |i: usize| {
            let (prefix, _, op) = &ops[i];
            match op {
                Op::Install(t) => match objects::slot_of(*t) {
                    // An object that could not be made: the kernel refuses
                    // the route, and it is tried again later.
                    Some(n) => {
                        Request::Put(kernel.route_via(prefix, held.kernel_id(n).unwrap_or(0)))
                    }
                    None => kernel
                        .route(prefix, sets.get(*t))
                        .map_or_else(|| Request::Delete(kernel.bare(prefix)), Request::Put),
                },
                Op::Remove => Request::Delete(kernel.bare(prefix)),
            }
        };
        // Between sends, the feed is taken in: a full table's changes wait
        // as entries, not as batches, however long the kernel takes.
        let state = &mut self.state;
        let outcomes = self
            .writer
            .write(ops.len(), make, || state.intake(feed))
            .await;
        let results = ops
            .into_iter()
            .zip(outcomes)
            .map(|((prefix, at, op), r)| (prefix, at, op, r));
        for (prefix, at, op, result) in results {
            let Some(e) = self.state.entries.at_mut(at, &prefix) else {
                continue;
            };
            match (op, result) {
                (Op::Install(g), Ok(())) => {
                    if e.set_ours(&mut self.state.pairs, &mut self.objects, g) == 0 {
                        super::count(&mut self.installed, &prefix, 1);
                    }
                    e.status = Status::Installed;
                }
                (Op::Remove, r) if removed(&r) => {
                    if e.set_ours(&mut self.state.pairs, &mut self.objects, 0) != 0 {
                        super::count(&mut self.installed, &prefix, -1);
                    }
                    if e.want(&self.state.pairs) == 0 {
                        self.state.remove(&prefix);
                    }
                }
                (_, result) => {
                    let errno = result.err().and_then(|e| e.raw_os_error()).unwrap_or(0);
                    debug!(%prefix, errno, "kernel write failed");
                    self.metrics.fib_install_errors.inc();
                    e.status = Status::Failed(u8::try_from(errno).unwrap_or(0));
                }
            }
        }
    }

    /// Carry out these object writes, taking in the feed between sends.
    async fn write_nexthops(
        &mut self,
        writes: &[Write],
        feed: &mut mpsc::UnboundedReceiver<Feed>,
    ) -> Vec<Result<(), std::io::Error>> {
        let state = &mut self.state;
        self.writer
            .write(
                writes.len(),
                |i| Request::Nexthop(writes[i].clone()),
                || state.intake(feed),
            )
            .await
    }

    /// Make or change the nexthop objects routes are about to name.
    async fn write_objects(&mut self, feed: &mut mpsc::UnboundedReceiver<Feed>) {
        let writes = self.objects.writes(&self.gateways, self.settings.protocol);
        if writes.is_empty() {
            return;
        }
        let list: Vec<Write> = writes.iter().map(|(_, w)| w.clone()).collect();
        let outcomes = self.write_nexthops(&list, feed).await;
        let mut refused = None;
        for ((slot, write), result) in writes.iter().zip(outcomes) {
            let errno = result.as_ref().err().and_then(std::io::Error::raw_os_error);
            self.objects
                .written(*slot, write, result.is_ok(), errno == Some(libc::EEXIST));
            if let Err(e) = result {
                debug!(?write, "nexthop object write failed: {e}");
                self.metrics.fib_install_errors.inc();
                if errno == Some(libc::EOPNOTSUPP) {
                    refused = Some(e);
                }
            }
        }
        if let Some(e) = refused {
            // The dump worked but writes do not: carry gateways in routes.
            warn!("the kernel refuses nexthop objects ({e}): routes carry their gateways");
            self.objects.enabled = false;
            for (_, e) in self.state.entries.iter_mut() {
                self.state.dirty.mark(e);
            }
            self.resolve_again = true;
        }
    }

    /// Delete the objects no route names any more.
    async fn drop_objects(&mut self, feed: &mut mpsc::UnboundedReceiver<Feed>) {
        let deletes = self.objects.garbage(&self.gateways, self.state.converged);
        if deletes.is_empty() {
            return;
        }
        let outcomes = self.write_nexthops(&deletes, feed).await;
        for (write, result) in deletes.iter().zip(outcomes) {
            if let (Write::Delete(id), Err(e)) = (write, &result) {
                // Left in the kernel: found again and dropped at a resync.
                debug!(id, "nexthop object delete failed: {e}");
            }
            if let Write::Delete(id) = write {
                self.objects.deleted(*id);
            }
        }
    }

    /// Metrics and readiness after a pass.
    fn publish(&self) {
        for (i, family) in ["ipv4", "ipv6"].iter().enumerate() {
            self.metrics
                .fib_routes
                .get_or_create(&FamilyLabel {
                    family: (*family).into(),
                })
                .set(self.installed[i]);
        }
        self.metrics
            .fib_nexthop_objects
            .set(self.objects.count() as i64);
        if self.state.converged {
            self.metrics.fib_ready.store(true, Ordering::Relaxed);
        }
    }

    /// The gateways an `ours` stands for.
    fn held(&self, ours: u32) -> u32 {
        match objects::slot_of(ours) {
            Some(n) => self.objects.get(n).map_or(0, |s| s.held),
            None => ours,
        }
    }

    /// Every prefix the writer knows, for `podbgp fib`.
    pub(super) fn list(&self) -> Vec<FibEntry> {
        let mut entries: Vec<(IpNet, &Entry)> = self.state.entries.iter().collect();
        entries.sort_unstable_by_key(|(p, _)| *p);
        entries
            .into_iter()
            .map(|(prefix, e)| {
                let (state, detail) = describe(e);
                FibEntry {
                    prefix: prefix.to_string(),
                    state: state.into(),
                    next_hops: self
                        .state
                        .hops
                        .get(e.want(&self.state.pairs))
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    gateways: self
                        .gateways
                        .get(self.held(e.ours(&self.state.pairs)))
                        .iter()
                        .map(|g| g.addr.to_string())
                        .collect(),
                    detail,
                }
            })
            .collect()
    }
}

/// The gateways next-hop set `want` resolves to, as a set of `gateways`;
/// remembered in `memo` until resolutions change (a million prefixes
/// share a handful of sets).
fn resolves_to(
    memo: &mut Vec<Option<u32>>,
    hops: &Sets<IpAddr>,
    resolved: &FastMap<IpAddr, Option<(Gateway, u32)>>,
    gateways: &mut Sets<Gateway>,
    want: u32,
) -> u32 {
    if let Some(Some(id)) = memo.get(want as usize) {
        return *id;
    }
    let set: Vec<Gateway> = hops
        .get(want)
        .iter()
        .filter_map(|nh| resolved.get(nh).copied().flatten())
        .map(|(g, _)| g)
        .collect();
    let id = gateways.id(set);
    if memo.len() <= want as usize {
        memo.resize(want as usize + 1, None);
    }
    memo[want as usize] = Some(id);
    id
}

/// A removal done, or needless: ESRCH means the route was gone.
fn removed(r: &Result<(), std::io::Error>) -> bool {
    r.as_ref()
        .map_or_else(|e| e.raw_os_error() == Some(libc::ESRCH), |_| true)
}

fn describe(e: &Entry) -> (&'static str, Option<String>) {
    match &e.status {
        Status::Installed => ("installed", None),
        Status::Pending => ("pending", None),
        Status::Unreachable => ("unreachable", Some("no next hop can be reached".into())),
        Status::Conflict(p) => (
            "conflict",
            Some(format!("a route of protocol {p} holds the prefix and wins")),
        ),
        Status::Refused(r) => ("rejected", Some(r.describe().into())),
        Status::Failed(errno) => (
            "failed",
            Some(if *errno > 0 {
                std::io::Error::from_raw_os_error(i32::from(*errno)).to_string()
            } else {
                "the kernel write could not be made".into()
            }),
        ),
        Status::Fought => (
            "failed",
            Some("removed again and again by someone else; retrying later".into()),
        ),
        Status::Adopted => (
            "adopted",
            Some("found at start; kept until BGP has converged".into()),
        ),
    }
}
