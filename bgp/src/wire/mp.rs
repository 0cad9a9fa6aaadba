//! MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760) for IPv4 and IPv6 unicast,
//! including IPv4 NLRI with an IPv6 next hop (RFC 8950).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{Bytes, BytesMut};

use super::put::Put;

use super::error::{Action, AttrError, EncodeError, Malformation};
use super::iana::{Afi, AttrType};
use super::nlri::{decode_prefixes, encode_prefix, Family, Nlri};
use super::Context;

/// The next hop carried in MP_REACH_NLRI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHop {
    V4(Ipv4Addr),
    /// A global address and, on a shared link, the link-local one (RFC 2545 §3).
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    fn wire_len(&self) -> usize {
        match self {
            NextHop::V4(_) => 4,
            NextHop::V6 {
                link_local: None, ..
            } => 16,
            NextHop::V6 {
                link_local: Some(_),
                ..
            } => 32,
        }
    }

    pub(crate) fn decode(family: Family, nh: &[u8]) -> Option<NextHop> {
        let v6 =
            |b: &[u8]| -> Option<Ipv6Addr> { Some(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?)) };
        match (family.afi, nh.len()) {
            // 4-byte IPv6 next hops do not exist; an IPv4 one needs 4 bytes.
            (Afi::Ipv4, 4) => Some(NextHop::V4(Ipv4Addr::from(<[u8; 4]>::try_from(nh).ok()?))),
            (_, 16) => Some(NextHop::V6 {
                global: v6(nh)?,
                link_local: None,
            }),
            (_, 32) => Some(NextHop::V6 {
                global: v6(&nh[..16])?,
                link_local: Some(v6(&nh[16..])?),
            }),
            _ => None,
        }
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) {
        match self {
            NextHop::V4(a) => out.put_slice(&a.octets()),
            NextHop::V6 { global, link_local } => {
                out.put_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.put_slice(&ll.octets());
                }
            }
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::V4(a) => write!(f, "{a}"),
            NextHop::V6 {
                global,
                link_local: None,
            } => write!(f, "{global}"),
            NextHop::V6 {
                global,
                link_local: Some(ll),
            } => write!(f, "{global} ({ll})"),
        }
    }
}

/// MP_REACH_NLRI for a family this codec parses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: NextHop,
    pub nlri: Vec<Nlri>,
}

/// MP_UNREACH_NLRI for a family this codec parses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<Nlri>,
}

/// What decoding an MP attribute gave.
pub(crate) enum Mp<T> {
    Parsed(T),
    /// A family this codec does not parse: the body after AFI/SAFI.
    Unsupported(Family, Bytes),
}

fn header(ty: AttrType, value: &[u8], raw: &[u8]) -> Result<(Family, usize), AttrError> {
    match value {
        [a1, a2, safi, ..] => Ok((Family::from_codes(u16::from_be_bytes([*a1, *a2]), *safi), 3)),
        // Without AFI/SAFI no family can be disabled: the session goes.
        _ => Err(AttrError::new(
            ty,
            Malformation::Length,
            Action::SessionReset,
            raw,
        )),
    }
}

fn family_error(ty: AttrType, what: Malformation, family: Family, raw: &[u8]) -> AttrError {
    let mut e = AttrError::new(ty, what, Action::AfiSafiDisable, raw);
    e.family = Some(family);
    e
}

impl MpReach {
    pub(crate) fn decode(
        value: &[u8],
        raw: &[u8],
        ctx: &Context,
    ) -> Result<Mp<MpReach>, AttrError> {
        let ty = AttrType::MpReachNlri;
        let (family, at) = header(ty, value, raw)?;
        let Some((&nh_len, rest)) = value[at..].split_first() else {
            return Err(AttrError::new(
                ty,
                Malformation::Length,
                Action::SessionReset,
                raw,
            ));
        };
        let nh_len = usize::from(nh_len);
        // Next hop, then the one Reserved octet.
        if rest.len() < nh_len + 1 {
            return Err(family_error(ty, Malformation::NextHopLength, family, raw));
        }
        if !family.is_supported() {
            return Ok(Mp::Unsupported(
                family,
                Bytes::copy_from_slice(&value[at..]),
            ));
        }
        let next_hop = NextHop::decode(family, &rest[..nh_len])
            .ok_or_else(|| family_error(ty, Malformation::NextHopLength, family, raw))?;
        let mut nlri = Vec::new();
        decode_prefixes(
            &rest[nh_len + 1..],
            family.afi,
            ctx.add_path.get(family),
            &mut nlri,
        )
        .map_err(|_| family_error(ty, Malformation::Nlri, family, raw))?;
        Ok(Mp::Parsed(MpReach {
            family,
            next_hop,
            nlri,
        }))
    }

    pub(crate) fn encode(&self, ctx: &Context, out: &mut BytesMut) -> Result<(), EncodeError> {
        let v6_ok = matches!(self.next_hop, NextHop::V6 { .. });
        if !self.family.is_supported() || (self.family.afi == Afi::Ipv6 && !v6_ok) {
            return Err(EncodeError::NextHopFamily(self.family));
        }
        self.family.put(out);
        out.put_u8(self.next_hop.wire_len() as u8);
        self.next_hop.encode(out);
        out.put_u8(0);
        put_prefixes(self.family, &self.nlri, ctx, out)
    }
}

impl MpUnreach {
    pub(crate) fn decode(
        value: &[u8],
        raw: &[u8],
        ctx: &Context,
    ) -> Result<Mp<MpUnreach>, AttrError> {
        let ty = AttrType::MpUnreachNlri;
        let (family, at) = header(ty, value, raw)?;
        if !family.is_supported() {
            return Ok(Mp::Unsupported(
                family,
                Bytes::copy_from_slice(&value[at..]),
            ));
        }
        let mut withdrawn = Vec::new();
        decode_prefixes(
            &value[at..],
            family.afi,
            ctx.add_path.get(family),
            &mut withdrawn,
        )
        .map_err(|_| family_error(ty, Malformation::Nlri, family, raw))?;
        Ok(Mp::Parsed(MpUnreach { family, withdrawn }))
    }

    pub(crate) fn encode(&self, ctx: &Context, out: &mut BytesMut) -> Result<(), EncodeError> {
        if !self.family.is_supported() {
            return Err(EncodeError::NextHopFamily(self.family));
        }
        self.family.put(out);
        put_prefixes(self.family, &self.withdrawn, ctx, out)
    }
}

pub(crate) fn put_prefixes(
    family: Family,
    prefixes: &[Nlri],
    ctx: &Context,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let add_path = ctx.add_path.get(family);
    for n in prefixes {
        if Family::of(&n.prefix) != family {
            return Err(EncodeError::PrefixFamily {
                prefix: n.prefix,
                family,
            });
        }
        encode_prefix(n, add_path, out);
    }
    Ok(())
}
