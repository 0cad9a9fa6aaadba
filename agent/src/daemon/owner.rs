//! The owner: the one task that holds the speaker (RIB, peer table) and
//! carries out what it asks. Connection tasks, the listeners and the API
//! all talk to it through one channel of [`Command`]s, so state has one
//! owner and no locks. Best-path changes go out to whoever subscribed (the
//! FIB and SNAT writers), in batches, never waiting on them.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bgp::rib::PeerId;
use bgp::session::State;
use bgp::speaker::{Action, ConnId, Input, Speaker};
use bgp::wire::{DecodeError, Message, PathAttribute};
use ipnet::IpNet;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

mod bmp;
mod mrt;
mod turn;

use super::conn::{self, ConnHandle};
use super::{connect, PeerSettings};
use crate::api::ApiCall;
use crate::events::Reason;
use crate::fib::Feed;
use crate::ifaces;
use crate::metrics::Metrics;

/// What the owner is told.
pub enum Command {
    /// A connection arrived on a listener.
    Incoming {
        stream: TcpStream,
        remote: SocketAddr,
    },
    /// An outgoing attempt ended.
    Connected {
        peer: PeerId,
        attempt: u64,
        result: std::io::Result<TcpStream>,
    },
    /// Something happened on a connection.
    Conn {
        peer: PeerId,
        conn: ConnId,
        event: ConnEvent,
    },
    Api(ApiCall),
    /// The FIB writer learned whether, and at what cost, a next hop is reachable.
    NextHop {
        addr: std::net::IpAddr,
        reach: bgp::rib::Reachability,
    },
    /// What Kubernetes asks: this node's pod prefixes to advertise and the
    /// mesh peers (each time the whole of it).
    Kubernetes {
        advertise: Vec<ipnet::IpNet>,
        peers: Vec<PeerSettings>,
    },
    /// Every service route Kubernetes asks this node to originate.
    Services(BTreeMap<IpNet, Origination>),
    /// A BFD session changed in a way BGP cares about.
    Bfd(crate::bfd_io::Report),
    /// A BMP collector's task asks for the tables.
    Bmp(crate::bmp_io::Request),
    /// Close every session, let them flush, and stop.
    Shutdown(Stop),
}

/// A prefix Kubernetes asks this node to originate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origination {
    pub attributes: Vec<PathAttribute>,
    /// Why, in words (`global rib` shows them).
    pub why: Vec<String>,
    /// The kinds of service route it is, for the metrics.
    pub kinds: Vec<crate::k8s::services::Kind>,
}

/// What asked for an origination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OriginGroup {
    Pods = 0,
    Services = 1,
}

/// How the speaker stops; `done` hears when the sessions are closed.
pub enum Stop {
    /// To come back (SIGTERM, a DaemonSet rollout): peers that help with
    /// graceful restart keep our routes until we are back.
    Restart { done: oneshot::Sender<()> },
    /// A part of the daemon could not start: stop as for a restart (the
    /// supervisor will try again) and exit with this error.
    Failed { error: String },
}

/// How [`Owner::run`] ended.
pub enum Ended {
    Restart,
    Failed(String),
}

pub enum ConnEvent {
    /// Messages framed from one read, in order, and their share of what
    /// the readers may hold, given back once they are taken.
    Messages(Vec<Message>, tokio::sync::OwnedSemaphorePermit),
    DecodeError(DecodeError),
    Closed(Option<std::io::Error>),
}

/// What the owner keeps of each peer beyond the speaker's view.
struct Runtime {
    settings: PeerSettings,
    /// The current outgoing attempt; results of older ones are dropped.
    attempt: u64,
}

