//! The table of sessions, and the demultiplexing of received packets to
//! them (RFC 5880 §6.3, RFC 5881 §3, RFC 5883 §3).
//!
//! Every session has a local discriminator, allocated here (non-zero, unique
//! among live sessions, random-looking so a restarted speaker is unlikely to
//! reuse its predecessor's) and used as its [`SessionId`]. A packet that
//! names one in Your Discriminator goes to that session; a packet with Your
//! Discriminator zero, which a peer sends until it has heard from us, goes
//! to the session of its addresses: (local, peer, interface) for a single
//! hop session, which RFC 5881 §3 binds to exactly such a triple, and
//! (local, peer) for a multihop one (RFC 5883), whose packets may arrive on
//! any interface.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use thiserror::Error;

use crate::packet::Control;
use crate::rng::Rng;
use crate::session::{Config, ConfigError, Discard, Output, Session};

/// The addresses a session runs between, which identify it (RFC 5881 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Our address: the source of what we send, the destination of what we receive.
    pub local: IpAddr,
    /// The peer's address.
    pub peer: IpAddr,
    /// The interface of a single hop session; `None` for one not bound to
    /// an interface, and always `None` for a multihop session.
    pub ifindex: Option<u32>,
    /// A multihop session (RFC 5883, UDP port 4784) rather than a single
    /// hop one (RFC 5881, UDP port 3784).
    pub multihop: bool,
}

impl Key {
    /// The key of a single hop session (RFC 5881), bound to an interface or not.
    pub fn single_hop(local: IpAddr, peer: IpAddr, ifindex: Option<u32>) -> Key {
        Key {
            local,
            peer,
            ifindex,
            multihop: false,
        }
    }

    /// The key of a multihop session (RFC 5883).
    pub fn multihop(local: IpAddr, peer: IpAddr) -> Key {
        Key {
            local,
            peer,
            ifindex: None,
            multihop: true,
        }
    }

    /// The key with the interface dropped where it does not count (multihop).
    fn normalized(self) -> Key {
        Key {
            ifindex: if self.multihop { None } else { self.ifindex },
            ..self
        }
    }

    /// Whether a packet received with key `received` may belong to this
    /// session: same addresses and kind, and the same interface if the
    /// session is bound to one.
    fn admits(&self, received: &Key) -> bool {
        self.local == received.local
            && self.peer == received.peer
            && self.multihop == received.multihop
            && (self.ifindex.is_none() || self.ifindex == received.ifindex)
    }
}

/// A session in a [`Sessions`] table: its local discriminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u32);

impl SessionId {
    /// The session's local discriminator (bfd.LocalDiscr), never zero.
    pub fn discriminator(self) -> u32 {
        self.0
    }
}

/// Why a session cannot be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AddError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A session with these addresses exists: RFC 5881 §3 allows one.
    #[error("a session with these addresses exists already")]
    Duplicate(SessionId),
}

/// Packets the table discarded before any session saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DemuxCounters {
    /// The packet failed a packet-only check (one built by hand).
    pub malformed: u64,
    /// Your Discriminator named no session.
    pub unknown_discriminator: u64,
    /// Your Discriminator was zero and no session had the addresses.
    pub no_session: u64,
    /// Your Discriminator named a session of other addresses.
    pub key_mismatch: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    key: Key,
    session: Session,
}

/// Every BFD session of the speaker, by discriminator and by addresses.
#[derive(Debug, Clone)]
pub struct Sessions {
    by_discr: BTreeMap<u32, Entry>,
    by_key: BTreeMap<Key, u32>,
    rng: Rng,
    counters: DemuxCounters,
}

impl Sessions {
    /// An empty table whose discriminators and jitter derive from `seed`.
    pub fn new(seed: u64) -> Sessions {
        Sessions {
            by_discr: BTreeMap::new(),
            by_key: BTreeMap::new(),
            rng: Rng::new(seed),
            counters: DemuxCounters::default(),
        }
    }

