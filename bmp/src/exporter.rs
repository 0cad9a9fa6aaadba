//! The speaker's side of a BMP session (RFC 7854 §3.3), sans-IO: what
//! goes to the collector and in what order, in a bounded queue.
//!
//! The host opens the TCP connection and calls [`Exporter::connected`]:
//! the Initiation goes first. It then feeds the initial dump (a Peer Up
//! for each session already up and the routes of each monitored table,
//! each table closed by an End-of-RIB, RFC 7854 §5) and after it every
//! change as it happens, and writes what [`Exporter::poll_transmit`] hands it.
//!
//! A collector that reads slower than the speaker changes must not slow
//! the speaker: the queue holds at most `queue_limit` bytes. Past that the
//! queue is dropped whole and replaced by a Termination (out of
//! resources); the host closes the connection once it is written and
//! connects again later, and the new session starts from a fresh dump of
//! the tables — a resync, counted. Nothing is half-sent: the collector
//! sees a session end and another begin.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use bgp::wire::{Capability, Context, EncodeError, Family, Message as Bgp, Open, Update};
use bytes::{Bytes, BytesMut};

use crate::message::{termination, tlv, DownReason, Message, PeerHeader, Stat, Tlv};

/// What the collector is sent, set per collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Monitoring {
    /// Routes as each peer sent them, before import checks (RFC 7854).
    pub pre_policy: bool,
    /// Routes each peer sent that were accepted (RFC 7854, L flag).
    pub post_policy: bool,
    /// The speaker's best routes (RFC 9069).
    pub loc_rib: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub sys_name: String,
    pub sys_descr: String,
    /// Bytes the queue may hold before the session is given up.
    pub queue_limit: usize,
    pub monitoring: Monitoring,
}

/// What an exporter has done, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub messages: u64,
    pub bytes: u64,
    /// Sessions given up because the collector fell behind.
    pub resyncs: u64,
    /// Messages dropped with them.
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Disconnected,
    Up,
    /// The queue overflowed: a Termination is queued; nothing more is
    /// taken until the connection is closed and opened again.
    GivenUp,
}

#[derive(Debug)]
pub struct Exporter {
    config: Config,
    phase: Phase,
    queue: VecDeque<Bytes>,
    queued: usize,
    counters: Counters,
    buf: BytesMut,
}

