//! UPDATE (RFC 4271 §4.3) with MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760),
//! ADD-PATH (RFC 7911), End-of-RIB (RFC 4724 §2) and the RFC 7606 checks
//! that span the whole message.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use bytes::BytesMut;

use super::put::Put;

use super::aspath::AsPath;
use super::attr::{decode_attributes, AttrValue, PathAttribute, TypeSet};
use super::error::{Action, AttrError, DecodeError, EncodeError, Malformation, NlriField};
use super::iana::{attr_flags, Afi, AttrType, AS_TRANS};
use super::mp::{put_prefixes, MpReach, MpUnreach};
use super::nlri::{decode_prefixes, Family, Nlri};
use super::values::{Aggregator, Community, ExtendedCommunity, LargeCommunity, Origin};
use super::Context;

/// An UPDATE message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Update {
    /// Withdrawn Routes: IPv4 unicast prefixes no longer reachable.
    pub withdrawn: Vec<Nlri>,
    /// Path attributes in the order received (or to be sent).
    pub attributes: Vec<PathAttribute>,
    /// NLRI: IPv4 unicast prefixes announced with `attributes`.
    pub nlri: Vec<Nlri>,
    /// RFC 7606 errors found while decoding that leave the UPDATE usable:
    /// discarded attributes, or a reason to treat every announced prefix as
    /// withdrawn. Empty for a well-formed UPDATE; never encoded.
    pub errors: Vec<AttrError>,
}

impl Update {
    /// An UPDATE announcing `nlri` (IPv4 NLRI field) with `attributes`, which
    /// may include MP_REACH_NLRI / MP_UNREACH_NLRI for other prefixes.
    pub fn new(attributes: Vec<AttrValue>, nlri: Vec<Nlri>) -> Self {
        Update {
            attributes: attributes.into_iter().map(PathAttribute::new).collect(),
            nlri,
            ..Update::default()
        }
    }

    /// The End-of-RIB marker for `family` (RFC 4724 §2).
    pub fn end_of_rib(family: Family) -> Self {
        if family == Family::IPV4_UNICAST {
            return Update::default();
        }
        let value = if family.is_supported() {
            AttrValue::MpUnreach(MpUnreach {
                family,
                withdrawn: Vec::new(),
            })
        } else {
            AttrValue::MpUnsupported {
                reach: false,
                family,
                body: bytes::Bytes::new(),
            }
        };
        Update::new(vec![value], Vec::new())
    }

