//! `podbgp run`: the speaker as a daemon. Settings become the speaker's
//! configuration; listeners, the control API and the metrics server start;
//! the owner loop runs until SIGTERM, when every peer gets a Cease.

mod answer;
mod conn;
mod mrt;
pub mod owner;
mod sockopt;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bgp::session::{Down, SessionConfig};
use bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use bgp::wire::{
    AddPathFamily, AddPathMode, AttrValue, Community, Family, LargeCommunity, PathAttribute,
};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::events::{Events, Reason};
use crate::ifaces;
use crate::k8s;
use crate::metrics::Metrics;
use crate::settings::{Neighbor, Settings};
use owner::{Command, Owner};

/// Commands waiting for the owner, at most: decoded UPDATEs are many times
/// their size on the wire, so a burst waits in the sockets instead.
const OWNER_QUEUE: usize = 64;

/// Facts about this speaker the API shows.
#[derive(Debug, Clone)]
pub struct Info {
    pub listen_addresses: Vec<IpAddr>,
    pub listen_port: u16,
    pub graceful_restart: bool,
}

/// A peer as the daemon runs it: the core's configuration and the socket
/// settings the I/O needs.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    pub config: PeerConfig,
    pub neighbor: Neighbor,
    pub ebgp: bool,
}

impl PeerSettings {
    pub fn new(settings: &Settings, router_id: Ipv4Addr, n: &Neighbor) -> PeerSettings {
        let g = &settings.global;
        let mut session = SessionConfig::new(g.asn, router_id, n.asn);
        session.hold_time = n.hold_time;
        session.connect_retry = Duration::from_secs(u64::from(n.connect_retry));
        session.passive = n.passive;
        session.families = n
            .families
            .iter()
            .map(|f| {
                if f == "ipv6" {
                    Family::IPV6_UNICAST
                } else {
                    Family::IPV4_UNICAST
                }
            })
            .collect();
        if n.add_path_receive {
            session.add_path = session
                .families
                .iter()
                .map(|&family| AddPathFamily {
                    family,
                    mode: AddPathMode::Receive,
                })
                .collect();
        }
        session.graceful_restart = g
            .graceful_restart
            .enabled
            .then_some(g.graceful_restart.restart_time);
        session.gr_notification = g.graceful_restart.notification;
        session.hostname = hostname();
        let mut config = PeerConfig::new(n.address, session);
        config.rr_client = n.route_reflector_client;
        config.next_hop_self = n.next_hop_self;
        config.max_prefixes = n.max_prefixes;
        config.mrai = Duration::from_secs(u64::from(n.mrai));
        config.stale_time = Duration::from_secs(u64::from(g.graceful_restart.stale_time));
        config.admin_down = !n.enabled;
        // Checked when the settings were loaded.
        config.prefixes.rules = n
            .import
            .iter()
            .filter_map(|r| crate::settings::parse_rule(r).ok())
            .collect();
        PeerSettings {
            ebgp: n.asn != g.asn,
            config,
            neighbor: n.clone(),
        }
    }

    /// The TTL we send with: 255 under GTSM, the multihop count for eBGP,
    /// the system's default for iBGP.
    fn ttl(&self) -> Option<u8> {
        if self.neighbor.ttl_security {
            Some(255)
        } else if self.ebgp {
            Some(self.neighbor.multihop.unwrap_or(1))
        } else {
            self.neighbor.multihop
        }
    }

    /// Socket options on a connection the peer opened. A GTSM peer's own
    /// connection is taken only from a listener that checks the TTL from
    /// the SYN on; elsewhere its first segments could arrive before the
    /// option applies, so we connect to it ourselves instead.
    fn prepare_accepted(&self, stream: &TcpStream, gtsm_listener: bool) -> std::io::Result<()> {
        if self.neighbor.ttl_security && !gtsm_listener {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "its TTL cannot be checked on this listener (not every peer of the family uses ttl_security); we connect to it instead",
            ));
        }
        let v6 = self.neighbor.address.is_ipv6();
        if let Some(ttl) = self.ttl() {
            sockopt::set_ttl(stream, v6, ttl)?;
        }
        if self.neighbor.ttl_security {
            sockopt::set_min_ttl(stream, v6, self.min_ttl())?;
        }
        Ok(())
    }

    /// GTSM: the lowest TTL a packet from a peer `multihop` hops away has.
    fn min_ttl(&self) -> u8 {
        255 - (self.neighbor.multihop.unwrap_or(1) - 1)
    }
}

