//! The owner's side of `podbgp mrt dump`: the RIB as MRT TABLE_DUMP_V2
//! records (RFC 6396, RFC 8050), a page of prefixes at a time.
//!
//! The peer index table names this speaker first (index 0, its own
//! routes) and then every configured peer in the order the speaker holds
//! them; each RIB record lists every path to its prefix, by that index.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Instant, SystemTime};

use axum::http::StatusCode;
use bgp::rib::PeerId;
use bgp::wire::mrt::{Peer, Record, RibEntry};
use bgp::wire::{AttrValue, MpReach, NextHop, PathAttribute};
use bytes::{BufMut, BytesMut};
use ipnet::IpNet;

use super::owner::Owner;
use crate::api::Answer;

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Each peer's index in the table, and the table's peers.
fn peers(owner: &Owner) -> (HashMap<PeerId, u16>, Vec<Peer>) {
    let sp = &owner.speaker;
    let c = sp.config();
    let mut index = HashMap::from([(sp.local_peer(), 0u16)]);
    let mut table = vec![Peer {
        bgp_id: c.router_id,
        address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        asn: c.local_as,
    }];
    for s in sp.peers().filter(|s| s.id != sp.local_peer()) {
        let Ok(i) = u16::try_from(table.len()) else {
            break;
        };
        index.insert(s.id, i);
        table.push(Peer {
            bgp_id: s.negotiated.map_or(Ipv4Addr::UNSPECIFIED, |n| n.peer_id),
            address: s.config.address,
            asn: s.negotiated.map_or(s.config.session.peer_as, |n| n.peer_as),
        });
    }
    (index, table)
}

fn encoded(r: Record, at: u32, out: &mut BytesMut) -> Result<(), (StatusCode, String)> {
    r.encode(at, out)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The PEER_INDEX_TABLE record.
pub fn peer_table(owner: &Owner) -> Answer {
    let (_, peers) = peers(owner);
    let mut out = BytesMut::new();
    let record = Record::PeerIndexTable {
        collector_id: owner.speaker.config().router_id,
        view: String::new(),
        peers,
    };
    encoded(record, unix_now(), &mut out)?;
    Ok(out.freeze())
}

/// The RIB records of `prefixes` the RIB still has, numbered from
/// `first`: a four-octet count of records, then the records.
pub fn rib_page(owner: &Owner, prefixes: &[IpNet], first: u32) -> Answer {
    let sp = &owner.speaker;
    let (index, _) = peers(owner);
    let now = unix_now();
    let clock = sp.clock(Instant::now());
    let mut out = BytesMut::new();
    out.put_u32(0);
    let mut count = 0u32;
    for prefix in prefixes {
        let paths = sp.rib().paths(prefix);
        let add_path = paths.iter().any(|p| p.path_id != 0);
        let entries: Vec<RibEntry> = paths
            .iter()
            .filter_map(|p| {
                Some(RibEntry {
                    peer_index: *index.get(&p.peer)?,
                    originated: now.saturating_sub(clock.saturating_sub(p.since)),
                    path_id: add_path.then_some(p.path_id),
                    attributes: with_next_hop(p.attrs.attributes(), p.attrs.next_hop()),
                })
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        let record = Record::Rib {
            sequence: first.wrapping_add(count),
            prefix: *prefix,
            entries,
        };
        encoded(record, now, &mut out)?;
        count += 1;
    }
    out[..4].copy_from_slice(&count.to_be_bytes());
    Ok(out.freeze())
}

/// A path's attributes with its next hop as a RIB entry carries it:
/// NEXT_HOP for IPv4, MP_REACH_NLRI (next hop only) otherwise.
fn with_next_hop(attributes: &[PathAttribute], next_hop: NextHop) -> Vec<PathAttribute> {
    let mut out: Vec<PathAttribute> = attributes
        .iter()
        .filter(|a| !a.carries_nlri())
        .cloned()
        .collect();
    out.push(PathAttribute::new(match next_hop {
        NextHop::V4(a) => AttrValue::NextHop(a),
        v6 => AttrValue::MpReach(MpReach {
            family: bgp::wire::Family::IPV6_UNICAST,
            next_hop: v6,
            nlri: Vec::new(),
        }),
    }));
    out.sort_by_key(|a| u8::from(a.type_code()));
    out
}
