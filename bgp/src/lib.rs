//! The BGP-4 protocol core of podbgp, sans-IO: no sockets, no clock, no
//! runtime. Bytes and time come in as arguments; what must happen comes out
//! as values that the `agent` carries out.
//!
//! # How the crate is split
//! - [`wire`]: the message codec. Framing, OPEN with capabilities, UPDATE
//!   with path attributes, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH; typed
//!   errors that map to NOTIFICATIONs and RFC 7606 actions. `nom` is private
//!   to it; encoding writes into `bytes::BytesMut`.
//! - [`rib`]: Adj-RIB-In and Loc-RIB in one table, interned attribute sets,
//!   the decision process with the reason each losing path lost, and the
//!   stream of best-path changes.
//! - [`session`]: one session's finite state machine (RFC 4271 §8): events
//!   and the current time in, messages to send and decisions out; timers
//!   are deadlines the driver polls; OPEN checks, capability negotiation,
//!   collision resolution.
//! - [`export`]: what each peer is sent and with which attributes: split
//!   horizon, route reflection, eBGP and iBGP rules, NO_EXPORT /
//!   NO_ADVERTISE.
//! - [`restart`]: graceful restart in both roles: which routes a helper
//!   keeps stale and when it sweeps them; a restarting speaker's deferral
//!   of route selection until End-of-RIB.
//! - [`policy`]: import checks: AS_PATH, ORIGINATOR_ID and CLUSTER_LIST
//!   loops, prefix lists, maximum prefixes.
//! - [`speaker`]: the owner of it all — every peer's sessions (two while
//!   connections collide), import into the RIB, the Adj-RIBs-Out that
//!   peers exporting alike share (update groups) with packed UPDATEs,
//!   End-of-RIB and MRAI, graceful restart in both roles — driven by
//!   connection events and `poll(now)`.
//!
//! # RFCs supported by the codec
//! - RFC 4271 BGP-4: messages, path attributes, error codes.
//! - RFC 4760 multiprotocol extensions: MP_REACH_NLRI / MP_UNREACH_NLRI for
//!   IPv4 and IPv6 unicast (other families kept as opaque bytes).
//! - RFC 2545 IPv6 next hops (global and link-local), RFC 8950 IPv4 NLRI with
//!   IPv6 next hop and its capability.
//! - RFC 5492 capabilities; RFC 9072 extended optional parameters length.
//! - RFC 2918 route refresh, RFC 7313 enhanced route refresh (BoRR / EoRR).
//! - RFC 8654 extended messages.
//! - RFC 4724 graceful restart capability and End-of-RIB, with the RFC 8538 N-bit.
//! - RFC 6793 4-octet AS numbers: AS4_PATH / AS4_AGGREGATOR and their merge.
//! - RFC 7911 ADD-PATH capability and path identifiers.
//! - RFC 1997 communities, RFC 4360 extended communities, RFC 8092 large communities.
//! - RFC 4456 ORIGINATOR_ID / CLUSTER_LIST; RFC 5065 confederation segments.
//! - RFC 7606 revised UPDATE error handling; RFC 4486 Cease subcodes;
//!   RFC 9003 shutdown communication; RFC 6608 FSM error subcodes;
//!   RFC 9687 Send Hold Timer Expired.
//! - The hostname (FQDN) capability of draft-walton-bgp-hostname-capability.

pub mod export;
pub mod policy;
pub mod restart;
pub mod rib;
pub mod session;
pub mod speaker;
pub mod table;
pub mod wire;
