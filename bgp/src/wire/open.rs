//! OPEN (RFC 4271 §4.2) with Capabilities optional parameters (RFC 5492)
//! and the extended optional parameters length of RFC 9072.

use std::net::Ipv4Addr;

use bytes::BytesMut;

use super::put::Put;
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, be_u8};

use super::capability::Capability;
use super::error::{DecodeError, EncodeError};
use super::iana::AS_TRANS;
use super::parse::Res;

/// The BGP version this codec speaks.
pub const BGP_VERSION: u8 = 4;
/// Optional parameter type: Capabilities (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072: Non-Ext OP Type marking the extended format.
const PARAM_EXTENDED_LENGTH: u8 = 255;

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Open {
    /// My Autonomous System: the 2-octet AS, or AS_TRANS for a 4-octet one.
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// The Capabilities optional parameters in order, each with the
    /// capabilities it holds (some speakers put one capability in each,
    /// others all in one; both are kept as received).
    pub params: Vec<Vec<Capability>>,
}

impl Open {
    /// An OPEN for `asn` (4-octet capable), one capability per optional parameter.
    /// A [`Capability::FourOctetAs`] for `asn` is added when `capabilities` has none.
    pub fn new(
        asn: u32,
        hold_time: u16,
        bgp_id: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Self {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Open {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            params: capabilities.into_iter().map(|c| vec![c]).collect(),
        }
    }

    /// Every capability, in order.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flatten()
    }

    /// The sender's AS: from the 4-octet AS capability when present (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.capabilities()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    /// Decode the body after the header (at least 10 bytes, checked by the caller).
    pub(crate) fn decode(body: &[u8]) -> Result<Open, DecodeError> {
        let (rest, (version, my_as, hold_time, bgp_id, opt_len)) =
            fixed(body).map_err(|_| DecodeError::MalformedOptionalParameters)?;
        if version != BGP_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::UnacceptableHoldTime(hold_time));
        }
        let bgp_id = Ipv4Addr::from(bgp_id);
        if bgp_id.is_unspecified() {
            return Err(DecodeError::BadBgpIdentifier(bgp_id));
        }
        let (params, extended) = match rest {
            [PARAM_EXTENDED_LENGTH, hi, lo, params @ ..] if opt_len == 255 => {
                (params, Some(u16::from_be_bytes([*hi, *lo])))
            }
            _ => (rest, None),
        };
        let declared = extended.map_or(usize::from(opt_len), usize::from);
        if params.len() != declared {
            return Err(DecodeError::MalformedOptionalParameters);
        }

        let mut out = Vec::new();
        let mut buf = params;
        while !buf.is_empty() {
            let (rest, (ptype, value)) = param(buf, extended.is_some())
                .map_err(|_| DecodeError::MalformedOptionalParameters)?;
            if ptype != PARAM_CAPABILITIES {
                return Err(DecodeError::UnsupportedOptionalParameter(ptype));
            }
            let mut caps = Vec::new();
            Capability::decode_all(value, &mut caps)?;
            out.push(caps);
            buf = rest;
        }
        Ok(Open {
            my_as,
            hold_time,
            bgp_id,
            params: out,
        })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(BGP_VERSION);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_u32(self.bgp_id.into());

        let mut values = Vec::with_capacity(self.params.len());
        for caps in &self.params {
            let mut v = BytesMut::new();
            for cap in caps {
                cap.encode(&mut v)?;
            }
            values.push(v);
        }
        let short_len: usize = values.iter().map(|v| 2 + v.len()).sum();
        let fits_short = short_len <= 255 && values.iter().all(|v| v.len() <= 255);
        if fits_short {
            out.put_u8(short_len as u8);
            for v in &values {
                out.put_u8(PARAM_CAPABILITIES);
                out.put_u8(v.len() as u8);
                out.put_slice(v);
            }
        } else {
            let long_len: usize = values.iter().map(|v| 3 + v.len()).sum();
            let len16 =
                u16::try_from(long_len).map_err(|_| EncodeError::ParametersTooLong(long_len))?;
            out.put_u8(255);
            out.put_u8(PARAM_EXTENDED_LENGTH);
            out.put_u16(len16);
            for v in &values {
                out.put_u8(PARAM_CAPABILITIES);
                // Each value is shorter than the whole, checked above.
                out.put_u16(v.len() as u16);
                out.put_slice(v);
            }
        }
        Ok(())
    }
}

type Fixed = (u8, u16, u16, u32, u8);

fn fixed(i: &[u8]) -> Res<'_, Fixed> {
    let (i, version) = be_u8(i)?;
    let (i, my_as) = be_u16(i)?;
    let (i, hold) = be_u16(i)?;
    let (i, id) = be_u32(i)?;
    let (i, opt_len) = be_u8(i)?;
    Ok((i, (version, my_as, hold, id, opt_len)))
}

fn param(i: &[u8], extended: bool) -> Res<'_, (u8, &[u8])> {
    let (i, ptype) = be_u8(i)?;
    let (i, len) = if extended {
        be_u16(i)?
    } else {
        let (i, l) = be_u8(i)?;
        (i, u16::from(l))
    };
    let (i, value) = take(len)(i)?;
    Ok((i, (ptype, value)))
}