impl Exporter {
    pub fn new(config: Config) -> Exporter {
        Exporter {
            config,
            phase: Phase::Disconnected,
            queue: VecDeque::new(),
            queued: 0,
            counters: Counters::default(),
            buf: BytesMut::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Whether messages are taken: connected and not given up.
    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    /// Whether the session was given up (the queue overflowed): once the
    /// queue is written, close the connection.
    pub fn given_up(&self) -> bool {
        self.phase == Phase::GivenUp
    }

    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// A connection to the collector is open: the Initiation is queued.
    /// The host then feeds the initial dump.
    pub fn connected(&mut self) {
        self.clear();
        self.phase = Phase::Up;
        let init = Message::Initiation(vec![
            Tlv::string(tlv::SYS_DESCR, &self.config.sys_descr),
            Tlv::string(tlv::SYS_NAME, &self.config.sys_name),
        ]);
        self.push(&init);
    }

    /// The connection is gone; whatever was queued goes with it.
    pub fn disconnected(&mut self) {
        self.clear();
        self.phase = Phase::Disconnected;
    }

    /// End the session: a Termination with `reason` (see
    /// [`termination`]) is the last message.
    pub fn terminate(&mut self, reason: u16) {
        if self.phase == Phase::Up {
            self.push(&termination_message(reason));
            self.phase = Phase::GivenUp;
        }
    }

    /// The next message to write.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        let m = self.queue.pop_front()?;
        self.queued -= m.len();
        self.counters.messages += 1;
        self.counters.bytes += m.len() as u64;
        Some(m)
    }

    /// A session came up (RFC 7854 §4.10): both OPENs, whole.
    pub fn peer_up(
        &mut self,
        peer: PeerHeader,
        (local_address, local_port): (IpAddr, u16),
        remote_port: u16,
        sent_open: &Open,
        received_open: &Open,
    ) -> Result<(), EncodeError> {
        let ctx = Context::modern();
        let sent_open = Bgp::Open(sent_open.clone()).to_bytes(&ctx)?;
        let received_open = Bgp::Open(received_open.clone()).to_bytes(&ctx)?;
        self.push(&Message::PeerUp {
            peer,
            local_address,
            local_port,
            remote_port,
            sent_open,
            received_open,
            information: Vec::new(),
        });
        Ok(())
    }

    /// The Loc-RIB instance is up (RFC 9069 §5.2): a Peer Up with an OPEN
    /// made for it (4-octet AS and the families, as both OPENs) and the
    /// table's name.
    pub fn loc_rib_up(
        &mut self,
        asn: u32,
        router_id: Ipv4Addr,
        families: &[Family],
        at: (u32, u32),
    ) -> Result<(), EncodeError> {
        let caps: Vec<Capability> = families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        let open = Bgp::Open(Open::new(asn, 0, router_id, caps)).to_bytes(&Context::modern())?;
        self.push(&Message::PeerUp {
            peer: PeerHeader::loc_rib(asn, router_id).at(at),
            local_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            local_port: 0,
            remote_port: 0,
            sent_open: open.clone(),
            received_open: open,
            information: vec![Tlv::string(tlv::TABLE_NAME, "global")],
        });
        Ok(())
    }

    /// A session went down (RFC 7854 §4.9).
    pub fn peer_down(&mut self, peer: PeerHeader, reason: DownReason) {
        self.push(&Message::PeerDown { peer, reason });
    }

    /// Routes of a table: each UPDATE, encoded with `ctx` (the session's
    /// own for a peer's routes), in a Route Monitoring message.
    pub fn route_monitoring(
        &mut self,
        peer: &PeerHeader,
        updates: &[Update],
        ctx: &Context,
    ) -> Result<(), EncodeError> {
        for u in updates {
            let mut bytes = std::mem::take(&mut self.buf);
            bytes.clear();
            Bgp::Update(u.clone()).encode(ctx, &mut bytes)?;
            self.push(&Message::RouteMonitoring {
                peer: peer.clone(),
                update: bytes.split().freeze(),
            });
            self.buf = bytes;
        }
        Ok(())
    }

    /// The end of a table's initial dump for `family` (RFC 7854 §5).
    pub fn end_of_rib(
        &mut self,
        peer: &PeerHeader,
        family: Family,
        ctx: &Context,
    ) -> Result<(), EncodeError> {
        self.route_monitoring(peer, &[Update::end_of_rib(family)], ctx)
    }

    /// A Statistics Report (RFC 7854 §4.8).
    pub fn statistics(&mut self, peer: PeerHeader, stats: Vec<Stat>) {
        self.push(&Message::StatisticsReport { peer, stats });
    }

    /// Queue a message while the session is up; past the limit, give the
    /// session up.
    fn push(&mut self, m: &Message) {
        if self.phase != Phase::Up {
            return;
        }
        let bytes = m.to_bytes();
        if self.queued + bytes.len() > self.config.queue_limit {
            self.counters.resyncs += 1;
            self.counters.dropped += self.queue.len() as u64 + 1;
            self.clear();
            let t = termination_message(termination::OUT_OF_RESOURCES).to_bytes();
            self.queued = t.len();
            self.queue.push_back(t);
            self.phase = Phase::GivenUp;
            return;
        }
        self.queued += bytes.len();
        self.queue.push_back(bytes);
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.queued = 0;
    }
}

fn termination_message(reason: u16) -> Message {
    Message::Termination(vec![Tlv {
        kind: tlv::REASON,
        value: Bytes::copy_from_slice(&reason.to_be_bytes()),
    }])
}
