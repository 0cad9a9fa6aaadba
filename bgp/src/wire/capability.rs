//! Capabilities advertised in OPEN (RFC 5492) and their values.

use bytes::{Bytes, BytesMut};

use super::put::Put;
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, be_u8};

use super::error::{DecodeError, EncodeError};
use super::iana::{AddPathMode, Afi, CapabilityCode};
use super::nlri::Family;
use super::parse::{all, Res};

/// One capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// RFC 4760.
    Multiprotocol(Family),
    /// RFC 2918.
    RouteRefresh,
    /// RFC 8950: NLRI families that may carry a next hop of another address family.
    ExtendedNextHop(Vec<ExtendedNextHop>),
    /// RFC 8654.
    ExtendedMessage,
    /// RFC 4724, with the RFC 8538 N-bit.
    GracefulRestart(GracefulRestart),
    /// RFC 6793: the speaker's 4-octet AS number.
    FourOctetAs(u32),
    /// RFC 7911.
    AddPath(Vec<AddPathFamily>),
    /// RFC 7313.
    EnhancedRouteRefresh,
    /// draft-walton-bgp-hostname-capability: the speaker's host and domain name.
    Fqdn(Fqdn),
    /// Any other capability (or an FQDN that is not UTF-8), kept as received.
    Unknown { code: u8, value: Bytes },
}

/// One entry of the extended next hop capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtendedNextHop {
    pub family: Family,
    pub next_hop_afi: Afi,
}

/// The graceful restart capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// The four Restart Flags bits (R = 0x8, N = 0x4).
    pub flags: u8,
    /// Restart Time in seconds (12 bits).
    pub time: u16,
    pub families: Vec<GracefulRestartFamily>,
}

impl GracefulRestart {
    pub const RESTART_STATE: u8 = 0x8;
    pub const NOTIFICATION: u8 = 0x4;

    /// R-bit: the sender has restarted (RFC 4724 §3).
    pub fn restart_state(&self) -> bool {
        self.flags & Self::RESTART_STATE != 0
    }
    /// N-bit: the sender supports graceful restart for NOTIFICATIONs (RFC 8538 §2).
    pub fn notification(&self) -> bool {
        self.flags & Self::NOTIFICATION != 0
    }
}

/// A family in the graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    pub family: Family,
    /// Flags for Address Family (F = 0x80).
    pub flags: u8,
}

impl GracefulRestartFamily {
    pub const FORWARDING_STATE: u8 = 0x80;

    /// F-bit: forwarding state was preserved across the restart.
    pub fn forwarding_preserved(&self) -> bool {
        self.flags & Self::FORWARDING_STATE != 0
    }
}

/// A family in the ADD-PATH capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddPathFamily {
    pub family: Family,
    pub mode: AddPathMode,
}

/// The FQDN (hostname) capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fqdn {
    pub hostname: String,
    pub domain: String,
}

impl Capability {
    /// The capability code.
    pub fn code(&self) -> CapabilityCode {
        match self {
            Capability::Multiprotocol(_) => CapabilityCode::Multiprotocol,
            Capability::RouteRefresh => CapabilityCode::RouteRefresh,
            Capability::ExtendedNextHop(_) => CapabilityCode::ExtendedNextHop,
            Capability::ExtendedMessage => CapabilityCode::ExtendedMessage,
            Capability::GracefulRestart(_) => CapabilityCode::GracefulRestart,
            Capability::FourOctetAs(_) => CapabilityCode::FourOctetAs,
            Capability::AddPath(_) => CapabilityCode::AddPath,
            Capability::EnhancedRouteRefresh => CapabilityCode::EnhancedRouteRefresh,
            Capability::Fqdn(_) => CapabilityCode::Fqdn,
            Capability::Unknown { code, .. } => CapabilityCode::from(*code),
        }
    }

    /// Decode the capabilities in one Capabilities optional parameter.
    pub(crate) fn decode_all(mut buf: &[u8], out: &mut Vec<Capability>) -> Result<(), DecodeError> {
        while !buf.is_empty() {
            let (rest, (code, value)) =
                tlv(buf).map_err(|_| DecodeError::MalformedOptionalParameters)?;
            let raw = &buf[..buf.len() - rest.len()];
            let malformed = || DecodeError::MalformedCapability {
                code,
                data: Bytes::copy_from_slice(raw),
            };
            out.push(Capability::decode(code, value).ok_or_else(malformed)?);
            buf = rest;
        }
        Ok(())
    }

