//! The FIB writer: best paths into the kernel over rtnetlink, on a thread
//! of its own so a slow kernel never holds up BGP.
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
mod nexthop;
mod objects;
mod queue;
mod sets;
mod watch;
mod writer;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp::rib::{BestChange, PeerId};
use bgp::table::PrefixMap;
use ipnet::IpNet;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::daemon::owner::Command;
use crate::metrics::Metrics;
use guard::{Local, Refusal};
pub use kernel::Gateway;
use kernel::Kernel;
use objects::Objects;
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
    /// The kernel refused the write: its errno (0: unknown).
    Failed(u8),
    /// Removed again and again by someone else.
    Fought,
    /// Found at start, not (yet) wanted.
    Adopted,
}

/// One prefix: 7 bytes (12 with its IPv4 key), for there may be a million.
#[derive(Debug, Clone)]
struct Entry {
    /// What BGP wants (next hops, a set of `Fib::hops`; 0 when BGP has
    /// no route) and our route in the kernel as we wrote or found it
    /// (gateways, a set of `Fib::gateways`; 0 when there is none): a pair
    /// of `Fib::pairs`, its id in bytes for the entry to pack tight.
    pair: [u8; 4],
    status: Status,
    /// Waiting in `Fib::dirty`.
    queued: bool,
}

impl Entry {
    fn new(status: Status) -> Entry {
        Entry {
            pair: [0; 4],
            status,
            queued: false,
        }
    }

    fn pair(&self, pairs: &sets::Pairs) -> (u32, u32) {
        pairs.get(u32::from_ne_bytes(self.pair))
    }

    fn want(&self, pairs: &sets::Pairs) -> u32 {
        self.pair(pairs).0
    }

    fn ours(&self, pairs: &sets::Pairs) -> u32 {
        self.pair(pairs).1
    }

    fn installed(&self, pairs: &sets::Pairs) -> bool {
        self.ours(pairs) != 0
    }

    fn set_want(&mut self, pairs: &mut sets::Pairs, want: u32) {
        let (_, ours) = self.pair(pairs);
        self.pair = pairs.id((want, ours)).to_ne_bytes();
    }

    /// Set what of ours the kernel has (a set of gateways, or a nexthop
    /// object: `objects` counts the routes naming each); returns what it had.
    fn set_ours(&mut self, pairs: &mut sets::Pairs, objects: &mut Objects, ours: u32) -> u32 {
        let (want, had) = self.pair(pairs);
        self.pair = pairs.id((want, ours)).to_ne_bytes();
        objects.moved(had, ours);
        had
    }
}

enum Op {
    /// Put this in the kernel: a set of gateways, or (`objects::SLOT`) a
    /// route naming a nexthop object.
    Install(u32),
    Remove,
}

/// What the FIB writer runs with.
#[derive(Debug, Clone)]
pub struct FibSettings {
    pub table: u32,
    pub protocol: u8,
    pub accept: Vec<IpNet>,
    /// Routes name nexthop objects where the kernel has them.
    pub nexthop_objects: bool,
    /// Where prefixes kept out of the kernel are told.
    pub events: crate::events::Events,
}

/// Next-hop lookups in flight at once.
const IN_FLIGHT: usize = 512;
/// Prefixes looked at per pass (the feed is taken in between passes, and
/// between the sends of one).
const PASS: usize = 2_048;
/// Repairs of one route within this long count as a fight, and wait.
const FIGHT_WINDOW: u32 = 60;
const FIGHT_REPAIRS: u8 = 5;

