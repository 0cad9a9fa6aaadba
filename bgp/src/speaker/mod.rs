//! The speaker: one owner for every peer's sessions, the RIB, import policy
//! and export — the single management loop the agent runs, still sans-IO.
//!
//! The driver reports what happens on each peer's connections with
//! [`Speaker::handle`], then calls [`Speaker::poll`] for what to do (connect,
//! send, close) and [`Speaker::take_best_changes`] for what the FIB and SNAT
//! must follow, and sleeps until [`Speaker::poll_at`]. Deciding what to send
//! happens in `poll`: changes only mark prefixes per update group (peers
//! that export alike), and `poll` packs what the marked prefixes now export
//! into as few UPDATEs as fit, once per group, for all its members.

mod adj_out;
mod conn;
mod flush;
mod import;
mod peer;

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;

pub use peer::{Counters, PeerStatus};

use crate::policy::{ImportPolicy, PrefixList, Rejection};
use crate::restart::Deferral;
use crate::rib::{
    keep_turn, move_all, AttrTable, BestChange, DecisionConfig, PathAttrs, PeerId, PeerInfo,
    Reachability, Rib, Route,
};
use crate::session::{Down, Event, SessionConfig, State};
use crate::table::Position;
use crate::wire::iana::CeaseSubcode;
use crate::wire::{
    AsPath, AttrType, AttrValue, Context, DecodeError, Family, Message, NextHop, Nlri,
    Notification, Origin, PathAttribute, RouteRefresh, RouteRefreshSubtype,
};

use peer::Peer;

/// The driver's name for one TCP connection; it picks them, the speaker
/// only hands them back.
pub type ConnId = u64;

/// What the whole speaker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// The cluster id when reflecting routes (RFC 4456); the router id if unset.
    pub cluster_id: Option<Ipv4Addr>,
    pub decision: DecisionConfig,
    /// Restarting with the forwarding state kept (RFC 4724 §4.1): hold back
    /// the first route selection, and so the first FIB and export pass,
    /// until every peer has sent End-of-RIB or this long has passed.
    pub selection_deferral: Option<Duration>,
}

impl SpeakerConfig {
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Self {
        SpeakerConfig {
            local_as,
            router_id,
            cluster_id: None,
            decision: DecisionConfig::default(),
            selection_deferral: None,
        }
    }
}

/// One configured (or discovered) peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub address: IpAddr,
    pub session: SessionConfig,
    /// Which of the peer's prefixes to accept.
    pub prefixes: PrefixList,
    /// The most prefixes of one family the peer may send (RFC 4486).
    pub max_prefixes: Option<u32>,
    /// A route reflector client of ours (RFC 4456).
    pub rr_client: bool,
    /// Announce our own address as next hop on iBGP too.
    pub next_hop_self: bool,
    /// MinRouteAdvertisementIntervalTimer (RFC 4271 §9.2.1.1). Zero by
    /// default for iBGP and eBGP alike: a pod network wants a new node's
    /// routes everywhere at once, and the flapping MRAI damps is rare here.
    pub mrai: Duration,
    /// How long routes kept across the peer's restart wait for its
    /// End-of-RIB once it is back (RFC 4724 §4.2 "stale routes time").
    pub stale_time: Duration,
    /// Our next hop for routes of a family the session's own address is
    /// not of (IPv6 routes over an IPv4 session, say).
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Added shut down (Idle, admin): the session waits for `start_peer`.
    pub admin_down: bool,
}

impl PeerConfig {
    pub fn new(address: IpAddr, session: SessionConfig) -> Self {
        PeerConfig {
            address,
            session,
            prefixes: PrefixList::default(),
            max_prefixes: None,
            rr_client: false,
            next_hop_self: false,
            mrai: Duration::ZERO,
            stale_time: Duration::from_secs(360),
            next_hop_v4: None,
            next_hop_v6: None,
            admin_down: false,
        }
    }
}

