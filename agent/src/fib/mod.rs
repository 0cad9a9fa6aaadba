//! The FIB writer: best paths into the kernel over rtnetlink, on a task of
//! its own so a slow kernel never holds up BGP.
//!
//! It follows the owner's best-path changes and keeps, per prefix, what BGP
//! wants and what of ours is in the kernel. Writes go out many at a time
//! and are acknowledged one by one. It guards the kernel (`fib.accept`, the
//! node's own addresses and subnets, other protocols' routes), resolves
//! next hops that are not on a connected subnet through the kernel's own
//! table and tells the core which ones it cannot reach, puts back routes of
//! ours that someone removes, and at start adopts the routes it left
//! behind, deleting only those still unwanted once BGP has converged.

mod apply;
pub mod guard;
mod kernel;
mod watch;
mod writer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bgp::rib::{BestChange, PeerId};
use ipnet::IpNet;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::warn;

use crate::daemon::owner::Command;
use crate::metrics::Metrics;
use guard::{Local, Refusal};
pub use kernel::Gateway;
use kernel::Kernel;
use watch::{KernelEvent, Watch};

/// What a FIB (or SNAT) writer is fed by the owner, in order.
#[derive(Debug, Clone)]
pub enum Feed {
    Changes(Arc<Vec<BestChange>>),
    /// Route selection has run once: what is not wanted now can go.
    Converged,
}

/// Questions for the FIB writer.
pub enum Query {
    List(oneshot::Sender<Vec<FibEntry>>),
}

/// One prefix as `podbgp fib` shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FibEntry {
    pub prefix: String,
    /// installed, pending, unreachable, conflict, rejected, failed, adopted
    pub state: String,
    /// The BGP next hops of the best path (and its multipath peers).
    pub next_hops: Vec<String>,
    /// The gateways our kernel route uses.
    pub gateways: Vec<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Installed,
    Pending,
    Unreachable,
    Conflict(u8),
    Refused(Refusal),
    Failed(String),
    /// Found at start, not (yet) wanted.
    Adopted,
}

#[derive(Debug, Clone)]
struct Entry {
    /// BGP next hops; empty when BGP has no route.
    want: Vec<IpAddr>,
    /// Our route in the kernel, as we wrote (or found) it.
    ours: Option<Vec<Gateway>>,
    status: Status,
    /// Repairs of routes removed by someone else, to tell a fight.
    repairs: Vec<Instant>,
}

enum Op {
    Install(Vec<Gateway>),
    Remove,
}

/// What the FIB writer runs with.
#[derive(Debug, Clone)]
pub struct FibSettings {
    pub table: u32,
    pub protocol: u8,
    pub accept: Vec<IpNet>,
}

/// Writes per batch in flight at once.
const IN_FLIGHT: usize = 512;
/// Repairs of one route within this long count as a fight, and wait.
const FIGHT_WINDOW: Duration = Duration::from_secs(60);
const FIGHT_REPAIRS: usize = 5;

pub struct Fib {
    kernel: Kernel,
    writer: writer::Writer,
    settings: FibSettings,
    local_peer: PeerId,
    entries: BTreeMap<IpNet, Entry>,
    /// Routes of other protocols in our table, by prefix.
    foreign: HashMap<IpNet, u8>,
    local: Local,
    /// How each BGP next hop resolves; `None`: it does not.
    resolved: HashMap<IpAddr, Option<(Gateway, u32)>>,
    converged: bool,
    owner: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
    dirty: HashSet<IpNet>,
    /// Re-resolve every next hop not on a connected subnet.
    resolve_again: bool,
    /// Read the node's addresses again.
    local_again: bool,
    /// Routes of ours in the kernel, IPv4 and IPv6, kept as they change.
    installed: [i64; 2],
}

/// Count a route of ours in (`+1`) or out (`-1`) of the kernel.
fn count(installed: &mut [i64; 2], prefix: &IpNet, delta: i64) {
    installed[usize::from(matches!(prefix, IpNet::V6(_)))] += delta;
}

