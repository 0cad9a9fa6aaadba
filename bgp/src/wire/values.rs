//! Values of the simple path attributes: ORIGIN, AGGREGATOR and the three
//! kinds of communities.

use std::fmt;
use std::net::Ipv4Addr;

/// ORIGIN (RFC 4271 §5.1.1), ordered as the decision process prefers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

impl Origin {
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Origin::Igp,
            1 => Origin::Egp,
            2 => Origin::Incomplete,
            _ => return None,
        })
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Igp => "i",
            Origin::Egp => "e",
            Origin::Incomplete => "?",
        })
    }
}

/// AGGREGATOR or AS4_AGGREGATOR: who aggregated the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// A community (RFC 1997), shown as `ASN:VALUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xffff_ff01);
    pub const NO_ADVERTISE: Community = Community(0xffff_ff02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xffff_ff03);
    /// RFC 3765.
    pub const NOPEER: Community = Community(0xffff_ff04);
    /// RFC 8326.
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xffff_0000);
    /// RFC 7999.
    pub const BLACKHOLE: Community = Community(0xffff_029a);

    pub fn new(asn: u16, value: u16) -> Self {
        Community((u32::from(asn) << 16) | u32::from(value))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Community::NO_EXPORT => f.write_str("no-export"),
            Community::NO_ADVERTISE => f.write_str("no-advertise"),
            Community::NO_EXPORT_SUBCONFED => f.write_str("no-export-subconfed"),
            Community(c) => write!(f, "{}:{}", c >> 16, c & 0xffff),
        }
    }
}

/// What a community's text is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected ASN:VALUE (two 16-bit numbers), no-export, no-advertise or no-export-subconfed")]
pub struct BadCommunity;

/// The inverse of `Display`: `ASN:VALUE` or a well-known name.
impl std::str::FromStr for Community {
    type Err = BadCommunity;

    fn from_str(s: &str) -> Result<Self, BadCommunity> {
        match s {
            "no-export" => return Ok(Community::NO_EXPORT),
            "no-advertise" => return Ok(Community::NO_ADVERTISE),
            "no-export-subconfed" => return Ok(Community::NO_EXPORT_SUBCONFED),
            _ => {}
        }
        let (a, b) = s.split_once(':').ok_or(BadCommunity)?;
        let a: u16 = a.parse().map_err(|_| BadCommunity)?;
        let b: u16 = b.parse().map_err(|_| BadCommunity)?;
        Ok(Community((u32::from(a) << 16) | u32::from(b)))
    }
}

/// An extended community (RFC 4360), kept as its eight octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity(pub [u8; 8]);

impl ExtendedCommunity {
    /// A two-octet-AS route target (type 0x00, subtype 0x02).
    pub fn route_target(asn: u16, value: u32) -> Self {
        let mut b = [0u8; 8];
        b[1] = 0x02;
        b[2..4].copy_from_slice(&asn.to_be_bytes());
        b[4..8].copy_from_slice(&value.to_be_bytes());
        ExtendedCommunity(b)
    }
}

impl fmt::Display for ExtendedCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        let asn2 = u16::from_be_bytes([b[2], b[3]]);
        let val4 = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        match (b[0] & 0x3f, b[1]) {
            (0x00, 0x02) => write!(f, "RT:{asn2}:{val4}"),
            (0x00, 0x03) => write!(f, "SoO:{asn2}:{val4}"),
            (0x01, 0x02) => write!(
                f,
                "RT:{}.{}.{}.{}:{}",
                b[2],
                b[3],
                b[4],
                b[5],
                u16::from_be_bytes([b[6], b[7]])
            ),
            (0x02, 0x02) => write!(
                f,
                "RT:{}:{}",
                u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
                u16::from_be_bytes([b[6], b[7]])
            ),
            _ => {
                f.write_str("0x")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
        }
    }
}

/// A large community (RFC 8092), shown as `GLOBAL:LOCAL1:LOCAL2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global_admin: u32,
    pub local_data1: u32,
    pub local_data2: u32,
}

impl LargeCommunity {
    pub fn new(global_admin: u32, local_data1: u32, local_data2: u32) -> Self {
        LargeCommunity {
            global_admin,
            local_data1,
            local_data2,
        }
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.global_admin, self.local_data1, self.local_data2
        )
    }
}

/// What a large community's text is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected A:B:C (three 32-bit numbers)")]
pub struct BadLargeCommunity;

/// The inverse of `Display`: `A:B:C`.
impl std::str::FromStr for LargeCommunity {
    type Err = BadLargeCommunity;

    fn from_str(s: &str) -> Result<Self, BadLargeCommunity> {
        let number = |x: &str| x.parse::<u32>().map_err(|_| BadLargeCommunity);
        let parts: Vec<&str> = s.split(':').collect();
        let [a, b, c] = parts[..] else {
            return Err(BadLargeCommunity);
        };
        Ok(LargeCommunity {
            global_admin: number(a)?,
            local_data1: number(b)?,
            local_data2: number(c)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_read_back_as_they_print() {
        for text in [
            "64512:100",
            "0:0",
            "65535:65535",
            "no-export",
            "no-advertise",
            "no-export-subconfed",
        ] {
            let c: Community = text.parse().expect(text);
            assert_eq!(c.to_string(), text);
        }
        for bad in ["65536:1", "1", "1:2:3", "a:b", "", "no-export:1"] {
            assert_eq!(bad.parse::<Community>(), Err(BadCommunity), "{bad}");
        }
        let l: LargeCommunity = "4200000000:1:2".parse().expect("large");
        assert_eq!(l.to_string(), "4200000000:1:2");
        for bad in ["1:2", "1:2:3:4", "1:2:x", "4294967296:0:0", ""] {
            assert_eq!(
                bad.parse::<LargeCommunity>(),
                Err(BadLargeCommunity),
                "{bad}"
            );
        }
    }
}
