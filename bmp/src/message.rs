//! BMP messages (RFC 7854 §4, with the Loc-RIB peer type of RFC 9069):
//! built and encoded by the exporter, decoded by collectors and tests.
//!
//! A BGP message carried inside (an OPEN in Peer Up, a NOTIFICATION in
//! Peer Down, an UPDATE in Route Monitoring) is kept as its bytes, whole,
//! header included: this crate frames them and knows nothing of BGP's own
//! encoding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

/// The version this crate speaks.
pub const VERSION: u8 = 3;
/// Version, length, type.
pub const COMMON_HEADER_LEN: usize = 6;
/// Type, flags, distinguisher, address, AS, BGP identifier, timestamp.
pub const PEER_HEADER_LEN: usize = 42;
/// No message of ours comes near this; a collector refuses larger ones.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;

/// Message types (RFC 7854 §4.1).
pub mod kind {
    pub const ROUTE_MONITORING: u8 = 0;
    pub const STATISTICS_REPORT: u8 = 1;
    pub const PEER_DOWN: u8 = 2;
    pub const PEER_UP: u8 = 3;
    pub const INITIATION: u8 = 4;
    pub const TERMINATION: u8 = 5;
    pub const ROUTE_MIRRORING: u8 = 6;
}

/// Information TLV types of Initiation (RFC 7854 §4.4) and Peer Up
/// (RFC 9736, same values), and of Termination (§4.5).
pub mod tlv {
    pub const STRING: u16 = 0;
    pub const SYS_DESCR: u16 = 1;
    pub const SYS_NAME: u16 = 2;
    /// RFC 9069 §5.1: the VRF or table a Loc-RIB instance is.
    pub const TABLE_NAME: u16 = 3;
    /// Termination's reason.
    pub const REASON: u16 = 1;
}

/// Termination reasons (RFC 7854 §4.5).
pub mod termination {
    pub const ADMINISTRATIVELY_CLOSED: u16 = 0;
    pub const UNSPECIFIED: u16 = 1;
    pub const OUT_OF_RESOURCES: u16 = 2;
    pub const REDUNDANT_CONNECTION: u16 = 3;
    pub const PERMANENTLY_CLOSED: u16 = 4;
}

/// Statistics types (RFC 7854 §4.8).
pub mod stat {
    pub const REJECTED_PREFIXES: u16 = 0;
    pub const DUPLICATE_PREFIXES: u16 = 1;
    pub const DUPLICATE_WITHDRAWS: u16 = 2;
    pub const CLUSTER_LIST_LOOPS: u16 = 3;
    pub const AS_PATH_LOOPS: u16 = 4;
    pub const ORIGINATOR_ID_LOOPS: u16 = 5;
    pub const AS_CONFED_LOOPS: u16 = 6;
    pub const ADJ_RIB_IN_ROUTES: u16 = 7;
    pub const LOC_RIB_ROUTES: u16 = 8;
    pub const ADJ_RIB_IN_ROUTES_PER_FAMILY: u16 = 9;
    pub const LOC_RIB_ROUTES_PER_FAMILY: u16 = 10;
    pub const TREAT_AS_WITHDRAW_UPDATES: u16 = 11;
    pub const TREAT_AS_WITHDRAW_PREFIXES: u16 = 12;
    pub const DUPLICATE_UPDATES: u16 = 13;
}

/// Peer types (RFC 7854 §4.2, RFC 9069 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerType {
    Global,
    RouteDistinguisher,
    Local,
    /// The speaker's own Loc-RIB (RFC 9069).
    LocRib,
    Other(u8),
}

impl From<u8> for PeerType {
    fn from(v: u8) -> Self {
        match v {
            0 => PeerType::Global,
            1 => PeerType::RouteDistinguisher,
            2 => PeerType::Local,
            3 => PeerType::LocRib,
            other => PeerType::Other(other),
        }
    }
}