/// Open a connection to the peer with its source address, TTL, GTSM and
/// MD5 settings, giving up after the connect-retry time.
pub async fn connect(p: &PeerSettings) -> std::io::Result<TcpStream> {
    let n = &p.neighbor;
    let remote = SocketAddr::new(n.address, n.port);
    let v6 = n.address.is_ipv6();
    let socket = if v6 {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if let Some(local) = n.local_address {
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::new(local, n.local_port.unwrap_or(0)))?;
    } else if let Some(port) = n.local_port {
        socket.set_reuseaddr(true)?;
        let any = if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        socket.bind(SocketAddr::new(any, port))?;
    }
    if let Some(ttl) = p.ttl() {
        sockopt::set_ttl(&socket, v6, ttl)?;
    }
    if n.ttl_security {
        sockopt::set_min_ttl(&socket, v6, p.min_ttl())?;
    }
    if let Some(pw) = &n.password {
        sockopt::set_md5(&socket, n.address, pw.as_bytes())?;
    }
    let limit = Duration::from_secs(u64::from(n.connect_retry));
    match tokio::time::timeout(limit, socket.connect(remote)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connection attempt timed out",
        )),
    }
}

/// When every peer of a family uses GTSM, the lowest TTL its listener may
/// accept; a listener checks every SYN alike, so with one peer that does
/// not use GTSM, none is checked there.
pub fn gtsm_min_ttl(peers: &[PeerSettings], v6: bool) -> Option<u8> {
    let family: Vec<&PeerSettings> = peers
        .iter()
        .filter(|p| p.neighbor.address.is_ipv6() == v6)
        .collect();
    if family.is_empty() || !family.iter().all(|p| p.neighbor.ttl_security) {
        return None;
    }
    family.iter().map(|p| p.min_ttl()).min()
}

/// A listening socket on `addr`, with the MD5 keys of the peers of its family.
fn listener(addr: SocketAddr, peers: &[PeerSettings]) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv6() {
        let s = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)?;
        s.set_only_v6(true)?;
        s
    } else {
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?
    };
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    for p in peers {
        if let Some(pw) = &p.neighbor.password {
            if p.neighbor.address.is_ipv6() == addr.is_ipv6() {
                sockopt::set_md5(&socket, p.neighbor.address, pw.as_bytes())?;
            }
        }
    }
    // The kernel answers a SYN before we accept: under GTSM its SYN-ACK
    // must leave with TTL 255, and the SYN itself be checked (RFC 5082 §3).
    if let Some(min) = gtsm_min_ttl(peers, addr.is_ipv6()) {
        sockopt::set_ttl(&socket, addr.is_ipv6(), 255)?;
        sockopt::set_min_ttl(&socket, addr.is_ipv6(), min)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    TcpListener::from_std(socket.into())
}

/// The words a log line uses for why a session went down.
pub fn describe_down(d: &Down) -> String {
    match d {
        Down::Sent(n) => format!("sent NOTIFICATION {n}"),
        Down::Received(n) => format!("received NOTIFICATION {n}"),
        Down::Closed => "connection closed".into(),
        Down::ConnectFailed => "connection failed".into(),
    }
}

/// The machine's name, for the hostname capability.
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end])
        .ok()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Run the daemon until SIGTERM or SIGINT.
