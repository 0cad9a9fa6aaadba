//! Packing routes into as few UPDATEs as the session's message size allows,
//! each carrying one kind of NLRI as RFC 7606 §5.1 asks of a sender: IPv4
//! announcements in the NLRI field, IPv4 withdrawals in the Withdrawn Routes
//! field, anything else in MP_REACH_NLRI or MP_UNREACH_NLRI.

use bytes::BytesMut;

use super::attr::{AttrValue, PathAttribute};
use super::error::EncodeError;
use super::iana::attr_flags;
use super::mp::{MpReach, MpUnreach, NextHop};
use super::nlri::{prefix_wire_len, Family, Nlri};
use super::update::Update;
use super::{Context, Message};

/// UPDATEs announcing `nlri`, all of `family`, with `attributes` and `next_hop`.
pub fn announcements(
    attributes: &[PathAttribute],
    next_hop: NextHop,
    family: Family,
    nlri: &[Nlri],
    ctx: &Context,
) -> Result<Vec<Update>, EncodeError> {
    let mut base: Vec<PathAttribute> = attributes
        .iter()
        .filter(|a| !a.carries_nlri())
        .cloned()
        .collect();
    let in_nlri_field = match (family, next_hop) {
        (f, NextHop::V4(a)) if f == Family::IPV4_UNICAST => {
            base.push(PathAttribute::new(AttrValue::NextHop(a)));
            true
        }
        _ => false,
    };
    base.sort_by_key(|a| u8::from(a.type_code()));
    let template = if in_nlri_field {
        Update {
            attributes: base,
            ..Update::default()
        }
    } else {
        let mut mp = PathAttribute::new(AttrValue::MpReach(MpReach {
            family,
            next_hop,
            nlri: Vec::new(),
        }));
        // Extended Length from the start, so growing NLRI never moves it.
        mp.flags |= attr_flags::EXTENDED_LENGTH;
        base.insert(0, mp);
        Update {
            attributes: base,
            ..Update::default()
        }
    };
    pack(template, family, nlri, ctx, |u, chunk| {
        if in_nlri_field {
            u.nlri = chunk;
        } else if let Some(AttrValue::MpReach(r)) = u.attributes.first_mut().map(|a| &mut a.value) {
            r.nlri = chunk;
        }
    })
}

/// UPDATEs withdrawing `nlri`, all of `family`.
pub fn withdrawals(
    family: Family,
    nlri: &[Nlri],
    ctx: &Context,
) -> Result<Vec<Update>, EncodeError> {
    let in_field = family == Family::IPV4_UNICAST;
    let template = if in_field {
        Update::default()
    } else {
        let mut mp = PathAttribute::new(AttrValue::MpUnreach(MpUnreach {
            family,
            withdrawn: Vec::new(),
        }));
        mp.flags |= attr_flags::EXTENDED_LENGTH;
        Update {
            attributes: vec![mp],
            ..Update::default()
        }
    };
    pack(template, family, nlri, ctx, |u, chunk| {
        if in_field {
            u.withdrawn = chunk;
        } else if let Some(AttrValue::MpUnreach(r)) = u.attributes.first_mut().map(|a| &mut a.value)
        {
            r.withdrawn = chunk;
        }
    })
}

/// Fill copies of `template` with as many of `nlri` as fit each.
fn pack(
    template: Update,
    family: Family,
    nlri: &[Nlri],
    ctx: &Context,
    fill: impl Fn(&mut Update, Vec<Nlri>),
) -> Result<Vec<Update>, EncodeError> {
    let mut scratch = BytesMut::new();
    Message::Update(template.clone()).encode(ctx, &mut scratch)?;
    let base = scratch.len();
    let max = ctx.max_message_len();
    let add_path = ctx.add_path.get(family);
    let mut out = Vec::new();
    let mut chunk: Vec<Nlri> = Vec::new();
    let mut size = base;
    for n in nlri {
        let len = prefix_wire_len(n, add_path);
        if size + len > max && !chunk.is_empty() {
            let mut u = template.clone();
            fill(&mut u, std::mem::take(&mut chunk));
            out.push(u);
            size = base;
        }
        if base + len > max {
            return Err(EncodeError::MessageTooLong {
                len: base + len,
                max,
            });
        }
        chunk.push(*n);
        size += len;
    }
    if !chunk.is_empty() {
        let mut u = template;
        fill(&mut u, chunk);
        out.push(u);
    }
    Ok(out)
}