/// What happened on a peer's connections.
#[derive(Debug)]
pub enum Input {
    /// The connection asked for with [`Action::Connect`] is up; `local` is
    /// our address on it with the prefix length of the interface holding it
    /// (a host prefix when not known): a peer inside that subnet shares it
    /// with us, which allows third-party next hops (RFC 4271 §5.1.3).
    Connected {
        conn: ConnId,
        local: IpNet,
    },
    /// That connection could not be made.
    ConnectFailed,
    /// The peer connected to us; `local` as for `Connected`.
    Accepted {
        conn: ConnId,
        local: IpNet,
    },
    /// The connection closed under us.
    Closed {
        conn: ConnId,
    },
    Message {
        conn: ConnId,
        message: Message,
    },
    /// What came on the connection could not be decoded.
    DecodeError {
        conn: ConnId,
        error: DecodeError,
    },
    /// The peer's bytes wait on this connection, not yet handed in: its
    /// hold timer, if run out (see [`Speaker::hold_due`]), waits for them.
    InputWaiting {
        conn: ConnId,
    },
}

/// What the driver must do, or may want to know.
#[derive(Debug)]
pub enum Action {
    /// Open a TCP connection to the peer (dropping an attempt in flight).
    Connect { peer: PeerId },
    /// Send this message, encoded with `ctx`, on the connection.
    Send {
        peer: PeerId,
        conn: ConnId,
        message: Message,
        ctx: Context,
    },
    /// Close the connection once what was sent is flushed.
    Close { peer: PeerId, conn: ConnId },
    /// The peer's session changed state.
    State {
        peer: PeerId,
        from: State,
        to: State,
    },
    /// The OPENs on `conn` were agreed: decode what comes on it after the
    /// peer's OPEN with `rx` (ADD-PATH, 4-octet AS, message size). A
    /// reader should wait for this before decoding past an OPEN.
    Negotiated {
        peer: PeerId,
        conn: ConnId,
        rx: Context,
    },
    /// The session is Established.
    Up { peer: PeerId },
    /// The session went down, or an attempt failed.
    Down { peer: PeerId, reason: Down },
}

/// Why a peer could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("a peer with address {0} is already configured")]
    Duplicate(IpAddr),
    #[error("no peer with id {0}")]
    Unknown(PeerId),
}

/// The speaker.
/// Buffers the speaker's passes over best-path changes reuse.
#[derive(Debug, Default)]
struct Scratch {
    /// The RIB's changes being exported.
    changes: Vec<BestChange>,
    /// Per change: who the best path came from, and how it may spread.
    learned: Vec<Option<(PeerId, bool, bool)>>,
    /// One group's prefixes to look at again.
    marks: Vec<IpNet>,
    /// The latest change of each prefix.
    last: HashMap<IpNet, usize>,
    /// The best path of each prefix that changed in this poll, for export.
    bests: HashMap<IpNet, Option<Route>>,
    /// Where a flush's prefixes sit in the RIB and in the Adj-RIB-Out.
    found: Vec<(Option<Position>, Option<Position>)>,
    /// Prefix lists of the attribute groups a flush sends.
    nlri: Vec<Vec<Nlri>>,
}

#[derive(Debug)]
pub struct Speaker {
    config: SpeakerConfig,
    rib: Rib,
    /// The RIB's peer for the routes we originate.
    local: PeerId,
    /// Indexed by the peer's RIB id.
    peers: Vec<Option<Peer>>,
    deferral: Option<Deferral<PeerId>>,
    /// The first route selection has run (no deferral, or it ended).
    selected: bool,
    /// Exported attribute sets, shared by every group's Adj-RIB-Out.
    exports: AttrTable,
    /// Peers that are sent alike, each group with one Adj-RIB-Out.
    groups: adj_out::Groups,
    actions: Vec<Action>,
    best_changes: Vec<BestChange>,
    /// Buffers kept from one pass to the next (see [`Rib::take_changes_into`]).
    scratch: Scratch,
    rng: u64,
    /// The RIB's clock counts seconds from here.
    epoch: Instant,
}

