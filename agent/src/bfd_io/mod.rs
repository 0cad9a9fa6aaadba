//! BFD's I/O: the task that runs every BFD session of the daemon over UDP
//! and tells the owner when one fails. The protocol is the sans-IO `bfd`
//! crate; this module only moves its packets, keeps its clock and reports
//! its events.
//!
//! The owner asks for a session per BGP peer that has BFD ([`Request`]);
//! sessions are keyed by our address towards the peer (the source the
//! kernel picks, or the neighbor's `local_address`), the peer's, and for
//! single hop the interface (RFC 5881 §3). Packets arrive on UDP 3784
//! (single hop: only with TTL 255, RFC 5881 §5) and 4784 (multihop, RFC
//! 5883), and leave from one source port of 49152-65535 with TTL 255.
//! What the owner hears is a [`Report`]: the `bfd` crate's [`bfd::Event`]
//! for the peer, a failure among them only when a session that was Up
//! went Down (RFC 5882 §3.2).

mod socket;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bfd::{Config, Control, Diag, Key, Output, SessionId, Sessions, State};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;

/// What the owner asks of the BFD task.
#[derive(Debug)]
pub enum Request {
    /// Run a session with `peer` (replacing one with other settings).
    Add {
        peer: IpAddr,
        /// Our address for it; the kernel's choice when `None`.
        local: Option<IpAddr>,
        multihop: bool,
        config: Config,
    },
    /// Stop the session with `peer`, if any.
    Remove { peer: IpAddr },
    /// Every session, as `podbgp bfd` shows them.
    Query {
        reply: oneshot::Sender<Vec<SessionView>>,
    },
    /// The daemon stops: set every session AdminDown, send that once, and
    /// end; `done` hears when it has gone out.
    Stop { done: oneshot::Sender<()> },
}

/// What the BFD task tells the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub peer: IpAddr,
    pub event: bfd::Event,
}

/// One session as the API shows it (`GET /v1/bfd`, `podbgp bfd`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionView {
    pub peer: String,
    pub local: String,
    pub interface: Option<String>,
    pub multihop: bool,
    /// AdminDown, Down, Init or Up.
    pub state: String,
    pub remote_state: String,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    /// Ours as configured, milliseconds.
    pub desired_min_tx_ms: f64,
    pub required_min_rx_ms: f64,
    pub detect_multiplier: u8,
    /// The peer's, as its last packet said.
    pub remote_desired_min_tx_ms: f64,
    pub remote_required_min_rx_ms: f64,
    pub remote_detect_multiplier: u8,
    /// What we send at, and how long silence takes us Down: negotiated.
    pub transmit_interval_ms: f64,
    pub detection_time_ms: f64,
    /// Since the last state change.
    pub uptime_seconds: u64,
    /// Our diagnostic: why the session last left Up.
    pub last_diagnostic: String,
    pub remote_diagnostic: String,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub state_changes: u64,
}

/// The longest packet worth reading: a Control packet with the longest
/// authentication section is 24 + 28 bytes.
const MAX_PACKET: usize = 64;

/// The BFD task's state.
struct Runner {
    sessions: Sessions,
    /// Sessions by peer address; the owner names them so.
    by_peer: HashMap<IpAddr, SessionId>,
    /// Sockets to send from, one per local address (bound to it, so every
    /// packet of a session leaves from the address it is keyed by), all
    /// from one source port.
    senders: HashMap<IpAddr, UdpSocket>,
    /// The source port, from 49152-65535 (RFC 5881 §4).
    source_port: u16,
    /// Sessions asked for that have no source address yet (no route to
    /// the peer): tried again every second.
    pending: Vec<Request>,
    metrics: Arc<Metrics>,
    reports: mpsc::UnboundedSender<Report>,
    /// Instants on the task's clock are given to the core as std ones.
    epoch: (Instant, std::time::Instant),
    /// Stopping: who waits, and when every AdminDown has gone out.
    stopping: Option<(oneshot::Sender<()>, Instant)>,
}

/// Run the BFD sessions on a thread of their own with a single-threaded
/// runtime, until the owner goes: a packet every few milliseconds is
/// handled where the socket woke up, with no hand-over between the
/// daemon's worker threads.
pub fn start(
    requests: mpsc::UnboundedReceiver<Request>,
    reports: mpsc::UnboundedSender<Report>,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bfd".into())
        .spawn(move || runtime.block_on(run(requests, reports, metrics)))?;
    Ok(())
}

