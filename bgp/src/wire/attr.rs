//! Path attributes: one table of what each kind must look like and what
//! RFC 7606 does when it does not, and the loop that decodes an UPDATE's
//! attribute list with it.

use std::net::Ipv4Addr;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use super::aspath::{AsPath, SegmentType};
use super::error::{Action, AttrError, DecodeError, EncodeError, Malformation};
use super::iana::{attr_flags as flag, AttrType, AS_TRANS};
use super::mp::{Mp, MpReach, MpUnreach};
use super::nlri::Family;
use super::put::Put;
use super::values::{Aggregator, Community, ExtendedCommunity, LargeCommunity, Origin};
use super::Context;

/// The value of one path attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttrValue {
    Origin(Origin),
    AsPath(AsPath),
    NextHop(Ipv4Addr),
    MultiExitDisc(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator(Aggregator),
    Communities(SmallVec<[Community; 4]>),
    OriginatorId(Ipv4Addr),
    ClusterList(Vec<Ipv4Addr>),
    MpReach(MpReach),
    MpUnreach(MpUnreach),
    /// MP_REACH_NLRI or MP_UNREACH_NLRI of a family this codec does not
    /// parse: the bytes after AFI/SAFI.
    MpUnsupported {
        reach: bool,
        family: Family,
        body: Bytes,
    },
    ExtendedCommunities(SmallVec<[ExtendedCommunity; 2]>),
    As4Path(AsPath),
    As4Aggregator(Aggregator),
    LargeCommunities(SmallVec<[LargeCommunity; 2]>),
    /// An optional attribute this codec does not know, kept to pass on.
    Unknown {
        type_code: u8,
        value: Bytes,
    },
}

impl AttrValue {
    pub fn type_code(&self) -> AttrType {
        match self {
            AttrValue::Origin(_) => AttrType::Origin,
            AttrValue::AsPath(_) => AttrType::AsPath,
            AttrValue::NextHop(_) => AttrType::NextHop,
            AttrValue::MultiExitDisc(_) => AttrType::MultiExitDisc,
            AttrValue::LocalPref(_) => AttrType::LocalPref,
            AttrValue::AtomicAggregate => AttrType::AtomicAggregate,
            AttrValue::Aggregator(_) => AttrType::Aggregator,
            AttrValue::Communities(_) => AttrType::Communities,
            AttrValue::OriginatorId(_) => AttrType::OriginatorId,
            AttrValue::ClusterList(_) => AttrType::ClusterList,
            AttrValue::MpReach(_) | AttrValue::MpUnsupported { reach: true, .. } => {
                AttrType::MpReachNlri
            }
            AttrValue::MpUnreach(_) | AttrValue::MpUnsupported { reach: false, .. } => {
                AttrType::MpUnreachNlri
            }
            AttrValue::ExtendedCommunities(_) => AttrType::ExtendedCommunities,
            AttrValue::As4Path(_) => AttrType::As4Path,
            AttrValue::As4Aggregator(_) => AttrType::As4Aggregator,
            AttrValue::LargeCommunities(_) => AttrType::LargeCommunity,
            AttrValue::Unknown { type_code, .. } => AttrType::from(*type_code),
        }
    }
}

/// A path attribute with its flags as received (Partial and Extended Length
/// included), so that it re-encodes to the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathAttribute {
    pub flags: u8,
    pub value: AttrValue,
}

impl PathAttribute {
    /// Whether this attribute carries NLRI or its next hop (NEXT_HOP,
    /// MP_REACH_NLRI, MP_UNREACH_NLRI) rather than describing routes.
    pub fn carries_nlri(&self) -> bool {
        matches!(
            self.type_code(),
            AttrType::NextHop | AttrType::MpReachNlri | AttrType::MpUnreachNlri
        )
    }

    /// An attribute with the flags its definition gives it (optional
    /// transitive for an unknown one).
    pub fn new(value: AttrValue) -> Self {
        let flags = spec(value.type_code()).map_or(flag::OPTIONAL | flag::TRANSITIVE, |s| s.flags);
        PathAttribute { flags, value }
    }

    pub fn type_code(&self) -> AttrType {
        self.value.type_code()
    }

