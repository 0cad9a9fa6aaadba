//! Graceful restart (RFC 4724, with the RFC 8538 N-bit) at the core level,
//! in both roles. Both are plain state with deadlines, like the session.
//!
//! As a helper, [`Helper`] says which of a peer's families to keep as stale
//! when its session drops, and when to sweep what was not refreshed: on the
//! peer's End-of-RIB, when it comes back without the family preserved, or
//! when the restart or stale time runs out.
//!
//! As the restarting side, [`Deferral`] holds back the first best-path pass
//! (and so the first FIB and export pass) until every peer has sent
//! End-of-RIB for every family, or a deadline passes (RFC 4724 §4.1).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::session::{Down, Negotiated};
use crate::wire::iana::CeaseSubcode;
use crate::wire::{Cause, Family};

/// The helper role for one peer.
#[derive(Debug, Clone)]
pub struct Helper {
    /// How long stale routes may wait for End-of-RIB once the peer is back.
    stale_time: Duration,
    stale: BTreeSet<Family>,
    /// The peer must be back by then (its advertised restart time).
    restart_by: Option<Instant>,
    /// Stale routes go by then, End-of-RIB or not.
    stale_by: Option<Instant>,
}

impl Helper {
    pub fn new(stale_time: Duration) -> Self {
        Helper {
            stale_time,
            stale: BTreeSet::new(),
            restart_by: None,
            stale_by: None,
        }
    }

    /// The families whose routes are stale now.
    pub fn stale(&self) -> impl Iterator<Item = &Family> {
        self.stale.iter()
    }

    /// The session went down. Returns the families whose routes to keep,
    /// marked stale; the peer's other routes go at once. `we_notify` says
    /// whether we advertised the N-bit ourselves.
    pub fn session_down(
        &mut self,
        now: Instant,
        session: &Negotiated,
        we_notify: bool,
        down: &Down,
    ) -> Vec<Family> {
        let Some(peer) = &session.peer_restart else {
            return Vec::new();
        };
        let both_notify = we_notify && peer.notification;
        let applies = match down {
            Down::Closed => true,
            // RFC 8538 §4: with the N-bit on both sides a NOTIFICATION keeps
            // routes too, except a Hard Reset.
            Down::Sent(n) | Down::Received(n) => {
                both_notify && n.cause != Cause::Cease(CeaseSubcode::HardReset)
            }
            Down::ConnectFailed => false,
        };
        if !applies || peer.restart_time == 0 {
            return Vec::new();
        }
        self.stale = peer
            .families
            .iter()
            .map(|(f, _)| *f)
            .filter(|f| session.families.contains(f))
            .collect();
        self.restart_by = Some(now + Duration::from_secs(u64::from(peer.restart_time)));
        self.stale_by = None;
        self.stale.iter().copied().collect()
    }

    /// The session is back. Returns the families to sweep now: those the
    /// peer no longer lists, or lists without forwarding state preserved
    /// (RFC 4724 §4.2).
    pub fn session_up(&mut self, now: Instant, session: &Negotiated) -> Vec<Family> {
        self.restart_by = None;
        let kept: Vec<Family> = session
            .peer_restart
            .iter()
            .flat_map(|r| r.families.iter())
            .filter(|(_, forwarding)| *forwarding)
            .map(|(f, _)| *f)
            .collect();
        let gone: Vec<Family> = self
            .stale
            .iter()
            .copied()
            .filter(|f| !kept.contains(f))
            .collect();
        for f in &gone {
            self.stale.remove(f);
        }
        self.stale_by = (!self.stale.is_empty()).then(|| now + self.stale_time);
        gone
    }

    /// End-of-RIB for `family`: sweep it if it was stale.
    pub fn end_of_rib(&mut self, family: Family) -> Option<Family> {
        let was = self.stale.remove(&family);
        if self.stale.is_empty() {
            self.stale_by = None;
        }
        was.then_some(family)
    }