impl Fib {
    /// Connect to the kernel and adopt the routes of ours it holds.
    /// Returns the writer and how many routes it adopted.
    /// `owner` hears of next hops the kernel cannot reach; routes of
    /// `local_peer` (our own) are never installed.
    pub async fn start(
        settings: FibSettings,
        local_peer: PeerId,
        owner: mpsc::Sender<Command>,
        metrics: Arc<Metrics>,
    ) -> Result<(Fib, usize), String> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| format!("netlink: {e}"))?;
        tokio::spawn(conn);
        let kernel = Kernel {
            handle,
            table: settings.table,
            protocol: settings.protocol,
        };
        let writer = writer::Writer::open().map_err(|e| format!("netlink: {e}"))?;
        let mut fib = Fib {
            kernel,
            writer,
            settings,
            local_peer,
            entries: BTreeMap::new(),
            foreign: HashMap::new(),
            local: Local::default(),
            resolved: HashMap::new(),
            converged: false,
            owner,
            metrics,
            dirty: HashSet::new(),
            resolve_again: false,
            local_again: false,
            installed: [0, 0],
        };
        fib.local = fib.kernel.local().await?;
        let adopted = fib.resync().await?;
        fib.metrics.fib_ready.store(false, Ordering::Relaxed);
        Ok((fib, adopted))
    }

    /// Read our table: other protocols' routes, and ours (adopted when new
    /// to us, marked missing when gone). Returns how many of ours it found.
    async fn resync(&mut self) -> Result<usize, String> {
        let mut found: HashMap<IpNet, Vec<kernel::Gateway>> = HashMap::new();
        self.foreign.clear();
        for v6 in [false, true] {
            for r in self.kernel.dump(v6).await? {
                if r.table != self.settings.table {
                    continue;
                }
                if r.protocol == self.settings.protocol {
                    found.insert(r.prefix, r.gateways);
                } else if r.unicast || r.protocol != 2 {
                    self.foreign.insert(r.prefix, r.protocol);
                }
            }
        }
        let adopted = found.len();
        for (prefix, e) in &mut self.entries {
            let now_there = found.remove(prefix);
            if e.ours.is_some() && now_there.is_none() {
                e.ours = None;
                count(&mut self.installed, prefix, -1);
                self.dirty.insert(*prefix);
            }
        }
        for (prefix, gateways) in found {
            count(&mut self.installed, &prefix, 1);
            self.entries.insert(
                prefix,
                Entry {
                    want: Vec::new(),
                    ours: Some(gateways),
                    status: Status::Adopted,
                    repairs: Vec::new(),
                },
            );
        }
        Ok(adopted)
    }

    /// Run: follow the owner's feed, answer queries, watch the kernel.
    pub async fn run(
        mut self,
        mut feed: mpsc::UnboundedReceiver<Feed>,
        mut queries: mpsc::Receiver<Query>,
    ) {
        let mut watch = Watch::open(self.settings.protocol);
        let mut retry = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                f = feed.recv() => match f {
                    Some(Feed::Changes(batch)) => self.take(&batch),
                    Some(Feed::Converged) => {
                        self.converged = true;
                        let adopted: Vec<IpNet> = self.entries.iter()
                            .filter(|(_, e)| e.want.is_empty())
                            .map(|(p, _)| *p)
                            .collect();
                        self.dirty.extend(adopted);
                    }
                    None => return,
                },
                Some(q) = queries.recv() => match q {
                    Query::List(reply) => { let _ = reply.send(self.list()); }
                },
                event = watch.next() => match event {
                    Some(e) => self.kernel_event(e),
                    None => {
                        warn!("kernel route notifications lost; reading the table again");
                        watch = Watch::open(self.settings.protocol);
                        if let Err(e) = self.resync().await {
                            warn!("{e}");
                        }
                        self.resolve_again = true;
                    }
                },
                _ = retry.tick() => self.retry(),
            }
            self.apply().await;
        }
    }

    /// Take the core's changes: what each prefix's best paths want now.
    fn take(&mut self, batch: &[BestChange]) {
        for c in batch {
            let mut want: Vec<IpAddr> = match &c.best {
                Some(best) if best.peer != self.local_peer => {
                    let mut hops: Vec<IpAddr> = c
                        .multipath
                        .iter()
                        .filter(|r| r.peer != self.local_peer)
                        .map(|r| r.attrs.next_hop_addr())
                        .collect();
                    if hops.is_empty() {
                        hops.push(best.attrs.next_hop_addr());
                    }
                    hops
                }
                // Nothing to install for our own routes, or none at all.
                _ => Vec::new(),
            };
            want.sort();
            want.dedup();
            let e = self.entries.entry(c.prefix).or_insert_with(|| Entry {
                want: Vec::new(),
                ours: None,
                status: Status::Pending,
                repairs: Vec::new(),
            });
            e.want = want;
            self.dirty.insert(c.prefix);
        }
    }

    /// Failed and fought-over routes are tried again now and then.
    fn retry(&mut self) {
        let again: Vec<IpNet> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.status, Status::Failed(_) | Status::Unreachable))
            .map(|(p, _)| *p)
            .collect();
        if !again.is_empty() {
            self.resolve_again = true;
        }
        self.dirty.extend(again);
    }

    fn kernel_event(&mut self, event: KernelEvent) {
        match event {
            KernelEvent::Route { route, added } => {
                if route.table == self.settings.table && route.protocol == self.settings.protocol {
                    if !added {
                        if let Some(e) = self.entries.get_mut(&route.prefix) {
                            let had = e.ours.take().is_some();
                            if had {
                                count(&mut self.installed, &route.prefix, -1);
                            }
                            if had && !e.want.is_empty() {
                                // Someone removed a route of ours: put it back,
                                // unless this has become a fight.
                                let now = Instant::now();
                                e.repairs.retain(|t| now.duration_since(*t) < FIGHT_WINDOW);
                                e.repairs.push(now);
                                if e.repairs.len() <= FIGHT_REPAIRS {
                                    self.dirty.insert(route.prefix);
                                } else {
                                    e.status = Status::Failed(
                                        "removed again and again by someone else; retrying later"
                                            .into(),
                                    );
                                }
                            }
                        }
                    }
                    return;
                }
                if route.table == self.settings.table {
                    if added {
                        self.foreign.insert(route.prefix, route.protocol);
                    } else {
                        self.foreign.remove(&route.prefix);
                    }
                    if self.entries.contains_key(&route.prefix) {
                        self.dirty.insert(route.prefix);
                    }
                }
                // Any other route may change how next hops resolve.
                self.resolve_again = true;
            }
            // A link came back, say: what failed may work now.
            KernelEvent::Addresses => {
                self.local_again = true;
                self.retry();
            }
        }
    }
}
