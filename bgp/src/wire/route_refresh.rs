//! ROUTE-REFRESH (RFC 2918) with the RFC 7313 subtypes.

use bytes::{Bytes, BytesMut};

use super::put::Put;

use super::error::DecodeError;
use super::iana::RouteRefreshSubtype;
use super::nlri::Family;

/// A ROUTE-REFRESH message: a request to re-send a family (subtype Normal),
/// or the start or end of such a re-send (BoRR / EoRR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: RouteRefreshSubtype,
}

impl RouteRefresh {
    pub fn new(family: Family, subtype: RouteRefreshSubtype) -> Self {
        RouteRefresh { family, subtype }
    }

    /// Decode the body after the header; `message` is the whole message,
    /// which the RFC 7313 error returns as its data.
    pub(crate) fn decode(body: &[u8], message: &[u8]) -> Result<RouteRefresh, DecodeError> {
        let Some((&[a1, a2, subtype, safi], rest)) = body.split_first_chunk::<4>() else {
            return Err(DecodeError::BadLength(message.len() as u16));
        };
        let subtype = RouteRefreshSubtype::from(subtype);
        // BoRR and EoRR have no room for more (RFC 7313 §5). A plain request
        // may carry ORF entries (RFC 5291), which podbgp does not negotiate
        // and ignores; other subtypes the session ignores whole (§4).
        let demarcation = matches!(
            subtype,
            RouteRefreshSubtype::BeginningOfRouteRefresh | RouteRefreshSubtype::EndOfRouteRefresh
        );
        if !rest.is_empty() && demarcation {
            return Err(DecodeError::RouteRefreshLength {
                subtype: subtype.into(),
                message: Bytes::copy_from_slice(message),
            });
        }
        Ok(RouteRefresh {
            family: Family::from_codes(u16::from_be_bytes([a1, a2]), safi),
            subtype,
        })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) {
        out.put_u16(self.family.afi.into());
        out.put_u8(self.subtype.into());
        out.put_u8(self.family.safi.into());
    }
}