pub struct Owner {
    pub speaker: Speaker,
    pub(super) tx: mpsc::Sender<Command>,
    rx: mpsc::Receiver<Command>,
    peers: HashMap<PeerId, Runtime>,
    conns: HashMap<ConnId, (PeerId, ConnHandle)>,
    next_conn: ConnId,
    subscribers: Vec<mpsc::UnboundedSender<Feed>>,
    /// What the connections' readers may hold read and not yet taken.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Subscribers were told route selection has run.
    converged: bool,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) info: super::Info,
    /// Whether the IPv4 and IPv6 listeners check TTLs for GTSM.
    pub(super) gtsm_listener: [bool; 2],
    /// Prefixes originated for Kubernetes, by what asked for them.
    origins: [BTreeMap<IpNet, Origination>; 2],
    /// Prefixes of `global.advertise`: Kubernetes neither withdraws them
    /// nor changes their attributes.
    pub(super) static_origins: std::collections::HashSet<IpNet>,
    /// Peers Kubernetes asked for, by address.
    mesh: HashMap<std::net::IpAddr, PeerId>,
    /// Shutting down: connections closed are kept, so their last
    /// NOTIFICATION is flushed before the process ends.
    stopping: Option<Vec<ConnHandle>>,
    /// Left for good: every session stays down, new peers included.
    retired: bool,
    /// When the metrics may next follow the speaker, and whether a turn
    /// since the last time waits for it.
    metrics_next: Instant,
    metrics_due: Option<Instant>,
    /// When the speaker's buffers go, if nothing comes before.
    release_at: Option<Instant>,
    /// A session changed state: the metrics follow at the end of the turn.
    metrics_now: bool,
    /// The BFD task, when a peer has BFD.
    pub(super) bfd: Option<mpsc::UnboundedSender<crate::bfd_io::Request>>,
    /// The last BFD event of each peer, and when.
    pub(super) bfd_status: HashMap<std::net::IpAddr, (bfd::Event, Instant)>,
    /// When each peer's connection last closed without a NOTIFICATION:
    /// its control plane went away (see `bfd_report`).
    closed_at: HashMap<PeerId, Instant>,
    /// The BMP collectors' tasks.
    pub(super) bmp: Vec<crate::bmp_io::Link>,
    /// The BGP4MP update log, when `[mrt]` asks for one.
    pub(super) mrt_log: Option<crate::mrt_log::Log>,
    /// Where sessions coming up and going down are told (Kubernetes).
    pub(super) events: crate::events::Events,
}

impl Owner {
    pub fn new(
        speaker: Speaker,
        metrics: Arc<Metrics>,
        info: super::Info,
        tx: mpsc::Sender<Command>,
        rx: mpsc::Receiver<Command>,
    ) -> Self {
        Owner {
            speaker,
            tx,
            rx,
            peers: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 1,
            subscribers: Vec::new(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(conn::IN_FLIGHT)),
            converged: false,
            metrics,
            info,
            gtsm_listener: [false; 2],
            origins: [BTreeMap::new(), BTreeMap::new()],
            static_origins: std::collections::HashSet::new(),
            mesh: HashMap::new(),
            stopping: None,
            retired: false,
            metrics_next: Instant::now(),
            metrics_due: None,
            release_at: None,
            metrics_now: false,
            bfd: None,
            bfd_status: HashMap::new(),
            closed_at: HashMap::new(),
            bmp: Vec::new(),
            mrt_log: None,
            events: crate::events::Events::none(),
        }
    }

    pub fn sender(&self) -> mpsc::Sender<Command> {
        self.tx.clone()
    }

