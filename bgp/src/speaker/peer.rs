//! What the speaker keeps per peer, and the view of it the agent shows.

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;

use super::adj_out::Member;
use super::{ConnId, PeerConfig};
use crate::policy::{ImportPolicy, Rejection};
use crate::restart::Helper;
use crate::rib::{PeerId, Rib};
use crate::session::{Down, Negotiated, Session, SessionConfig, State};
use crate::wire::Family;

/// One session on one connection.
#[derive(Debug)]
pub(super) struct Conn {
    pub session: Session,
    /// The connection, once there is one.
    pub id: Option<ConnId>,
    /// We opened it (or are opening it); it is the peer's otherwise.
    pub outgoing: bool,
    /// Our address on it, with the prefix length of its interface.
    pub local: Option<IpNet>,
}

impl Conn {
    pub fn new(session: Session) -> Self {
        Conn {
            session,
            id: None,
            outgoing: false,
            local: None,
        }
    }
}

/// How much went through a peer's session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub updates_received: u64,
    pub updates_sent: u64,
    /// Times the session reached Established.
    pub established: u64,
    /// UPDATEs whose errors RFC 7606 let the session survive.
    pub update_errors: u64,
    /// Routes that could not be encoded for the peer (an attribute set
    /// larger than a message), so were not sent.
    pub encode_errors: u64,
    /// Withdrawals of prefixes the peer had not announced (or had
    /// withdrawn already).
    pub duplicate_withdraws: u64,
    /// UPDATEs whose routes RFC 7606 made withdrawals, and those routes.
    pub treat_as_withdraw_updates: u64,
    pub treat_as_withdraw_prefixes: u64,
    /// UPDATEs import turned away for a loop (RFC 4271 §9.1.2, RFC 4456
    /// §8): our AS in the AS_PATH, our router id as ORIGINATOR_ID, our
    /// cluster id in the CLUSTER_LIST.
    pub as_path_loops: u64,
    pub originator_loops: u64,
    pub cluster_loops: u64,
}

/// A route import policy turned away: why, and its attributes (a
/// monitoring station is owed the route as the peer sent it).
#[derive(Debug, Clone)]
pub struct TurnedAway {
    pub why: Rejection,
    pub attrs: std::sync::Arc<crate::rib::PathAttrs>,
}

#[derive(Debug)]
pub(super) struct Peer {
    pub config: PeerConfig,
    pub import: ImportPolicy,
    /// The session that counts: the one that is or will be Established.
    pub main: Conn,
    /// A second session while two connections collide (RFC 4271 §6.8).
    pub rival: Option<Conn>,
    pub helper: Helper,
    /// What the Established session agreed on.
    pub negotiated: Option<Negotiated>,
    /// When the session last went up or down.
    pub since: Option<Instant>,
    pub last_down: Option<Down>,
    /// Its part in an update group while Established.
    pub out: Member,
    /// Routes import policy turned away, by prefix and path id.
    pub rejected: HashMap<(IpNet, u32), TurnedAway>,
    /// Families RFC 7606 turned off for this session (AFI/SAFI disable).
    pub disabled: Vec<Family>,
    /// Families whose End-of-RIB came in this session.
    pub end_of_rib: Vec<Family>,
    pub counters: Counters,
}

impl Peer {
    pub fn new(config: PeerConfig, session: SessionConfig, import: ImportPolicy) -> Self {
        Peer {
            helper: Helper::new(config.stale_time),
            main: Conn::new(Session::new(session)),
            rival: None,
            config,
            import,
            negotiated: None,
            since: None,
            last_down: None,
            out: Member::default(),
            rejected: HashMap::default(),
            disabled: Vec::new(),
            end_of_rib: Vec::new(),
            counters: Counters::default(),
        }
    }

    pub fn status(
        &self,
        id: PeerId,
        rib: &Rib,
        rejected: [usize; 2],
        advertised: [usize; 2],
    ) -> PeerStatus<'_> {
        let families = [Family::IPV4_UNICAST, Family::IPV6_UNICAST];
        let accepted = families.map(|f| rib.peer_path_count(id, f));
        PeerStatus {
            id,
            config: &self.config,
            state: self.main.session.state(),
            enabled: self.main.session.enabled(),
            negotiated: self.negotiated.as_ref(),
            local_address: self.main.local.map(|l| l.addr()),
            since: self.since,
            last_down: self.last_down.as_ref(),
            counters: &self.counters,
            accepted,
            received: [accepted[0] + rejected[0], accepted[1] + rejected[1]],
            advertised,
            stale: self.helper.stale().copied().collect(),
            end_of_rib: &self.end_of_rib,
        }
    }
}

/// A peer as `neighbor` shows it.
#[derive(Debug, Clone)]
pub struct PeerStatus<'a> {
    pub id: PeerId,
    pub config: &'a PeerConfig,
    pub state: State,
    /// Started and not shut down by the operator.
    pub enabled: bool,
    pub negotiated: Option<&'a Negotiated>,
    pub local_address: Option<IpAddr>,
    /// When the session last went up or down.
    pub since: Option<Instant>,
    pub last_down: Option<&'a Down>,
    pub counters: &'a Counters,
    /// Per family, IPv4 then IPv6 unicast: routes in the RIB from the peer,
    pub accepted: [usize; 2],
    /// those plus the ones policy turned away,
    pub received: [usize; 2],
    /// and routes in its Adj-RIB-Out.
    pub advertised: [usize; 2],
    /// Families kept stale across the peer's restart.
    pub stale: Vec<Family>,
    pub end_of_rib: &'a [Family],
}
