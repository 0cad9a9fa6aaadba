//! A peer's connections: which session each belongs to, collisions between
//! two of them (RFC 4271 §6.8) decided here from the BGP identifiers, and
//! what a session going up or down does to the peer's routes.

use ipnet::IpNet;
use std::time::Instant;

use super::peer::Conn;
use super::{adj_out, import, Action, ConnId, Input, Speaker};
use crate::rib::{PeerId, PeerInfo};
use crate::session::{resolve_collision, Down, Event, Keep, Negotiated, Output, Session, State};
use crate::wire::{Context, Message};

/// Which of the peer's sessions outputs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Main,
    Rival,
}

pub(super) fn handle(sp: &mut Speaker, now: Instant, id: PeerId, input: Input) {
    match input {
        Input::Connected { conn, local } => connected(sp, now, id, conn, local),
        Input::Accepted { conn, local } => accepted(sp, now, id, conn, local),
        Input::ConnectFailed => sp.session_event(now, id, Event::ConnectFailed),
        Input::Closed { conn } => {
            if let Some(role) = role_of(sp, id, conn) {
                if let Some(c) = conn_mut(sp, id, role) {
                    c.id = None;
                }
                event(sp, now, id, role, Event::Closed);
            }
        }
        Input::Message { conn, message } => {
            if let Some(role) = role_of(sp, id, conn) {
                event(sp, now, id, role, Event::Message(message));
            }
        }
        Input::DecodeError { conn, error } => {
            if let Some(role) = role_of(sp, id, conn) {
                event(sp, now, id, role, Event::DecodeError(error));
            }
        }
        Input::InputWaiting { conn } => {
            if let Some(role) = role_of(sp, id, conn) {
                event(sp, now, id, role, Event::InputWaiting);
            }
        }
    }
}

/// Our connection attempt succeeded: it belongs to the main session if that
/// is still waiting for it.
fn connected(sp: &mut Speaker, now: Instant, id: PeerId, conn: ConnId, local: IpNet) {
    let Some(peer) = sp.peer_mut(id) else { return };
    if peer.main.session.state() != State::Connect || peer.main.id.is_some() {
        sp.actions.push(Action::Close { peer: id, conn });
        return;
    }
    peer.main.id = Some(conn);
    peer.main.outgoing = true;
    peer.main.local = Some(local);
    event(sp, now, id, Role::Main, Event::Connected);
}

/// The peer connected to us.
fn accepted(sp: &mut Speaker, now: Instant, id: PeerId, conn: ConnId, local: IpNet) {
    let Some(peer) = sp.peer_mut(id) else { return };
    match peer.main.session.state() {
        State::Idle | State::Active => {
            if !peer.main.session.enabled() {
                sp.actions.push(Action::Close { peer: id, conn });
                return;
            }
            take_conn(&mut peer.main, conn, local);
            event(sp, now, id, Role::Main, Event::Accepted);
        }
        // Our own attempt or connection is under way, or up: run both until
        // the OPEN on the new one tells which to keep (§6.8), or that the
        // peer restarted (see `collision`).
        State::Connect | State::OpenSent | State::OpenConfirm | State::Established => {
            if peer.rival.is_some() {
                sp.actions.push(Action::Close { peer: id, conn });
                return;
            }
            let mut config = peer.main.session.config().clone();
            config.passive = true;
            let mut rival = Conn::new(Session::new(config));
            take_conn(&mut rival, conn, local);
            let mut out = rival.session.handle(now, Event::Start);
            out.extend(rival.session.handle(now, Event::Accepted));
            peer.rival = Some(rival);
            carry(sp, now, id, Role::Rival, out);
        }
    }
}

fn take_conn(c: &mut Conn, conn: ConnId, local: IpNet) {
    c.id = Some(conn);
    c.outgoing = false;
    c.local = Some(local);
}

fn role_of(sp: &Speaker, id: PeerId, conn: ConnId) -> Option<Role> {
    let peer = sp.peer(id)?;
    if peer.main.id == Some(conn) {
        Some(Role::Main)
    } else if peer.rival.as_ref().is_some_and(|r| r.id == Some(conn)) {
        Some(Role::Rival)
    } else {
        None
    }
}