impl From<PeerType> for u8 {
    fn from(t: PeerType) -> u8 {
        match t {
            PeerType::Global => 0,
            PeerType::RouteDistinguisher => 1,
            PeerType::Local => 2,
            PeerType::LocRib => 3,
            PeerType::Other(v) => v,
        }
    }
}

/// Per-peer header flags (RFC 7854 §4.2; RFC 9069 §4.2 for Loc-RIB).
pub mod flag {
    /// The peer address is IPv6.
    pub const IPV6: u8 = 0x80;
    /// Post-policy Adj-RIB-In (clear: pre-policy).
    pub const POST_POLICY: u8 = 0x40;
    /// AS_PATH in the legacy 2-octet format.
    pub const TWO_OCTET_AS: u8 = 0x20;
    /// Adj-RIB-Out (RFC 8671).
    pub const ADJ_RIB_OUT: u8 = 0x10;
    /// Loc-RIB peer type: the table is filtered.
    pub const LOC_RIB_FILTERED: u8 = 0x80;
}

/// The per-peer header (RFC 7854 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHeader {
    pub peer_type: PeerType,
    pub flags: u8,
    pub distinguisher: u64,
    pub address: IpAddr,
    pub asn: u32,
    pub bgp_id: Ipv4Addr,
    /// When what the message reports happened: seconds and microseconds
    /// since the Unix epoch.
    pub seconds: u32,
    pub micros: u32,
}

impl PeerHeader {
    /// The header of a peer of the global instance. `post_policy` marks
    /// post-policy Adj-RIB-In routes.
    pub fn global(address: IpAddr, asn: u32, bgp_id: Ipv4Addr, post_policy: bool) -> Self {
        let mut flags = if post_policy { flag::POST_POLICY } else { 0 };
        if address.is_ipv6() {
            flags |= flag::IPV6;
        }
        PeerHeader {
            peer_type: PeerType::Global,
            flags,
            distinguisher: 0,
            address,
            asn,
            bgp_id,
            seconds: 0,
            micros: 0,
        }
    }

    /// The header of the speaker's own Loc-RIB (RFC 9069 §4.1): no peer
    /// address, the local AS and identifier.
    pub fn loc_rib(asn: u32, bgp_id: Ipv4Addr) -> Self {
        PeerHeader {
            peer_type: PeerType::LocRib,
            flags: 0,
            distinguisher: 0,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            asn,
            bgp_id,
            seconds: 0,
            micros: 0,
        }
    }

    /// The same header stamped with `at` (seconds and microseconds since
    /// the Unix epoch).
    pub fn at(mut self, (seconds, micros): (u32, u32)) -> Self {
        self.seconds = seconds;
        self.micros = micros;
        self
    }

    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.peer_type.into());
        out.put_u8(self.flags);
        out.put_u64(self.distinguisher);
        put_address(out, self.address);
        out.put_u32(self.asn);
        out.put_slice(&self.bgp_id.octets());
        out.put_u32(self.seconds);
        out.put_u32(self.micros);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let peer_type = PeerType::from(r.u8()?);
        let flags = r.u8()?;
        let distinguisher = r.u64()?;
        let raw = r.take(16)?;
        // The V flag says which family, except for a Loc-RIB instance,
        // whose flag 0x80 means something else and whose address is zero.
        let v6 = peer_type != PeerType::LocRib && flags & flag::IPV6 != 0;
        let address = address_of(raw, v6);
        let asn = r.u32()?;
        let id = r.take(4)?;
        let bgp_id = Ipv4Addr::new(id[0], id[1], id[2], id[3]);
        Ok(PeerHeader {
            peer_type,
            flags,
            distinguisher,
            address,
            asn,
            bgp_id,
            seconds: r.u32()?,
            micros: r.u32()?,
        })
    }
}

/// A type, length, value: an Information TLV or a Termination TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub kind: u16,
    pub value: Bytes,
}

impl Tlv {
    pub fn string(kind: u16, s: &str) -> Tlv {
        Tlv {
            kind,
            value: Bytes::copy_from_slice(s.as_bytes()),
        }
    }

