//! Decoding and encoding errors.
//!
//! Every decoding failure is a value that knows the NOTIFICATION it calls for
//! (RFC 4271 §6). A `DecodeError` always resets the session. The RFC 7606
//! errors that leave the UPDATE usable (attribute discard, treat-as-withdraw,
//! AFI/SAFI disable) are not failures: they travel in
//! [`Update::errors`](super::Update::errors) with their [`Action`].

use std::net::Ipv4Addr;

use bytes::Bytes;
use thiserror::Error;

use super::iana::{AttrType, HeaderSubcode, OpenSubcode, UpdateSubcode};
use super::nlri::Family;
use super::notification::{Cause, Notification};

/// What RFC 7606 prescribes for a malformed UPDATE, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Drop the attribute and process the rest of the UPDATE (RFC 7606 §2).
    AttributeDiscard,
    /// Handle every prefix the UPDATE announces as withdrawn (RFC 7606 §2).
    TreatAsWithdraw,
    /// Withdraw and ignore the whole address family for the rest of the
    /// session, or reset the session (RFC 4760 §7, RFC 7606 §2).
    AfiSafiDisable,
    /// Send the NOTIFICATION and close the session.
    SessionReset,
}

/// How a path attribute was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Malformation {
    /// The Optional or Transitive flag contradicts the attribute's definition (RFC 7606 §3 c).
    Flags,
    /// The length is not one the attribute allows.
    Length,
    /// The value is invalid: an unknown ORIGIN, a broken AS_PATH segment.
    Value,
    /// The attribute runs past the end of the path attributes, or too few
    /// bytes remain for an attribute header (RFC 7606 §4).
    Overrun,
    /// A second occurrence of the attribute (RFC 7606 §3 g).
    Duplicate,
    /// A well-known mandatory attribute is missing (RFC 7606 §3 d).
    Missing,
    /// AS4_PATH or AS4_AGGREGATOR from a speaker that negotiated 4-octet AS numbers (RFC 6793 §3).
    UnexpectedAs4,
    /// Confederation segments in AS4_PATH: they are dropped and the rest
    /// of the attribute is kept (RFC 6793 §6).
    ConfedInAs4Path,
    /// The next hop length does not fit the AFI/SAFI (RFC 7606 §7.11).
    NextHopLength,
    /// The NLRI inside MP_REACH_NLRI or MP_UNREACH_NLRI cannot be parsed (RFC 7606 §5.3).
    Nlri,
}

/// A malformed path attribute, with the action RFC 7606 prescribes for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Error)]
#[error("{malformation:?} error in path attribute {} ({action:?})", u8::from(*.attr))]
pub struct AttrError {
    /// The attribute's type (`Other(0)` when even the type could not be read).
    pub attr: AttrType,
    pub malformation: Malformation,
    pub action: Action,
    /// For errors in MP_REACH_NLRI / MP_UNREACH_NLRI: the family that may be
    /// disabled instead of resetting the session.
    pub family: Option<Family>,
    /// The attribute as received (flags, type, length, value), or as much of it as there was.
    pub data: Bytes,
}

impl AttrError {
    pub(crate) fn new(
        attr: AttrType,
        malformation: Malformation,
        action: Action,
        data: &[u8],
    ) -> Self {
        AttrError {
            attr,
            malformation,
            action,
            family: None,
            data: Bytes::copy_from_slice(data),
        }
    }

    /// The NOTIFICATION that would close the session for this error (and that is logged otherwise).
    pub fn notification(&self) -> Notification {
        use Malformation::*;
        let (subcode, data) = match self.malformation {
            Flags => (UpdateSubcode::AttributeFlagsError, self.data.clone()),
            Length => (UpdateSubcode::AttributeLengthError, self.data.clone()),
            Value => match self.attr {
                AttrType::Origin => (UpdateSubcode::InvalidOriginAttribute, self.data.clone()),
                AttrType::NextHop => (UpdateSubcode::InvalidNextHopAttribute, self.data.clone()),
                AttrType::AsPath | AttrType::As4Path => {
                    (UpdateSubcode::MalformedAsPath, Bytes::new())
                }
                _ => (UpdateSubcode::OptionalAttributeError, self.data.clone()),
            },
            Overrun | Duplicate => (UpdateSubcode::MalformedAttributeList, Bytes::new()),
            Missing => (
                UpdateSubcode::MissingWellKnownAttribute,
                Bytes::copy_from_slice(&[u8::from(self.attr)]),
            ),
            UnexpectedAs4 | ConfedInAs4Path | NextHopLength | Nlri => {
                (UpdateSubcode::OptionalAttributeError, self.data.clone())
            }
        };
        Notification::new(Cause::Update(subcode), data)
    }
}

/// Which field of an UPDATE a prefix error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NlriField {
    WithdrawnRoutes,
    Nlri,
}