fn conn_mut(sp: &mut Speaker, id: PeerId, role: Role) -> Option<&mut Conn> {
    let peer = sp.peer_mut(id)?;
    match role {
        Role::Main => Some(&mut peer.main),
        Role::Rival => peer.rival.as_mut(),
    }
}

fn event(sp: &mut Speaker, now: Instant, id: PeerId, role: Role, event: Event) {
    let Some(c) = conn_mut(sp, id, role) else {
        return;
    };
    let out = c.session.handle(now, event);
    carry(sp, now, id, role, out);
}

/// Carry out what one of the peer's sessions asked for.
pub(super) fn carry(sp: &mut Speaker, now: Instant, id: PeerId, role: Role, outputs: Vec<Output>) {
    let mut open_confirm = false;
    for o in outputs {
        match o {
            Output::Connect => {
                if role == Role::Main {
                    sp.actions.push(Action::Connect { peer: id });
                }
            }
            Output::Send(message) => {
                let Some(c) = conn_mut(sp, id, role) else {
                    continue;
                };
                let Some(conn) = c.id else { continue };
                let ctx = c
                    .session
                    .negotiated()
                    .map_or_else(Context::modern, Negotiated::tx);
                sp.actions.push(Action::Send {
                    peer: id,
                    conn,
                    message,
                    ctx,
                });
            }
            Output::Close => {
                if let Some(conn) = conn_mut(sp, id, role).and_then(|c| c.id.take()) {
                    sp.actions.push(Action::Close { peer: id, conn });
                }
            }
            Output::State { from, to } => {
                if role == Role::Main {
                    sp.actions.push(Action::State { peer: id, from, to });
                }
                if to == State::OpenConfirm {
                    open_confirm = true;
                    if let Some(c) = conn_mut(sp, id, role) {
                        let rx = c.session.negotiated().map(Negotiated::rx);
                        if let (Some(conn), Some(rx)) = (c.id, rx) {
                            sp.actions.push(Action::Negotiated { peer: id, conn, rx });
                        }
                    }
                }
            }
            Output::Established(neg) => {
                if role == Role::Rival {
                    promote(sp, id);
                }
                up(sp, now, id, *neg);
            }
            Output::Down(reason) => {
                if role == Role::Main {
                    down(sp, now, id, &reason);
                    sp.actions.push(Action::Down { peer: id, reason });
                }
            }
            Output::Update(u) => import::update(sp, now, id, u),
            Output::RouteRefresh(r) => import::route_refresh(sp, id, r),
        }
    }
    if role == Role::Rival {
        if let Some(peer) = sp.peer_mut(id) {
            if peer
                .rival
                .as_ref()
                .is_some_and(|r| r.session.state() == State::Idle)
            {
                peer.rival = None;
            }
        }
    }
    if open_confirm {
        collision(sp, now, id, role);
    }
}

/// A session reached OpenConfirm, so it knows the peer's BGP identifier:
/// if the peer has a second session, one of the two must go (RFC 4271 §6.8).
fn collision(sp: &mut Speaker, now: Instant, id: PeerId, role: Role) {
    let (local_id, local_as) = (sp.config.router_id, sp.config.local_as);
    let Some(peer) = sp.peer_mut(id) else { return };
    let Some(rival) = &peer.rival else { return };
    let (this, other) = match role {
        Role::Main => (&peer.main, rival),
        Role::Rival => (rival, &peer.main),
    };
    if this.session.state() != State::OpenConfirm {
        return;
    }
    let loser = match other.session.state() {
        // The other has no connection yet (our attempt in flight): this one
        // is further along, keep it.
        State::Idle | State::Connect | State::Active => {
            if role == Role::Rival {
                promote(sp, id);
            }
            return;
        }
        // RFC 4271 §6.8: a collision with an Established session closes
        // the new connection. But an OPEN with the Restart State bit says
        // the peer restarted (RFC 4724 §4.2): the Established session is a
        // dead one, its routes kept as stale, and the new one takes over.
        State::Established => {
            let restarted = this
                .session
                .negotiated()
                .and_then(|n| n.peer_restart.as_ref())
                .is_some_and(|r| r.restarting);
            if role == Role::Rival && restarted {
                if let Some(old) = peer.main.id.take() {
                    sp.actions.push(Action::Close {
                        peer: id,
                        conn: old,
                    });
                }
                event(sp, now, id, Role::Main, Event::Closed);
                promote(sp, id);
                return;
            }
            role
        }
        State::OpenSent | State::OpenConfirm => {
            let Some(neg) = this.session.negotiated() else {
                return;
            };
            let keep = resolve_collision(local_id, local_as, neg.peer_id, neg.peer_as);
            let keep_outgoing = keep == Keep::Ours;
            if this.outgoing == keep_outgoing {
                other_role(role)
            } else {
                role
            }
        }
    };
    event(sp, now, id, loser, Event::CollisionLost);
    if loser == Role::Main {
        promote(sp, id);
    }
}