    /// The value as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// One statistic of a Statistics Report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// A 32-bit counter (types 0–6, 11–13).
    Counter { kind: u16, value: u32 },
    /// A 64-bit gauge (types 7, 8).
    Gauge { kind: u16, value: u64 },
    /// A 64-bit gauge for one AFI/SAFI (types 9, 10).
    FamilyGauge {
        kind: u16,
        afi: u16,
        safi: u8,
        value: u64,
    },
    /// Any other type, of a length this crate does not interpret.
    Other { kind: u16, len: u16 },
}

/// Why a session ended (RFC 7854 §4.9; RFC 9069 §5.3 for reason 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We closed it with this NOTIFICATION (the whole BGP message).
    LocalNotification(Bytes),
    /// We closed it with no NOTIFICATION, on this FSM event.
    LocalNoNotification(u16),
    /// The peer closed it with this NOTIFICATION.
    RemoteNotification(Bytes),
    /// The peer closed the connection with no NOTIFICATION.
    RemoteNoData,
    /// The peer is no longer configured.
    Deconfigured,
    /// A Loc-RIB instance went away; TLVs say why.
    LocalWithTlvs(Vec<Tlv>),
    Other(u8, Bytes),
}

/// A BMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Routes of a peer (or of the Loc-RIB): one BGP UPDATE, whole.
    RouteMonitoring {
        peer: PeerHeader,
        update: Bytes,
    },
    StatisticsReport {
        peer: PeerHeader,
        stats: Vec<Stat>,
    },
    PeerDown {
        peer: PeerHeader,
        reason: DownReason,
    },
    PeerUp {
        peer: PeerHeader,
        local_address: IpAddr,
        local_port: u16,
        remote_port: u16,
        /// Both OPENs, whole BGP messages.
        sent_open: Bytes,
        received_open: Bytes,
        information: Vec<Tlv>,
    },
    Initiation(Vec<Tlv>),
    Termination(Vec<Tlv>),
    /// Route Mirroring, not produced here: its body as it came.
    RouteMirroring {
        peer: PeerHeader,
        body: Bytes,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("BMP version {0}, expected 3")]
    Version(u8),
    #[error("BMP message length {0} out of range")]
    Length(usize),
    #[error("unknown BMP message type {0}")]
    Type(u8),
    #[error("BMP message cut short: {0}")]
    Short(&'static str),
    #[error("BMP {0}: {1}")]
    Malformed(&'static str, &'static str),
}

impl Message {
    pub fn kind(&self) -> u8 {
        match self {
            Message::RouteMonitoring { .. } => kind::ROUTE_MONITORING,
            Message::StatisticsReport { .. } => kind::STATISTICS_REPORT,
            Message::PeerDown { .. } => kind::PEER_DOWN,
            Message::PeerUp { .. } => kind::PEER_UP,
            Message::Initiation(_) => kind::INITIATION,
            Message::Termination(_) => kind::TERMINATION,
            Message::RouteMirroring { .. } => kind::ROUTE_MIRRORING,
        }
    }

