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
    /// discarded attributes, a reason to treat every announced prefix as
    /// withdrawn, or a family to disable. Empty for a well-formed UPDATE;
    /// never encoded.
    pub errors: Vec<AttrError>,
}

impl Update {
    /// An UPDATE announcing `nlri` (IPv4 NLRI field) with `attributes`, which
    /// may include MP_REACH_NLRI / MP_UNREACH_NLRI for other prefixes.
    ///
    /// The attributes are put in the order RFC 7606 §5.1 asks of a sender:
    /// the MP attribute first, then the rest by type code (RFC 4271 §5).
    /// §5.1 also wants at most one of withdrawn routes, NLRI, MP_REACH_NLRI
    /// and MP_UNREACH_NLRI in an UPDATE we send; that is the builder's part.
    pub fn new(attributes: Vec<AttrValue>, nlri: Vec<Nlri>) -> Self {
        let mut attributes: Vec<PathAttribute> =
            attributes.into_iter().map(PathAttribute::new).collect();
        attributes.sort_by_key(|a| {
            let t = a.type_code();
            let mp = matches!(t, AttrType::MpReachNlri | AttrType::MpUnreachNlri);
            (!mp, u8::from(t))
        });
        Update {
            attributes,
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
    /// An UPDATE that only looks empty because error handling removed its
    /// attributes is not one.
    pub fn as_end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || !self.errors.is_empty() {
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

    /// The strongest RFC 7606 action the errors call for (§3 h), if any.
    pub fn action(&self) -> Option<Action> {
        self.errors.iter().map(|e| e.action).max()
    }

    /// Whether RFC 7606 says to handle every announced prefix as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.action == Action::TreatAsWithdraw)
    }

    /// The families whose MP attribute was malformed: RFC 4760 §7 lets the
    /// session withdraw and ignore them instead of resetting.
    pub fn families_to_disable(&self) -> impl Iterator<Item = Family> + '_ {
        self.errors
            .iter()
            .filter(|e| e.action == Action::AfiSafiDisable)
            .filter_map(|e| e.family)
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

    /// The attributes with AS4_PATH and AS4_AGGREGATOR merged into
    /// AS_PATH and AGGREGATOR (RFC 6793 §4.2.3), as a 2-octet speaker's
    /// UPDATE is to be read: one true path, no AS4 attributes left.
    pub fn as4_merged(&self) -> Cow<'_, [PathAttribute]> {
        let has_as4 = self
            .attributes
            .iter()
            .any(|a| matches!(a.value, AttrValue::As4Path(_) | AttrValue::As4Aggregator(_)));
        if !has_as4 {
            return Cow::Borrowed(&self.attributes);
        }
        let path = self.as_path().map(Cow::into_owned);
        let aggregator = self.aggregator();
        let list = self
            .attributes
            .iter()
            .filter_map(|a| match &a.value {
                AttrValue::As4Path(_) | AttrValue::As4Aggregator(_) => None,
                AttrValue::AsPath(_) => path.clone().map(|p| PathAttribute {
                    flags: a.flags,
                    value: AttrValue::AsPath(p),
                }),
                AttrValue::Aggregator(_) => aggregator.map(|g| PathAttribute {
                    flags: a.flags,
                    value: AttrValue::Aggregator(g),
                }),
                _ => Some(a.clone()),
            })
            .collect();
        Cow::Owned(list)
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

    /// RFC 6793 §4.2.3: when both AGGREGATOR and AS4_AGGREGATOR came, an
    /// AGGREGATOR naming a real 2-octet AS means an old speaker aggregated
    /// after the AS4 attributes were made; they are then ignored.
    fn as4_attributes_apply(&self) -> bool {
        match (
            self.attr(AttrType::Aggregator),
            self.attr(AttrType::As4Aggregator),
        ) {
            (Some(AttrValue::Aggregator(a)), Some(_)) => a.asn == u32::from(AS_TRANS),
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
        update.check_reachable()?;
        Ok(update)
    }

    /// RFC 7606 §5.2: an UPDATE with attributes besides MP_UNREACH_NLRI but
    /// no reachable NLRI has nothing to treat as withdrawn, so any error
    /// beyond attribute discard resets the session.
    fn check_reachable(&self) -> Result<(), DecodeError> {
        let reachable = !self.nlri.is_empty()
            || self.attributes.iter().any(|a| match &a.value {
                AttrValue::MpReach(r) => !r.nlri.is_empty(),
                AttrValue::MpUnsupported { reach, .. } => *reach,
                _ => false,
            })
            // A malformed MP_REACH_NLRI had prefixes; its family is disabled.
            || self.errors.iter().any(|e| e.attr == AttrType::MpReachNlri);
        let only_unreach = self
            .attributes
            .iter()
            .map(|a| a.type_code())
            .chain(self.errors.iter().map(|e| e.attr))
            .all(|t| t == AttrType::MpUnreachNlri);
        if reachable || only_unreach {
            return Ok(());
        }
        match self
            .errors
            .iter()
            .find(|e| e.action > Action::AttributeDiscard)
        {
            Some(e) => Err(DecodeError::Attribute(AttrError {
                action: Action::SessionReset,
                ..e.clone()
            })),
            None => Ok(()),
        }
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
