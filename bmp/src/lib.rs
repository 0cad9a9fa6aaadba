//! The BGP Monitoring Protocol for podbgp, sans-IO: no sockets, no clock,
//! no runtime. The `agent` connects to each collector, hands the exporter
//! what happens (sessions up and down, routes, counters, with the time
//! they happened) and writes the bytes it is given.
//!
//! - [`message`]: every BMP message of RFC 7854 (and the Loc-RIB peer
//!   type of RFC 9069), encoded and decoded; a decoder error is a value,
//!   never a panic, whatever the bytes.
//! - [`exporter`]: one collector's session: the Initiation first, Peer Up
//!   and Peer Down, Route Monitoring, Statistics Reports, Termination; a
//!   bounded queue, and a session given up (and later started afresh
//!   from the tables) rather than a speaker slowed by its collector.

pub mod exporter;
pub mod message;

pub use exporter::{Config, Counters, Exporter, Monitoring};
pub use message::{DecodeError, DownReason, Message, PeerHeader, PeerType, Stat, Tlv};
