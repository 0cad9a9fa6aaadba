//! Bidirectional Forwarding Detection for podbgp, sans-IO: no sockets, no
//! clock, no runtime. Received packets and the current time come in as
//! arguments; packets to send, state changes and the events a client acts
//! on come out as values, which the `agent` carries out over UDP (port 3784
//! single hop, 4784 multihop, TTL 255) and hands to the BGP speaker.
//!
//! # How the crate is split
//! - [`packet`]: the Control packet codec, with the packet-only reception
//!   checks of RFC 5880 §6.8.6 as typed errors.
//! - [`session`]: one session's state machine and timers in Asynchronous
//!   mode: the three-way handshake, negotiated intervals with jitter, the
//!   detection time, Poll Sequences for timer changes, AdminDown; and the
//!   [`Event`]s that tell a client a failure from an administrative
//!   shutdown.
//! - [`Sessions`]: every session of the speaker, with discriminator
//!   allocation and the demultiplexing of received packets by Your
//!   Discriminator or by addresses and interface.
//!
//! # RFCs supported
//! - RFC 5880 BFD: the Control packet (§4.1), the state machine (§6.2),
//!   demultiplexing (§6.3), Poll Sequences (§6.5), the state variables and
//!   timer rules of §6.8.1-§6.8.4, reception (§6.8.6) and transmission
//!   (§6.8.7) of Control packets, Detect Mult changes (§6.8.12),
//!   administrative control (§6.8.16). Asynchronous mode only: this side
//!   never asks for Demand mode nor runs the Echo function, though a peer's
//!   Demand mode is honoured; no authentication (packets carrying it are
//!   discarded, §6.8.6).
//! - RFC 5881 BFD for IPv4 and IPv6, single hop: one session per (local
//!   address, peer address, interface) (§3); ports and TTL as constants.
//! - RFC 5883 multihop BFD: sessions keyed by (local, peer) alone.
//! - RFC 5882 generic application: a peer's AdminDown is not a failure
//!   (§3.2), so [`Event::PeerAdminDown`] is distinct from [`Event::Down`].

#![warn(missing_docs)]

pub mod packet;
mod rng;
pub mod session;
mod sessions;

pub use packet::{Control, Diag, Interval, PacketError, State};
pub use session::{Config, ConfigError, Counters, Discard, Event, Output, Session};
pub use sessions::{AddError, DemuxCounters, Key, SessionId, Sessions};

/// The UDP destination port of single hop Control packets (RFC 5881 §4).
pub const SINGLE_HOP_PORT: u16 = 3784;

/// The UDP destination port of multihop Control packets (RFC 5883 §5).
pub const MULTIHOP_PORT: u16 = 4784;

/// The range source ports must come from (RFC 5881 §4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// The IP TTL or hop limit single hop packets are sent with, and without
/// authentication must arrive with (RFC 5881 §5).
pub const TTL: u8 = 255;