pub struct Fib {
    /// What BGP wants, per prefix, and what of it is done.
    state: State,
    kernel: Kernel,
    writer: writer::Writer,
    settings: FibSettings,
    /// Routes of other protocols in our table, by prefix.
    foreign: HashMap<IpNet, u8>,
    local: Local,
    /// How each BGP next hop resolves; `None`: it does not.
    resolved: sets::FastMap<IpAddr, Option<(Gateway, u32)>>,
    /// The gateways each next-hop set resolves to (by its id; `None`: not
    /// worked out since resolutions last changed).
    resolves_to: Vec<Option<u32>>,
    owner: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
    /// Repairs of routes removed by someone else, to tell a fight: how
    /// many since when (seconds of the writer's clock).
    repairs: HashMap<IpNet, (u8, u32)>,
    /// Re-resolve every next hop not on a connected subnet.
    resolve_again: bool,
    /// Read the node's addresses again, and our table: a link going down
    /// takes its routes with it without a notification for each.
    local_again: bool,
    /// Read the node's addresses again (they grew: nothing was lost).
    addresses_again: bool,
    /// Routes of ours in the kernel, IPv4 and IPv6, kept as they change.
    installed: [i64; 2],
    gateways: sets::Sets<Gateway>,
    objects: Objects,
    /// The kernel answers for nexthop objects (ours are read at each
    /// resync even when routes no longer name new ones).
    objects_known: bool,
    /// Objects found at start were looked at after convergence.
    objects_collected: bool,
    /// The writer's clock starts here.
    epoch: Instant,
}

/// The per-prefix state, apart from the kernel side so that the feed can
/// be taken in while writes are in flight.
struct State {
    local_peer: PeerId,
    entries: PrefixMap<Entry>,
    converged: bool,
    /// Prefixes to look at.
    dirty: queue::Queue,
    hops: sets::Sets<IpAddr>,
    pairs: sets::Pairs,
}

impl State {
    fn remove(&mut self, prefix: &IpNet) {
        if let Some(e) = self.entries.remove(prefix) {
            self.dirty.forget(&e);
        }
    }

    /// Take in whatever the feed has brought, without waiting.
    fn intake(&mut self, feed: &mut mpsc::UnboundedReceiver<Feed>) {
        while let Ok(f) = feed.try_recv() {
            self.fed(f);
        }
    }

    fn fed(&mut self, f: Feed) {
        match f {
            Feed::Changes(batch) => self.take(&batch),
            Feed::Converged => {
                self.converged = true;
                for (_, e) in self.entries.iter_mut() {
                    if e.want(&self.pairs) == 0 {
                        self.dirty.mark(e);
                    }
                }
            }
        }
    }

    /// Take the core's changes: what each prefix's best paths want now.
    fn take(&mut self, batch: &[BestChange]) {
        for c in batch {
            let want: u32 = match &c.best {
                Some(best) if best.peer != self.local_peer => {
                    let mut others = c.multipath.iter().filter(|r| r.peer != self.local_peer);
                    match (others.next(), others.next()) {
                        (None, _) => self.hops.id_of_one(best.attrs.next_hop_addr()),
                        (Some(one), None) => self.hops.id_of_one(one.attrs.next_hop_addr()),
                        (Some(a), Some(b)) => {
                            let mut hops = vec![a.attrs.next_hop_addr(), b.attrs.next_hop_addr()];
                            hops.extend(others.map(|r| r.attrs.next_hop_addr()));
                            self.hops.id(hops)
                        }
                    }
                }
                // Nothing to install for our own routes, or none at all.
                _ => 0,
            };
            let e = self
                .entries
                .get_or_insert_with(c.prefix, || Entry::new(Status::Pending));
            e.set_want(&mut self.pairs, want);
            self.dirty.mark(e);
        }
    }
}

/// Count a route of ours in (`+1`) or out (`-1`) of the kernel.
fn count(installed: &mut [i64; 2], prefix: &IpNet, delta: i64) {
    installed[usize::from(matches!(prefix, IpNet::V6(_)))] += delta;
}

/// A FIB started on its thread, waiting for its feed.
pub struct Started {
    /// Routes of an earlier run found in the kernel and adopted.
    pub adopted: usize,
    go: oneshot::Sender<(mpsc::UnboundedReceiver<Feed>, mpsc::Receiver<Query>)>,
}

impl Started {
    /// Follow the owner's `feed` and answer `queries` from now on.
    pub fn run(self, feed: mpsc::UnboundedReceiver<Feed>, queries: mpsc::Receiver<Query>) {
        let _ = self.go.send((feed, queries));
    }
}