pub async fn run(mut settings: Settings) -> Result<(), String> {
    // Kubernetes mode reads this node first: its AS annotation and its
    // InternalIPv4, the default router id.
    let cluster = if settings.kubernetes.enabled {
        Some(crate::k8s::connect().await?)
    } else {
        None
    };
    let node_v4 = cluster.as_ref().and_then(|c| {
        c.own.internal.iter().find_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
    });
    if let Some(asn) = cluster.as_ref().and_then(|c| c.own.asn) {
        info!(asn, "kubernetes: this node's AS from its annotation");
        settings.global.asn = asn;
    }
    let g = &settings.global;
    let router_id = g.router_id.or(node_v4).or_else(ifaces::first_ipv4).ok_or(
        "global.router_id is not set and this machine has no IPv4 address to take it from",
    )?;
    let mut core = SpeakerConfig::new(g.asn, router_id);
    core.cluster_id = g.cluster_id;
    let metrics = Arc::new(Metrics::new());
    // In Kubernetes mode what users should know becomes Events on the
    // Node; a recorder writes them.
    let events = match &cluster {
        Some(c) => {
            let (events, rx) = Events::channel();
            let subject = crate::k8s::events::Subject {
                node: c.node_name.clone(),
                uid: c.node_uid.clone(),
            };
            tokio::spawn(crate::k8s::events::record(
                c.client.clone(),
                subject,
                rx,
                Arc::clone(&metrics),
            ));
            events
        }
        None => Events::none(),
    };
    let info = Info {
        listen_addresses: g.listen_addresses.clone(),
        listen_port: g.listen_port,
        graceful_restart: g.graceful_restart.enabled,
    };
    // Few messages wait for the owner: a reader that gets ahead of it
    // waits, and the rest of a burst stays in the socket, undecoded.
    let (owner_tx, owner_rx) = mpsc::channel(OWNER_QUEUE);

    // The kernel first: routes left by an earlier run mean we restart with
    // forwarding state kept (RFC 4724), so selection waits for End-of-RIB.
    // The RIB's own routes are always its first peer.
    let local_peer = 0;
    let fib = if settings.fib.enabled {
        let fib_settings = crate::fib::FibSettings {
            table: settings.fib.table,
            protocol: settings.fib.protocol,
            accept: settings.fib.accept.clone(),
            nexthop_objects: settings.fib.nexthop_objects,
            events: events.clone(),
        };
        let fib = crate::fib::spawn(
            fib_settings,
            local_peer,
            owner_tx.clone(),
            Arc::clone(&metrics),
        )
        .await
        .map_err(|e| format!("fib: {e}"))?;
        let adopted = fib.adopted;
        if adopted > 0 && g.graceful_restart.enabled {
            let limit = g.graceful_restart.selection_deferral;
            info!(adopted, "kept {adopted} routes of an earlier run; first route selection waits for End-of-RIB (at most {limit} s)");
            core.selection_deferral = Some(Duration::from_secs(u64::from(limit)));
        } else if adopted > 0 {
            info!(adopted, "found {adopted} routes of an earlier run; those still unwanted go once routes are selected");
        }
        Some(fib)
    } else {
        None
    };
    let snat = if settings.snat.enabled {
        // This node's pod prefixes: in Kubernetes mode from its Node, read
        // already, so a restart never drops them from the sets meanwhile.
        let local_pods = match &cluster {
            Some(c) => c.own.pod_cidrs.clone(),
            None => g.advertise.clone(),
        };
        let snat_settings = crate::snat::SnatSettings {
            local_pods,
            no_masquerade: settings.snat.no_masquerade.clone(),
            accept: settings.fib.accept.clone(),
            events: events.clone(),
        };
        // nft costs a process a call: the tables are made while the
        // sessions come up, and a failure stops the daemon.
        Some(tokio::spawn(crate::snat::Snat::start(
            snat_settings,
            local_peer,
        )))
    } else {
        None
    };
    let now = std::time::Instant::now();
    let ready = Arc::clone(&metrics);
    tokio::spawn(crate::alloc::give_back(move || ready.ready()));
    ifaces::refresh();
    follow_addresses();
    let speaker = Speaker::new(now, core);
    debug_assert_eq!(speaker.local_peer(), local_peer);
    let mut owner = Owner::new(speaker, Arc::clone(&metrics), info, owner_tx, owner_rx);
    owner.events = events.clone();
    let mut snat_pods = None;
    // BFD runs when some session may ask for it: a neighbor's, or the
    // mesh's in Kubernetes mode.
    let wants_bfd = settings.neighbors.iter().any(|n| n.bfd.enabled)
        || (cluster.is_some() && settings.kubernetes.mesh && settings.kubernetes.bfd.enabled);
    if wants_bfd {
        let (tx, rx) = mpsc::unbounded_channel();
        let reports = forward(owner.sender(), Command::Bfd);
        crate::bfd_io::start(rx, reports, Arc::clone(&metrics))
            .map_err(|e| format!("bfd: cannot start its thread: {e}"))?;
        owner.bfd = Some(tx);
    }
    if settings.mrt.logging() {
        owner.mrt_log = Some(crate::mrt_log::start(&settings.mrt)?);
    }
    if !settings.bmp.is_empty() {
        // The name collectors know this speaker by: the node's, or the
        // machine's, or its router id.
        let sys_name = std::env::var("NODE_NAME")
            .ok()
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| router_id.to_string());
        owner.bmp = crate::bmp_io::start(
            &settings.bmp,
            sys_name,
            owner.sender(),
            Arc::clone(&metrics),
        );
    }
    let writers = crate::api::Writers {
        bfd: owner.bfd.clone(),
        fib: fib.map(|fib| {
            let feed = owner.subscribe();
            let (tx, rx) = mpsc::channel(16);
            fib.run(feed, rx);
            tx
        }),
        snat: snat.map(|starting| {
            let feed = owner.subscribe();
            let (tx, rx) = mpsc::channel(16);
            let (pods, pods_rx) = mpsc::channel(16);
            snat_pods = Some(pods);
            let owner = owner.sender();
            let events = events.clone();
            tokio::spawn(async move {
                let started = match starting.await {
                    Ok(r) => r,
                    Err(e) => Err(e.to_string()),
                };
                match started {
                    Ok(snat) => snat.run(feed, rx, pods_rx).await,
                    Err(e) => {
                        let error = format!("snat: {e} (snat.enabled = false turns it off)");
                        events.raise(Reason::SnatFailed, format!("{error}; podbgp stops"));
                        let _ = owner
                            .send(Command::Shutdown(owner::Stop::Failed { error }))
                            .await;
                    }
                }
            });
            tx
        }),
    };
    if let Some(cluster) = cluster {
        let (k8s_settings, id) = (settings.clone(), router_id);
        let outputs = crate::k8s::Outputs {
            updates: forward(owner.sender(), move |u| {
                kubernetes_command(&k8s_settings, id, u)
            }),
            snat: snat_pods,
            cni: settings
                .kubernetes
                .cni
                .then(|| settings.kubernetes.cni_dir.clone()),
            events: events.clone(),
        };
        tokio::spawn(crate::k8s::run(cluster, settings.clone(), outputs));
    }
    let peers: Vec<PeerSettings> = settings
        .neighbors
        .iter()
        .map(|n| PeerSettings::new(&settings, router_id, n))
        .collect();
    for p in &peers {
        owner.add_peer(p.clone())?;
    }
    owner.gtsm_listener = [false, true].map(|v6| gtsm_min_ttl(&peers, v6).is_some());
    let unspecified = |p: &ipnet::IpNet| match p {
        ipnet::IpNet::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ipnet::IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    };
    for prefix in &g.advertise {
        owner
            .speaker
            .originate(now, *prefix, &[], unspecified(prefix));
        owner.static_origins.insert(prefix.trunc());
    }

    // Listeners: each one that fails is reported; none at all is fatal
    // only when some peer waits for the other side to connect.
    let mut listening = 0;
    for addr in &g.listen_addresses {
        let at = SocketAddr::new(*addr, g.listen_port);
        match listener(at, &peers) {
            Ok(l) => {
                listening += 1;
                info!(%at, "listening for BGP");
                tokio::spawn(accept_loop(l, owner.sender()));
            }
            Err(e) => warn!(%at, "cannot listen for BGP: {e}"),
        }
    }
    if listening == 0 && peers.iter().any(|p| p.neighbor.passive) {
        return Err(format!(
            "global.listen_addresses: could not listen on any of them (port {}), and passive peers need it",
            g.listen_port
        ));
    }

    let api = settings.api_listen().map_err(|e| e.to_string())?;
    crate::api::serve(api, forward(owner.sender(), Command::Api), writers).await?;
    if !settings.metrics.listen.is_empty() {
        let at: SocketAddr = settings
            .metrics
            .listen
            .parse()
            .map_err(|_| "metrics.listen: expected HOST:PORT".to_string())?;
        crate::metrics::serve(at, Arc::clone(&metrics)).await?;
    }

    let tx = owner.sender();
    tokio::spawn(async move {
        wait_for_signal().await;
        let (done, wait) = oneshot::channel();
        if tx
            .send(Command::Shutdown(owner::Stop::Restart { done }))
            .await
            .is_ok()
        {
            let _ = wait.await;
        }
    });
    info!(asn = g.asn, %router_id, peers = peers.len(), "podbgp running");
    let ended = owner.run().await;
    // What was raised on the way out is written before the process ends.
    events.flush(Duration::from_secs(3)).await;
    match ended {
        owner::Ended::Restart => Ok(()),
        owner::Ended::Failed(error) => Err(error),
    }
}