    /// The family this UPDATE marks End-of-RIB for, if it is such a marker.
    pub fn as_end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [a] => match &a.value {
                AttrValue::MpUnreach(u) if u.withdrawn.is_empty() => Some(u.family),
                AttrValue::MpUnsupported {
                    reach: false,
                    family,
                    body,
                } if body.is_empty() => Some(*family),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether RFC 7606 says to handle every announced prefix as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.action == Action::TreatAsWithdraw)
    }

    /// The first attribute of a type.
    pub fn attr(&self, t: AttrType) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .map(|a| &a.value)
            .find(|v| v.type_code() == t)
    }

    pub fn origin(&self) -> Option<Origin> {
        match self.attr(AttrType::Origin)? {
            AttrValue::Origin(o) => Some(*o),
            _ => None,
        }
    }

    /// The true AS path. From a 2-octet speaker (the only kind whose
    /// AS4_PATH survives decoding) it is rebuilt from AS_PATH and AS4_PATH
    /// as RFC 6793 §4.2.3 says; the attributes themselves stay as received.
    pub fn as_path(&self) -> Option<Cow<'_, AsPath>> {
        let AttrValue::AsPath(path) = self.attr(AttrType::AsPath)? else {
            return None;
        };
        match self.attr(AttrType::As4Path) {
            Some(AttrValue::As4Path(as4)) if self.as4_attributes_apply() => {
                Some(Cow::Owned(path.merge_as4(as4)))
            }
            _ => Some(Cow::Borrowed(path)),
        }
    }

    /// The true AGGREGATOR: AS4_AGGREGATOR's AS where AGGREGATOR holds
    /// AS_TRANS (RFC 6793 §4.2.3).
    pub fn aggregator(&self) -> Option<Aggregator> {
        let AttrValue::Aggregator(aggregator) = self.attr(AttrType::Aggregator)? else {
            return None;
        };
        match self.attr(AttrType::As4Aggregator) {
            Some(AttrValue::As4Aggregator(as4)) if self.as4_attributes_apply() => Some(*as4),
            _ => Some(*aggregator),
        }
    }

    /// RFC 6793 §4.2.3: an AGGREGATOR naming a real 2-octet AS means an old
    /// speaker aggregated after the AS4 attributes were made; ignore them.
    fn as4_attributes_apply(&self) -> bool {
        match self.attr(AttrType::Aggregator) {
            Some(AttrValue::Aggregator(a)) => a.asn == u32::from(AS_TRANS),
            _ => true,
        }
    }

    pub fn next_hop(&self) -> Option<Ipv4Addr> {
        match self.attr(AttrType::NextHop)? {
            AttrValue::NextHop(a) => Some(*a),
            _ => None,
        }
    }

    pub fn med(&self) -> Option<u32> {
        match self.attr(AttrType::MultiExitDisc)? {
            AttrValue::MultiExitDisc(m) => Some(*m),
            _ => None,
        }
    }

    pub fn local_pref(&self) -> Option<u32> {
        match self.attr(AttrType::LocalPref)? {
            AttrValue::LocalPref(l) => Some(*l),
            _ => None,
        }
    }

    pub fn communities(&self) -> &[Community] {
        match self.attr(AttrType::Communities) {
            Some(AttrValue::Communities(c)) => c,
            _ => &[],
        }
    }

    pub fn extended_communities(&self) -> &[ExtendedCommunity] {
        match self.attr(AttrType::ExtendedCommunities) {
            Some(AttrValue::ExtendedCommunities(c)) => c,
            _ => &[],
        }
    }

    pub fn large_communities(&self) -> &[LargeCommunity] {
        match self.attr(AttrType::LargeCommunity) {
            Some(AttrValue::LargeCommunities(c)) => c,
            _ => &[],
        }
    }

    pub fn mp_reach(&self) -> Option<&MpReach> {
        match self.attr(AttrType::MpReachNlri)? {
            AttrValue::MpReach(r) => Some(r),
            _ => None,
        }
    }

    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        match self.attr(AttrType::MpUnreachNlri)? {
            AttrValue::MpUnreach(u) => Some(u),
            _ => None,
        }
    }

    /// Get the UPDATE's attributes ready to pass on to another peer: unknown
    /// optional transitive attributes get the Partial bit (RFC 4271 §5),
    /// unknown non-transitive ones are dropped.
    pub fn prepare_unknown_for_propagation(attributes: &mut Vec<PathAttribute>) {
        attributes.retain_mut(|a| {
            if !matches!(a.value, AttrValue::Unknown { .. }) {
                return true;
            }
            if a.is_transitive() {
                a.flags |= attr_flags::PARTIAL;
            }
            a.is_transitive()
        });
    }

    /// Decode the body after the header.
    pub(crate) fn decode(body: &[u8], ctx: &Context) -> Result<Update, DecodeError> {
        let (withdrawn_field, rest) =
            length_prefixed(body).ok_or(DecodeError::MalformedAttributeList)?;
        let (attrs_field, nlri_field) =
            length_prefixed(rest).ok_or(DecodeError::MalformedAttributeList)?;

        let add_path = ctx.add_path.get(Family::IPV4_UNICAST);
        let mut withdrawn = Vec::new();
        decode_prefixes(withdrawn_field, Afi::Ipv4, add_path, &mut withdrawn)
            .map_err(|_| DecodeError::InvalidNetworkField(NlriField::WithdrawnRoutes))?;
        let decoded = decode_attributes(attrs_field, ctx)?;
        let mut nlri = Vec::new();
        decode_prefixes(nlri_field, Afi::Ipv4, add_path, &mut nlri)
            .map_err(|_| DecodeError::InvalidNetworkField(NlriField::Nlri))?;

        let mut update = Update {
            withdrawn,
            attributes: decoded.attrs,
            nlri,
            errors: decoded.errors,
        };
        update.check_mandatory(&decoded.present);
        Ok(update)
    }

    /// RFC 7606 §3 d: an UPDATE that announces prefixes without ORIGIN,
    /// AS_PATH or (for the NLRI field) NEXT_HOP is treated as a withdrawal.
    /// LOCAL_PREF depends on the session type and is the session's check.
    fn check_mandatory(&mut self, present: &TypeSet) {
        if self.nlri.is_empty() && !present.contains(AttrType::MpReachNlri) {
            return;
        }
        let required: &[AttrType] = if self.nlri.is_empty() {
            &[AttrType::Origin, AttrType::AsPath]
        } else {
            &[AttrType::Origin, AttrType::AsPath, AttrType::NextHop]
        };
        for &t in required {
            if !present.contains(t) && !self.errors.iter().any(|e| e.attr == t) {
                self.errors.push(AttrError::new(
                    t,
                    Malformation::Missing,
                    Action::TreatAsWithdraw,
                    &[],
                ));
            }
        }
    }

    pub(crate) fn encode(&self, ctx: &Context, out: &mut BytesMut) -> Result<(), EncodeError> {
        let too_long = |len| EncodeError::MessageTooLong {
            len,
            max: ctx.max_message_len(),
        };
        let at = out.len();
        out.put_u16(0);
        put_prefixes(Family::IPV4_UNICAST, &self.withdrawn, ctx, out)?;
        let len = out.len() - at - 2;
        let l = u16::try_from(len).map_err(|_| too_long(len))?;
        out[at..at + 2].copy_from_slice(&l.to_be_bytes());

        let at = out.len();
        out.put_u16(0);
        for a in &self.attributes {
            a.encode(ctx, out)?;
        }
        let len = out.len() - at - 2;
        let l = u16::try_from(len).map_err(|_| too_long(len))?;
        out[at..at + 2].copy_from_slice(&l.to_be_bytes());

        put_prefixes(Family::IPV4_UNICAST, &self.nlri, ctx, out)
    }
}

/// A field behind a two-octet length, and what follows it.
fn length_prefixed(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = buf.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    (rest.len() >= len).then(|| rest.split_at(len))
}
