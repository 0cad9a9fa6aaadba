//! Bringing the kernel in line: resolve next hops, decide per prefix what
//! to write, write it with many requests in flight, record the outcome.

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use bgp::rib::Reachability;
use futures::stream::{self, StreamExt};
use ipnet::IpNet;
use tracing::{debug, warn};

use super::guard;
use super::kernel::Gateway;
use super::writer::Request;
use super::{Entry, Feed, Fib, FibEntry, Op, Status, IN_FLIGHT, PASS};
use crate::daemon::owner::Command;
use crate::metrics::FamilyLabel;
use tokio::sync::mpsc;

impl Fib {
    /// Do what the dirty prefixes call for.
    pub(super) async fn apply(&mut self, feed: &mut mpsc::UnboundedReceiver<Feed>) {
        if self.local_again {
            self.local_again = false;
            match self.kernel.local().await {
                Ok(local) => self.local = local,
                Err(e) => warn!("{e}"),
            }
            if let Err(e) = self.resync().await {
                warn!("{e}");
            }
            self.resolve_again = true;
        }
        if self.resolve_again {
            self.resolve_again = false;
            self.refresh_resolutions().await;
        }
        if self.state.dirty.is_empty() {
            return;
        }
        let dirty = self.state.dirty.take(&mut self.state.entries, PASS);
        self.resolve_missing(&dirty).await;
        let ops: Vec<(IpNet, Op)> = dirty
            .iter()
            .filter_map(|p| self.decide(p).map(|op| (*p, op)))
            .collect();
        self.write(ops, feed).await;
        self.publish();
    }

    /// Resolve the next hops of `prefixes` that were never resolved.
    async fn resolve_missing(&mut self, prefixes: &[IpNet]) {
        let mut sets: Vec<u32> = prefixes
            .iter()
            .filter_map(|p| self.state.entries.get(p))
            .map(|e| e.want(&self.state.pairs))
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
        self.resolve(wanted).await;
    }

    /// Resolve these next hops again, and tell the core what changed.
    async fn resolve(&mut self, next_hops: Vec<IpAddr>) {
        let kernel = self.kernel.clone();
        let local = self.local.clone();
        let protocol = self.settings.protocol;
        let results: Vec<(IpAddr, Option<(Gateway, u32)>)> = stream::iter(next_hops)
            .map(|nh| {
                let kernel = kernel.clone();
                let local = &local;
                async move {
                    if local.on_link(nh) {
                        return (
                            nh,
                            Some((
                                Gateway {
                                    addr: nh,
                                    oif: None,
                                },
                                0,
                            )),
                        );
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
        for (nh, via) in results {
            let before = self.resolved.insert(nh, via);
            if before.as_ref() != Some(&via) {
                let reach = match via {
                    Some((_, cost)) => Reachability::Reachable { igp_cost: cost },
                    None => Reachability::Unreachable,
                };
                let _ = self.owner.try_send(Command::NextHop { addr: nh, reach });
                // Every prefix using it must be looked at again.
                for (_, e) in self.state.entries.iter_mut() {
                    if self.state.hops.get(e.want(&self.state.pairs)).contains(&nh) {
                        self.state.dirty.mark(e);
                    }
                }
            }
        }
    }

    /// The kernel's routes changed: resolve again what goes through them.
    async fn refresh_resolutions(&mut self) {
        let recursive: Vec<IpAddr> = self.resolved.keys().copied().collect();
        self.resolve(recursive).await;
    }

    /// What to write for `prefix`, with its new status.
    fn decide(&mut self, prefix: &IpNet) -> Option<Op> {
        let refusal = guard::check(prefix, &self.settings.accept, &self.local).err();
        let foreign = self.foreign.get(prefix).copied();
        let converged = self.state.converged;
        let e = self.state.entries.get_mut(prefix)?;
        let (want, ours) = e.pair(&self.state.pairs);
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
            e.status = status;
            return (ours != 0).then_some(Op::Remove);
        }
        let gateways: Vec<Gateway> = self
            .state
            .hops
            .get(want)
            .iter()
            .filter_map(|nh| self.resolved.get(nh).copied().flatten())
            .map(|(g, _)| g)
            .collect();
        let gateways = self.gateways.id(gateways);
        if gateways == 0 {
            e.status = Status::Unreachable;
            return (ours != 0).then_some(Op::Remove);
        }
        if ours == gateways {
            // Already so in the kernel (adopted at start, say): no write.
            e.status = Status::Installed;
            return None;
        }
        e.status = Status::Pending;
        Some(Op::Install(gateways))
    }

    /// Write, many requests in flight; record each outcome.
    async fn write(&mut self, ops: Vec<(IpNet, Op)>, feed: &mut mpsc::UnboundedReceiver<Feed>) {
        if ops.is_empty() {
            return;
        }
        let kernel = &self.kernel;
        let sets = &self.gateways;
        let make = |i: usize| {
            let (prefix, op) = &ops[i];
            match op {
                Op::Install(g) => kernel
                    .route(prefix, sets.get(*g))
                    .map_or_else(|| Request::Delete(kernel.bare(prefix)), Request::Put),
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
            .map(|((prefix, op), r)| (prefix, op, r));
        for (prefix, op, result) in results {
            let Some(e) = self.state.entries.get_mut(&prefix) else {
                continue;
            };
            match (op, result) {
                (Op::Install(g), Ok(())) => {
                    if e.set_ours(&mut self.state.pairs, g) == 0 {
                        super::count(&mut self.installed, &prefix, 1);
                    }
                    e.status = Status::Installed;
                }
                (Op::Remove, r) if removed(&r) => {
                    if e.set_ours(&mut self.state.pairs, 0) != 0 {
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
        if self.state.converged {
            self.metrics.fib_ready.store(true, Ordering::Relaxed);
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
                        .get(e.ours(&self.state.pairs))
                        .iter()
                        .map(|g| g.addr.to_string())
                        .collect(),
                    detail,
                }
            })
            .collect()
    }
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
