//! BMP collectors (RFC 7854): one task per `[[bmp]]` entry between the
//! owner and a TCP connection, around the `bmp` crate's exporter.
//!
//! The owner offers each task what happens — sessions up and down, the
//! UPDATEs peers send (before and after import checks), the changes of
//! best path — without waiting: a task's channel is bounded, and a full
//! one marks the task to start over. A task connects (again after a
//! failure, backing off up to a minute), sends the Initiation, dumps the
//! sessions up and the tables it monitors (a page of prefixes at a time,
//! asked of the owner, written before the next is asked: a table of any
//! size costs it one page), each closed with an End-of-RIB, and then
//! follows the events. A collector that reads slower than routes change
//! loses its session (a Termination, out of resources) and gets a new one
//! with a fresh dump: the speaker never waits for it.

mod session;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bgp::rib::{BestChange, PathAttrs};
use bgp::wire::{Context, Family, Open, Update};
use bmp::{DownReason, Monitoring};
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

use crate::daemon::owner::Command;
use crate::metrics::Metrics;
use crate::settings::Bmp;

/// Events a collector's task may hold before it starts over.
const EVENTS: usize = 65_536;

/// The owner's handle on one collector's task.
pub struct Link {
    tx: mpsc::Sender<Event>,
    /// The channel was full: the task starts a new session.
    overflowed: Arc<AtomicBool>,
    pub monitoring: Monitoring,
}

impl Link {
    /// Hand an event over without waiting. Past the channel's bound the
    /// events stop until the task has started over from a fresh dump.
    pub fn offer(&self, event: Event) {
        if self.overflowed.load(Ordering::Acquire) {
            return;
        }
        if self.tx.try_send(event).is_err() {
            self.overflowed.store(true, Ordering::Release);
        }
    }
}

/// A peer as a per-peer header names it, and when the event happened.
#[derive(Debug, Clone)]
pub struct Peer {
    pub address: IpAddr,
    pub asn: u32,
    pub bgp_id: Ipv4Addr,
    pub at: SystemTime,
}

impl Peer {
    fn header(&self, post_policy: bool) -> bmp::PeerHeader {
        bmp::PeerHeader::global(self.address, self.asn, self.bgp_id, post_policy)
            .at(timestamp(self.at))
    }
}

/// A session that came up, with what Peer Up carries.
#[derive(Debug, Clone)]
pub struct PeerUp {
    pub peer: Peer,
    pub local: SocketAddr,
    pub remote_port: u16,
    pub sent_open: Open,
    pub received_open: Open,
    /// How the peer's UPDATEs are encoded.
    pub ctx: Context,
}

/// What the owner offers a task.
#[derive(Debug)]
pub enum Event {
    PeerUp(Box<PeerUp>),
    PeerDown {
        peer: Peer,
        reason: DownReason,
    },
    /// An UPDATE a peer sent: as it came (`pre`) and without what import
    /// checks turned away (`post`), for the tables the collector has.
    Update {
        peer: Peer,
        ctx: Context,
        pre: Option<Update>,
        post: Option<Update>,
    },
    /// Changes of best path.
    LocRib(Arc<Vec<BestChange>>),
}

/// What a task asks the owner.
#[derive(Debug)]
pub enum Request {
    /// The sessions up, and the speaker's own AS and identifier.
    Sessions(oneshot::Sender<Snapshot>),
    /// Every prefix of the RIB, sorted.
    Prefixes(oneshot::Sender<Vec<IpNet>>),
    /// Every accepted path to these prefixes.
    Routes(Vec<IpNet>, oneshot::Sender<Vec<(IpNet, Vec<Route>)>>),
    /// Counters of each session up, for Statistics Reports.
    Stats(oneshot::Sender<Vec<(Peer, PeerStats)>>),
    /// The routes import turned away, of every session up: (peer,
    /// prefix, path id), sorted.
    Rejected(oneshot::Sender<Vec<RejectedKey>>),
    /// Those routes' attributes, as their peers sent them.
    RejectedRoutes(
        Vec<RejectedKey>,
        oneshot::Sender<Vec<(RejectedKey, Arc<PathAttrs>)>>,
    ),
}

/// A route import turned away: its peer, prefix and path id.
pub type RejectedKey = (IpAddr, IpNet, u32);

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub families: Vec<Family>,
    pub sessions: Vec<PeerUp>,
}

/// A path to a prefix, from the peer at `from` (the speaker's own
/// routes have `None`).
#[derive(Debug, Clone)]
pub struct Route {
    pub from: Option<IpAddr>,
    pub path_id: u32,
    pub attrs: Arc<PathAttrs>,
    pub best: bool,
}

/// A session's counters as Statistics Reports carry them.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerStats {
    /// Prefixes import checks turned away, now.
    pub rejected: u64,
    /// Routes in the Adj-RIB-In, per family (IPv4, IPv6 unicast): the
    /// accepted ones and those turned away.
    pub adj_rib_in: [u64; 2],
    /// The session's best paths, per family.
    pub loc_rib: [u64; 2],
    /// Counts since the peer was configured: withdrawals that found
    /// nothing; UPDATEs and prefixes RFC 7606 treated as withdrawn;
    /// UPDATEs turned away for an AS_PATH, ORIGINATOR_ID or CLUSTER_LIST
    /// loop.
    pub duplicate_withdraws: u64,
    pub treat_as_withdraw_updates: u64,
    pub treat_as_withdraw_prefixes: u64,
    pub as_path_loops: u64,
    pub originator_loops: u64,
    pub cluster_loops: u64,
}

/// Start a task for each collector.
pub fn start(
    collectors: &[Bmp],
    sys_name: String,
    owner: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
) -> Vec<Link> {
    collectors
        .iter()
        .map(|c| {
            let (tx, rx) = mpsc::channel(EVENTS);
            let overflowed = Arc::new(AtomicBool::new(false));
            let task = session::Task {
                at: SocketAddr::new(c.address, c.port),
                config: bmp::Config {
                    sys_name: sys_name.clone(),
                    sys_descr: format!("podbgp {}", env!("CARGO_PKG_VERSION")),
                    queue_limit: c.queue_limit_mb as usize * 1024 * 1024,
                    monitoring: c.monitoring(),
                },
                statistics: c.statistics_interval,
                events: rx,
                overflowed: Arc::clone(&overflowed),
                owner: owner.clone(),
                metrics: Arc::clone(&metrics),
            };
            tokio::spawn(task.run());
            Link {
                tx,
                overflowed,
                monitoring: c.monitoring(),
            }
        })
        .collect()
}

/// Seconds and microseconds since the Unix epoch.
fn timestamp(at: SystemTime) -> (u32, u32) {
    let d = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as u32, d.subsec_micros())
}

/// The family of a prefix.
fn family_of(p: &IpNet) -> Family {
    match p {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    }
}