    pub fn is_optional(&self) -> bool {
        self.flags & flag::OPTIONAL != 0
    }

    pub fn is_transitive(&self) -> bool {
        self.flags & flag::TRANSITIVE != 0
    }

    pub fn is_partial(&self) -> bool {
        self.flags & flag::PARTIAL != 0
    }

    /// Encode flags, type, length and value.
    pub(crate) fn encode(&self, ctx: &Context, out: &mut BytesMut) -> Result<(), EncodeError> {
        let type_code = u8::from(self.type_code());
        let extended = self.flags & flag::EXTENDED_LENGTH != 0;
        let flags_at = out.len();
        out.put_u8(self.flags);
        out.put_u8(type_code);
        let len_at = out.len();
        if extended {
            out.put_u16(0);
        } else {
            out.put_u8(0);
        }
        let value_at = out.len();
        encode_value(&self.value, ctx, out)?;
        let len = out.len() - value_at;
        if extended {
            let l =
                u16::try_from(len).map_err(|_| EncodeError::AttributeTooLong { type_code, len })?;
            out[len_at..len_at + 2].copy_from_slice(&l.to_be_bytes());
        } else if let Ok(l) = u8::try_from(len) {
            out[len_at] = l;
        } else {
            // Too long for one octet: switch to the Extended Length form.
            let l =
                u16::try_from(len).map_err(|_| EncodeError::AttributeTooLong { type_code, len })?;
            out.put_u8(0);
            out.copy_within(value_at..value_at + len, value_at + 1);
            out[len_at..len_at + 2].copy_from_slice(&l.to_be_bytes());
            out[flags_at] |= flag::EXTENDED_LENGTH;
        }
        Ok(())
    }
}

/// What an attribute kind must look like, and what to do when it does not.
struct Spec {
    /// The Optional and Transitive flags it must carry.
    flags: u8,
    /// The RFC 7606 §7 action for a malformed value.
    on_error: Action,
}

const WELL_KNOWN: u8 = flag::TRANSITIVE;
const OPT_TRANSITIVE: u8 = flag::OPTIONAL | flag::TRANSITIVE;
const OPT_NON_TRANSITIVE: u8 = flag::OPTIONAL;

fn spec(t: AttrType) -> Option<Spec> {
    use Action::*;
    use AttrType::*;
    let (flags, on_error) = match t {
        Origin | AsPath | NextHop | LocalPref => (WELL_KNOWN, TreatAsWithdraw), // §7.1-7.3, 7.5
        AtomicAggregate => (WELL_KNOWN, AttributeDiscard),                      // §7.6
        MultiExitDisc => (OPT_NON_TRANSITIVE, TreatAsWithdraw),                 // §7.4
        Aggregator => (OPT_TRANSITIVE, AttributeDiscard),                       // §7.7
        Communities => (OPT_TRANSITIVE, TreatAsWithdraw),                       // §7.8
        OriginatorId | ClusterList => (OPT_NON_TRANSITIVE, TreatAsWithdraw),    // §7.9, 7.10
        MpReachNlri | MpUnreachNlri => (OPT_NON_TRANSITIVE, AfiSafiDisable),    // §7.11
        ExtendedCommunities => (OPT_TRANSITIVE, TreatAsWithdraw),               // §7.14
        As4Path | As4Aggregator => (OPT_TRANSITIVE, AttributeDiscard),          // RFC 6793 §6
        LargeCommunity => (OPT_TRANSITIVE, TreatAsWithdraw),                    // RFC 8092 §6
        Other(_) => return None,
    };
    Some(Spec { flags, on_error })
}

const MASK_OT: u8 = flag::OPTIONAL | flag::TRANSITIVE;

/// The attribute list of one UPDATE, decoded, with the RFC 7606 errors that
/// did not end the session.
pub(crate) struct Decoded {
    pub attrs: Vec<PathAttribute>,
    pub errors: Vec<AttrError>,
    /// The attribute types decoded and kept.
    pub present: TypeSet,
}

/// A set of attribute type codes.
#[derive(Default, Clone, Copy)]
pub(crate) struct TypeSet([u64; 4]);

