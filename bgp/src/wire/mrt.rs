//! MRT, the routing information export format (RFC 6396), with the
//! ADD-PATH record types of RFC 8050: TABLE_DUMP_V2 (a RIB: the peer index
//! table, then one record per prefix listing every path to it) and BGP4MP
//! (BGP messages and session state changes as they happened). Written by
//! the daemon's dumps and update logs, read back to replay a table. The
//! older TABLE_DUMP (one record per path, 2-octet AS numbers) is read and
//! written too: route-collector archives before 2008 hold nothing else.
//!
//! RIB entries carry path attributes as an UPDATE would, with two rules of
//! RFC 6396 §4.3.4: AS numbers are always four octets, and MP_REACH_NLRI
//! holds only the next hop (its length and address; the family is the
//! record's, the prefix the record's).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};
use ipnet::IpNet;

use super::attr::decode_attributes;
use super::mp::{MpReach, NextHop};
use super::nlri::{decode_prefixes, encode_prefix, Family, Nlri};
use super::{Action, AttrValue, Context, EncodeError, PathAttribute};

/// Octets of the common header: timestamp, type, subtype, length.
pub const HEADER_LEN: usize = 12;
/// Larger records are refused when reading (the largest RIB record of a
/// full table with hundreds of peers is well under this).
pub const MAX_RECORD_LEN: usize = 16 * 1024 * 1024;

/// Record types and subtypes (RFC 6396 §4, RFC 8050 §3).
pub mod kind {
    pub const TABLE_DUMP: u16 = 12;
    pub const TABLE_DUMP_V2: u16 = 13;
    pub const BGP4MP: u16 = 16;

    pub const AFI_IPV4: u16 = 1;
    pub const AFI_IPV6: u16 = 2;

    pub const PEER_INDEX_TABLE: u16 = 1;
    pub const RIB_IPV4_UNICAST: u16 = 2;
    pub const RIB_IPV6_UNICAST: u16 = 4;
    pub const RIB_IPV4_UNICAST_ADDPATH: u16 = 8;
    pub const RIB_IPV6_UNICAST_ADDPATH: u16 = 10;

    pub const BGP4MP_STATE_CHANGE: u16 = 0;
    pub const BGP4MP_MESSAGE: u16 = 1;
    pub const BGP4MP_MESSAGE_AS4: u16 = 4;
    pub const BGP4MP_STATE_CHANGE_AS4: u16 = 5;
    pub const BGP4MP_MESSAGE_AS4_ADDPATH: u16 = 9;
}

/// A peer of the PEER_INDEX_TABLE; RIB entries name it by its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub bgp_id: Ipv4Addr,
    pub address: IpAddr,
    pub asn: u32,
}

/// One path of a RIB record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibEntry {
    pub peer_index: u16,
    /// When the path was received, seconds since the Unix epoch.
    pub originated: u32,
    /// The path identifier, in an ADD-PATH record.
    pub path_id: Option<u32>,
    /// As in an UPDATE; an IPv6 path's next hop in an MP_REACH_NLRI with
    /// no NLRI.
    pub attributes: Vec<PathAttribute>,
}