    /// Append the message to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u8(VERSION);
        out.put_u32(0);
        out.put_u8(self.kind());
        match self {
            Message::RouteMonitoring { peer, update } => {
                peer.encode(out);
                out.put_slice(update);
            }
            Message::StatisticsReport { peer, stats } => {
                peer.encode(out);
                out.put_u32(stats.len() as u32);
                for s in stats {
                    put_stat(out, s);
                }
            }
            Message::PeerDown { peer, reason } => {
                peer.encode(out);
                put_down_reason(out, reason);
            }
            Message::PeerUp {
                peer,
                local_address,
                local_port,
                remote_port,
                sent_open,
                received_open,
                information,
            } => {
                peer.encode(out);
                put_address(out, *local_address);
                out.put_u16(*local_port);
                out.put_u16(*remote_port);
                out.put_slice(sent_open);
                out.put_slice(received_open);
                put_tlvs(out, information);
            }
            Message::Initiation(tlvs) | Message::Termination(tlvs) => put_tlvs(out, tlvs),
            Message::RouteMirroring { peer, body } => {
                peer.encode(out);
                out.put_slice(body);
            }
        }
        let len = (out.len() - start) as u32;
        out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    }

    /// Encode into a buffer of its own.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// The length of the message at the start of `buf`, once its common
    /// header is there.
    pub fn length(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
        if buf.len() < COMMON_HEADER_LEN {
            return Ok(None);
        }
        if buf[0] != VERSION {
            return Err(DecodeError::Version(buf[0]));
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if !(COMMON_HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
            return Err(DecodeError::Length(len));
        }
        Ok(Some(len))
    }

    /// Decode one message: `buf` holds exactly it.
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        let len = Message::length(buf)?.ok_or(DecodeError::Short("common header"))?;
        if buf.len() != len {
            return Err(DecodeError::Length(buf.len()));
        }
        let mut r = Reader {
            buf: &buf[COMMON_HEADER_LEN..],
        };
        let m = match buf[5] {
            kind::ROUTE_MONITORING => {
                let peer = PeerHeader::decode(&mut r)?;
                let update = bgp_message(&mut r, "Route Monitoring")?;
                Message::RouteMonitoring { peer, update }
            }
            kind::STATISTICS_REPORT => {
                let peer = PeerHeader::decode(&mut r)?;
                let count = r.u32()?;
                let mut stats = Vec::new();
                for _ in 0..count {
                    stats.push(stat(&mut r)?);
                }
                Message::StatisticsReport { peer, stats }
            }
            kind::PEER_DOWN => {
                let peer = PeerHeader::decode(&mut r)?;
                let reason = down_reason(&mut r)?;
                Message::PeerDown { peer, reason }
            }
            kind::PEER_UP => {
                let peer = PeerHeader::decode(&mut r)?;
                let local = r.take(16)?;
                let local_address = address_of(local, peer.address.is_ipv6());
                let local_port = r.u16()?;
                let remote_port = r.u16()?;
                let sent_open = bgp_message(&mut r, "Peer Up")?;
                let received_open = bgp_message(&mut r, "Peer Up")?;
                Message::PeerUp {
                    peer,
                    local_address,
                    local_port,
                    remote_port,
                    sent_open,
                    received_open,
                    information: tlvs(&mut r)?,
                }
            }
            kind::INITIATION => Message::Initiation(tlvs(&mut r)?),
            kind::TERMINATION => Message::Termination(tlvs(&mut r)?),
            kind::ROUTE_MIRRORING => {
                let peer = PeerHeader::decode(&mut r)?;
                let body = Bytes::copy_from_slice(r.rest());
                Message::RouteMirroring { peer, body }
            }
            other => return Err(DecodeError::Type(other)),
        };
        if !r.buf.is_empty() {
            return Err(DecodeError::Malformed("message", "bytes after its end"));
        }
        Ok(m)
    }
}

fn put_address(out: &mut BytesMut, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            out.put_bytes(0, 12);
            out.put_slice(&v4.octets());
        }
        IpAddr::V6(v6) => out.put_slice(&v6.octets()),
    }
}

fn address_of(raw: &[u8], v6: bool) -> IpAddr {
    let mut b = [0u8; 16];
    b.copy_from_slice(&raw[..16]);
    if v6 {
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]))
    }
}

fn put_tlvs(out: &mut BytesMut, tlvs: &[Tlv]) {
    for t in tlvs {
        out.put_u16(t.kind);
        out.put_u16(t.value.len() as u16);
        out.put_slice(&t.value);
    }
}

fn put_stat(out: &mut BytesMut, s: &Stat) {
    match *s {
        Stat::Counter { kind, value } => {
            out.put_u16(kind);
            out.put_u16(4);
            out.put_u32(value);
        }
        Stat::Gauge { kind, value } => {
            out.put_u16(kind);
            out.put_u16(8);
            out.put_u64(value);
        }
        Stat::FamilyGauge {
            kind,
            afi,
            safi,
            value,
        } => {
            out.put_u16(kind);
            out.put_u16(11);
            out.put_u16(afi);
            out.put_u8(safi);
            out.put_u64(value);
        }
        // Nothing to say of a statistic we do not know: not sent.
        Stat::Other { .. } => {}
    }
}