    /// The next deadline.
    pub fn poll_at(&self) -> Option<Instant> {
        [self.restart_by, self.stale_by].into_iter().flatten().min()
    }

    /// The families to sweep because a deadline passed.
    pub fn tick(&mut self, now: Instant) -> Vec<Family> {
        let expired =
            self.restart_by.is_some_and(|t| t <= now) || self.stale_by.is_some_and(|t| t <= now);
        if !expired {
            return Vec::new();
        }
        self.restart_by = None;
        self.stale_by = None;
        std::mem::take(&mut self.stale).into_iter().collect()
    }
}

/// The restarting role: hold back route selection until the peers have
/// re-sent their tables, so the kept forwarding state is replaced in one go
/// and nothing is withdrawn for want of a route not yet re-learned.
#[derive(Debug, Clone)]
pub struct Deferral<P: Ord + Clone> {
    deadline: Instant,
    /// (peer, family) still owing End-of-RIB.
    waiting: BTreeSet<(P, Family)>,
    /// Peers restarting too, and until when they are waited for.
    restarting: BTreeMap<P, Instant>,
    done: bool,
}

/// How long a peer that says it is restarting too (the Restart State bit)
/// is waited for. RFC 4724 §4.1 leaves such peers out: one really
/// restarting holds its End-of-RIB until its own selection has run, which
/// may be waiting for ours. But FRR sets the bit for its first two minutes
/// after starting, restarting or not, and sends End-of-RIB at once: its
/// table is worth a short wait, not a deadlock.
pub const RESTARTING_PEER_WAIT: Duration = Duration::from_secs(3);

impl<P: Ord + Clone> Deferral<P> {
    /// Start deferring, for at most `limit` (RFC 4724's selection deferral timer).
    pub fn new(now: Instant, limit: Duration) -> Self {
        Deferral {
            deadline: now + limit,
            waiting: BTreeSet::new(),
            restarting: BTreeMap::new(),
            done: false,
        }
    }

    /// A peer's session came up with these families: wait for its
    /// End-of-RIBs; for `RESTARTING_PEER_WAIT` at most if it is
    /// `restarting` too.
    pub fn peer_up(&mut self, now: Instant, peer: P, families: &[Family], restarting: bool) {
        if !self.done {
            self.waiting
                .extend(families.iter().map(|f| (peer.clone(), *f)));
            if restarting {
                self.restarting.insert(peer, now + RESTARTING_PEER_WAIT);
            } else {
                self.restarting.remove(&peer);
            }
        }
    }

    /// A peer went away: nothing more to wait for from it.
    pub fn peer_down(&mut self, peer: &P) {
        self.waiting.retain(|(p, _)| p != peer);
        self.restarting.remove(peer);
    }

    pub fn end_of_rib(&mut self, peer: &P, family: Family) {
        self.waiting.remove(&(peer.clone(), family));
    }

    /// Whether selection may run: every End-of-RIB is in (after at least one
    /// peer came up), but for those of restarting peers waited for long
    /// enough, or the deadline passed. Once true it stays true.
    pub fn ready(&mut self, now: Instant, any_peer_up: bool) -> bool {
        if !self.done {
            let restarting = &self.restarting;
            let owed = self
                .waiting
                .iter()
                .any(|(p, _)| restarting.get(p).is_none_or(|until| now < *until));
            if (any_peer_up && !owed) || now >= self.deadline {
                self.done = true;
                self.waiting.clear();
                self.restarting.clear();
            }
        }
        self.done
    }

    pub fn poll_at(&self) -> Option<Instant> {
        let soonest = self
            .restarting
            .iter()
            .filter(|(p, _)| self.waiting.iter().any(|(w, _)| w == *p))
            .map(|(_, until)| *until)
            .min();
        (!self.done).then(|| soonest.map_or(self.deadline, |s| s.min(self.deadline)))
    }
}
