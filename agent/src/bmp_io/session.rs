//! One collector's task: connect, dump, follow; start over when the
//! connection goes or the collector falls behind.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bgp::rib::{BestChange, PathAttrs};
use bgp::wire::{pack, Context, Family, Nlri, Update};
use bmp::message::{stat, termination};
use bmp::{Exporter, PeerHeader, Stat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{family_of, timestamp, Event, Peer, Request, Route, Snapshot};
use crate::daemon::owner::Command;
use crate::metrics::Metrics;

/// Prefixes of the initial dump asked of the owner at a time.
const PAGE: usize = 1000;
/// The longest wait between two connection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A collector that takes no byte for this long is given up.
const WRITE_STALL: Duration = Duration::from_secs(30);

pub(super) struct Task {
    pub at: SocketAddr,
    pub config: bmp::Config,
    /// Seconds between Statistics Reports; 0: none.
    pub statistics: u32,
    pub events: mpsc::Receiver<Event>,
    pub overflowed: Arc<AtomicBool>,
    pub owner: mpsc::Sender<Command>,
    pub metrics: Arc<Metrics>,
}

/// How a session ended.
enum End {
    /// The daemon is stopping.
    Stopped,
    Lost(String),
}

/// The session's view of the speaker: sessions up, and its own identity.
struct View {
    up: HashMap<IpAddr, (Peer, Context)>,
    loc_rib: PeerHeader,
    families: Vec<Family>,
}

impl Task {
    pub async fn run(mut self) {
        let name = self.at.to_string();
        let mut exporter = Exporter::new(self.config.clone());
        let mut backoff = Duration::from_secs(1);
        let mut said = false;
        loop {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.at)).await {
                Ok(Ok(stream)) => {
                    backoff = Duration::from_secs(1);
                    said = false;
                    info!(collector = %name, "BMP session up");
                    self.metrics.bmp_up(&name, true);
                    let end = self.session(stream, &mut exporter).await;
                    self.metrics.bmp_up(&name, false);
                    let c = exporter.counters();
                    match end {
                        End::Stopped => return,
                        End::Lost(why) => warn!(
                            collector = %name,
                            messages = c.messages,
                            resyncs = c.resyncs,
                            "BMP session ended: {why}"
                        ),
                    }
                    exporter.disconnected();
                }
                Ok(Err(e)) if !said => {
                    warn!(collector = %name, "cannot reach the BMP collector: {e}; trying again");
                    said = true;
                }
                Err(_) if !said => {
                    warn!(collector = %name, "BMP collector did not answer in {CONNECT_TIMEOUT:?}; trying again");
                    said = true;
                }
                _ => debug!(collector = %name, "BMP collector still unreachable"),
            }
            // The daemon stopped while we were away.
            if self.events.is_closed() {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn session(&mut self, stream: TcpStream, exporter: &mut Exporter) -> End {
        let name = self.at.to_string();
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        // What happened before this session is in its dump.
        while self.events.try_recv().is_ok() {}
        self.overflowed.store(false, Ordering::Release);
        exporter.connected();
        let mut view = match self.dump(exporter, &mut wr).await {
            Ok(v) => v,
            Err(e) => return e,
        };
        let mut reports = (self.statistics > 0).then(|| {
            let every = Duration::from_secs(u64::from(self.statistics));
            tokio::time::interval_at(tokio::time::Instant::now() + every, every)
        });
        let mut buf = [0u8; 512];
        loop {
            let before = exporter.counters().messages;
            if let Err(e) = write_queued(exporter, &mut wr).await {
                return e;
            }
            self.metrics
                .bmp_messages(&name, exporter.counters().messages - before);
            if exporter.given_up() {
                self.metrics.bmp_resync(&name);
                return End::Lost("the collector fell behind; starting again".into());
            }
            if self.overflowed.load(Ordering::Acquire) {
                exporter.terminate(termination::OUT_OF_RESOURCES);
                self.metrics.bmp_resync(&name);
                let _ = write_queued(exporter, &mut wr).await;
                return End::Lost("the collector fell behind; starting again".into());
            }
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(e) => {
                        apply(exporter, &mut view, e);
                        // Take what else waits, then write it all.
                        for _ in 0..1024 {
                            match self.events.try_recv() {
                                Ok(e) => apply(exporter, &mut view, e),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        exporter.terminate(termination::ADMINISTRATIVELY_CLOSED);
                        let _ = write_queued(exporter, &mut wr).await;
                        return End::Stopped;
                    }
                },
                () = next_report(&mut reports) => {
                    match ask(&self.owner, super::Request::Stats).await {
                        Some(stats) => statistics(exporter, stats),
                        None => return End::Stopped,
                    }
                }
                read = rd.read(&mut buf) => match read {
                    // A collector sends nothing (RFC 7854 §3.2); what it
                    // does send is read and dropped.
                    Ok(0) => return End::Lost("the collector closed the connection".into()),
                    Ok(_) => {}
                    Err(e) => return End::Lost(format!("read: {e}")),
                },
            }
        }
    }

    /// The initial dump: every session up, the Loc-RIB instance, and the
    /// monitored tables a page of prefixes at a time, each table ended by
    /// an End-of-RIB per family.
    async fn dump(
        &mut self,
        exporter: &mut Exporter,
        wr: &mut OwnedWriteHalf,
    ) -> Result<View, End> {
        let monitoring = self.config.monitoring;
        let snapshot: Snapshot = ask(&self.owner, Request::Sessions)
            .await
            .ok_or(End::Stopped)?;
        let now = timestamp(SystemTime::now());
        let mut view = View {
            up: HashMap::new(),
            loc_rib: PeerHeader::loc_rib(snapshot.asn, snapshot.router_id).at(now),
            families: snapshot.families.clone(),
        };
        for s in &snapshot.sessions {
            session_up(exporter, &mut view, s);
        }
        if monitoring.loc_rib {
            if let Err(e) =
                exporter.loc_rib_up(snapshot.asn, snapshot.router_id, &snapshot.families, now)
            {
                warn!("BMP: the Loc-RIB's Peer Up: {e}");
            }
        }
        write_queued(exporter, wr).await?;
        let prefixes = ask(&self.owner, Request::Prefixes)
            .await
            .ok_or(End::Stopped)?;
        for page in prefixes.chunks(PAGE) {
            let owner = &self.owner;
            let routes = ask(owner, |reply| Request::Routes(page.to_vec(), reply))
                .await
                .ok_or(End::Stopped)?;
            dump_page(exporter, &view, &routes);
            write_queued(exporter, wr).await?;
            if exporter.given_up() {
                return Err(End::Lost("the dump did not fit the queue".into()));
            }
        }
        if monitoring.pre_policy {
            self.dump_rejected(exporter, &view, wr).await?;
        }
        for (peer, ctx) in view.up.values() {
            for &f in &view.families {
                if monitoring.pre_policy {
                    let _ = exporter.end_of_rib(&peer.header(false), f, ctx);
                }
                if monitoring.post_policy {
                    let _ = exporter.end_of_rib(&peer.header(true), f, ctx);
                }
            }
        }
        if monitoring.loc_rib {
            for &f in &view.families {
                let _ = exporter.end_of_rib(&view.loc_rib, f, &Context::modern());
            }
        }
        write_queued(exporter, wr).await?;
        Ok(view)
    }
}

impl Task {
    /// The routes import turned away, in the pre-policy tables of the
    /// initial dump: a page at a time, as the RIB's.
    async fn dump_rejected(
        &mut self,
        exporter: &mut Exporter,
        view: &View,
        wr: &mut OwnedWriteHalf,
    ) -> Result<(), End> {
        let keys = ask(&self.owner, Request::Rejected)
            .await
            .ok_or(End::Stopped)?;
        for page in keys.chunks(PAGE) {
            let owner = &self.owner;
            let routes = ask(owner, |reply| Request::RejectedRoutes(page.to_vec(), reply))
                .await
                .ok_or(End::Stopped)?;
            let mut per_peer: HashMap<IpAddr, Vec<Group>> = HashMap::new();
            for ((address, prefix, id), attrs) in routes {
                let Some((_, ctx)) = view.up.get(&address) else {
                    continue;
                };
                let family = family_of(&prefix);
                let mut n = Nlri::new(prefix);
                if ctx.add_path.get(family) {
                    n.path_id = Some(id);
                }
                add(per_peer.entry(address).or_default(), family, &attrs, n);
            }
            for (address, groups) in &per_peer {
                if let Some((peer, ctx)) = view.up.get(address) {
                    let updates = packed(groups, ctx);
                    let _ = exporter.route_monitoring(&peer.header(false), &updates, ctx);
                }
            }
            write_queued(exporter, wr).await?;
        }
        Ok(())
    }
}

/// When the next Statistics Report is due; never without reports.
async fn next_report(reports: &mut Option<tokio::time::Interval>) {
    match reports {
        Some(r) => {
            r.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Ask the owner and wait for the answer; `None` once it is gone.
async fn ask<T>(
    owner: &mpsc::Sender<Command>,
    make: impl FnOnce(oneshot::Sender<T>) -> Request,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    owner.send(Command::Bmp(make(tx))).await.ok()?;
    rx.await.ok()
}

/// Write everything queued, message by message, each whole. A collector
/// that takes nothing for `WRITE_STALL` is given up.
async fn write_queued(exporter: &mut Exporter, wr: &mut OwnedWriteHalf) -> Result<(), End> {
    while let Some(bytes) = exporter.poll_transmit() {
        match tokio::time::timeout(WRITE_STALL, wr.write_all(&bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(End::Lost(format!("write: {e}"))),
            Err(_) => {
                return Err(End::Lost(format!(
                    "the collector took nothing for {WRITE_STALL:?}"
                )))
            }
        }
    }
    Ok(())
}

fn session_up(exporter: &mut Exporter, view: &mut View, s: &super::PeerUp) {
    let r = exporter.peer_up(
        s.peer.header(false),
        (s.local.ip(), s.local.port()),
        s.remote_port,
        &s.sent_open,
        &s.received_open,
    );
    if let Err(e) = r {
        warn!(peer = %s.peer.address, "BMP Peer Up: {e}");
    }
    view.up.insert(s.peer.address, (s.peer.clone(), s.ctx));
}

fn apply(exporter: &mut Exporter, view: &mut View, event: Event) {
    let monitoring = exporter.config().monitoring;
    match event {
        Event::PeerUp(s) => session_up(exporter, view, &s),
        Event::PeerDown { peer, reason } => {
            // Only a session the collector saw come up goes down, named
            // as its Peer Up named it.
            if let Some((mut known, _)) = view.up.remove(&peer.address) {
                known.at = peer.at;
                exporter.peer_down(known.header(false), reason);
            }
        }
        Event::Update {
            peer,
            ctx,
            pre,
            post,
        } => {
            if !view.up.contains_key(&peer.address) {
                return;
            }
            let sent = [(pre, false), (post, true)]
                .into_iter()
                .filter_map(|(u, post)| Some((u?, post)))
                .try_for_each(|(u, post)| {
                    exporter.route_monitoring(&peer.header(post), &[u], &ctx)
                });
            if let Err(e) = sent {
                debug!(peer = %peer.address, "BMP Route Monitoring: {e}");
            }
        }
        Event::LocRib(changes) => {
            if monitoring.loc_rib {
                loc_rib_changes(exporter, view, &changes);
            }
        }
    }
}

/// Changes of best path as UPDATEs of the Loc-RIB instance: new bests
/// grouped by attribute set, the prefixes gone withdrawn.
fn loc_rib_changes(exporter: &mut Exporter, view: &View, changes: &[BestChange]) {
    let header = view.loc_rib.clone().at(timestamp(SystemTime::now()));
    let mut groups: Vec<Group> = Vec::new();
    let mut gone: [Vec<Nlri>; 2] = [Vec::new(), Vec::new()];
    for c in changes {
        let family = family_of(&c.prefix);
        match &c.best {
            Some(best) => add(&mut groups, family, &best.attrs, Nlri::new(c.prefix)),
            None => gone[usize::from(family == Family::IPV6_UNICAST)].push(Nlri::new(c.prefix)),
        }
    }
    let ctx = Context::modern();
    let mut updates = Vec::new();
    for (family, attrs, nlri) in &groups {
        match pack::announcements(attrs.attributes(), attrs.next_hop(), *family, nlri, &ctx) {
            Ok(u) => updates.extend(u),
            Err(e) => debug!("BMP Loc-RIB: {e}"),
        }
    }
    for (i, nlri) in gone.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
        let family = [Family::IPV4_UNICAST, Family::IPV6_UNICAST][i];
        if let Ok(u) = pack::withdrawals(family, nlri, &ctx) {
            updates.extend(u);
        }
    }
    if let Err(e) = exporter.route_monitoring(&header, &updates, &ctx) {
        debug!("BMP Loc-RIB: {e}");
    }
}

/// Prefixes of one family sharing one attribute set.
type Group = (Family, Arc<PathAttrs>, Vec<Nlri>);

/// Put `nlri` in the group of its attribute set (the same `Arc`).
fn add(groups: &mut Vec<Group>, family: Family, attrs: &Arc<PathAttrs>, nlri: Nlri) {
    match groups
        .iter_mut()
        .find(|(f, a, _)| *f == family && Arc::ptr_eq(a, attrs))
    {
        Some((_, _, n)) => n.push(nlri),
        None => groups.push((family, Arc::clone(attrs), vec![nlri])),
    }
}

/// One page of the initial dump: each session's accepted paths (as its
/// pre- and post-policy tables) and the best paths (the Loc-RIB).
fn dump_page(exporter: &mut Exporter, view: &View, routes: &[(ipnet::IpNet, Vec<Route>)]) {
    let monitoring = exporter.config().monitoring;
    let mut per_peer: HashMap<IpAddr, Vec<Group>> = HashMap::new();
    let mut best: Vec<Group> = Vec::new();
    for (prefix, paths) in routes {
        let family = family_of(prefix);
        for r in paths {
            if monitoring.loc_rib && r.best {
                add(&mut best, family, &r.attrs, Nlri::new(*prefix));
            }
            let Some((_, ctx)) = r.from.and_then(|a| view.up.get(&a)) else {
                continue;
            };
            if monitoring.pre_policy || monitoring.post_policy {
                let mut n = Nlri::new(*prefix);
                if ctx.add_path.get(family) {
                    n.path_id = Some(r.path_id);
                }
                let from = r.from.unwrap_or(IpAddr::from([0, 0, 0, 0]));
                add(per_peer.entry(from).or_default(), family, &r.attrs, n);
            }
        }
    }
    for (address, groups) in &per_peer {
        let Some((peer, ctx)) = view.up.get(address) else {
            continue;
        };
        let updates = packed(groups, ctx);
        for (wanted, post) in [
            (monitoring.pre_policy, false),
            (monitoring.post_policy, true),
        ] {
            if wanted {
                let _ = exporter.route_monitoring(&peer.header(post), &updates, ctx);
            }
        }
    }
    if !best.is_empty() {
        let ctx = Context::modern();
        let updates = packed(&best, &ctx);
        let _ = exporter.route_monitoring(&view.loc_rib, &updates, &ctx);
    }
}

fn packed(groups: &[Group], ctx: &Context) -> Vec<Update> {
    let mut out = Vec::new();
    for (family, attrs, nlri) in groups {
        match pack::announcements(attrs.attributes(), attrs.next_hop(), *family, nlri, ctx) {
            Ok(u) => out.extend(u),
            Err(e) => debug!("BMP dump: {e}"),
        }
    }
    out
}

/// A Statistics Report per session.
fn statistics(exporter: &mut Exporter, stats: Vec<(Peer, super::PeerStats)>) {
    for (peer, s) in stats {
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let counter = |kind: u16, value: u64| Stat::Counter {
            kind,
            value: clamp(value),
        };
        exporter.statistics(
            peer.header(false),
            vec![
                counter(stat::REJECTED_PREFIXES, s.rejected),
                counter(stat::DUPLICATE_WITHDRAWS, s.duplicate_withdraws),
                counter(stat::CLUSTER_LIST_LOOPS, s.cluster_loops),
                counter(stat::AS_PATH_LOOPS, s.as_path_loops),
                counter(stat::ORIGINATOR_ID_LOOPS, s.originator_loops),
                counter(stat::TREAT_AS_WITHDRAW_UPDATES, s.treat_as_withdraw_updates),
                counter(
                    stat::TREAT_AS_WITHDRAW_PREFIXES,
                    s.treat_as_withdraw_prefixes,
                ),
                Stat::Gauge {
                    kind: stat::LOC_RIB_ROUTES,
                    value: s.loc_rib[0] + s.loc_rib[1],
                },
                Stat::FamilyGauge {
                    kind: stat::LOC_RIB_ROUTES_PER_FAMILY,
                    afi: 1,
                    safi: 1,
                    value: s.loc_rib[0],
                },
                Stat::FamilyGauge {
                    kind: stat::LOC_RIB_ROUTES_PER_FAMILY,
                    afi: 2,
                    safi: 1,
                    value: s.loc_rib[1],
                },
                Stat::Gauge {
                    kind: stat::ADJ_RIB_IN_ROUTES,
                    value: s.adj_rib_in[0] + s.adj_rib_in[1],
                },
                Stat::FamilyGauge {
                    kind: stat::ADJ_RIB_IN_ROUTES_PER_FAMILY,
                    afi: 1,
                    safi: 1,
                    value: s.adj_rib_in[0],
                },
                Stat::FamilyGauge {
                    kind: stat::ADJ_RIB_IN_ROUTES_PER_FAMILY,
                    afi: 2,
                    safi: 1,
                    value: s.adj_rib_in[1],
                },
            ],
        );
    }
}