/// Start the FIB on a thread of its own, with a runtime of its own; returns
/// once the kernel is read and our routes of an earlier run adopted.
///
/// A netlink write runs in the kernel on the writing thread and waits there
/// for the RTNL lock, one lock for every namespace of the machine. A busy
/// kernel (pods being created, another agent writing a table) can keep a
/// writer waiting for seconds; on the daemon's worker threads that wait
/// would stall every task scheduled behind it, the BGP sessions' keepalives
/// among them, until peers' hold timers expire.
pub async fn spawn(
    settings: FibSettings,
    local_peer: PeerId,
    owner: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
) -> Result<Started, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start its runtime: {e}"))?;
    let (ready_tx, ready_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("fib".into())
        .spawn(move || {
            runtime.block_on(async move {
                match Fib::start(settings, local_peer, owner, metrics).await {
                    Ok((fib, adopted)) => {
                        if ready_tx.send(Ok(adopted)).is_err() {
                            return;
                        }
                        if let Ok((feed, queries)) = go_rx.await {
                            fib.run(feed, queries).await;
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| format!("cannot start its thread: {e}"))?;
    let adopted = ready_rx
        .await
        .map_err(|_| "its thread ended".to_string())??;
    Ok(Started { adopted, go: go_tx })
}

impl Fib {
    /// Connect to the kernel and adopt the routes of ours it holds.
    /// Returns the writer and how many routes it adopted.
    /// `owner` hears of next hops the kernel cannot reach; routes of
    /// `local_peer` (our own) are never installed.
    async fn start(
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
            state: State {
                local_peer,
                entries: PrefixMap::new(),
                converged: false,
                dirty: queue::Queue::default(),
                hops: sets::Sets::new(),
                pairs: sets::Pairs::new(),
            },
            kernel,
            writer,
            settings,
            foreign: HashMap::new(),
            local: Local::default(),
            resolved: sets::FastMap::default(),
            resolves_to: Vec::new(),
            owner,
            metrics,
            repairs: HashMap::new(),
            resolve_again: false,
            local_again: false,
            addresses_again: false,
            installed: [0, 0],
            gateways: sets::Sets::new(),
            objects: Objects::new(false),
            objects_known: false,
            objects_collected: false,
            epoch: Instant::now(),
        };
        fib.local = fib.kernel.local().await?;
        match nexthop::dump().await {
            Ok(_) => {
                fib.objects_known = true;
                fib.objects.enabled = fib.settings.nexthop_objects;
                if fib.objects.enabled {
                    info!("routes name nexthop objects");
                } else {
                    info!("nexthop objects are off (fib.nexthop_objects): routes carry their gateways");
                }
            }
            Err(e) => info!("the kernel has no nexthop objects ({e}): routes carry their gateways"),
        }
        let adopted = fib.resync().await?;
        fib.metrics.fib_ready.store(false, Ordering::Relaxed);
        Ok((fib, adopted))
    }

    /// Read our table: other protocols' routes, and ours (adopted when new
    /// to us, marked missing when gone). Returns how many of ours it found.
    async fn resync(&mut self) -> Result<usize, String> {
        // Objects first: a route is ours through its object when it names one.
        if self.objects_known {
            match nexthop::dump().await {
                Ok(found) => self
                    .objects
                    .adopt(&found, self.settings.protocol, &mut self.gateways),
                Err(e) => return Err(format!("nexthop dump: {e}")),
            }
        }
        let mut found: HashMap<IpNet, u32> = HashMap::new();
        self.foreign.clear();
        for v6 in [false, true] {
            for r in self.kernel.dump(v6).await? {
                if r.table != self.settings.table {
                    continue;
                }
                if r.protocol == self.settings.protocol {
                    let ours = match r.nexthop.and_then(|id| self.objects.slot_by_id(id)) {
                        Some(slot) => objects::SLOT | slot,
                        None => self.gateways.id(r.gateways),
                    };
                    found.insert(r.prefix, ours);
                } else if r.unicast || r.protocol != 2 {
                    self.foreign.insert(r.prefix, r.protocol);
                }
            }
        }
        let adopted = found.len();
        for (prefix, e) in self.state.entries.iter_mut() {
            let now_there = found.remove(&prefix);
            if e.installed(&self.state.pairs) && now_there.is_none() {
                e.set_ours(&mut self.state.pairs, &mut self.objects, 0);
                count(&mut self.installed, &prefix, -1);
                self.state.dirty.mark(e);
            }
        }
        for (prefix, ours) in found {
            count(&mut self.installed, &prefix, 1);
            let mut e = Entry::new(Status::Adopted);
            e.set_ours(&mut self.state.pairs, &mut self.objects, ours);
            self.state.entries.insert(prefix, e);
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
                    Some(f) => {
                        // Take in all that waits: changes are kept as
                        // entries, far smaller than queued batches.
                        self.state.fed(f);
                        self.state.intake(&mut feed);
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
                () = std::future::ready(()),
                    if !self.state.dirty.is_empty() || self.objects.busy() => {}
            }
            self.apply(&mut feed).await;
        }
    }

    /// Failed and fought-over routes are tried again now and then.
    fn retry(&mut self) {
        self.objects.retry();
        for (_, e) in self.state.entries.iter_mut() {
            if matches!(
                e.status,
                Status::Failed(_) | Status::Unreachable | Status::Fought
            ) {
                self.state.dirty.mark(e);
                self.resolve_again = true;
            }
        }
        let now = self.now();
        self.repairs
            .retain(|_, (_, since)| now.saturating_sub(*since) <= FIGHT_WINDOW);
    }

    /// Seconds on the writer's clock.
    fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    fn kernel_event(&mut self, event: KernelEvent) {
        match event {
            KernelEvent::Route { route, added } => {
                if route.table == self.settings.table && route.protocol == self.settings.protocol {
                    if !added {
                        let now = self.now();
                        if let Some(e) = self.state.entries.get_mut(&route.prefix) {
                            // The deletion of a route naming another object
                            // than ours does now: our own, of a route since
                            // written anew (its notification comes late).
                            let naming = objects::slot_of(e.ours(&self.state.pairs))
                                .and_then(|n| self.objects.get(n))
                                .map(|s| s.id);
                            if naming.is_some() && naming != route.nexthop {
                                return;
                            }
                            let had = e.set_ours(&mut self.state.pairs, &mut self.objects, 0) != 0;
                            if had {
                                count(&mut self.installed, &route.prefix, -1);
                            }
                            if had && e.want(&self.state.pairs) != 0 {
                                // Someone removed a route of ours: put it back,
                                // unless this has become a fight.
                                let (repairs, since) =
                                    self.repairs.entry(route.prefix).or_insert((0, now));
                                if now.saturating_sub(*since) > FIGHT_WINDOW {
                                    *repairs = 0;
                                    *since = now;
                                }
                                *repairs = repairs.saturating_add(1);
                                if *repairs <= FIGHT_REPAIRS {
                                    self.state.dirty.mark(e);
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
                    if let Some(e) = self.state.entries.get_mut(&route.prefix) {
                        self.state.dirty.mark(e);
                    }
                }
                // Any other route may change how next hops resolve.
                self.resolve_again = true;
            }
            // Deleted by hand, or with its device: its routes went with it,
            // an IPv4 route without a word. Read the kernel again.
            KernelEvent::NexthopGone(id) => {
                if id == 0 || self.objects.is_ours(id) {
                    self.local_again = true;
                }
            }
            // Routes went with an address or a link: read the table again.
            KernelEvent::Addresses { lost: true } => {
                self.local_again = true;
                self.retry();
            }
            // A link came up, an address came: the node's addresses are
            // read again, and what failed may work now.
            KernelEvent::Addresses { lost: false } => {
                self.addresses_again = true;
                self.retry();
            }
        }
    }
}