    /// Adds a session between `key`'s addresses, Down and sending from `now`.
    pub fn add(&mut self, now: Instant, key: Key, config: Config) -> Result<SessionId, AddError> {
        let key = key.normalized();
        if let Some(&discr) = self.by_key.get(&key) {
            return Err(AddError::Duplicate(SessionId(discr)));
        }
        config.validate()?;
        let discr = self.allocate();
        let session = Session::new(now, config, discr, self.rng.next_u64())?;
        self.by_discr.insert(discr, Entry { key, session });
        self.by_key.insert(key, discr);
        Ok(SessionId(discr))
    }

    /// Removes a session, handing it back.
    pub fn remove(&mut self, id: SessionId) -> Option<Session> {
        let entry = self.by_discr.remove(&id.0)?;
        self.by_key.remove(&entry.key);
        Some(entry.session)
    }

    /// The session `id`.
    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.by_discr.get(&id.0).map(|entry| &entry.session)
    }

    /// The session `id`, to change (AdminDown, timers).
    pub fn get_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.by_discr.get_mut(&id.0).map(|entry| &mut entry.session)
    }

    /// The addresses of session `id`: where its packets go.
    pub fn key(&self, id: SessionId) -> Option<&Key> {
        self.by_discr.get(&id.0).map(|entry| &entry.key)
    }

    /// The session between `key`'s addresses, if any.
    pub fn find(&self, key: &Key) -> Option<SessionId> {
        self.by_key
            .get(&key.normalized())
            .map(|&discr| SessionId(discr))
    }

    /// Every session, in discriminator order.
    pub fn iter(&self) -> impl Iterator<Item = (SessionId, &Key, &Session)> {
        self.by_discr
            .iter()
            .map(|(&discr, entry)| (SessionId(discr), &entry.key, &entry.session))
    }

    /// How many sessions there are.
    pub fn len(&self) -> usize {
        self.by_discr.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_discr.is_empty()
    }

    /// The table's discard counts.
    pub fn counters(&self) -> DemuxCounters {
        self.counters
    }

    /// Hands a packet received with addresses `key` to its session (§6.8.6):
    /// by Your Discriminator if non-zero, else by the addresses.
    pub fn receive(
        &mut self,
        now: Instant,
        key: &Key,
        packet: &Control,
    ) -> Result<SessionId, Discard> {
        if let Err(error) = packet.validate() {
            self.counters.malformed += 1;
            return Err(error.into());
        }
        let key = key.normalized();
        let discr = match packet.your_discriminator {
            0 => self.lookup_zero(&key).ok_or_else(|| {
                self.counters.no_session += 1;
                Discard::NoSession
            })?,
            yours => yours,
        };
        let Some(entry) = self.by_discr.get_mut(&discr) else {
            self.counters.unknown_discriminator += 1;
            return Err(Discard::UnknownDiscriminator(discr));
        };
        if !entry.key.admits(&key) {
            self.counters.key_mismatch += 1;
            return Err(Discard::KeyMismatch(discr));
        }
        entry.session.receive(now, packet)?;
        Ok(SessionId(discr))
    }

    /// Runs every session's timers due by `now`; their outputs, tagged.
    pub fn poll(&mut self, now: Instant) -> Vec<(SessionId, Output)> {
        let mut outputs = Vec::new();
        for (&discr, entry) in &mut self.by_discr {
            if entry.session.poll_at().is_some_and(|at| at <= now) {
                let id = SessionId(discr);
                outputs.extend(entry.session.poll(now).into_iter().map(|o| (id, o)));
            }
        }
        outputs
    }

    /// When [`Sessions::poll`] must next be called, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        self.by_discr
            .values()
            .filter_map(|entry| entry.session.poll_at())
            .min()
    }

    /// The session for a packet with Your Discriminator zero: the exact
    /// addresses, or for a single hop packet, a session bound to no interface.
    fn lookup_zero(&self, key: &Key) -> Option<u32> {
        let unbound = Key {
            ifindex: None,
            ..*key
        };
        self.by_key
            .get(key)
            .or_else(|| self.by_key.get(&unbound))
            .copied()
    }

    /// A fresh discriminator: random-looking, never zero, never one in use.
    fn allocate(&mut self) -> u32 {
        loop {
            // Truncation keeps 32 random bits; the loop ends as soon as one
            // is free, which with any table that fits in memory is at once.
            let discr = self.rng.next_u64() as u32;
            if discr != 0 && !self.by_discr.contains_key(&discr) {
                return discr;
            }
        }
    }
}