/// A message that cannot be used: the session must send [`DecodeError::notification`]
/// and close.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("message header marker is not all ones")]
    NotSynchronized,
    #[error("bad message length {0}")]
    BadLength(u16),
    #[error("bad message type {0}")]
    BadType(u8),
    #[error("unsupported BGP version {0}")]
    UnsupportedVersion(u8),
    #[error("unacceptable hold time {0}")]
    UnacceptableHoldTime(u16),
    #[error("bad BGP identifier {0}")]
    BadBgpIdentifier(Ipv4Addr),
    #[error("unsupported optional parameter type {0}")]
    UnsupportedOptionalParameter(u8),
    #[error("optional parameters do not match their length")]
    MalformedOptionalParameters,
    #[error("malformed capability {code}")]
    MalformedCapability { code: u8, data: Bytes },
    #[error("withdrawn routes or path attribute length overruns the UPDATE")]
    MalformedAttributeList,
    #[error("MP_REACH_NLRI or MP_UNREACH_NLRI appears twice")]
    DuplicateMpAttribute,
    #[error("unrecognized well-known path attribute {type_code}")]
    UnrecognizedWellKnown { type_code: u8, data: Bytes },
    #[error("malformed prefix in the {0:?} field")]
    InvalidNetworkField(NlriField),
    #[error(transparent)]
    Attribute(AttrError),
    #[error("ROUTE-REFRESH with subtype {subtype} has a bad length")]
    RouteRefreshLength { subtype: u8, message: Bytes },
}

impl DecodeError {
    /// The NOTIFICATION this error calls for (RFC 4271 §6, RFC 7313 §5).
    pub fn notification(&self) -> Notification {
        use DecodeError::*;
        let open = |s| Cause::Open(s);
        let update = |s| Cause::Update(s);
        match self {
            NotSynchronized => Notification::new(
                Cause::MessageHeader(HeaderSubcode::ConnectionNotSynchronized),
                Bytes::new(),
            ),
            BadLength(len) => Notification::new(
                Cause::MessageHeader(HeaderSubcode::BadMessageLength),
                Bytes::copy_from_slice(&len.to_be_bytes()),
            ),
            BadType(t) => Notification::new(
                Cause::MessageHeader(HeaderSubcode::BadMessageType),
                Bytes::copy_from_slice(&[*t]),
            ),
            // Data: the highest version we support below the one bid, i.e. 4.
            UnsupportedVersion(_) => Notification::new(
                open(OpenSubcode::UnsupportedVersionNumber),
                Bytes::from_static(&[0, 4]),
            ),
            UnacceptableHoldTime(_) => {
                Notification::new(open(OpenSubcode::UnacceptableHoldTime), Bytes::new())
            }
            BadBgpIdentifier(_) => {
                Notification::new(open(OpenSubcode::BadBgpIdentifier), Bytes::new())
            }
            UnsupportedOptionalParameter(_) => Notification::new(
                open(OpenSubcode::UnsupportedOptionalParameter),
                Bytes::new(),
            ),
            MalformedOptionalParameters => {
                Notification::new(open(OpenSubcode::Unspecific), Bytes::new())
            }
            MalformedCapability { data, .. } => {
                Notification::new(open(OpenSubcode::Unspecific), data.clone())
            }
            MalformedAttributeList | DuplicateMpAttribute => {
                Notification::new(update(UpdateSubcode::MalformedAttributeList), Bytes::new())
            }
            UnrecognizedWellKnown { data, .. } => Notification::new(
                update(UpdateSubcode::UnrecognizedWellKnownAttribute),
                data.clone(),
            ),
            InvalidNetworkField(_) => {
                Notification::new(update(UpdateSubcode::InvalidNetworkField), Bytes::new())
            }
            Attribute(e) => e.notification(),
            RouteRefreshLength { message, .. } => Notification::new(
                Cause::RouteRefresh(super::iana::RouteRefreshSubcode::InvalidMessageLength),
                message.clone(),
            ),
        }
    }
}

/// A message that cannot be put on the wire as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    MessageTooLong { len: usize, max: usize },
    #[error("path attribute {type_code} of {len} bytes exceeds 65535")]
    AttributeTooLong { type_code: u8, len: usize },
    #[error("capability {code} of {len} bytes exceeds 255")]
    CapabilityTooLong { code: u8, len: usize },
    #[error("optional parameters of {0} bytes exceed 65535")]
    ParametersTooLong(usize),
    #[error("AS_SET of {0} members exceeds 255")]
    AsSetTooLong(usize),
    #[error("prefix {prefix} is not of family {family}")]
    PrefixFamily {
        prefix: ipnet::IpNet,
        family: Family,
    },
    #[error("next hop cannot be encoded for family {0}")]
    NextHopFamily(Family),
}
