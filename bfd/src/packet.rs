//! The BFD Control packet (RFC 5880 §4.1), without an Authentication Section.
//!
//! [`Control::decode`] applies, in the RFC's order, every reception check of
//! §6.8.6 that needs nothing but the packet, each failing with its own
//! [`PacketError`] so the driver can count why it dropped what it dropped.
//! The checks that need the session table (which session Your Discriminator
//! names) belong to [`crate::Sessions`]. podbgp configures no
//! authentication, so a packet with the A bit set is discarded (§6.8.6: "If
//! the A bit is set and no authentication is in use (bfd.AuthType is zero),
//! the packet MUST be discarded"), and [`Control::encode`] always writes the
//! 24-byte mandatory section.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// The protocol version this crate speaks (§4.1).
pub const VERSION: u8 = 1;

/// The length of a Control packet without an Authentication Section (§4.1).
pub const CONTROL_LEN: usize = 24;

/// The smallest Length with the A bit set: the mandatory section and the
/// two-byte start of an Authentication Section (§6.8.6).
const AUTH_MIN_LEN: u8 = 26;

const POLL: u8 = 0x20;
const FINAL: u8 = 0x10;
const CONTROL_PLANE_INDEPENDENT: u8 = 0x08;
const AUTHENTICATION_PRESENT: u8 = 0x04;
const DEMAND: u8 = 0x02;
const MULTIPOINT: u8 = 0x01;

/// Why the local system last changed state (the Diag field, §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    /// 0: No Diagnostic.
    NoDiagnostic,
    /// 1: Control Detection Time Expired.
    ControlDetectionTimeExpired,
    /// 2: Echo Function Failed.
    EchoFunctionFailed,
    /// 3: Neighbor Signaled Session Down.
    NeighborSignaledSessionDown,
    /// 4: Forwarding Plane Reset.
    ForwardingPlaneReset,
    /// 5: Path Down.
    PathDown,
    /// 6: Concatenated Path Down.
    ConcatenatedPathDown,
    /// 7: Administratively Down.
    AdministrativelyDown,
    /// 8: Reverse Concatenated Path Down.
    ReverseConcatenatedPathDown,
    /// 9-31: reserved for future use, kept so they survive a round trip.
    /// Only the low five bits are encoded.
    Unknown(u8),
}

impl From<u8> for Diag {
    fn from(code: u8) -> Diag {
        match code {
            0 => Diag::NoDiagnostic,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledSessionDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            other => Diag::Unknown(other),
        }
    }
}

impl From<Diag> for u8 {
    fn from(diag: Diag) -> u8 {
        match diag {
            Diag::NoDiagnostic => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledSessionDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Unknown(code) => code,
        }
    }
}

/// A session state as carried in the Sta field (§4.1, §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// 0: held down by an operator; no session can come up.
    AdminDown,
    /// 1: down, or not yet established.
    Down,
    /// 2: hearing the peer, which has not yet heard us.
    Init,
    /// 3: both sides hear each other.
    Up,
}

impl State {
    /// The state coded in the two low bits of `bits`.
    pub fn from_bits(bits: u8) -> State {
        match bits & 0x3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// The two-bit code of the state.
    pub fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// A time interval as the wire carries it: a count of microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Interval(u32);

impl Interval {
    /// No interval; in Required Min RX "send me nothing", in Required Min
    /// Echo RX "I loop back no Echo packets".
    pub const ZERO: Interval = Interval(0);

    /// The interval of `micros` microseconds.
    pub const fn from_micros(micros: u32) -> Interval {
        Interval(micros)
    }

    /// The interval in microseconds, as on the wire.
    pub const fn as_micros(self) -> u32 {
        self.0
    }

    /// The interval as a [`Duration`].
    pub fn as_duration(self) -> Duration {
        Duration::from_micros(u64::from(self.0))
    }

    /// The interval of whole microseconds in `duration`, or `None` past
    /// the 32 bits of the field (about 71 minutes).
    pub fn from_duration(duration: Duration) -> Option<Interval> {
        u32::try_from(duration.as_micros()).ok().map(Interval)
    }
}

/// Why a received Control packet is discarded before it reaches a session:
/// the packet-only checks of RFC 5880 §6.8.6, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum PacketError {
    /// Too few bytes to read the Length field.
    #[error("{received} bytes are too few for a BFD Control packet")]
    Truncated {
        /// The bytes received.
        received: usize,
    },
    /// "If the version number is not correct (1), the packet MUST be discarded."
    #[error("BFD version {0}, not 1")]
    Version(u8),
    /// Length below 24, or below 26 with the A bit set.
    #[error("Length {length} is below the minimum of {minimum}")]
    LengthTooShort {
        /// The Length field.
        length: u8,
        /// 24, or 26 with the A bit set.
        minimum: u8,
    },
    /// "If the Length field is greater than the payload of the encapsulating
    /// protocol, the packet MUST be discarded."
    #[error("Length {length} exceeds the {received} bytes received")]
    LengthExceedsPayload {
        /// The Length field.
        length: u8,
        /// The bytes received.
        received: usize,
    },
    /// "If the Detect Mult field is zero, the packet MUST be discarded."
    #[error("Detect Mult is zero")]
    ZeroDetectMult,
    /// "If the Multipoint (M) bit is nonzero, the packet MUST be discarded."
    #[error("the Multipoint bit is set")]
    Multipoint,
    /// "If the My Discriminator field is zero, the packet MUST be discarded."
    #[error("My Discriminator is zero")]
    ZeroMyDiscriminator,
    /// "If the Your Discriminator field is zero and the State field is not
    /// Down or AdminDown, the packet MUST be discarded."
    #[error("Your Discriminator is zero in state {state}")]
    ZeroYourDiscriminator {
        /// The State field.
        state: State,
    },
    /// The A bit is set, and podbgp uses no authentication.
    #[error("the Authentication Present bit is set, and no authentication is configured")]
    AuthenticationPresent,
}

/// A BFD Control packet's mandatory section (§4.1); intervals in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Control {
    /// Vers: the protocol version, [`VERSION`] in every packet built here.
    pub version: u8,
    /// Diag: the sender's reason for its last state change.
    pub diag: Diag,
    /// Sta: the sender's session state.
    pub state: State,
    /// P: the sender asks for verification of connectivity or of a parameter change.
    pub poll: bool,
    /// F: the sender answers a packet that had the Poll bit set.
    pub final_: bool,
    /// C: the sender's BFD runs independently of its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wishes to operate in Demand mode.
    pub demand: bool,
    /// M: reserved for point-to-multipoint; zero on every valid packet.
    pub multipoint: bool,
    /// Detect Mult: how many of the sender's intervals make its detection time.
    pub detect_mult: u8,
    /// My Discriminator: the sender's non-zero identifier of the session.
    pub my_discriminator: u32,
    /// Your Discriminator: the receiver's identifier, or zero while unknown.
    pub your_discriminator: u32,
    /// Desired Min TX Interval: the fastest the sender wishes to transmit.
    pub desired_min_tx: Interval,
    /// Required Min RX Interval: the fastest the sender can receive.
    pub required_min_rx: Interval,
    /// Required Min Echo RX Interval: the fastest the sender loops back
    /// Echo packets; zero if it does not.
    pub required_min_echo_rx: Interval,
}