    /// Decode one capability value; `None` when a known capability is malformed.
    fn decode(code: u8, value: &[u8]) -> Option<Capability> {
        let unknown = || Capability::Unknown {
            code,
            value: Bytes::copy_from_slice(value),
        };
        let cap = match CapabilityCode::from(code) {
            CapabilityCode::Multiprotocol => {
                let (afi, _reserved, safi) = all(value, |i| {
                    let (i, afi) = be_u16(i)?;
                    let (i, res) = be_u8(i)?;
                    let (i, safi) = be_u8(i)?;
                    Ok((i, (afi, res, safi)))
                })?;
                Capability::Multiprotocol(Family::from_codes(afi, safi))
            }
            CapabilityCode::RouteRefresh if value.is_empty() => Capability::RouteRefresh,
            CapabilityCode::ExtendedMessage if value.is_empty() => Capability::ExtendedMessage,
            CapabilityCode::EnhancedRouteRefresh if value.is_empty() => {
                Capability::EnhancedRouteRefresh
            }
            CapabilityCode::RouteRefresh
            | CapabilityCode::ExtendedMessage
            | CapabilityCode::EnhancedRouteRefresh => return None,
            CapabilityCode::FourOctetAs => Capability::FourOctetAs(all(value, be_u32)?),
            CapabilityCode::ExtendedNextHop => {
                Capability::ExtendedNextHop(entries(value, 6, |e| {
                    let safi = u16::from_be_bytes([e[2], e[3]]);
                    Some(ExtendedNextHop {
                        family: Family::from_codes(
                            u16::from_be_bytes([e[0], e[1]]),
                            u8::try_from(safi).ok()?,
                        ),
                        next_hop_afi: u16::from_be_bytes([e[4], e[5]]).into(),
                    })
                })?)
            }
            CapabilityCode::AddPath => Capability::AddPath(entries(value, 4, |e| {
                Some(AddPathFamily {
                    family: Family::from_codes(u16::from_be_bytes([e[0], e[1]]), e[2]),
                    mode: e[3].into(),
                })
            })?),
            CapabilityCode::GracefulRestart => {
                let (head, rest) = value.split_first_chunk::<2>()?;
                let word = u16::from_be_bytes(*head);
                Capability::GracefulRestart(GracefulRestart {
                    flags: (word >> 12) as u8,
                    time: word & 0x0fff,
                    families: entries(rest, 4, |e| {
                        Some(GracefulRestartFamily {
                            family: Family::from_codes(u16::from_be_bytes([e[0], e[1]]), e[2]),
                            flags: e[3],
                        })
                    })?,
                })
            }
            CapabilityCode::Fqdn => {
                let (hostname, domain) = all(value, |i| {
                    let (i, h) = length_prefixed(i)?;
                    let (i, d) = length_prefixed(i)?;
                    Ok((i, (h, d)))
                })?;
                match (std::str::from_utf8(hostname), std::str::from_utf8(domain)) {
                    (Ok(h), Ok(d)) => Capability::Fqdn(Fqdn {
                        hostname: h.to_owned(),
                        domain: d.to_owned(),
                    }),
                    _ => unknown(),
                }
            }
            _ => unknown(),
        };
        Some(cap)
    }

    /// Encode as code, length, value.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let code = u8::from(self.code());
        out.put_u8(code);
        let len_at = out.len();
        out.put_u8(0);
        match self {
            Capability::Multiprotocol(f) => {
                out.put_u16(f.afi.into());
                out.put_u8(0);
                out.put_u8(f.safi.into());
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(entries) => {
                for e in entries {
                    out.put_u16(e.family.afi.into());
                    out.put_u16(u8::from(e.family.safi).into());
                    out.put_u16(e.next_hop_afi.into());
                }
            }
            Capability::GracefulRestart(gr) => {
                out.put_u16((u16::from(gr.flags & 0x0f) << 12) | (gr.time & 0x0fff));
                for f in &gr.families {
                    f.family.put(out);
                    out.put_u8(f.flags);
                }
            }
            Capability::FourOctetAs(asn) => out.put_u32(*asn),
            Capability::AddPath(entries) => {
                for e in entries {
                    e.family.put(out);
                    out.put_u8(e.mode.into());
                }
            }
            Capability::Fqdn(fqdn) => {
                for part in [&fqdn.hostname, &fqdn.domain] {
                    let len =
                        u8::try_from(part.len()).map_err(|_| EncodeError::CapabilityTooLong {
                            code,
                            len: part.len(),
                        })?;
                    out.put_u8(len);
                    out.put_slice(part.as_bytes());
                }
            }
            Capability::Unknown { value, .. } => out.put_slice(value),
        }
        let len = out.len() - len_at - 1;
        out[len_at] =
            u8::try_from(len).map_err(|_| EncodeError::CapabilityTooLong { code, len })?;
        Ok(())
    }
}

/// A code / one-octet length / value triple.
fn tlv(i: &[u8]) -> Res<'_, (u8, &[u8])> {
    let (i, code) = be_u8(i)?;
    let (i, value) = length_prefixed(i)?;
    Ok((i, (code, value)))
}

fn length_prefixed(i: &[u8]) -> Res<'_, &[u8]> {
    let (i, len) = be_u8(i)?;
    take(len)(i)
}

/// Fixed-size entries filling `value` exactly.
fn entries<T>(value: &[u8], size: usize, f: impl Fn(&[u8]) -> Option<T>) -> Option<Vec<T>> {
    if !value.len().is_multiple_of(size) {
        return None;
    }
    value.chunks_exact(size).map(f).collect()
}