    /// Best-path changes, batched, for a FIB or SNAT writer.
    pub fn subscribe(&mut self) -> mpsc::UnboundedReceiver<Feed> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.push(tx);
        rx
    }

    pub fn add_peer(&mut self, settings: PeerSettings) -> Result<PeerId, String> {
        let now = Instant::now().into_std();
        let mut config = settings.config.clone();
        config.admin_down |= self.retired;
        let id = self
            .speaker
            .add_peer(now, config)
            .map_err(|e| e.to_string())?;
        self.bfd_session(&settings);
        self.peers.insert(
            id,
            Runtime {
                settings,
                attempt: 0,
            },
        );
        Ok(id)
    }

    pub fn peer_settings(&self, id: PeerId) -> Option<&PeerSettings> {
        self.peers.get(&id).map(|r| &r.settings)
    }

    /// A message from a peer: counted, logged (MRT) and monitored (BMP)
    /// as it came, then the speaker's.
    fn message(&mut self, now: std::time::Instant, peer: PeerId, conn: ConnId, message: Message) {
        let mut monitored = None;
        if let Message::Update(u) = &message {
            self.metrics.update_received(&self.name(peer));
            self.mrt_update(peer, u);
            if self.bmp_wants(|m| m.pre_policy || m.post_policy) {
                monitored = Some(u.clone());
            }
        }
        self.speaker
            .handle(now, peer, Input::Message { conn, message });
        if let Some(update) = monitored {
            self.bmp_update(peer, update);
        }
    }

    /// Handle one command; `Some` when it asks to stop.
    fn command(&mut self, c: Command) -> Option<Stop> {
        let now = Instant::now().into_std();
        match c {
            Command::Incoming { stream, remote } => self.incoming(stream, remote),
            Command::Connected {
                peer,
                attempt,
                result,
            } => {
                if self.peers.get(&peer).map(|r| r.attempt) != Some(attempt) {
                    return None;
                }
                match result {
                    Ok(stream) => {
                        let local = stream.local_addr().map(|a| a.ip().to_canonical());
                        let Ok(local) = local else { return None };
                        let local = ifaces::known_prefix(local);
                        let conn = self.start_conn(peer, stream);
                        self.speaker
                            .handle(now, peer, Input::Connected { conn, local });
                    }
                    Err(e) => {
                        debug!(peer = %self.name(peer), "connect failed: {e}");
                        self.speaker.handle(now, peer, Input::ConnectFailed);
                    }
                }
            }
            Command::Conn { peer, conn, event } => {
                if let Some((_, handle)) = self.conns.get(&conn) {
                    handle.taken();
                }
                let input = match event {
                    ConnEvent::Messages(messages, _taken) => {
                        for message in messages {
                            self.message(now, peer, conn, message);
                        }
                        return None;
                    }
                    ConnEvent::DecodeError(error) => {
                        warn!(peer = %self.name(peer), "malformed message: {}", error.notification());
                        Input::DecodeError { conn, error }
                    }
                    ConnEvent::Closed(error) => {
                        // Unknown: one the speaker closed itself.
                        self.conns.remove(&conn)?;
                        if let Some(e) = error {
                            debug!(peer = %self.name(peer), "connection closed: {e}");
                        }
                        Input::Closed { conn }
                    }
                };
                self.speaker.handle(now, peer, input);
            }
            Command::Api(call) => super::answer::answer(self, call),
            Command::NextHop { addr, reach } => self.speaker.set_next_hop(addr, reach),
            Command::Kubernetes { advertise, peers } => self.kubernetes(advertise, peers),
            Command::Bfd(report) => self.bfd_report(report),
            Command::Bmp(request) => self.bmp_request(request),
            Command::Services(routes) => {
                let counts = crate::k8s::services::Kind::ALL.map(|k| {
                    let n = routes.values().filter(|o| o.kinds.contains(&k)).count();
                    (k.label(), n)
                });
                self.metrics.set_service_routes(counts);
                self.originate_group(OriginGroup::Services, routes);
            }
            Command::Shutdown(stop) => return Some(stop),
        }
        None
    }

    fn incoming(&mut self, stream: TcpStream, remote: SocketAddr) {
        let address = remote.ip().to_canonical();
        let Some(peer) = self.speaker.peer_by_address(address) else {
            warn!(%address, "refused a BGP connection: not a configured peer");
            return;
        };
        if let Some(r) = self.peers.get(&peer) {
            let gtsm_listener = self.gtsm_listener[usize::from(address.is_ipv6())];
            if let Err(e) = r.settings.prepare_accepted(&stream, gtsm_listener) {
                warn!(peer = %address, "refused a connection of a configured peer: {e}");
                return;
            }
        }
        let Ok(local) = stream.local_addr().map(|a| a.ip().to_canonical()) else {
            return;
        };
        let local = ifaces::known_prefix(local);
        let conn = self.start_conn(peer, stream);
        let now = Instant::now().into_std();
        self.speaker
            .handle(now, peer, Input::Accepted { conn, local });
    }

    fn start_conn(&mut self, peer: PeerId, stream: TcpStream) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        let budget = Arc::clone(&self.in_flight);
        let handle = conn::spawn(stream, (peer, conn), self.tx.clone(), budget);
        self.conns.insert(conn, (peer, handle));
        conn
    }

    fn carry(&mut self, action: Action) {
        match action {
            Action::Connect { peer } => {
                let Some(r) = self.peers.get_mut(&peer) else {
                    return;
                };
                r.attempt += 1;
                let attempt = r.attempt;
                let settings = r.settings.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = connect(&settings).await;
                    let _ = tx
                        .send(Command::Connected {
                            peer,
                            attempt,
                            result,
                        })
                        .await;
                });
            }
            Action::Send {
                peer,
                conn,
                message,
                ctx,
            } => {
                if matches!(message, Message::Update(_)) {
                    self.metrics.update_sent(&self.name(peer));
                }
                if let Some((_, h)) = self.conns.get(&conn) {
                    h.send(message, ctx);
                }
            }
            Action::Close { conn, .. } => {
                if let Some((_, h)) = self.conns.remove(&conn) {
                    h.close();
                    if let Some(closing) = &mut self.stopping {
                        closing.push(h);
                    }
                }
            }
            Action::Negotiated { conn, rx, .. } => {
                if let Some((_, h)) = self.conns.get(&conn) {
                    h.negotiated(rx);
                }
            }
            Action::State { peer, from, to } => {
                self.metrics_now = true;
                self.log_state(peer, from, to);
                self.mrt_state(peer, from, to);
            }
            Action::Down { peer, reason } => {
                if reason == bgp::session::Down::Closed {
                    self.closed_at.insert(peer, Instant::now());
                }
                self.bmp_session_down(peer, &reason);
            }
            // Logged with the state change that goes with it.
            Action::Up { peer } => self.bmp_session_up(peer),
        }
    }

    /// One line per session state change, with the reason when it falls
    /// back. The Idle/Connect/Active round of a peer that is not there
    /// stays at debug level, or it would fill the log every few seconds.
    fn log_state(&self, peer: PeerId, from: State, to: State) {
        let name = self.name(peer);
        let status = self.speaker.status(peer);
        let opened =
            |s: State| matches!(s, State::OpenSent | State::OpenConfirm | State::Established);
        if to == State::Established {
            let (asn, id) = status
                .as_ref()
                .and_then(|s| s.negotiated)
                .map(|n| (n.peer_as, n.peer_id.to_string()))
                .unwrap_or_default();
            info!(peer = %name, asn, router_id = %id, "{from:?} -> Established");
            self.events.raise(
                Reason::BgpSessionUp,
                format!("BGP session with {name} (AS {asn}, router id {id}) is up"),
            );
        } else if opened(from) && !opened(to) {
            let reason = status
                .as_ref()
                .and_then(|s| s.last_down)
                .map_or_else(|| "stopped".to_string(), super::describe_down);
            if from == State::Established {
                warn!(peer = %name, "Established -> {to:?}: {reason}");
                // Sessions this speaker ends on its way out are not news.
                if self.stopping.is_none() {
                    self.events.raise(
                        Reason::BgpSessionDown,
                        format!("BGP session with {name} is down: {reason}"),
                    );
                }
            } else {
                info!(peer = %name, "{from:?} -> {to:?}: {reason}");
            }
        } else if opened(to) {
            info!(peer = %name, "{from:?} -> {to:?}");
        } else {
            debug!(peer = %name, "{from:?} -> {to:?}");
        }
    }

    /// The peer's address, for logs and metrics.
    /// Follow what Kubernetes asks: advertise this node's pod prefixes,
    /// and add, remove or replace the mesh peers. Peers of the config file
    /// are never touched; a mesh peer at the same address is left out.
    fn kubernetes(&mut self, advertise: Vec<ipnet::IpNet>, peers: Vec<PeerSettings>) {
        let now = Instant::now().into_std();
        let pods = advertise
            .into_iter()
            .map(|p| {
                let o = Origination {
                    attributes: Vec::new(),
                    why: vec!["pod CIDR of this node".into()],
                    kinds: Vec::new(),
                };
                (p.trunc(), o)
            })
            .collect();
        self.originate_group(OriginGroup::Pods, pods);

        let wanted: HashMap<std::net::IpAddr, &PeerSettings> =
            peers.iter().map(|p| (p.neighbor.address, p)).collect();
        let gone: Vec<(std::net::IpAddr, PeerId)> = self
            .mesh
            .iter()
            .filter(|(addr, id)| {
                let now_wanted = wanted.get(*addr).map(|p| &p.neighbor);
                now_wanted != self.peers.get(*id).map(|r| &r.settings.neighbor)
            })
            .map(|(a, id)| (*a, *id))
            .collect();
        for (addr, id) in gone {
            self.mesh.remove(&addr);
            if self.speaker.remove_peer(now, id).is_ok() {
                info!(peer = %addr, "kubernetes: peer removed");
            }
            self.peers.remove(&id);
            self.bfd_status.remove(&addr);
            if let Some(bfd) = &self.bfd {
                let _ = bfd.send(crate::bfd_io::Request::Remove { peer: addr });
            }
        }
        for p in peers {
            let addr = p.neighbor.address;
            if self.mesh.contains_key(&addr) || self.speaker.peer_by_address(addr).is_some() {
                continue;
            }
            match self.add_peer(p) {
                Ok(id) => {
                    info!(peer = %addr, "kubernetes: peer added");
                    self.mesh.insert(addr, id);
                }
                Err(e) => warn!(peer = %addr, "kubernetes: cannot add peer: {e}"),
            }
        }
    }

    /// Make what `group` originates `want`: new prefixes and changed
    /// attributes are originated, prefixes no group wants any more are
    /// withdrawn. A prefix both groups want is originated as the pod group
    /// has it.
    fn originate_group(&mut self, group: OriginGroup, want: BTreeMap<IpNet, Origination>) {
        let now = Instant::now().into_std();
        let before = self.originated();
        self.origins[group as usize] = want;
        let after = self.originated();
        for p in before.keys().filter(|p| !after.contains_key(*p)) {
            self.speaker.withdraw_origin(*p);
            info!(prefix = %p, "kubernetes: no longer advertised");
        }
        for (p, o) in &after {
            if before.get(p).map(|b| &b.attributes) == Some(&o.attributes) {
                continue;
            }
            let unspecified = match p {
                IpNet::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                IpNet::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            };
            self.speaker.originate(now, *p, &o.attributes, unspecified);
            info!(prefix = %p, why = %o.why.join("; "), "kubernetes: advertised");
        }
    }

    /// Every prefix originated for Kubernetes, as it is originated (those
    /// of the config file left to it).
    fn originated(&self) -> BTreeMap<IpNet, Origination> {
        let mut all = self.origins[OriginGroup::Services as usize].clone();
        all.extend(self.origins[OriginGroup::Pods as usize].clone());
        all.retain(|p, _| !self.static_origins.contains(p));
        all
    }

    /// Ask the BFD task for a session with the peer, if it has BFD.
    fn bfd_session(&self, settings: &PeerSettings) {
        let (Some(bfd), n) = (&self.bfd, &settings.neighbor) else {
            return;
        };
        if !n.bfd.enabled {
            return;
        }
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        let _ = bfd.send(crate::bfd_io::Request::Add {
            peer: n.address,
            local: n.local_address,
            multihop: n.multihop.is_some_and(|h| h > 1),
            config: bfd::Config {
                desired_min_tx: ms(n.bfd.min_tx),
                required_min_rx: ms(n.bfd.min_rx),
                detect_mult: n.bfd.multiplier,
            },
        });
    }

    /// What BFD says of a peer: a failure ends its BGP session at once
    /// (RFC 5882 §3.2); the peer's AdminDown changes nothing.
    fn bfd_report(&mut self, report: crate::bfd_io::Report) {
        let now = Instant::now();
        let peer = report.peer;
        let Some(id) = self.speaker.peer_by_address(peer) else {
            return;
        };
        let before = self.bfd_status.insert(peer, (report.event, now));
        match report.event {
            // BFD here runs in the agent: when the peer's agent goes, its
            // connection closes at once and its BFD falls silent a moment
            // later, or its new BFD says Down. That Down is the same
            // restart, which graceful restart handles (RFC 5882 §4.3.2):
            // it must not end the session the peer has made anew meanwhile.
            bfd::Event::Down { diag } if matches!(before, Some((bfd::Event::Up, up)) if self.closed_at.get(&id).is_some_and(|c| *c > up)) =>
            {
                info!(%peer, "BFD down ({}) from before the peer's restart: graceful restart decides", crate::bfd_io::describe(diag));
            }
            bfd::Event::Down { diag } => {
                warn!(%peer, "BFD down ({}): the BGP session and its routes go at once", crate::bfd_io::describe(diag));
                let _ = self.speaker.bfd_down(now.into_std(), id);
            }
            bfd::Event::Up => info!(%peer, "BFD up"),
            bfd::Event::PeerAdminDown => {
                info!(%peer, "BFD: the peer set the session AdminDown; BGP carries on without it");
            }
            bfd::Event::AdminDown => {}
        }
    }

    /// Why Kubernetes has this node originate `prefix`, if it does.
    pub(crate) fn origin_of(&self, prefix: &IpNet) -> Option<&Origination> {
        self.origins.iter().find_map(|g| g.get(prefix))
    }

    /// End every session with a Cease, for good: peers drop our routes.
    pub(super) fn retire(&mut self, now: std::time::Instant) {
        info!("leaving for good: Cease to every peer; sessions stay down until restarted");
        self.retired = true;
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let _ = self
                .speaker
                .stop_peer(now, id, "podbgp is leaving for good");
        }
        for action in self.speaker.poll(now) {
            self.carry(action);
        }
    }

    pub(crate) fn name(&self, peer: PeerId) -> String {
        self.speaker
            .status(peer)
            .map_or_else(|| format!("#{peer}"), |s| s.config.address.to_string())
    }

    /// Close every session and let the NOTIFICATIONs go out.
    async fn shutdown(mut self, stop: Stop) -> Ended {
        let now = Instant::now().into_std();
        self.stopping = Some(Vec::new());
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        let (done, ended) = match stop {
            Stop::Restart { done } => (Some(done), Ended::Restart),
            Stop::Failed { error } => (None, Ended::Failed(error)),
        };
        info!("shutting down to restart: peers keep our routes meanwhile");
        // BFD first says AdminDown, which no peer takes for a failure
        // (RFC 5882 §3.2): its silence would otherwise end their graceful
        // restart of our routes.
        let bfd_done = self.bfd.take().map(|bfd| {
            let (done, wait) = oneshot::channel();
            let _ = bfd.send(crate::bfd_io::Request::Stop { done });
            wait
        });
        for &id in &ids {
            let _ = self
                .speaker
                .stop_peer_for_restart(now, id, "podbgp is restarting");
        }
        for action in self.speaker.poll(now) {
            self.carry(action);
        }
        // Let the writers flush their NOTIFICATIONs, a moment at most: those
        // the speaker closed, and any other still open.
        let mut handles = self.stopping.take().unwrap_or_default();
        handles.extend(self.conns.drain().map(|(_, (_, h))| h));
        let flush = async {
            for h in handles {
                h.close();
                h.finished().await;
            }
        };
        let bfd = async {
            if let Some(wait) = bfd_done {
                let _ = wait.await;
            }
        };
        let _ =
            tokio::time::timeout(Duration::from_secs(2), futures::future::join(flush, bfd)).await;
        if let Some(done) = done {
            let _ = done.send(());
        }
        ended
    }
}