impl TypeSet {
    pub fn contains(&self, t: AttrType) -> bool {
        let c = u8::from(t);
        self.0[usize::from(c / 64)] & (1 << (c % 64)) != 0
    }

    /// Add the type with code `c`; false when it was already there.
    fn insert(&mut self, c: u8) -> bool {
        let (word, bit) = (usize::from(c / 64), 1u64 << (c % 64));
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }
}

/// Decode the Path Attributes field.
pub(crate) fn decode_attributes(mut buf: &[u8], ctx: &Context) -> Result<Decoded, DecodeError> {
    let mut attrs = Vec::with_capacity(10);
    let mut errors = Vec::new();
    let mut seen = TypeSet::default();
    let mut present = TypeSet::default();

    while !buf.is_empty() {
        let (flags, type_code) = match buf {
            [f, t, ..] => (*f, *t),
            _ => {
                // RFC 7606 §4: not even a header left; the NLRI is still found
                // from the Total Path Attribute Length.
                errors.push(AttrError::new(
                    AttrType::Other(0),
                    Malformation::Overrun,
                    Action::TreatAsWithdraw,
                    buf,
                ));
                break;
            }
        };
        let ty = AttrType::from(type_code);
        let is_mp = matches!(ty, AttrType::MpReachNlri | AttrType::MpUnreachNlri);
        let header_len = if flags & flag::EXTENDED_LENGTH != 0 {
            4
        } else {
            3
        };
        let len = match buf {
            [_, _, l, ..] if header_len == 3 => Some(usize::from(*l)),
            [_, _, h, l, ..] if header_len == 4 => Some(usize::from(u16::from_be_bytes([*h, *l]))),
            _ => None,
        };
        let Some(len) = len.filter(|l| header_len + l <= buf.len()) else {
            // RFC 7606 §4: the attribute overruns the attribute list. An
            // overrunning MP attribute hides NLRI, which only a reset covers.
            if is_mp {
                return Err(DecodeError::MalformedAttributeList);
            }
            errors.push(AttrError::new(
                ty,
                Malformation::Overrun,
                Action::TreatAsWithdraw,
                buf,
            ));
            break;
        };
        let raw = &buf[..header_len + len];
        let value = &raw[header_len..];
        buf = &buf[header_len + len..];

        if !seen.insert(type_code) {
            // RFC 7606 §3 g.
            if is_mp {
                return Err(DecodeError::DuplicateMpAttribute);
            }
            errors.push(AttrError::new(
                ty,
                Malformation::Duplicate,
                Action::AttributeDiscard,
                raw,
            ));
            continue;
        }

        let Some(spec) = spec(ty) else {
            if flags & flag::OPTIONAL == 0 {
                return Err(DecodeError::UnrecognizedWellKnown {
                    type_code,
                    data: Bytes::copy_from_slice(raw),
                });
            }
            present.insert(type_code);
            attrs.push(PathAttribute {
                flags,
                value: AttrValue::Unknown {
                    type_code,
                    value: Bytes::copy_from_slice(value),
                },
            });
            continue;
        };

        if matches!(ty, AttrType::As4Path | AttrType::As4Aggregator) && ctx.four_octet_as {
            // RFC 6793 §3: a NEW speaker never sends these to another NEW one.
            errors.push(AttrError::new(
                ty,
                Malformation::UnexpectedAs4,
                Action::AttributeDiscard,
                raw,
            ));
            continue;
        }

        if flags & MASK_OT != spec.flags {
            // RFC 7606 §3 c. MP attributes are still decoded so that every
            // prefix they carry can be treated as withdrawn.
            // Attributes whose errors are only discarded (RFC 7606 §3 f,
            // RFC 6793 §6) stay so for flag errors; the rest are withdrawn.
            let action = spec.on_error.min(Action::TreatAsWithdraw);
            errors.push(AttrError::new(ty, Malformation::Flags, action, raw));
            if !is_mp {
                continue;
            }
        }

        match decode_into(&mut attrs, &mut errors, flags, ty, value, raw, ctx) {
            Ok(()) => {
                present.insert(type_code);
            }
            Err(e) if e.action == Action::SessionReset => return Err(DecodeError::Attribute(e)),
            // AFI/SAFI disable included: the rest of the UPDATE, other
            // families' prefixes among it, is still decoded and applied.
            Err(e) => errors.push(e),
        }
    }

    Ok(Decoded {
        attrs,
        errors,
        present,
    })
}

