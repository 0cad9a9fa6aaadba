//! The owner's side of the BGP4MP update log: each UPDATE a peer sends,
//! as it came, and each change of a session's state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgp::rib::PeerId;
use bgp::session::State;
use bgp::wire::mrt::Record;
use bgp::wire::{Message, Update};

use super::Owner;

/// RFC 6396 §4.4.1's numbering of the FSM states (RFC 4271's).
fn state_code(s: State) -> u16 {
    match s {
        State::Idle => 1,
        State::Connect => 2,
        State::Active => 3,
        State::OpenSent => 4,
        State::OpenConfirm => 5,
        State::Established => 6,
    }
}

impl Owner {
    /// The session's two ends: the peer's address and ours (unspecified
    /// while there is no connection), and both ASes.
    fn mrt_ends(&self, peer: PeerId) -> Option<(u32, u32, IpAddr, IpAddr)> {
        let s = self.speaker.status(peer)?;
        let address = s.config.address;
        let local = self
            .conns
            .values()
            .filter(|(p, _)| *p == peer)
            .find_map(|(_, h)| h.ends.map(|(l, _)| l.ip().to_canonical()))
            .unwrap_or(match address {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            });
        let peer_as = s.negotiated.map_or(s.config.session.peer_as, |n| n.peer_as);
        Some((peer_as, self.speaker.config().local_as, address, local))
    }

    /// An UPDATE the peer sent, for the update log.
    pub(super) fn mrt_update(&self, peer: PeerId, update: &Update) {
        let Some(log) = &self.mrt_log else {
            return;
        };
        let Some(ctx) = self
            .speaker
            .status(peer)
            .and_then(|s| s.negotiated.map(|n| n.rx()))
        else {
            return;
        };
        let Some((peer_as, local_as, address, local)) = self.mrt_ends(peer) else {
            return;
        };
        // As the peer encoded it: the same context decodes it back.
        let Ok(message) = Message::Update(update.clone()).to_bytes(&ctx) else {
            return;
        };
        log.offer(Record::Message {
            peer_as,
            local_as,
            interface: 0,
            peer: address,
            local,
            add_path: [
                bgp::wire::Family::IPV4_UNICAST,
                bgp::wire::Family::IPV6_UNICAST,
            ]
            .iter()
            .any(|f| ctx.add_path.get(*f)),
            message,
        });
    }

    /// A session changed state, for the update log.
    pub(super) fn mrt_state(&self, peer: PeerId, from: State, to: State) {
        let Some(log) = &self.mrt_log else {
            return;
        };
        let Some((peer_as, local_as, address, local)) = self.mrt_ends(peer) else {
            return;
        };
        log.offer(Record::StateChange {
            peer_as,
            local_as,
            interface: 0,
            peer: address,
            local,
            old: state_code(from),
            new: state_code(to),
        });
    }
}
