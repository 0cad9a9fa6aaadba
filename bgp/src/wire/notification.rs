//! NOTIFICATION (RFC 4271 §4.5) with the error codes of RFC 4271 and its
//! updates, the RFC 9003 shutdown communication and the RFC 4486 data of
//! "Maximum Number of Prefixes Reached".

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::put::Put;

use super::iana::{
    error_code, CeaseSubcode, FsmSubcode, HeaderSubcode, OpenSubcode, RouteRefreshSubcode,
    UpdateSubcode,
};
use super::nlri::Family;

/// The error code and subcode of a NOTIFICATION, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    MessageHeader(HeaderSubcode),
    Open(OpenSubcode),
    Update(UpdateSubcode),
    HoldTimerExpired,
    Fsm(FsmSubcode),
    Cease(CeaseSubcode),
    RouteRefresh(RouteRefreshSubcode),
    /// RFC 9687.
    SendHoldTimerExpired,
    /// A code (or a subcode of a code without subcodes) with no name here.
    Other {
        code: u8,
        subcode: u8,
    },
}

impl Cause {
    /// The cause from the raw code and subcode.
    pub fn from_codes(code: u8, subcode: u8) -> Self {
        use error_code::*;
        match code {
            MESSAGE_HEADER => Cause::MessageHeader(subcode.into()),
            OPEN => Cause::Open(subcode.into()),
            UPDATE => Cause::Update(subcode.into()),
            HOLD_TIMER_EXPIRED if subcode == 0 => Cause::HoldTimerExpired,
            FSM => Cause::Fsm(subcode.into()),
            CEASE => Cause::Cease(subcode.into()),
            ROUTE_REFRESH => Cause::RouteRefresh(subcode.into()),
            SEND_HOLD_TIMER_EXPIRED if subcode == 0 => Cause::SendHoldTimerExpired,
            _ => Cause::Other { code, subcode },
        }
    }

    /// The raw (code, subcode).
    pub fn codes(self) -> (u8, u8) {
        use error_code::*;
        match self {
            Cause::MessageHeader(s) => (MESSAGE_HEADER, s.into()),
            Cause::Open(s) => (OPEN, s.into()),
            Cause::Update(s) => (UPDATE, s.into()),
            Cause::HoldTimerExpired => (HOLD_TIMER_EXPIRED, 0),
            Cause::Fsm(s) => (FSM, s.into()),
            Cause::Cease(s) => (CEASE, s.into()),
            Cause::RouteRefresh(s) => (ROUTE_REFRESH, s.into()),
            Cause::SendHoldTimerExpired => (SEND_HOLD_TIMER_EXPIRED, 0),
            Cause::Other { code, subcode } => (code, subcode),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::MessageHeader(s) => write!(f, "Message Header Error / {s:?}"),
            Cause::Open(s) => write!(f, "OPEN Message Error / {s:?}"),
            Cause::Update(s) => write!(f, "UPDATE Message Error / {s:?}"),
            Cause::HoldTimerExpired => f.write_str("Hold Timer Expired"),
            Cause::Fsm(s) => write!(f, "Finite State Machine Error / {s:?}"),
            Cause::Cease(s) => write!(f, "Cease / {s:?}"),
            Cause::RouteRefresh(s) => write!(f, "ROUTE-REFRESH Message Error / {s:?}"),
            Cause::SendHoldTimerExpired => f.write_str("Send Hold Timer Expired"),
            Cause::Other { code, subcode } => write!(f, "error code {code} / subcode {subcode}"),
        }
    }
}

/// A NOTIFICATION message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    pub cause: Cause,
    pub data: Bytes,
}

/// The longest RFC 9003 shutdown communication, in bytes of UTF-8.
pub const MAX_SHUTDOWN_MESSAGE: usize = 255;

impl Notification {
    pub fn new(cause: Cause, data: impl Into<Bytes>) -> Self {
        Notification {
            cause,
            data: data.into(),
        }
    }

    /// A Cease with an RFC 9003 shutdown communication, cut at a character
    /// boundary to 255 bytes. `subcode` should be Administrative Shutdown or Reset.
    pub fn shutdown(subcode: CeaseSubcode, message: &str) -> Self {
        let mut end = message.len().min(MAX_SHUTDOWN_MESSAGE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let text = &message.as_bytes()[..end];
        let mut data = BytesMut::with_capacity(1 + text.len());
        if !text.is_empty() {
            // `end` is at most 255.
            data.put_u8(end as u8);
            data.put_slice(text);
        }
        Notification::new(Cause::Cease(subcode), data.freeze())
    }

    /// The RFC 9003 shutdown communication, when the NOTIFICATION carries a well-formed one.
    pub fn shutdown_message(&self) -> Option<&str> {
        let Cause::Cease(sub) = self.cause else {
            return None;
        };
        if !carries_shutdown_message(sub) {
            return None;
        }
        let (&len, text) = self.data.split_first()?;
        let text = text.get(..usize::from(len))?;
        std::str::from_utf8(text).ok().filter(|t| !t.is_empty())
    }

    /// Cease / Maximum Number of Prefixes Reached with the RFC 4486 data.
    pub fn max_prefixes(family: Family, limit: u32) -> Self {
        let mut data = BytesMut::with_capacity(7);
        family.put(&mut data);
        data.put_u32(limit);
        Notification::new(
            Cause::Cease(CeaseSubcode::MaximumPrefixesReached),
            data.freeze(),
        )
    }

    /// This NOTIFICATION wrapped in a Cease / Hard Reset (RFC 8538 §3): the
    /// original code and subcode lead the data, so the peer still learns why.
    pub fn hard_reset(&self) -> Self {
        let (code, subcode) = self.cause.codes();
        let mut data = BytesMut::with_capacity(2 + self.data.len());
        data.put_u8(code);
        data.put_u8(subcode);
        data.put_slice(&self.data);
        Notification::new(Cause::Cease(CeaseSubcode::HardReset), data.freeze())
    }

    /// The NOTIFICATION a Hard Reset carries, if this is one.
    pub fn hard_reset_inner(&self) -> Option<Notification> {
        if self.cause != Cause::Cease(CeaseSubcode::HardReset) {
            return None;
        }
        let [code, subcode, data @ ..] = &self.data[..] else {
            return None;
        };
        Some(Notification::new(
            Cause::from_codes(*code, *subcode),
            Bytes::copy_from_slice(data),
        ))
    }

    /// Decode the body after the header; `None` when it is shorter than
    /// code and subcode (the caller's length check makes that unreachable).
    pub(crate) fn decode(body: &[u8]) -> Option<Self> {
        let [code, subcode, data @ ..] = body else {
            return None;
        };
        Some(Notification::new(
            Cause::from_codes(*code, *subcode),
            Bytes::copy_from_slice(data),
        ))
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) {
        let (code, subcode) = self.cause.codes();
        out.put_u8(code);
        out.put_u8(subcode);
        out.put_slice(&self.data);
    }
}

/// Cease subcodes that carry an RFC 9003 shutdown communication.
fn carries_shutdown_message(subcode: CeaseSubcode) -> bool {
    matches!(
        subcode,
        CeaseSubcode::AdministrativeShutdown | CeaseSubcode::AdministrativeReset
    )
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cause)?;
        if let Some(inner) = self.hard_reset_inner() {
            return write!(f, " ({inner})");
        }
        if let Some(text) = self.shutdown_message() {
            write!(f, ": \"{}\"", text.escape_debug())?;
        } else if !self.data.is_empty() {
            f.write_str(" data ")?;
            for b in self.data.iter() {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}