/// Decode one known attribute's value and append it to `attrs`; an error
/// carries the §7 action. A problem that leaves the attribute usable is
/// added to `notes`.
///
/// Each kind is pushed where it is built: moving the finished enum through
/// one shared push costs a store-forwarding stall per attribute.
fn decode_into(
    attrs: &mut Vec<PathAttribute>,
    notes: &mut Vec<AttrError>,
    flags: u8,
    ty: AttrType,
    v: &[u8],
    raw: &[u8],
    ctx: &Context,
) -> Result<(), AttrError> {
    let on_error = spec(ty).map_or(Action::TreatAsWithdraw, |s| s.on_error);
    let fail = |what| AttrError::new(ty, what, on_error, raw);
    let length = || fail(Malformation::Length);
    let u32_of = |v: &[u8]| {
        <[u8; 4]>::try_from(v)
            .map(u32::from_be_bytes)
            .map_err(|_| length())
    };
    let addr_of = |v: &[u8]| {
        <[u8; 4]>::try_from(v)
            .map(Ipv4Addr::from)
            .map_err(|_| length())
    };
    let aggregator = |v: &[u8], four: bool| match (four, v.len()) {
        (true, 8) => Ok(Aggregator {
            asn: u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
            address: Ipv4Addr::new(v[4], v[5], v[6], v[7]),
        }),
        (false, 6) => Ok(Aggregator {
            asn: u32::from(u16::from_be_bytes([v[0], v[1]])),
            address: Ipv4Addr::new(v[2], v[3], v[4], v[5]),
        }),
        _ => Err(length()),
    };
    let chunks = |v, size| list(v, size).ok_or_else(length);
    let mut push = |value| attrs.push(PathAttribute { flags, value });
    match ty {
        AttrType::Origin => match v {
            [code] => push(AttrValue::Origin(
                Origin::from_code(*code).ok_or_else(|| fail(Malformation::Value))?,
            )),
            _ => return Err(length()),
        },
        AttrType::AsPath => push(AttrValue::AsPath(
            AsPath::decode(v, ctx.four_octet_as).ok_or_else(|| fail(Malformation::Value))?,
        )),
        AttrType::NextHop => push(AttrValue::NextHop(addr_of(v)?)),
        AttrType::MultiExitDisc => push(AttrValue::MultiExitDisc(u32_of(v)?)),
        AttrType::LocalPref => push(AttrValue::LocalPref(u32_of(v)?)),
        AttrType::AtomicAggregate if v.is_empty() => push(AttrValue::AtomicAggregate),
        AttrType::AtomicAggregate => return Err(length()),
        AttrType::Aggregator => push(AttrValue::Aggregator(aggregator(v, ctx.four_octet_as)?)),
        AttrType::Communities => push(AttrValue::Communities(collect(chunks(v, 4)?, |c| {
            Community(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        }))),
        AttrType::OriginatorId => push(AttrValue::OriginatorId(addr_of(v)?)),
        AttrType::ClusterList => push(AttrValue::ClusterList(
            chunks(v, 4)?
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect(),
        )),
        AttrType::MpReachNlri => push(match MpReach::decode(v, raw, ctx)? {
            Mp::Parsed(r) => AttrValue::MpReach(r),
            Mp::Unsupported(family, body) => AttrValue::MpUnsupported {
                reach: true,
                family,
                body,
            },
        }),
        AttrType::MpUnreachNlri => push(match MpUnreach::decode(v, raw, ctx)? {
            Mp::Parsed(u) => AttrValue::MpUnreach(u),
            Mp::Unsupported(family, body) => AttrValue::MpUnsupported {
                reach: false,
                family,
                body,
            },
        }),
        AttrType::ExtendedCommunities => push(AttrValue::ExtendedCommunities(collect(
            chunks(v, 8)?,
            |c| ExtendedCommunity([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        ))),
        AttrType::As4Path => {
            // RFC 6793 §6: at least one segment.
            let mut path = match AsPath::decode(v, true) {
                Some(p) if !v.is_empty() => p,
                _ => return Err(fail(Malformation::Value)),
            };
            // Confederation segments have no place in AS4_PATH: they are
            // dropped and the rest of the attribute kept (RFC 6793 §6).
            let before = path.segments.len();
            path.segments.retain(|s| {
                !matches!(s.kind, SegmentType::ConfedSequence | SegmentType::ConfedSet)
            });
            if path.segments.len() != before {
                notes.push(fail(Malformation::ConfedInAs4Path));
            }
            push(AttrValue::As4Path(path));
        }
        AttrType::As4Aggregator => push(AttrValue::As4Aggregator(aggregator(v, true)?)),
        AttrType::LargeCommunity => {
            push(AttrValue::LargeCommunities(collect(chunks(v, 12)?, |c| {
                LargeCommunity {
                    global_admin: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                    local_data1: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                    local_data2: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                }
            })))
        }
        AttrType::Other(t) => push(AttrValue::Unknown {
            type_code: t,
            value: Bytes::copy_from_slice(v),
        }),
    }
    Ok(())
}

/// Build a short list from fixed-size items. A plain loop: SmallVec's
/// generic `Extend` costs several times more for the two or three items
/// an attribute usually holds.
pub(crate) fn collect<T, A: smallvec::Array<Item = T>>(
    chunks: std::slice::ChunksExact<'_, u8>,
    f: impl Fn(&[u8]) -> T,
) -> SmallVec<A> {
    let mut out = SmallVec::with_capacity(chunks.len());
    for c in chunks {
        out.push(f(c));
    }
    out
}

/// A non-empty list of fixed-size items (RFC 7606 §7.8, 7.10, 7.14; RFC 8092 §6).
fn list(v: &[u8], size: usize) -> Option<std::slice::ChunksExact<'_, u8>> {
    (!v.is_empty() && v.len().is_multiple_of(size)).then(|| v.chunks_exact(size))
}

fn encode_value(value: &AttrValue, ctx: &Context, out: &mut BytesMut) -> Result<(), EncodeError> {
    let put_aggregator = |a: &Aggregator, four: bool, out: &mut BytesMut| {
        if four {
            out.put_u32(a.asn);
        } else {
            out.put_u16(u16::try_from(a.asn).unwrap_or(AS_TRANS));
        }
        out.put_slice(&a.address.octets());
    };
    match value {
        AttrValue::Origin(o) => out.put_u8(o.code()),
        AttrValue::AsPath(p) => p.encode(ctx.four_octet_as, out)?,
        AttrValue::NextHop(a) | AttrValue::OriginatorId(a) => out.put_slice(&a.octets()),
        AttrValue::MultiExitDisc(v) | AttrValue::LocalPref(v) => out.put_u32(*v),
        AttrValue::AtomicAggregate => {}
        AttrValue::Aggregator(a) => put_aggregator(a, ctx.four_octet_as, out),
        AttrValue::Communities(cs) => cs.iter().for_each(|c| out.put_u32(c.0)),
        AttrValue::ClusterList(ids) => ids.iter().for_each(|id| out.put_slice(&id.octets())),
        AttrValue::MpReach(r) => r.encode(ctx, out)?,
        AttrValue::MpUnreach(u) => u.encode(ctx, out)?,
        AttrValue::MpUnsupported { family, body, .. } => {
            family.put(out);
            out.put_slice(body);
        }
        AttrValue::ExtendedCommunities(cs) => cs.iter().for_each(|c| out.put_slice(&c.0)),
        AttrValue::As4Path(p) => p.encode(true, out)?,
        AttrValue::As4Aggregator(a) => put_aggregator(a, true, out),
        AttrValue::LargeCommunities(cs) => {
            for c in cs {
                out.put_u32(c.global_admin);
                out.put_u32(c.local_data1);
                out.put_u32(c.local_data2);
            }
        }
        AttrValue::Unknown { value, .. } => out.put_slice(value),
    }
    Ok(())
}