/// An MRT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    PeerIndexTable {
        collector_id: Ipv4Addr,
        view: String,
        peers: Vec<Peer>,
    },
    /// Every path to one IPv4 or IPv6 unicast prefix; ADD-PATH when the
    /// entries carry path identifiers.
    Rib {
        sequence: u32,
        prefix: IpNet,
        entries: Vec<RibEntry>,
    },
    /// One path of a TABLE_DUMP (version 1) RIB: a prefix as one peer sent
    /// it, the attributes as on a 2-octet AS session (RFC 6396 §4.2).
    TableDump {
        view: u16,
        sequence: u16,
        prefix: IpNet,
        status: u8,
        /// When the path was received, seconds since the Unix epoch.
        originated: u32,
        peer: IpAddr,
        peer_as: u16,
        attributes: Vec<PathAttribute>,
    },
    /// A BGP message, whole, as sent or received on a session.
    Message {
        peer_as: u32,
        local_as: u32,
        interface: u16,
        peer: IpAddr,
        local: IpAddr,
        /// Its NLRI carry path identifiers (RFC 8050).
        add_path: bool,
        message: Bytes,
    },
    /// A session's FSM state changed (RFC 4271's numbering, 1 = Idle to
    /// 6 = Established).
    StateChange {
        peer_as: u32,
        local_as: u32,
        interface: u16,
        peer: IpAddr,
        local: IpAddr,
        old: u16,
        new: u16,
    },
    /// A record of another type, kept as it came.
    Other {
        kind: u16,
        subtype: u16,
        body: Bytes,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrtError {
    #[error("MRT record cut short")]
    Truncated,
    #[error("MRT record length {0} out of range")]
    Length(usize),
    #[error("MRT {0}: {1}")]
    Malformed(&'static str, &'static str),
    #[error("MRT RIB entry: bad path attributes: {0}")]
    Attributes(String),
}

impl Record {
    /// Append the record, stamped `timestamp`, to `out`. On error `out` is
    /// left as it was.
    pub fn encode(&self, timestamp: u32, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_unchecked(timestamp, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, timestamp: u32, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let (kind, subtype) = self.kind();
        out.put_u32(timestamp);
        out.put_u16(kind);
        out.put_u16(subtype);
        out.put_u32(0);
        match self {
            Record::PeerIndexTable {
                collector_id,
                view,
                peers,
            } => {
                out.put_slice(&collector_id.octets());
                out.put_u16(u16::try_from(view.len()).map_err(|_| too_long(view.len()))?);
                out.put_slice(view.as_bytes());
                out.put_u16(u16::try_from(peers.len()).map_err(|_| too_long(peers.len()))?);
                for p in peers {
                    // Bit 0: an IPv6 address; bit 1: a four-octet AS.
                    out.put_u8(if p.address.is_ipv6() { 0x03 } else { 0x02 });
                    out.put_slice(&p.bgp_id.octets());
                    put_ip(out, p.address);
                    out.put_u32(p.asn);
                }
            }
            Record::Rib {
                sequence,
                prefix,
                entries,
            } => {
                out.put_u32(*sequence);
                encode_prefix(&Nlri::new(*prefix), false, out);
                out.put_u16(u16::try_from(entries.len()).map_err(|_| too_long(entries.len()))?);
                let ctx = Context::modern();
                // One entry with a path identifier makes an ADD-PATH
                // record: every entry has one then.
                let add_path = entries.iter().any(|e| e.path_id.is_some());
                for e in entries {
                    out.put_u16(e.peer_index);
                    out.put_u32(e.originated);
                    if add_path {
                        out.put_u32(e.path_id.unwrap_or(0));
                    }
                    let at = out.len();
                    out.put_u16(0);
                    for a in &e.attributes {
                        match &a.value {
                            AttrValue::MpReach(r) => put_mp_next_hop(out, a.flags, &r.next_hop),
                            _ => a.encode(&ctx, out)?,
                        }
                    }
                    let len = out.len() - at - 2;
                    let l = u16::try_from(len).map_err(|_| too_long(len))?;
                    out[at..at + 2].copy_from_slice(&l.to_be_bytes());
                }
            }
            Record::TableDump {
                view,
                sequence,
                prefix,
                status,
                originated,
                peer,
                peer_as,
                attributes,
            } => {
                out.put_u16(*view);
                out.put_u16(*sequence);
                put_ip(out, prefix.network());
                out.put_u8(prefix.prefix_len());
                out.put_u8(*status);
                out.put_u32(*originated);
                // The peer's address is of the record's family.
                match (prefix, peer) {
                    (IpNet::V4(_), IpAddr::V4(_)) | (IpNet::V6(_), IpAddr::V6(_)) => {
                        put_ip(out, *peer)
                    }
                    (IpNet::V6(_), IpAddr::V4(a)) => out.put_slice(&a.to_ipv6_mapped().octets()),
                    (IpNet::V4(_), IpAddr::V6(_)) => {
                        return Err(EncodeError::PrefixFamily {
                            prefix: IpNet::from(*peer),
                            family: Family::IPV4_UNICAST,
                        })
                    }
                }
                out.put_u16(*peer_as);
                let at = out.len();
                out.put_u16(0);
                let two_octet = Context::default();
                for a in attributes {
                    a.encode(&two_octet, out)?;
                }
                let len = out.len() - at - 2;
                let l = u16::try_from(len).map_err(|_| too_long(len))?;
                out[at..at + 2].copy_from_slice(&l.to_be_bytes());
            }
            Record::Message {
                peer_as,
                local_as,
                interface,
                peer,
                local,
                message,
                ..
            } => {
                put_bgp4mp_head(out, (*peer_as, *local_as, *interface), *peer, *local);
                out.put_slice(message);
            }
            Record::StateChange {
                peer_as,
                local_as,
                interface,
                peer,
                local,
                old,
                new,
            } => {
                put_bgp4mp_head(out, (*peer_as, *local_as, *interface), *peer, *local);
                out.put_u16(*old);
                out.put_u16(*new);
            }
            Record::Other { body, .. } => out.put_slice(body),
        }
        let len = out.len() - start - HEADER_LEN;
        out[start + 8..start + 12].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }

    /// The record's type and subtype.
    pub fn kind(&self) -> (u16, u16) {
        match self {
            Record::PeerIndexTable { .. } => (kind::TABLE_DUMP_V2, kind::PEER_INDEX_TABLE),
            Record::Rib {
                prefix, entries, ..
            } => {
                let add_path = entries.iter().any(|e| e.path_id.is_some());
                let subtype = match (prefix, add_path) {
                    (IpNet::V4(_), false) => kind::RIB_IPV4_UNICAST,
                    (IpNet::V6(_), false) => kind::RIB_IPV6_UNICAST,
                    (IpNet::V4(_), true) => kind::RIB_IPV4_UNICAST_ADDPATH,
                    (IpNet::V6(_), true) => kind::RIB_IPV6_UNICAST_ADDPATH,
                };
                (kind::TABLE_DUMP_V2, subtype)
            }
            Record::TableDump { prefix, .. } => (
                kind::TABLE_DUMP,
                if prefix.addr().is_ipv6() {
                    kind::AFI_IPV6
                } else {
                    kind::AFI_IPV4
                },
            ),
            Record::Message { add_path, .. } => (
                kind::BGP4MP,
                if *add_path {
                    kind::BGP4MP_MESSAGE_AS4_ADDPATH
                } else {
                    kind::BGP4MP_MESSAGE_AS4
                },
            ),
            Record::StateChange { .. } => (kind::BGP4MP, kind::BGP4MP_STATE_CHANGE_AS4),
            Record::Other { kind, subtype, .. } => (*kind, *subtype),
        }
    }

    /// The record at the start of `buf`: its timestamp, the record and the
    /// octets it took; `None` until it is all there.
    pub fn decode(buf: &[u8]) -> Result<Option<(u32, Record, usize)>, MrtError> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let u32_at = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let timestamp = u32_at(0);
        let kind = u16::from_be_bytes([buf[4], buf[5]]);
        let subtype = u16::from_be_bytes([buf[6], buf[7]]);
        let len = u32_at(8) as usize;
        if len > MAX_RECORD_LEN {
            return Err(MrtError::Length(len));
        }
        let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
            return Ok(None);
        };
        let mut r = Reader { buf: body };
        let record = match (kind, subtype) {
            (kind::TABLE_DUMP, s @ (kind::AFI_IPV4 | kind::AFI_IPV6)) => {
                table_dump(&mut r, s == kind::AFI_IPV6)?
            }
            (kind::TABLE_DUMP_V2, kind::PEER_INDEX_TABLE) => peer_index_table(&mut r)?,
            (kind::TABLE_DUMP_V2, s @ (2 | 4 | 8 | 10)) => {
                let v6 = s == kind::RIB_IPV6_UNICAST || s == kind::RIB_IPV6_UNICAST_ADDPATH;
                let add_path = s >= kind::RIB_IPV4_UNICAST_ADDPATH;
                rib(&mut r, v6, add_path)?
            }
            (kind::BGP4MP, s @ (0 | 1 | 4 | 5 | 9)) => bgp4mp(&mut r, s)?,
            _ => Record::Other {
                kind,
                subtype,
                body: Bytes::copy_from_slice(r.rest()),
            },
        };
        if !r.buf.is_empty() {
            return Err(MrtError::Malformed("record", "octets after its end"));
        }
        Ok(Some((timestamp, record, HEADER_LEN + len)))
    }
}

