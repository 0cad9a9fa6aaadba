//! Address families and prefixes (RFC 4271 §4.3, RFC 4760, RFC 7911).
//!
//! Prefix parsing is the hot path of UPDATE decoding, so it walks the bytes by
//! hand rather than through parser combinators.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;

use super::put::Put;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::iana::{Afi, Safi};

/// An AFI/SAFI pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family::new(Afi::Ipv4, Safi::Unicast);
    pub const IPV6_UNICAST: Family = Family::new(Afi::Ipv6, Safi::Unicast);

    pub const fn new(afi: Afi, safi: Safi) -> Self {
        Family { afi, safi }
    }

    /// The family from its raw code points.
    pub fn from_codes(afi: u16, safi: u8) -> Self {
        Family::new(afi.into(), safi.into())
    }

    /// Whether this codec parses the family's NLRI (IPv4 or IPv6 unicast).
    pub fn is_supported(self) -> bool {
        self == Self::IPV4_UNICAST || self == Self::IPV6_UNICAST
    }

    /// The family of a prefix in unicast.
    pub fn of(prefix: &IpNet) -> Self {
        match prefix {
            IpNet::V4(_) => Self::IPV4_UNICAST,
            IpNet::V6(_) => Self::IPV6_UNICAST,
        }
    }

    pub(crate) fn put(self, out: &mut BytesMut) {
        out.put_u16(self.afi.into());
        out.put_u8(self.safi.into());
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.afi, self.safi) {
            (Afi::Ipv4, Safi::Unicast) => f.write_str("ipv4-unicast"),
            (Afi::Ipv6, Safi::Unicast) => f.write_str("ipv6-unicast"),
            (afi, safi) => write!(f, "afi {}/safi {}", u16::from(afi), u8::from(safi)),
        }
    }
}

/// One NLRI entry: a prefix and, where ADD-PATH is negotiated, its path identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub prefix: IpNet,
    pub path_id: Option<u32>,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Self {
        Nlri {
            prefix,
            path_id: None,
        }
    }

    pub fn with_path_id(prefix: IpNet, path_id: u32) -> Self {
        Nlri {
            prefix,
            path_id: Some(path_id),
        }
    }
}

impl From<IpNet> for Nlri {
    fn from(prefix: IpNet) -> Self {
        Nlri::new(prefix)
    }
}

impl fmt::Display for Nlri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path_id {
            Some(id) => write!(f, "{} (path id {id})", self.prefix),
            None => write!(f, "{}", self.prefix),
        }
    }
}

/// Why a run of prefixes could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefixError {
    /// The prefix length exceeds the address size.
    Length(u8),
    /// The bytes end inside a prefix or path identifier.
    Truncated,
}

/// Decode a run of prefixes of `afi` (IPv4 or IPv6) into `out`.
///
/// Bits past the prefix length are irrelevant (RFC 4271 §4.3) and are cleared,
/// so equal prefixes always compare equal.
pub(crate) fn decode_prefixes(
    mut buf: &[u8],
    afi: Afi,
    add_path: bool,
    out: &mut Vec<Nlri>,
) -> Result<(), PrefixError> {
    let v6 = matches!(afi, Afi::Ipv6);
    // Host routes aside, most prefixes are 3 to 5 bytes on the wire.
    out.reserve(buf.len() / if add_path { 8 } else { 4 });
    while !buf.is_empty() {
        let path_id = if add_path {
            let (id, rest) = buf.split_first_chunk::<4>().ok_or(PrefixError::Truncated)?;
            buf = rest;
            Some(u32::from_be_bytes(*id))
        } else {
            None
        };
        let (&len, rest) = buf.split_first().ok_or(PrefixError::Truncated)?;
        let max = if v6 { 128 } else { 32 };
        if len > max {
            return Err(PrefixError::Length(len));
        }
        let nbytes = usize::from(len).div_ceil(8);
        if rest.len() < nbytes {
            return Err(PrefixError::Truncated);
        }
        let (bits, rest) = rest.split_at(nbytes);
        buf = rest;
        let prefix = if v6 {
            let mut a = [0u8; 16];
            a[..nbytes].copy_from_slice(bits);
            clear_host_bits(&mut a, len);
            Ipv6Net::new(Ipv6Addr::from(a), len)
                .map(IpNet::V6)
                .map_err(|_| PrefixError::Length(len))?
        } else {
            let mut a = [0u8; 4];
            a[..nbytes].copy_from_slice(bits);
            clear_host_bits(&mut a, len);
            Ipv4Net::new(Ipv4Addr::from(a), len)
                .map(IpNet::V4)
                .map_err(|_| PrefixError::Length(len))?
        };
        out.push(Nlri { prefix, path_id });
    }
    Ok(())
}

fn clear_host_bits(addr: &mut [u8], len: u8) {
    let rem = len % 8;
    if rem != 0 {
        let last = usize::from(len / 8);
        addr[last] &= 0xffu8 << (8 - rem);
    }
}

/// Encode one prefix; with `add_path` the path identifier comes first (0 when absent).
pub(crate) fn encode_prefix(nlri: &Nlri, add_path: bool, out: &mut BytesMut) {
    if add_path {
        out.put_u32(nlri.path_id.unwrap_or(0));
    }
    let len = nlri.prefix.prefix_len();
    out.put_u8(len);
    let nbytes = usize::from(len).div_ceil(8);
    let mut octets = [0u8; 16];
    match nlri.prefix {
        IpNet::V4(p) => octets[..4].copy_from_slice(&p.addr().octets()),
        IpNet::V6(p) => octets.copy_from_slice(&p.addr().octets()),
    }
    clear_host_bits(&mut octets, len);
    out.put_slice(&octets[..nbytes]);
}

/// The encoded size of one prefix.
pub(crate) fn prefix_wire_len(nlri: &Nlri, add_path: bool) -> usize {
    1 + usize::from(nlri.prefix.prefix_len()).div_ceil(8) + if add_path { 4 } else { 0 }
}