/// Run the BFD sessions until the owner goes.
async fn run(
    mut requests: mpsc::UnboundedReceiver<Request>,
    reports: mpsc::UnboundedSender<Report>,
    metrics: Arc<Metrics>,
) {
    let seed = seed();
    let mut receivers = Vec::new();
    for (v6, port) in [
        (false, bfd::SINGLE_HOP_PORT),
        (true, bfd::SINGLE_HOP_PORT),
        (false, bfd::MULTIHOP_PORT),
        (true, bfd::MULTIHOP_PORT),
    ] {
        match socket::Receiver::bind(v6, port) {
            Ok(r) => receivers.push((r, port == bfd::MULTIHOP_PORT)),
            Err(e) => warn!(port, v6, "bfd: cannot listen: {e}"),
        }
    }
    let mut runner = Runner {
        sessions: Sessions::new(seed),
        by_peer: HashMap::new(),
        senders: HashMap::new(),
        source_port: u16::try_from(seed % 16384).unwrap_or(0),
        pending: Vec::new(),
        metrics,
        reports,
        epoch: (Instant::now(), std::time::Instant::now()),
        stopping: None,
    };
    let mut buf = [0u8; MAX_PACKET];
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    loop {
        let deadline = runner.sessions.poll_at().map(|t| runner.tokio_time(t));
        if let Some((_, by)) = &runner.stopping {
            if Instant::now() >= *by {
                if let Some((done, _)) = runner.stopping.take() {
                    let _ = done.send(());
                }
                return;
            }
        }
        let deadline = match (&runner.stopping, deadline) {
            (Some((_, by)), Some(d)) => Some(d.min(*by)),
            (Some((_, by)), None) => Some(*by),
            (None, d) => d,
        };
        // Sessions waiting for a route to their peer are tried each second.
        let deadline = if runner.pending.is_empty() {
            deadline
        } else {
            let retry = Instant::now() + Duration::from_secs(1);
            Some(deadline.map_or(retry, |d| d.min(retry)))
        };
        // One timer, moved rather than made anew at every turn.
        let far = Instant::now() + Duration::from_secs(3600);
        timer.as_mut().reset(deadline.unwrap_or(far));
        tokio::select! {
            r = requests.recv() => match r {
                Some(r) => runner.request(r),
                None => return,
            },
            (received, multihop) = next_packet(&receivers, &mut buf) => match received {
                Ok(r) => runner.packet(&r, &buf[..r.len.min(MAX_PACKET)], multihop),
                Err(e) => {
                    warn!("bfd: receiving: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut timer => {
                for r in std::mem::take(&mut runner.pending) {
                    runner.request(r);
                }
            }
        }
        if !runner.carry_out() {
            return;
        }
    }
}

/// The next packet on any of the sockets, read in this task: no hop
/// through another task for each packet. Whether it came on the multihop
/// port rides along.
async fn next_packet(
    receivers: &[(socket::Receiver, bool)],
    buf: &mut [u8],
) -> (std::io::Result<socket::Received>, bool) {
    std::future::poll_fn(|cx| {
        for (r, multihop) in receivers {
            if let std::task::Poll::Ready(result) = r.poll_recv(cx, buf) {
                return std::task::Poll::Ready((result, *multihop));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Seeds the discriminators and the jitter: different on every start, so
/// a restarted daemon's discriminators are new ones.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (t as u64) ^ (u64::from(std::process::id()) << 32) | 1
}

impl Runner {
    fn now(&self) -> std::time::Instant {
        self.epoch.1 + Instant::now().saturating_duration_since(self.epoch.0)
    }

    fn tokio_time(&self, t: std::time::Instant) -> Instant {
        self.epoch.0 + t.saturating_duration_since(self.epoch.1)
    }

    fn request(&mut self, r: Request) {
        let now = self.now();
        match r {
            Request::Add {
                peer,
                local,
                multihop,
                config,
            } => {
                let Some(source) = local.or_else(|| crate::ifaces::source_for(peer)) else {
                    if !self
                        .pending
                        .iter()
                        .any(|r| matches!(r, Request::Add { peer: p, .. } if *p == peer))
                    {
                        warn!(%peer, "bfd: no route to the peer yet; trying again each second");
                    }
                    self.pending
                        .retain(|r| !matches!(r, Request::Add { peer: p, .. } if *p == peer));
                    self.pending.push(Request::Add {
                        peer,
                        local,
                        multihop,
                        config,
                    });
                    return;
                };
                self.pending
                    .retain(|r| !matches!(r, Request::Add { peer: p, .. } if *p == peer));
                // Single hop only for a peer on one of our subnets: one
                // routers forward reaches us with a TTL under 255, so its
                // session runs multihop (RFC 5883), on either side alike.
                let on_link = crate::ifaces::known_prefix(source).contains(&peer);
                // Not bound to an interface: the address identifies the
                // session, whichever interface holds it.
                let key = if multihop || !on_link {
                    Key::multihop(source, peer)
                } else {
                    Key::single_hop(source, peer, None)
                };
                let local = source;
                if let Some(&id) = self.by_peer.get(&peer) {
                    let same = self.sessions.key(id) == Some(&key)
                        && self.sessions.get(id).map(|s| *s.config()) == Some(config);
                    if same {
                        return;
                    }
                    self.sessions.remove(id);
                }
                match self.sessions.add(now, key, config) {
                    Ok(id) => {
                        info!(%peer, %local, multihop, "bfd: session added");
                        self.by_peer.insert(peer, id);
                    }
                    Err(e) => warn!(%peer, "bfd: cannot add a session: {e}"),
                }
            }
            Request::Remove { peer } => {
                self.pending
                    .retain(|r| !matches!(r, Request::Add { peer: p, .. } if *p == peer));
                if let Some(id) = self.by_peer.remove(&peer) {
                    self.sessions.remove(id);
                    self.metrics.bfd_forget(&peer.to_string());
                    info!(%peer, "bfd: session removed");
                }
            }
            Request::Query { reply } => {
                let _ = reply.send(self.view(now));
            }
            Request::Stop { done } => {
                // Each session's next packet, due within one interval of
                // its own, says AdminDown.
                let mut longest = Duration::ZERO;
                let ids: Vec<SessionId> = self.sessions.iter().map(|(id, _, _)| id).collect();
                for id in ids {
                    if let Some(s) = self.sessions.get_mut(id) {
                        longest = longest.max(s.negotiated_tx());
                        s.set_admin_down(now, true);
                    }
                }
                info!(
                    sessions = self.sessions.len(),
                    "bfd: AdminDown to every peer"
                );
                let by = Instant::now() + longest + Duration::from_millis(20);
                self.stopping = Some((done, by));
            }
        }
    }

    /// A packet from one of the sockets: checked, then handed to its session.
    fn packet(&mut self, r: &socket::Received, data: &[u8], multihop: bool) {
        let from = r.from.ip().to_canonical();
        let local = r.local.to_canonical();
        // Single hop: only a packet no router forwarded (RFC 5881 §5).
        if !multihop && r.ttl != bfd::TTL {
            self.metrics.bfd_dropped("ttl");
            debug!(peer = %from, ttl = r.ttl, "bfd: dropped: TTL is not 255");
            return;
        }
        let control = match Control::decode(data) {
            Ok(c) => c,
            Err(e) => {
                self.metrics.bfd_dropped("malformed");
                debug!(peer = %from, "bfd: dropped: {e}");
                return;
            }
        };
        let key = if multihop {
            Key::multihop(local, from)
        } else {
            Key::single_hop(local, from, Some(r.ifindex))
        };
        let now = self.now();
        match self.sessions.receive(now, &key, &control) {
            Ok(_) => self.metrics.bfd_received(&from.to_string()),
            Err(e) => {
                let reason = match e {
                    bfd::Discard::Malformed(_) => "malformed",
                    bfd::Discard::AdminDown => "admin_down",
                    bfd::Discard::UnknownDiscriminator(_)
                    | bfd::Discard::NoSession
                    | bfd::Discard::KeyMismatch(_)
                    | bfd::Discard::WrongDiscriminator(_) => "no_session",
                };
                self.metrics.bfd_dropped(reason);
                debug!(peer = %from, "bfd: dropped: {e}");
            }
        }
    }

    /// Send what the sessions ask to, report what changed; `false` once
    /// the owner is gone.
    fn carry_out(&mut self) -> bool {
        let now = self.now();
        let outputs = self.sessions.poll(now);
        for (id, output) in outputs {
            let Some(key) = self.sessions.key(id).copied() else {
                continue;
            };
            let peer = key.peer;
            match output {
                Output::Send(control) => {
                    let port = if key.multihop {
                        bfd::MULTIHOP_PORT
                    } else {
                        bfd::SINGLE_HOP_PORT
                    };
                    if let Some(s) = self.sender(key.local) {
                        let to = SocketAddr::new(peer, port);
                        match s.try_send_to(&control.encode(), to) {
                            Ok(_) => self.metrics.bfd_sent(&peer.to_string()),
                            Err(e) => debug!(%peer, "bfd: cannot send: {e}"),
                        }
                    }
                }
                Output::StateChanged { from, to, diag } => {
                    self.metrics.bfd_state(&peer.to_string(), to == State::Up);
                    if to == State::Up || from == State::Up {
                        info!(%peer, "bfd: {from:?} -> {to:?} ({})", describe(diag));
                    } else {
                        debug!(%peer, "bfd: {from:?} -> {to:?} ({})", describe(diag));
                    }
                }
                // Our own AdminDown is no news to the owner, who asked.
                Output::Event(bfd::Event::AdminDown) => {}
                Output::Event(event) => {
                    if self.reports.send(Report { peer, event }).is_err() {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// The socket sending from `local`, opened the first time.
    fn sender(&mut self, local: IpAddr) -> Option<&UdpSocket> {
        if !self.senders.contains_key(&local) {
            match socket::sender(local, self.source_port) {
                Ok((s, port)) => {
                    self.source_port = port;
                    self.senders.insert(local, s);
                }
                Err(e) => {
                    warn!(%local, "bfd: cannot open a socket to send from: {e}");
                    return None;
                }
            }
        }
        self.senders.get(&local)
    }

    fn view(&self, now: std::time::Instant) -> Vec<SessionView> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut out: Vec<SessionView> = self
            .sessions
            .iter()
            .map(|(_, key, s)| {
                let c = s.config();
                let counters = s.counters();
                SessionView {
                    peer: key.peer.to_string(),
                    local: key.local.to_string(),
                    interface: key.ifindex.and_then(crate::ifaces::name_of),
                    multihop: key.multihop,
                    state: format!("{:?}", s.state()),
                    remote_state: format!("{:?}", s.remote_state()),
                    local_discriminator: s.local_discriminator(),
                    remote_discriminator: s.remote_discriminator(),
                    desired_min_tx_ms: ms(c.desired_min_tx),
                    required_min_rx_ms: ms(c.required_min_rx),
                    detect_multiplier: c.detect_mult,
                    remote_desired_min_tx_ms: ms(s.remote_desired_min_tx()),
                    remote_required_min_rx_ms: ms(s.remote_required_min_rx()),
                    remote_detect_multiplier: s.remote_detect_mult(),
                    transmit_interval_ms: ms(s.negotiated_tx()),
                    detection_time_ms: ms(s.detection_time()),
                    uptime_seconds: now.saturating_duration_since(s.since()).as_secs(),
                    last_diagnostic: describe(s.local_diag()),
                    remote_diagnostic: describe(s.remote_diag()),
                    packets_sent: counters.packets_sent,
                    packets_received: counters.packets_received,
                    state_changes: counters.state_changes,
                }
            })
            .collect();
        out.sort_by(|a, b| a.peer.cmp(&b.peer));
        out
    }
}

/// A diagnostic in the RFC's words (RFC 5880 §4.1).
pub fn describe(diag: Diag) -> String {
    match diag {
        Diag::NoDiagnostic => "No Diagnostic".into(),
        Diag::ControlDetectionTimeExpired => "Control Detection Time Expired".into(),
        Diag::EchoFunctionFailed => "Echo Function Failed".into(),
        Diag::NeighborSignaledSessionDown => "Neighbor Signaled Session Down".into(),
        Diag::ForwardingPlaneReset => "Forwarding Plane Reset".into(),
        Diag::PathDown => "Path Down".into(),
        Diag::ConcatenatedPathDown => "Concatenated Path Down".into(),
        Diag::AdministrativelyDown => "Administratively Down".into(),
        Diag::ReverseConcatenatedPathDown => "Reverse Concatenated Path Down".into(),
        Diag::Unknown(code) => format!("diagnostic {code}"),
    }
}
