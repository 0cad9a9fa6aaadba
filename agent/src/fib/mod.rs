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
mod sets;
mod watch;
mod writer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp::rib::{BestChange, PeerId};
use ipnet::IpNet;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
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
    /// The kernel refused the write: its errno (or -1).
    Failed(i32),
    /// Removed again and again by someone else.
    Fought,
    /// Found at start, not (yet) wanted.
    Adopted,
}

#[derive(Debug, Clone)]
struct Entry {
    /// BGP next hops, a set of `Fib::hops`; 0 (empty) when BGP has no route.
    want: u32,
    /// Our route in the kernel as we wrote or found it, a set of
    /// `Fib::gateways`; 0 when there is none.
    ours: u32,
    status: Status,
    /// Repairs of routes removed by someone else, to tell a fight: how
    /// many since when (seconds of the writer's clock).
    repairs: u8,
    repairs_since: u32,
}

impl Entry {
    fn new(status: Status) -> Entry {
        Entry {
            want: 0,
            ours: 0,
            status,
            repairs: 0,
            repairs_since: 0,
        }
    }

    fn installed(&self) -> bool {
        self.ours != 0
    }
}

enum Op {
    /// Put this gateway set in the kernel.
    Install(u32),
    Remove,
}

/// What the FIB writer runs with.
#[derive(Debug, Clone)]
pub struct FibSettings {
    pub table: u32,
    pub protocol: u8,
    pub accept: Vec<IpNet>,
}

/// Next-hop lookups in flight at once.
const IN_FLIGHT: usize = 512;
/// Prefixes looked at per pass: between passes the feed is taken in, so
/// changes wait as compact entries rather than as queued batches.
const PASS: usize = 16_384;
/// Repairs of one route within this long count as a fight, and wait.
const FIGHT_WINDOW: u32 = 60;
const FIGHT_REPAIRS: u8 = 5;

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
    /// Read the node's addresses again, and our table: a link going down
    /// takes its routes with it without a notification for each.
    local_again: bool,
    /// Routes of ours in the kernel, IPv4 and IPv6, kept as they change.
    installed: [i64; 2],
    hops: sets::Sets<IpAddr>,
    gateways: sets::Sets<Gateway>,
    /// The writer's clock starts here.
    epoch: Instant,
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
            hops: sets::Sets::new(),
            gateways: sets::Sets::new(),
            epoch: Instant::now(),
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
            if e.installed() && now_there.is_none() {
                e.ours = 0;
                count(&mut self.installed, prefix, -1);
                self.dirty.insert(*prefix);
            }
        }
        for (prefix, gateways) in found {
            count(&mut self.installed, &prefix, 1);
            let mut e = Entry::new(Status::Adopted);
            e.ours = self.gateways.id(gateways);
            self.entries.insert(prefix, e);
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
                biased;
                f = feed.recv() => match f {
                    Some(Feed::Changes(batch)) => self.take(&batch),
                    Some(Feed::Converged) => {
                        self.converged = true;
                        let adopted: Vec<IpNet> = self.entries.iter()
                            .filter(|(_, e)| e.want == 0)
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
                // More to write: go on, after taking what the feed brought.
                () = std::future::ready(()), if !self.dirty.is_empty() => {}
            }
            self.apply().await;
        }
    }

    /// Take the core's changes: what each prefix's best paths want now.
    fn take(&mut self, batch: &[BestChange]) {
        for c in batch {
            let want: Vec<IpAddr> = match &c.best {
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
            let want = self.hops.id(want);
            let e = self
                .entries
                .entry(c.prefix)
                .or_insert_with(|| Entry::new(Status::Pending));
            e.want = want;
            self.dirty.insert(c.prefix);
        }
    }

    /// Failed and fought-over routes are tried again now and then.
    fn retry(&mut self) {
        let again: Vec<IpNet> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e.status,
                    Status::Failed(_) | Status::Unreachable | Status::Fought
                )
            })
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
                        let now = self.epoch.elapsed().as_secs() as u32;
                        if let Some(e) = self.entries.get_mut(&route.prefix) {
                            let had = std::mem::take(&mut e.ours) != 0;
                            if had {
                                count(&mut self.installed, &route.prefix, -1);
                            }
                            if had && e.want != 0 {
                                // Someone removed a route of ours: put it back,
                                // unless this has become a fight.
                                if now.saturating_sub(e.repairs_since) > FIGHT_WINDOW {
                                    e.repairs = 0;
                                    e.repairs_since = now;
                                }
                                e.repairs = e.repairs.saturating_add(1);
                                if e.repairs <= FIGHT_REPAIRS {
                                    self.dirty.insert(route.prefix);
                                } else {
                                    e.status = Status::Fought;
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