fn too_long(len: usize) -> EncodeError {
    EncodeError::MessageTooLong {
        len,
        max: u16::MAX as usize,
    }
}

fn put_ip(out: &mut BytesMut, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => out.put_slice(&v4.octets()),
        IpAddr::V6(v6) => out.put_slice(&v6.octets()),
    }
}

/// MP_REACH_NLRI as a RIB entry holds it: the next hop alone.
fn put_mp_next_hop(out: &mut BytesMut, flags: u8, nh: &NextHop) {
    let mut value = BytesMut::new();
    nh.encode(&mut value);
    // Optional, not transitive; one length octet is always enough.
    out.put_u8(flags & 0x80);
    out.put_u8(14);
    out.put_u8(value.len() as u8 + 1);
    out.put_u8(value.len() as u8);
    out.put_slice(&value);
}

fn put_bgp4mp_head(
    out: &mut BytesMut,
    (peer_as, local_as, ifindex): (u32, u32, u16),
    peer: IpAddr,
    local: IpAddr,
) {
    out.put_u32(peer_as);
    out.put_u32(local_as);
    out.put_u16(ifindex);
    out.put_u16(if peer.is_ipv6() { 2 } else { 1 });
    put_ip(out, peer);
    // The local address is of the peer's family (a session has one).
    match (peer, local) {
        (IpAddr::V6(_), IpAddr::V4(l)) => out.put_slice(&l.to_ipv6_mapped().octets()),
        (IpAddr::V4(_), IpAddr::V6(_)) => out.put_slice(&[0; 4]),
        _ => put_ip(out, local),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MrtError> {
        if self.buf.len() < n {
            return Err(MrtError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    fn u8(&mut self) -> Result<u8, MrtError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, MrtError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, MrtError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn ipv4(&mut self) -> Result<Ipv4Addr, MrtError> {
        let b = self.take(4)?;
        Ok(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }

    fn ip(&mut self, v6: bool) -> Result<IpAddr, MrtError> {
        if v6 {
            let mut a = [0u8; 16];
            a.copy_from_slice(self.take(16)?);
            Ok(IpAddr::V6(Ipv6Addr::from(a)))
        } else {
            Ok(IpAddr::V4(self.ipv4()?))
        }
    }
}

fn peer_index_table(r: &mut Reader<'_>) -> Result<Record, MrtError> {
    let collector_id = r.ipv4()?;
    let view_len = usize::from(r.u16()?);
    let view = std::str::from_utf8(r.take(view_len)?)
        .map_err(|_| MrtError::Malformed("PEER_INDEX_TABLE", "view name not UTF-8"))?
        .to_string();
    let count = r.u16()?;
    let mut peers = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let flags = r.u8()?;
        let bgp_id = r.ipv4()?;
        let address = r.ip(flags & 0x01 != 0)?;
        let asn = if flags & 0x02 != 0 {
            r.u32()?
        } else {
            u32::from(r.u16()?)
        };
        peers.push(Peer {
            bgp_id,
            address,
            asn,
        });
    }
    Ok(Record::PeerIndexTable {
        collector_id,
        view,
        peers,
    })
}

fn rib(r: &mut Reader<'_>, v6: bool, add_path: bool) -> Result<Record, MrtError> {
    let sequence = r.u32()?;
    let len = r.u8()?;
    let nbytes = usize::from(len).div_ceil(8);
    let mut field = vec![len];
    field.extend_from_slice(r.take(nbytes)?);
    let family = if v6 {
        Family::IPV6_UNICAST
    } else {
        Family::IPV4_UNICAST
    };
    let mut prefixes = Vec::with_capacity(1);
    decode_prefixes(&field, family.afi, false, &mut prefixes)
        .map_err(|_| MrtError::Malformed("RIB record", "bad prefix"))?;
    let prefix = prefixes
        .first()
        .map(|n| n.prefix)
        .ok_or(MrtError::Malformed("RIB record", "no prefix"))?;
    let count = r.u16()?;
    let mut entries = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let peer_index = r.u16()?;
        let originated = r.u32()?;
        let path_id = if add_path { Some(r.u32()?) } else { None };
        let attr_len = usize::from(r.u16()?);
        let attributes = rib_attributes(r.take(attr_len)?, family)?;
        entries.push(RibEntry {
            peer_index,
            originated,
            path_id,
            attributes,
        });
    }
    Ok(Record::Rib {
        sequence,
        prefix,
        entries,
    })
}

/// A RIB entry's attributes: MP_REACH_NLRI in its short form is read
/// here, the rest by the UPDATE decoder with four-octet AS numbers.
fn rib_attributes(mut buf: &[u8], family: Family) -> Result<Vec<PathAttribute>, MrtError> {
    let mut rest = Vec::with_capacity(buf.len());
    let mut mp = None;
    while !buf.is_empty() {
        let [flags, code] = *buf.first_chunk::<2>().ok_or(MrtError::Truncated)?;
        let after = &buf[2..];
        let (len, head) = if flags & 0x10 != 0 {
            let l = after.get(..2).ok_or(MrtError::Truncated)?;
            (usize::from(u16::from_be_bytes([l[0], l[1]])), 4)
        } else {
            (usize::from(*after.first().ok_or(MrtError::Truncated)?), 3)
        };
        let whole = buf.get(..head + len).ok_or(MrtError::Truncated)?;
        if code == 14 {
            let value = &whole[head..];
            let nh_len = usize::from(*value.first().ok_or(MrtError::Truncated)?);
            let nh = value.get(1..1 + nh_len).ok_or(MrtError::Malformed(
                "RIB entry",
                "MP_REACH_NLRI next hop cut short",
            ))?;
            let next_hop = NextHop::decode(family, nh).ok_or(MrtError::Malformed(
                "RIB entry",
                "MP_REACH_NLRI next hop of a bad length",
            ))?;
            let mut a = PathAttribute::new(AttrValue::MpReach(MpReach {
                family,
                next_hop,
                nlri: Vec::new(),
            }));
            a.flags = flags;
            mp = Some(a);
        } else {
            rest.extend_from_slice(whole);
        }
        buf = &buf[head + len..];
    }
    let mut attrs = attributes(&rest, &Context::modern())?;
    if let Some(a) = mp {
        attrs.insert(0, a);
    }
    Ok(attrs)
}

/// Path attributes as an UPDATE carries them; an error that would make
/// the UPDATE's routes withdrawn (or worse) refuses the record.
fn attributes(buf: &[u8], ctx: &Context) -> Result<Vec<PathAttribute>, MrtError> {
    let decoded = decode_attributes(buf, ctx).map_err(|e| MrtError::Attributes(e.to_string()))?;
    if let Some(e) = decoded
        .errors
        .iter()
        .find(|e| e.action > Action::AttributeDiscard)
    {
        return Err(MrtError::Attributes(format!("{e:?}")));
    }
    Ok(decoded.attrs)
}

/// A TABLE_DUMP record: one path, 2-octet AS numbers throughout.
fn table_dump(r: &mut Reader<'_>, v6: bool) -> Result<Record, MrtError> {
    let view = r.u16()?;
    let sequence = r.u16()?;
    let network = r.ip(v6)?;
    let len = r.u8()?;
    let prefix = IpNet::new(network, len)
        .map_err(|_| MrtError::Malformed("TABLE_DUMP", "prefix length out of range"))?
        .trunc();
    let status = r.u8()?;
    let originated = r.u32()?;
    let peer = r.ip(v6)?.to_canonical();
    let peer_as = r.u16()?;
    let attr_len = usize::from(r.u16()?);
    let attributes = attributes(r.take(attr_len)?, &Context::default())?;
    Ok(Record::TableDump {
        view,
        sequence,
        prefix,
        status,
        originated,
        peer,
        peer_as,
        attributes,
    })
}

fn bgp4mp(r: &mut Reader<'_>, subtype: u16) -> Result<Record, MrtError> {
    let as4 = !matches!(subtype, kind::BGP4MP_STATE_CHANGE | kind::BGP4MP_MESSAGE);
    let asn = |r: &mut Reader<'_>| -> Result<u32, MrtError> {
        if as4 {
            r.u32()
        } else {
            r.u16().map(u32::from)
        }
    };
    let peer_as = asn(r)?;
    let local_as = asn(r)?;
    let interface = r.u16()?;
    let v6 = match r.u16()? {
        1 => false,
        2 => true,
        _ => {
            return Err(MrtError::Malformed(
                "BGP4MP",
                "address family neither IPv4 nor IPv6",
            ))
        }
    };
    let peer = r.ip(v6)?;
    let local = r.ip(v6)?;
    Ok(match subtype {
        kind::BGP4MP_STATE_CHANGE | kind::BGP4MP_STATE_CHANGE_AS4 => Record::StateChange {
            peer_as,
            local_as,
            interface,
            peer,
            local,
            old: r.u16()?,
            new: r.u16()?,
        },
        _ => Record::Message {
            peer_as,
            local_as,
            interface,
            peer,
            local,
            add_path: subtype == kind::BGP4MP_MESSAGE_AS4_ADDPATH,
            message: Bytes::copy_from_slice(r.rest()),
        },
    })
}