impl Control {
    /// Decodes a received Control packet and applies the packet-only checks
    /// of §6.8.6. Bytes past the Length field are ignored.
    pub fn decode(buf: &[u8]) -> Result<Control, PacketError> {
        let received = buf.len();
        let Some(&[first, flags, detect_mult, length]) = buf.first_chunk::<4>() else {
            return Err(PacketError::Truncated { received });
        };
        let version = first >> 5;
        if version != VERSION {
            return Err(PacketError::Version(version));
        }
        let authenticated = flags & AUTHENTICATION_PRESENT != 0;
        let minimum = if authenticated {
            AUTH_MIN_LEN
        } else {
            CONTROL_LEN as u8
        };
        if length < minimum {
            return Err(PacketError::LengthTooShort { length, minimum });
        }
        // Length ≥ 24 and within what arrived, so the mandatory section is whole.
        let head = match buf.first_chunk::<CONTROL_LEN>() {
            Some(head) if usize::from(length) <= received => head,
            _ => return Err(PacketError::LengthExceedsPayload { length, received }),
        };
        let word =
            |at: usize| u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        let control = Control {
            version,
            diag: Diag::from(first & 0x1f),
            state: State::from_bits(flags >> 6),
            poll: flags & POLL != 0,
            final_: flags & FINAL != 0,
            control_plane_independent: flags & CONTROL_PLANE_INDEPENDENT != 0,
            demand: flags & DEMAND != 0,
            multipoint: flags & MULTIPOINT != 0,
            detect_mult,
            my_discriminator: word(4),
            your_discriminator: word(8),
            desired_min_tx: Interval(word(12)),
            required_min_rx: Interval(word(16)),
            required_min_echo_rx: Interval(word(20)),
        };
        control.validate()?;
        if authenticated {
            return Err(PacketError::AuthenticationPresent);
        }
        Ok(control)
    }

    /// The checks of §6.8.6 on the fields, for a packet that did not come
    /// through [`Control::decode`] (which applies them already).
    pub fn validate(&self) -> Result<(), PacketError> {
        if self.version != VERSION {
            return Err(PacketError::Version(self.version));
        }
        if self.detect_mult == 0 {
            return Err(PacketError::ZeroDetectMult);
        }
        if self.multipoint {
            return Err(PacketError::Multipoint);
        }
        if self.my_discriminator == 0 {
            return Err(PacketError::ZeroMyDiscriminator);
        }
        if self.your_discriminator == 0 && !matches!(self.state, State::Down | State::AdminDown) {
            return Err(PacketError::ZeroYourDiscriminator { state: self.state });
        }
        Ok(())
    }

    /// Encodes the packet: 24 bytes, A bit clear, Length 24.
    pub fn encode(&self) -> [u8; CONTROL_LEN] {
        let flag = |set: bool, bit: u8| if set { bit } else { 0 };
        let mut out = [0u8; CONTROL_LEN];
        out[0] = (self.version & 0x7) << 5 | (u8::from(self.diag) & 0x1f);
        out[1] = self.state.bits() << 6
            | flag(self.poll, POLL)
            | flag(self.final_, FINAL)
            | flag(self.control_plane_independent, CONTROL_PLANE_INDEPENDENT)
            | flag(self.demand, DEMAND)
            | flag(self.multipoint, MULTIPOINT);
        out[2] = self.detect_mult;
        out[3] = CONTROL_LEN as u8;
        out[4..8].copy_from_slice(&self.my_discriminator.to_be_bytes());
        out[8..12].copy_from_slice(&self.your_discriminator.to_be_bytes());
        out[12..16].copy_from_slice(&self.desired_min_tx.0.to_be_bytes());
        out[16..20].copy_from_slice(&self.required_min_rx.0.to_be_bytes());
        out[20..24].copy_from_slice(&self.required_min_echo_rx.0.to_be_bytes());
        out
    }
}