fn put_down_reason(out: &mut BytesMut, reason: &DownReason) {
    match reason {
        DownReason::LocalNotification(n) => {
            out.put_u8(1);
            out.put_slice(n);
        }
        DownReason::LocalNoNotification(event) => {
            out.put_u8(2);
            out.put_u16(*event);
        }
        DownReason::RemoteNotification(n) => {
            out.put_u8(3);
            out.put_slice(n);
        }
        DownReason::RemoteNoData => out.put_u8(4),
        DownReason::Deconfigured => out.put_u8(5),
        DownReason::LocalWithTlvs(tlvs) => {
            out.put_u8(6);
            put_tlvs(out, tlvs);
        }
        DownReason::Other(code, data) => {
            out.put_u8(*code);
            out.put_slice(data);
        }
    }
}

/// Reading a message's body, every read checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Short("a field runs past the message"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

/// One BGP message, whole, by the length in its own header.
fn bgp_message(r: &mut Reader<'_>, within: &'static str) -> Result<Bytes, DecodeError> {
    const BGP_HEADER: usize = 19;
    if r.buf.len() < BGP_HEADER {
        return Err(DecodeError::Malformed(within, "BGP message cut short"));
    }
    if r.buf[..16] != [0xff; 16] {
        return Err(DecodeError::Malformed(within, "BGP marker not all ones"));
    }
    let len = usize::from(u16::from_be_bytes([r.buf[16], r.buf[17]]));
    if len < BGP_HEADER {
        return Err(DecodeError::Malformed(
            within,
            "BGP message length too small",
        ));
    }
    Ok(Bytes::copy_from_slice(r.take(len)?))
}

fn tlvs(r: &mut Reader<'_>) -> Result<Vec<Tlv>, DecodeError> {
    let mut out = Vec::new();
    while !r.buf.is_empty() {
        let kind = r.u16()?;
        let len = usize::from(r.u16()?);
        out.push(Tlv {
            kind,
            value: Bytes::copy_from_slice(r.take(len)?),
        });
    }
    Ok(out)
}

fn stat(r: &mut Reader<'_>) -> Result<Stat, DecodeError> {
    let kind = r.u16()?;
    let len = r.u16()?;
    let value = r.take(usize::from(len))?;
    let mut v = Reader { buf: value };
    Ok(match (kind, len) {
        (stat::ADJ_RIB_IN_ROUTES | stat::LOC_RIB_ROUTES, 8) => Stat::Gauge {
            kind,
            value: v.u64()?,
        },
        (stat::ADJ_RIB_IN_ROUTES_PER_FAMILY | stat::LOC_RIB_ROUTES_PER_FAMILY, 11) => {
            Stat::FamilyGauge {
                kind,
                afi: v.u16()?,
                safi: v.u8()?,
                value: v.u64()?,
            }
        }
        (0..=6 | 11..=13, 4) => Stat::Counter {
            kind,
            value: v.u32()?,
        },
        (0..=13, _) => {
            return Err(DecodeError::Malformed(
                "Statistics Report",
                "a statistic of the wrong length",
            ))
        }
        _ => Stat::Other { kind, len },
    })
}

fn down_reason(r: &mut Reader<'_>) -> Result<DownReason, DecodeError> {
    Ok(match r.u8()? {
        1 => DownReason::LocalNotification(bgp_message(r, "Peer Down")?),
        2 => DownReason::LocalNoNotification(r.u16()?),
        3 => DownReason::RemoteNotification(bgp_message(r, "Peer Down")?),
        4 => DownReason::RemoteNoData,
        5 => DownReason::Deconfigured,
        6 => DownReason::LocalWithTlvs(tlvs(r)?),
        other => DownReason::Other(other, Bytes::copy_from_slice(r.rest())),
    })
}