/// The owner's command for what Kubernetes asks: mesh peers as neighbors
/// with every default, service routes with their communities.
fn kubernetes_command(settings: &Settings, router_id: Ipv4Addr, update: k8s::Update) -> Command {
    match update {
        k8s::Update::Nodes { pods, peers } => Command::Kubernetes {
            advertise: pods,
            peers: peers
                .iter()
                .map(|p| mesh_peer(settings, router_id, p))
                .collect(),
        },
        k8s::Update::Services(routes) => {
            let attributes = service_attributes(&settings.kubernetes);
            let routes = routes
                .into_iter()
                .map(|(prefix, reasons)| {
                    let o = owner::Origination {
                        attributes: attributes.clone(),
                        why: reasons.iter().map(ToString::to_string).collect(),
                        kinds: reasons.iter().map(|r| r.kind).collect(),
                    };
                    (prefix, o)
                })
                .collect();
            Command::Services(routes)
        }
    }
}

/// The settings of a mesh peer: a neighbor with every default, of the
/// address family its address is of.
pub fn mesh_peer(settings: &Settings, router_id: Ipv4Addr, p: &k8s::MeshPeer) -> PeerSettings {
    let mut n = Neighbor::new(p.address, p.asn);
    n.route_reflector_client = p.rr_client;
    n.hold_time = settings.kubernetes.hold_time;
    n.families = vec![if p.address.is_ipv4() { "ipv4" } else { "ipv6" }.to_string()];
    n.description = Some("kubernetes".into());
    n.bfd = settings.kubernetes.bfd;
    PeerSettings::new(settings, router_id, &n)
}

