//! The BGP-4 message codec.
//!
//! [`message_len`] frames a byte stream, [`Message::decode`] turns one
//! message into a typed value, [`Message::encode`] writes one back. Both take
//! a [`Context`] of what the session negotiated. Decoding never panics: every
//! failure is a [`DecodeError`] that names its NOTIFICATION, and malformed
//! path attributes that RFC 7606 lets the session survive are reported in
//! [`Update::errors`] with their [`Action`].
//!
//! Decoded values keep what the wire said: attribute order and flags
//! (Partial, Extended Length), capabilities grouped per optional parameter,
//! AS_PATH and AS4_PATH as received (`Update::as_path()` gives the RFC 6793
//! merge). So a message re-encodes to the bytes it came from. The exceptions
//! are bytes the RFCs call irrelevant or reserved: host bits past a prefix
//! length, reserved octets, ORF entries. An OPEN whose parameters fit the
//! short form also comes back in it, even if it arrived in the RFC 9072 form.
//!
//! One file per message kind; `attr` holds the table of attribute kinds.

mod aspath;
mod attr;
mod capability;
mod error;
pub mod iana;
mod mp;
pub mod mrt;
mod nlri;
mod notification;
mod open;
pub mod pack;
mod parse;
mod put;
mod route_refresh;
mod update;
mod values;

use bytes::BytesMut;

use put::Put;

pub use aspath::{AsPath, AsSegment, Asns, SegmentType};
pub use attr::{AttrValue, PathAttribute};
pub use capability::{
    AddPathFamily, Capability, ExtendedNextHop, Fqdn, GracefulRestart, GracefulRestartFamily,
};
pub use error::{Action, AttrError, DecodeError, EncodeError, Malformation, NlriField};
pub use iana::{AddPathMode, Afi, AttrType, MessageType, RouteRefreshSubtype, Safi};
pub use mp::{MpReach, MpUnreach, NextHop};
pub use nlri::{Family, Nlri};
pub use notification::{Cause, Notification, MAX_SHUTDOWN_MESSAGE};
pub use open::{Open, BGP_VERSION};
pub use route_refresh::RouteRefresh;
pub use smallvec::{smallvec, SmallVec};
pub use update::Update;
pub use values::{
    Aggregator, BadCommunity, BadLargeCommunity, Community, ExtendedCommunity, LargeCommunity,
    Origin,
};

/// The 16-octet marker that starts every message.
pub const MARKER: [u8; 16] = [0xff; 16];
/// Marker, length and type.
pub const HEADER_LEN: usize = 19;
/// The largest message without RFC 8654 extended messages.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The largest message once RFC 8654 extended messages are negotiated.
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// What the session negotiated that changes the encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Context {
    /// Both sides sent the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
    /// Both sides sent the extended message capability (RFC 8654).
    pub extended_message: bool,
    /// The families whose NLRI carry path identifiers in this direction (RFC 7911).
    pub add_path: AddPathFamilies,
}

impl Context {
    /// A context for a session with 4-octet AS numbers, as every current
    /// implementation negotiates.
    pub fn modern() -> Self {
        Context {
            four_octet_as: true,
            ..Context::default()
        }
    }

    /// The largest UPDATE, NOTIFICATION or ROUTE-REFRESH allowed.
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }
}

/// The unicast families whose NLRI carry ADD-PATH path identifiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AddPathFamilies {
    pub ipv4_unicast: bool,
    pub ipv6_unicast: bool,
}

impl AddPathFamilies {
    pub fn get(&self, family: Family) -> bool {
        if family == Family::IPV4_UNICAST {
            self.ipv4_unicast
        } else if family == Family::IPV6_UNICAST {
            self.ipv6_unicast
        } else {
            false
        }
    }

    pub fn set(&mut self, family: Family, on: bool) {
        if family == Family::IPV4_UNICAST {
            self.ipv4_unicast = on;
        } else if family == Family::IPV6_UNICAST {
            self.ipv6_unicast = on;
        }
    }
}

/// How many bytes the next message in `buf` needs, header included: 19
/// while the header is incomplete, then the message's length. Call again
/// with more bytes until `buf` holds that many, then decode `&buf[..len]`.
/// A bad marker or length is an error, the stream cannot be framed further.
pub fn message_len(buf: &[u8], ctx: &Context) -> Result<usize, DecodeError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(HEADER_LEN);
    };
    if header[..16] != MARKER {
        return Err(DecodeError::NotSynchronized);
    }
    let len = u16::from_be_bytes([header[16], header[17]]);
    let n = usize::from(len);
    if n < HEADER_LEN || n > ctx.max_message_len() {
        return Err(DecodeError::BadLength(len));
    }
    Ok(n)
}

/// A BGP message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    pub fn kind(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Decode exactly one message: `buf` must be as long as its header says.
    pub fn decode(buf: &[u8], ctx: &Context) -> Result<Message, DecodeError> {
        let len = message_len(buf, ctx)?;
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::BadLength(buf.len() as u16));
        }
        if buf.len() != len {
            return Err(DecodeError::BadLength(len as u16));
        }
        let kind = MessageType::from(buf[18]);
        let body = &buf[HEADER_LEN..];
        // Per-type bounds (RFC 4271 §6.1; RFC 8654 §4 keeps OPEN and
        // KEEPALIVE at 4096).
        let (min, max) = match kind {
            MessageType::Open => (29, MAX_MESSAGE_LEN),
            MessageType::Update => (23, ctx.max_message_len()),
            MessageType::Notification => (21, ctx.max_message_len()),
            MessageType::Keepalive => (HEADER_LEN, HEADER_LEN),
            MessageType::RouteRefresh => (23, ctx.max_message_len()),
            MessageType::Other(t) => return Err(DecodeError::BadType(t)),
        };
        if len < min || len > max {
            return Err(DecodeError::BadLength(len as u16));
        }
        Ok(match kind {
            MessageType::Open => Message::Open(Open::decode(body)?),
            MessageType::Update => Message::Update(Update::decode(body, ctx)?),
            MessageType::Notification => Message::Notification(
                Notification::decode(body).ok_or(DecodeError::BadLength(len as u16))?,
            ),
            MessageType::Keepalive => Message::Keepalive,
            MessageType::RouteRefresh => Message::RouteRefresh(RouteRefresh::decode(body, buf)?),
            MessageType::Other(t) => return Err(DecodeError::BadType(t)),
        })
    }

    /// Append the message to `out`. On error `out` is left as it was.
    pub fn encode(&self, ctx: &Context, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_unchecked(ctx, out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(
        &self,
        ctx: &Context,
        out: &mut BytesMut,
        start: usize,
    ) -> Result<(), EncodeError> {
        out.put_slice(&MARKER);
        out.put_u16(0);
        out.put_u8(self.kind().into());
        match self {
            Message::Open(o) => o.encode(out)?,
            Message::Update(u) => u.encode(ctx, out)?,
            Message::Notification(n) => n.encode(out),
            Message::Keepalive => {}
            Message::RouteRefresh(r) => r.encode(out),
        }
        let len = out.len() - start;
        let max = match self {
            Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
            _ => ctx.max_message_len(),
        };
        if len > max {
            return Err(EncodeError::MessageTooLong { len, max });
        }
        out[start + 16..start + 18].copy_from_slice(&(len as u16).to_be_bytes());
        Ok(())
    }

    /// Encode into a new buffer.
    pub fn to_bytes(&self, ctx: &Context) -> Result<bytes::Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(64);
        self.encode(ctx, &mut out)?;
        Ok(out.freeze())
    }
}