fn other_role(role: Role) -> Role {
    match role {
        Role::Main => Role::Rival,
        Role::Rival => Role::Main,
    }
}

/// The rival session becomes the main one; the old main one goes.
fn promote(sp: &mut Speaker, id: PeerId) {
    let Some(peer) = sp.peer_mut(id) else { return };
    let Some(mut rival) = peer.rival.take() else {
        return;
    };
    rival.session.set_passive(peer.config.session.passive);
    let from = peer.main.session.state();
    let to = rival.session.state();
    let old = std::mem::replace(&mut peer.main, rival);
    if let Some(conn) = old.id {
        sp.actions.push(Action::Close { peer: id, conn });
    }
    if from != to {
        sp.actions.push(Action::State { peer: id, from, to });
    }
}

/// The session is Established: the peer's routes are welcome, and it gets
/// our table, then End-of-RIB.
fn up(sp: &mut Speaker, now: Instant, id: PeerId, neg: Negotiated) {
    let ebgp = neg.peer_as != sp.config.local_as;
    let Some(peer) = sp.peer_mut(id) else { return };
    let info = PeerInfo {
        address: peer.config.address,
        router_id: neg.peer_id,
        ebgp,
        local: false,
    };
    let sweep = peer.helper.session_up(now, &neg);
    peer.since = Some(now);
    peer.counters.established += 1;
    peer.disabled.clear();
    peer.end_of_rib.clear();
    peer.rejected.clear();
    if let Some(d) = &mut sp.deferral {
        // A peer restarting too may hold its End-of-RIB until its own
        // selection has run, waiting for ours: it is waited for a moment
        // only, or two nodes restarting together would each sit out the
        // deferral timer (RFC 4724 §4.1).
        let restarting = neg.peer_restart.as_ref().is_some_and(|r| r.restarting);
        d.peer_up(now, id, &neg.families, restarting);
    }
    sp.rib.set_peer(id, info);
    for family in sweep {
        sp.rib.sweep_stale(id, family);
    }
    let Some(peer) = sp.peer_mut(id) else { return };
    peer.negotiated = Some(neg);
    adj_out::join(sp, id);
    sp.actions.push(Action::Up { peer: id });
}

/// The main session went down. If it was Established, the peer's routes
/// go, or stay as stale while it restarts (RFC 4724 §4.2).
fn down(sp: &mut Speaker, now: Instant, id: PeerId, reason: &Down) {
    let Some(peer) = sp.peers.get_mut(id as usize).and_then(Option::as_mut) else {
        return;
    };
    peer.last_down = Some(reason.clone());
    let Some(neg) = peer.negotiated.take() else {
        return;
    };
    peer.since = Some(now);
    let we_notify =
        peer.config.session.graceful_restart.is_some() && peer.config.session.gr_notification;
    let keep = peer.helper.session_down(now, &neg, we_notify, reason);
    peer.rejected.clear();
    adj_out::leave(sp, id);
    for family in neg.families {
        if keep.contains(&family) {
            sp.rib.mark_stale(id, family);
        } else {
            sp.rib.withdraw_family(id, family);
        }
    }
    if let Some(d) = &mut sp.deferral {
        d.peer_down(&id);
    }
}

/// Send `message` on the main session's connection, if it is Established.
pub(super) fn send(sp: &mut Speaker, id: PeerId, message: Message) {
    let Some(peer) = sp.peer(id) else { return };
    let (Some(neg), Some(conn)) = (&peer.negotiated, peer.main.id) else {
        return;
    };
    let ctx = neg.tx();
    sp.actions.push(Action::Send {
        peer: id,
        conn,
        message,
        ctx,
    });
}