/// The communities `kubernetes.service_communities` and
/// `service_large_communities` put on service routes (checked at load).
fn service_attributes(k: &crate::settings::Kubernetes) -> Vec<PathAttribute> {
    community_attributes(&k.service_communities, &k.service_large_communities).unwrap_or_default()
}

/// COMMUNITIES and LARGE_COMMUNITIES attributes from their text
/// (`ASN:VALUE`, `no-export`, `no-advertise`; `A:B:C`), when there are any.
pub(crate) fn community_attributes(
    communities: &[String],
    large: &[String],
) -> Result<Vec<PathAttribute>, String> {
    let mut attributes = Vec::new();
    let communities = communities
        .iter()
        .map(|c| {
            c.parse::<Community>()
                .map_err(|_| format!("{c}: not a community (ASN:VALUE, no-export, no-advertise)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !communities.is_empty() {
        attributes.push(PathAttribute::new(AttrValue::Communities(
            communities.into_iter().collect(),
        )));
    }
    let large = large
        .iter()
        .map(|c| {
            c.parse::<LargeCommunity>()
                .map_err(|_| format!("{c}: not a large community (A:B:C)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !large.is_empty() {
        attributes.push(PathAttribute::new(AttrValue::LargeCommunities(
            large.into_iter().collect(),
        )));
    }
    Ok(attributes)
}

/// A sender for a part of the daemon that speaks its own type (the API's
/// calls, Kubernetes' updates, BFD's reports): each is handed on to the
/// owner wrapped as a command, so those parts need not know the owner.
/// Unbounded, so that a busy owner never holds up the sender (BFD's
/// packets above all); what waits is a handful of small values.
fn forward<T: Send + 'static>(
    owner: mpsc::Sender<Command>,
    wrap: impl Fn(T) -> Command + Send + 'static,
) -> mpsc::UnboundedSender<T> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            if owner.send(wrap(item)).await.is_err() {
                return;
            }
        }
    });
    tx
}

async fn accept_loop(listener: TcpListener, owner: mpsc::Sender<Command>) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                if owner
                    .send(Command::Incoming { stream, remote })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// How often the node's addresses are read again for the lookups that
/// must not wait for the kernel (`ifaces::known_prefix`).
const ADDRESSES_EVERY: Duration = Duration::from_secs(10);

/// Keep the node's addresses known, read again every `ADDRESSES_EVERY` on
/// a thread of their own (never the owner's; not the runtime's blocking
/// pool, which would start a thread for each read after ten idle seconds).
fn follow_addresses() {
    let spawned = std::thread::Builder::new()
        .name("addresses".into())
        .spawn(|| loop {
            std::thread::sleep(ADDRESSES_EVERY);
            ifaces::refresh();
        });
    if let Err(e) = spawned {
        warn!("cannot start the address reader: {e}; addresses as read at start");
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