impl Speaker {
    pub fn new(now: Instant, config: SpeakerConfig) -> Self {
        let mut rib = Rib::new(config.decision);
        let local = rib.add_peer(PeerInfo {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            router_id: config.router_id,
            ebgp: false,
            local: true,
        });
        let deferral = config
            .selection_deferral
            .map(|limit| Deferral::new(now, limit));
        Speaker {
            rng: u64::from(u32::from(config.router_id)) | 1,
            selected: deferral.is_none(),
            config,
            rib,
            local,
            peers: Vec::new(),
            deferral,
            exports: AttrTable::default(),
            groups: adj_out::Groups::default(),
            actions: Vec::new(),
            best_changes: Vec::new(),
            scratch: Scratch::default(),
            epoch: now,
        }
    }

    /// `now` on the RIB's clock, which [`crate::rib::Path::since`] uses.
    pub fn clock(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX)
    }

    fn tell_time(&mut self, now: Instant) {
        let clock = self.clock(now);
        self.rib.set_clock(clock);
    }

    pub fn config(&self) -> &SpeakerConfig {
        &self.config
    }

    /// The RIB, for looking at (`global rib`, `neighbor adj-in`).
    pub fn rib(&self) -> &Rib {
        &self.rib
    }

    /// The RIB peer that holds the routes this speaker originates.
    pub fn local_peer(&self) -> PeerId {
        self.local
    }

    /// Whether the first route selection has run: at once, or once a
    /// restart's deferral is over.
    pub fn selection_done(&self) -> bool {
        self.selected
    }

    /// Add a peer and start its session.
    pub fn add_peer(&mut self, now: Instant, config: PeerConfig) -> Result<PeerId, PeerError> {
        if self.peer_by_address(config.address).is_some() {
            return Err(PeerError::Duplicate(config.address));
        }
        let id = self.rib.add_peer(PeerInfo {
            address: config.address,
            router_id: Ipv4Addr::UNSPECIFIED,
            ebgp: !config.session.ibgp(),
            local: false,
        });
        let mut session = config.session.clone();
        // A restarting speaker says so in its OPENs until selection ran.
        session.restarting = !self.selected && session.graceful_restart.is_some();
        let import = ImportPolicy {
            cluster_id: self.config.cluster_id,
            prefixes: config.prefixes.clone(),
            max_prefixes: config.max_prefixes,
            ..ImportPolicy::new(self.config.local_as, self.config.router_id)
        };
        let peer = Peer::new(config, session, import);
        let slot = id as usize;
        if self.peers.len() <= slot {
            self.peers.resize_with(slot + 1, || None);
        }
        let start = !peer.config.admin_down;
        self.peers[slot] = Some(peer);
        if start {
            self.session_event(now, id, Event::Start);
        }
        Ok(id)
    }

    /// Close the peer's session with Cease / Peer De-configured and forget
    /// it and its routes.
    pub fn remove_peer(&mut self, now: Instant, id: PeerId) -> Result<(), PeerError> {
        let cease = Notification::new(
            crate::wire::Cause::Cease(CeaseSubcode::PeerDeconfigured),
            bytes::Bytes::new(),
        );
        self.peer(id).ok_or(PeerError::Unknown(id))?;
        self.stop_all(now, id, Event::Fail(cease));
        if let Some(d) = &mut self.deferral {
            d.peer_down(&id);
        }
        adj_out::leave(self, id);
        if let Some(slot) = self.peers.get_mut(id as usize) {
            *slot = None;
        }
        self.rib.remove_peer(id);
        Ok(())
    }

    /// Start a stopped session (`neighbor ADDR enable`).
    pub fn start_peer(&mut self, now: Instant, id: PeerId) -> Result<(), PeerError> {
        self.peer(id).ok_or(PeerError::Unknown(id))?;
        self.session_event(now, id, Event::Start);
        Ok(())
    }

    /// Close the session with Cease / Administrative Shutdown and `message`
    /// (RFC 9003), and keep it down (`neighbor ADDR shutdown`).
    pub fn stop_peer(&mut self, now: Instant, id: PeerId, message: &str) -> Result<(), PeerError> {
        self.peer(id).ok_or(PeerError::Unknown(id))?;
        let message = message.to_string();
        self.stop_all(now, id, Event::Stop { message });
        Ok(())
    }

    /// Close the session, because this speaker is going away to restart,
    /// so that a peer with graceful restart keeps our routes until we are
    /// back: with no NOTIFICATION at all, or with the N-bit on both sides a
    /// Cease that is never a Hard Reset (see [`Event::StopForRestart`]).
    pub fn stop_peer_for_restart(
        &mut self,
        now: Instant,
        id: PeerId,
        message: &str,
    ) -> Result<(), PeerError> {
        self.peer(id).ok_or(PeerError::Unknown(id))?;
        let message = message.to_string();
        self.stop_all(now, id, Event::StopForRestart { message });
        Ok(())
    }

    /// Close the session with Cease / Administrative Reset and start it
    /// again at once (`neighbor ADDR reset`).
    pub fn reset_peer(&mut self, now: Instant, id: PeerId, message: &str) -> Result<(), PeerError> {
        self.peer(id).ok_or(PeerError::Unknown(id))?;
        let n = Notification::shutdown(CeaseSubcode::AdministrativeReset, message);
        self.stop_all(now, id, Event::Fail(n));
        self.session_event(now, id, Event::Start);
        Ok(())
    }

    /// The peer's BFD session went down (RFC 5882 §3.2): the path to it is
    /// dead. Close the session with Cease / BFD Down (RFC 9384), withdraw
    /// its routes at once, and try again as after any failure. Where both
    /// sides do graceful restart for NOTIFICATIONs (RFC 8538) the Cease
    /// goes as a Hard Reset, our choice: a dead path is no restart, and
    /// neither side should keep the other's routes over it.
    pub fn bfd_down(&mut self, now: Instant, id: PeerId) -> Result<(), PeerError> {
        self.peer(id).ok_or(PeerError::Unknown(id))?;
        let n = Notification::new(
            crate::wire::Cause::Cease(CeaseSubcode::BfdDown),
            bytes::Bytes::new(),
        );
        self.stop_all(now, id, Event::Fail(n));
        Ok(())
    }

    /// Ask the peer to send its routes again (RFC 2918), for the families
    /// both sides have; `false` when the peer does not do route refresh.
    pub fn soft_reset_in(&mut self, id: PeerId) -> Result<bool, PeerError> {
        let peer = self.peer(id).ok_or(PeerError::Unknown(id))?;
        let families = match &peer.negotiated {
            Some(neg) if neg.route_refresh && peer.main.id.is_some() => neg.families.clone(),
            _ => return Ok(false),
        };
        for family in families {
            let ask = RouteRefresh::new(family, RouteRefreshSubtype::Normal);
            conn::send(self, id, Message::RouteRefresh(ask));
        }
        Ok(true)
    }

    /// Send the peer everything again, as if it had asked (`softreset out`).
    pub fn soft_reset_out(&mut self, id: PeerId) -> Result<(), PeerError> {
        let peer = self.peers.get_mut(id as usize).and_then(Option::as_mut);
        let peer = peer.ok_or(PeerError::Unknown(id))?;
        if let Some(neg) = &peer.negotiated {
            peer.out.refresh.extend(neg.families.iter().copied());
        }
        Ok(())
    }

    /// The peer configured with this address: the driver asks it of every
    /// incoming connection, and closes those that have none.
    pub fn peer_by_address(&self, address: IpAddr) -> Option<PeerId> {
        self.peers
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.config.address == address))
            .map(|i| i as PeerId)
    }

    /// Originate `prefix` with these attributes (ORIGIN IGP and an empty
    /// AS_PATH are added when missing). The next hop is ours on each
    /// session, unless `next_hop` names another.
    pub fn originate(
        &mut self,
        now: Instant,
        prefix: IpNet,
        attributes: &[PathAttribute],
        next_hop: IpAddr,
    ) {
        self.tell_time(now);
        let mut list: Vec<PathAttribute> = attributes.to_vec();
        if !list.iter().any(|a| a.type_code() == AttrType::Origin) {
            list.push(PathAttribute::new(AttrValue::Origin(Origin::Igp)));
        }
        if !list.iter().any(|a| a.type_code() == AttrType::AsPath) {
            list.push(PathAttribute::new(AttrValue::AsPath(AsPath::default())));
        }
        list.sort_by_key(|a| u8::from(a.type_code()));
        let next_hop = match (prefix, next_hop) {
            (_, IpAddr::V4(a)) if !a.is_unspecified() => NextHop::V4(a),
            (_, IpAddr::V6(global)) if !global.is_unspecified() => NextHop::V6 {
                global,
                link_local: None,
            },
            (IpNet::V4(_), _) => NextHop::V4(Ipv4Addr::UNSPECIFIED),
            (IpNet::V6(_), _) => NextHop::V6 {
                global: Ipv6Addr::UNSPECIFIED,
                link_local: None,
            },
        };
        let nlri = [crate::wire::Nlri::new(prefix.trunc())];
        self.rib
            .announce(self.local, &nlri, PathAttrs::new(&list, next_hop));
    }

    /// Stop originating `prefix`; `false` if it was not.
    pub fn withdraw_origin(&mut self, prefix: IpNet) -> bool {
        let prefix = prefix.trunc();
        let had = self.rib.paths(&prefix).iter().any(|p| p.peer == self.local);
        self.rib
            .withdraw(self.local, &[crate::wire::Nlri::new(prefix)]);
        had
    }

    /// Whether, and at what cost, a next hop can be reached.
    pub fn set_next_hop(&mut self, next_hop: IpAddr, reach: Reachability) {
        self.rib.set_next_hop(next_hop, reach);
    }

    /// Something happened on one of the peer's connections.
    pub fn handle(&mut self, now: Instant, id: PeerId, input: Input) {
        if self.peer(id).is_none() {
            // A connection of a peer removed meanwhile.
            if let Input::Connected { conn, .. } | Input::Accepted { conn, .. } = input {
                self.actions.push(Action::Close { peer: id, conn });
            }
            return;
        }
        self.tell_time(now);
        conn::handle(self, now, id, input);
    }

    /// Run what is due, work out what each peer must be sent, and return
    /// everything the driver must do, in order.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        self.tell_time(now);
        self.run_timers(now);
        self.select(now);
        adj_out::begin_refreshes(self);
        let mut sources = None;
        for g in self.groups.ids() {
            flush::flush(self, now, g, &mut sources);
        }
        adj_out::merge_fresh(self);
        let bests = &mut self.scratch.bests;
        if bests.capacity() > 16 * 1024 {
            *bests = HashMap::default();
        } else {
            bests.clear();
        }
        std::mem::take(&mut self.actions)
    }

    /// When [`Speaker::poll`] next has something to do by itself.
    pub fn poll_at(&self) -> Option<Instant> {
        let peers = self.peers.iter().flatten().flat_map(|p| {
            [
                p.main.session.poll_at(),
                p.rival.as_ref().and_then(|r| r.session.poll_at()),
                p.helper.poll_at(),
            ]
        });
        let groups = self
            .groups
            .iter()
            .map(|g| g.out.mrai_until.filter(|_| !g.out.dirty.is_empty()));
        peers
            .chain(groups)
            .chain([self.deferral.as_ref().and_then(Deferral::poll_at)])
            .flatten()
            .min()
    }

    /// The connections whose hold timer has run out, for the driver to say
    /// which of them have the peer's bytes waiting ([`Input::InputWaiting`])
    /// before the next [`Speaker::poll`] ends their sessions.
    pub fn hold_due(&self, now: Instant) -> Vec<(PeerId, ConnId)> {
        let mut due = Vec::new();
        for (id, peer) in self.peers.iter().enumerate() {
            let Some(peer) = peer else { continue };
            for c in std::iter::once(&peer.main).chain(peer.rival.as_ref()) {
                if let Some(conn) = c.id.filter(|_| c.session.hold_due(now)) {
                    due.push((id as PeerId, conn));
                }
            }
        }
        due
    }

    /// Best-path changes made and not yet taken: a driver taking in a
    /// burst of UPDATEs polls when this grows, so changes do not pile up.
    pub fn pending_changes(&self) -> usize {
        self.rib.pending_changes() + self.best_changes.len()
    }

    /// The changes of best path since the last call, one per prefix (the
    /// latest), for the FIB and SNAT. Routes of [`Speaker::local_peer`] are
    /// our own.
    pub fn take_best_changes(&mut self) -> Vec<BestChange> {
        let last = &mut self.scratch.last;
        last.clear();
        for (i, c) in self.best_changes.iter().enumerate() {
            last.insert(c.prefix, i);
        }
        let mut out = Vec::with_capacity(last.len());
        out.extend(
            self.best_changes
                .drain(..)
                .enumerate()
                .filter(|(i, c)| last.get(&c.prefix) == Some(i))
                .map(|(_, c)| c),
        );
        keep_turn(&mut self.best_changes);
        if last.capacity() > 16 * 1024 {
            *last = HashMap::default();
        }
        out
    }

    /// Forget the changes of best path since the last call, for a driver
    /// that has nobody to give them to.
    pub fn discard_best_changes(&mut self) {
        self.best_changes.clear();
        keep_turn(&mut self.best_changes);
    }

    /// Bytes the speaker's and the RIB's buffers keep from one pass to the
    /// next (a pass of thousands of changes grows them to megabytes).
    pub fn buffers_held(&self) -> usize {
        let s = &self.scratch;
        self.rib.buffers_held()
            + s.changes.capacity() * size_of::<BestChange>()
            + self.best_changes.capacity() * size_of::<BestChange>()
            + s.learned.capacity() * size_of::<Option<(PeerId, bool, bool)>>()
            + s.marks.capacity() * size_of::<IpNet>()
            + s.found.capacity() * size_of::<(Option<Position>, Option<Position>)>()
            + (s.last.capacity() + s.bests.capacity()) * size_of::<(IpNet, Option<Route>)>()
    }

    /// Let those buffers go, once a burst is over: the next burst grows
    /// them again, and what a burst took does not stay for good. Changes
    /// not yet taken are kept.
    pub fn release_buffers(&mut self) {
        self.scratch = Scratch::default();
        if self.best_changes.is_empty() {
            self.best_changes = Vec::new();
        }
        self.rib.release_buffers();
    }

    /// Every peer, for `neighbor`.
    pub fn peers(&self) -> impl Iterator<Item = PeerStatus<'_>> {
        (0..self.peers.len() as PeerId).filter_map(|id| self.status(id))
    }

    /// One peer, for `neighbor ADDR`.
    pub fn status(&self, id: PeerId) -> Option<PeerStatus<'_>> {
        let p = self.peer(id)?;
        let advertised = adj_out::counts(self, p);
        Some(p.status(id, &self.rib, family_counts(&p.rejected), advertised))
    }

    /// The update group the peer is in while Established: peers in one
    /// group share one Adj-RIB-Out and are sent the same UPDATEs.
    pub fn update_group(&self, id: PeerId) -> Option<usize> {
        self.peer(id)?.out.group
    }

    /// What the peer was sent and not withdrawn: its Adj-RIB-Out.
    pub fn adj_rib_out(&self, id: PeerId) -> impl Iterator<Item = (IpNet, &Arc<PathAttrs>)> {
        adj_out::routes(self, id)
    }

    /// Whether import policy turned away the peer's path to `prefix`.
    pub fn is_rejected(&self, id: PeerId, prefix: IpNet, path_id: u32) -> bool {
        self.peer(id)
            .is_some_and(|p| p.rejected.contains_key(&(prefix, path_id)))
    }

    /// The peer's routes that import policy turned away, and why.
    pub fn rejected(&self, id: PeerId) -> impl Iterator<Item = (&IpNet, u32, Rejection)> {
        self.peer(id)
            .into_iter()
            .flat_map(|p| p.rejected.iter().map(|((n, id), r)| (n, *id, r.why)))
    }

    /// The attributes of a route import policy turned away, as the peer
    /// sent them.
    pub fn rejected_attrs(
        &self,
        id: PeerId,
        prefix: IpNet,
        path_id: u32,
    ) -> Option<&Arc<PathAttrs>> {
        Some(&self.peer(id)?.rejected.get(&(prefix, path_id))?.attrs)
    }

    fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(id as usize)?.as_ref()
    }

    fn peer_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.peers.get_mut(id as usize)?.as_mut()
    }

    /// Give an event to the peer's main session.
    fn session_event(&mut self, now: Instant, id: PeerId, event: Event) {
        let Some(peer) = self.peer_mut(id) else {
            return;
        };
        let out = peer.main.session.handle(now, event);
        conn::carry(self, now, id, conn::Role::Main, out);
    }

    /// Stop or fail both sessions of a peer (a collision may be under way).
    fn stop_all(&mut self, now: Instant, id: PeerId, event: Event) {
        if let Some(rival) = self.peer_mut(id).and_then(|p| p.rival.as_mut()) {
            let out = rival.session.handle(
                now,
                Event::Stop {
                    message: String::new(),
                },
            );
            conn::carry(self, now, id, conn::Role::Rival, out);
        }
        self.session_event(now, id, event);
    }

    fn run_timers(&mut self, now: Instant) {
        for id in 0..self.peers.len() as PeerId {
            let Some(peer) = self.peer_mut(id) else {
                continue;
            };
            let out = peer.main.session.tick(now);
            conn::carry(self, now, id, conn::Role::Main, out);
            if let Some(rival) = self.peer_mut(id).and_then(|p| p.rival.as_mut()) {
                let out = rival.session.tick(now);
                conn::carry(self, now, id, conn::Role::Rival, out);
            }
            if let Some(peer) = self.peer_mut(id) {
                for family in peer.helper.tick(now) {
                    self.rib.sweep_stale(id, family);
                }
            }
        }
    }

    /// Route selection's results: to the FIB's queue and to every peer's
    /// Adj-RIB-Out as prefixes to look at again — once selection may run.
    fn select(&mut self, now: Instant) {
        if !self.selected {
            let any_up = self.peers.iter().flatten().any(|p| p.negotiated.is_some());
            let ready = self.deferral.as_mut().is_none_or(|d| d.ready(now, any_up));
            if !ready {
                return;
            }
            self.selected = true;
            // From now on OPENs no longer claim a restart.
            for peer in self.peers.iter_mut().flatten() {
                peer.main.session.set_restarting(false);
            }
            // Peers that came up meanwhile get their first table now.
            adj_out::mark_everything(self);
        }
        let mut changes = std::mem::take(&mut self.scratch.changes);
        self.rib.take_changes_into(&mut changes);
        if changes.is_empty() {
            self.scratch.changes = changes;
            return;
        }
        // Each group marks what its members may have to hear of.
        let (local, rib, peers) = (self.local, &self.rib, &self.peers);
        let client = |id: PeerId| {
            peers
                .get(id as usize)
                .and_then(Option::as_ref)
                .is_some_and(|p| p.config.rr_client)
        };
        let learned = &mut self.scratch.learned;
        learned.clear();
        learned.extend(changes.iter().map(|c| {
            let best = c.best.as_ref()?;
            let ebgp = rib.peer(best.peer).is_some_and(|i| i.ebgp);
            Some((best.peer, ebgp || best.peer == local, client(best.peer)))
        }));
        let marks = &mut self.scratch.marks;
        let marked = adj_out::mark_changes(&mut self.groups, &changes, learned, marks);
        // The new best paths, for the flush of the peers just marked.
        if marked {
            let bests = &mut self.scratch.bests;
            bests.reserve(changes.len());
            for c in &changes {
                bests.insert(c.prefix, c.best.clone());
            }
        }
        move_all(&mut changes, &mut self.best_changes);
        keep_turn(&mut changes);
        self.scratch.changes = changes;
    }

    /// 75% to 100% of `base` (RFC 4271 §10 jitter, for MRAI).
    fn jitter(&mut self, base: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        base.mul_f64(0.75 + 0.25 * (self.rng % 1_000_001) as f64 / 1_000_000.0)
    }
}

/// Per family (IPv4, IPv6 unicast), how many entries of a rejected set.
fn family_counts(rejected: &HashMap<(IpNet, u32), peer::TurnedAway>) -> [usize; 2] {
    let mut counts = [0, 0];
    for (prefix, _) in rejected.keys() {
        counts[usize::from(Family::of(prefix) == Family::IPV6_UNICAST)] += 1;
    }
    counts
}
