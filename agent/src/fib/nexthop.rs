//! Nexthop objects (Linux 5.3 and later), packed and read by hand: the
//! netlink crates know routes but not these.
//!
//! A route that names an object by id (`RTA_NH_ID`) carries no gateway of
//! its own, so replacing the object moves every route that names it at
//! once, and the kernel checks a gateway once per object, not once per
//! route. A single object is a gateway and a device; a group object lists
//! single objects (equal weights: multipath).

use std::io;
use std::net::IpAddr;

use rtnetlink::sys::TokioSocket;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr};

pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
const RTM_GETNEXTHOP: u16 = 106;
/// The route attribute naming an object.
pub const RTA_NH_ID: u16 = 30;
/// The multicast group of nexthop notifications.
const RTNLGRP_NEXTHOP: u32 = 32;

const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_GROUP_TYPE: u16 = 3;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NEXTHOP_GRP_TYPE_MPATH: u16 = 0;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const HEADER: usize = 16;
const NHMSG: usize = 8;

/// What an object holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body {
    /// Traffic goes to `gateway` out of device `oif`.
    One { gateway: IpAddr, oif: u32 },
    /// Traffic is spread over these objects, equally.
    Group(Vec<u32>),
}

/// An object as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub id: u32,
    pub protocol: u8,
    pub body: Body,
}

/// A write of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Make a new object under an id not in use (refused if it is).
    Create(Object),
    /// Change what an object of ours holds: its routes follow at once.
    Replace(Object),
    Delete(u32),
}

fn push_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

fn push_header(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32) -> usize {
    let start = out.len();
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    start
}

fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn family(body: &Body) -> u8 {
    match body {
        Body::One {
            gateway: IpAddr::V4(_),
            ..
        } => libc::AF_INET as u8,
        Body::One {
            gateway: IpAddr::V6(_),
            ..
        } => libc::AF_INET6 as u8,
        Body::Group(_) => libc::AF_UNSPEC as u8,
    }
}

/// Append `write` as one request with sequence number `seq`; `ask`: for
/// an answer even if it succeeds.
pub fn encode(write: &Write, seq: u32, ask: bool, out: &mut Vec<u8>) {
    let ack = if ask { libc::NLM_F_ACK } else { 0 };
    let base = (libc::NLM_F_REQUEST | ack) as u16;
    let (kind, flags, object) = match write {
        Write::Create(o) => (
            RTM_NEWNEXTHOP,
            base | (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
            Some(o),
        ),
        Write::Replace(o) => (RTM_NEWNEXTHOP, base | libc::NLM_F_REPLACE as u16, Some(o)),
        Write::Delete(_) => (RTM_DELNEXTHOP, base, None),
    };
    let start = push_header(out, kind, flags, seq);
    match object {
        Some(o) => {
            out.extend_from_slice(&[family(&o.body), 0, o.protocol, 0]);
            out.extend_from_slice(&0u32.to_ne_bytes());
            push_attr(out, NHA_ID, &o.id.to_ne_bytes());
            match &o.body {
                Body::One { gateway, oif } => {
                    push_attr(out, NHA_OIF, &oif.to_ne_bytes());
                    match gateway {
                        IpAddr::V4(a) => push_attr(out, NHA_GATEWAY, &a.octets()),
                        IpAddr::V6(a) => push_attr(out, NHA_GATEWAY, &a.octets()),
                    }
                }
                Body::Group(members) => {
                    let mut group = Vec::with_capacity(members.len() * 8);
                    for id in members {
                        group.extend_from_slice(&id.to_ne_bytes());
                        // Weight 1 (the field holds the weight less one).
                        group.extend_from_slice(&[0, 0, 0, 0]);
                    }
                    push_attr(out, NHA_GROUP, &group);
                    push_attr(out, NHA_GROUP_TYPE, &NEXTHOP_GRP_TYPE_MPATH.to_ne_bytes());
                }
            }
        }
        None => {
            let id = match write {
                Write::Delete(id) => *id,
                _ => 0,
            };
            out.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
            out.extend_from_slice(&0u32.to_ne_bytes());
            push_attr(out, NHA_ID, &id.to_ne_bytes());
        }
    }
    finish(out, start);
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Read the body of an RTM_NEWNEXTHOP or RTM_DELNEXTHOP message (what
/// follows its netlink header). `None` for what is not a gateway or a
/// multipath group (a blackhole, an FDB object, a resilient group).
pub fn parse(body: &[u8]) -> Option<Object> {
    let nh = body.get(..NHMSG)?;
    let protocol = nh[2];
    let mut rest = &body[NHMSG..];
    let (mut id, mut oif, mut gateway, mut group, mut group_type) = (None, None, None, None, 0);
    while rest.len() >= 4 {
        let len = usize::from(u16_at(rest, 0)?);
        let kind = u16_at(rest, 2)? & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        let value = &rest[4..len];
        match kind {
            NHA_ID => id = u32_at(value, 0),
            NHA_OIF => oif = u32_at(value, 0),
            NHA_GATEWAY => {
                gateway = match value.len() {
                    4 => <[u8; 4]>::try_from(value).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(value).ok().map(IpAddr::from),
                    _ => None,
                }
            }
            NHA_GROUP => {
                group = Some(
                    value
                        .chunks_exact(8)
                        .filter_map(|c| u32_at(c, 0))
                        .collect::<Vec<u32>>(),
                )
            }
            NHA_GROUP_TYPE => group_type = u16_at(value, 0)?,
            _ => {}
        }
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    let body = match (group, gateway, oif) {
        (Some(members), _, _) if group_type == NEXTHOP_GRP_TYPE_MPATH => Body::Group(members),
        (None, Some(gateway), Some(oif)) => Body::One { gateway, oif },
        _ => return None,
    };
    Some(Object {
        id: id?,
        protocol,
        body,
    })
}

/// The errno a netlink error message carries (0: an acknowledgement).
fn errno(body: &[u8]) -> i32 {
    u32_at(body, 0).map_or(0, |e| -(e as i32))
}

/// Every nexthop object in this namespace, or the kernel's refusal (no
/// nexthop objects in this kernel: `EOPNOTSUPP`, or `EINVAL` from some).
pub async fn dump() -> io::Result<Vec<Object>> {
    let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
    socket.socket_mut().bind_auto()?;
    socket.socket_mut().connect(&SocketAddr::new(0, 0))?;
    let mut out = Vec::with_capacity(64);
    let start = push_header(
        &mut out,
        RTM_GETNEXTHOP,
        (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
        1,
    );
    out.extend_from_slice(&[0u8; NHMSG]);
    finish(&mut out, start);
    socket.send(&out).await?;
    let mut found = Vec::new();
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        socket.recv(&mut buf).await?;
        let mut rest = &buf[..];
        while rest.len() >= HEADER {
            let len = u32_at(rest, 0).unwrap_or(0) as usize;
            let kind = u16_at(rest, 4).unwrap_or(0);
            if len < HEADER || len > rest.len() {
                return Err(io::Error::other("nexthop dump: a message cut short"));
            }
            let body = &rest[HEADER..len];
            match kind {
                NLMSG_DONE => return Ok(found),
                NLMSG_ERROR => {
                    let e = errno(body);
                    if e != 0 {
                        return Err(io::Error::from_raw_os_error(e));
                    }
                }
                RTM_NEWNEXTHOP => found.extend(parse(body)),
                _ => {}
            }
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
    }
}

/// Follow the deletions of nexthop objects of `protocol` (by hand, or
/// with their device): `gone(id)` for each, `gone(0)` when some may have
/// been missed; until `gone` returns false.
pub fn watch(protocol: u8, gone: impl Fn(u32) -> bool + Send + 'static) -> io::Result<()> {
    let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
    socket.socket_mut().bind_auto()?;
    socket.socket_mut().add_membership(RTNLGRP_NEXTHOP)?;
    tokio::spawn(async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            buf.clear();
            if socket.recv(&mut buf).await.is_err() {
                // Overflowed, say: some deletions may be lost.
                if !gone(0) {
                    return;
                }
                continue;
            }
            let mut rest = &buf[..];
            while rest.len() >= HEADER {
                let len = u32_at(rest, 0).unwrap_or(0) as usize;
                if len < HEADER || len > rest.len() {
                    break;
                }
                if u16_at(rest, 4) == Some(RTM_DELNEXTHOP) {
                    let object = parse(&rest[HEADER..len]).filter(|o| o.protocol == protocol);
                    if let Some(o) = object {
                        if !gone(o.id) {
                            return;
                        }
                    }
                }
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(message: &[u8]) -> &[u8] {
        &message[HEADER..]
    }

    #[test]
    fn a_single_object_reads_back_as_written() {
        let o = Object {
            id: 7,
            protocol: 200,
            body: Body::One {
                gateway: "10.0.0.2".parse().unwrap(),
                oif: 3,
            },
        };
        let mut out = Vec::new();
        encode(&Write::Create(o.clone()), 9, true, &mut out);
        assert_eq!(u32_at(&out, 0), Some(out.len() as u32));
        assert_eq!(u16_at(&out, 4), Some(RTM_NEWNEXTHOP));
        let flags = u16_at(&out, 6).unwrap();
        assert_ne!(flags & libc::NLM_F_EXCL as u16, 0);
        assert_eq!(u32_at(&out, 8), Some(9));
        assert_eq!(out[HEADER], libc::AF_INET as u8);
        assert_eq!(parse(body_of(&out)), Some(o));
    }

    #[test]
    fn a_group_reads_back_as_written_and_is_of_no_family() {
        let o = Object {
            id: 12,
            protocol: 200,
            body: Body::Group(vec![7, 8, 9]),
        };
        let mut out = Vec::new();
        encode(&Write::Replace(o.clone()), 1, true, &mut out);
        let flags = u16_at(&out, 6).unwrap();
        assert_ne!(flags & libc::NLM_F_REPLACE as u16, 0);
        assert_eq!(flags & libc::NLM_F_CREATE as u16, 0);
        assert_eq!(out[HEADER], libc::AF_UNSPEC as u8);
        assert_eq!(parse(body_of(&out)), Some(o));
    }

    #[test]
    fn an_ipv6_gateway_and_a_delete() {
        let o = Object {
            id: 1,
            protocol: 200,
            body: Body::One {
                gateway: "fd00::2".parse().unwrap(),
                oif: 4,
            },
        };
        let mut out = Vec::new();
        encode(&Write::Create(o.clone()), 1, true, &mut out);
        assert_eq!(out[HEADER], libc::AF_INET6 as u8);
        assert_eq!(parse(body_of(&out)), Some(o));
        let mut out = Vec::new();
        encode(&Write::Delete(5), 2, false, &mut out);
        assert_eq!(u16_at(&out, 4), Some(RTM_DELNEXTHOP));
        assert_eq!(u32_at(&out, HEADER + NHMSG + 4), Some(5));
    }

    #[test]
    fn what_is_not_ours_to_read_is_passed_over() {
        // Cut short, a blackhole (no gateway), a bad attribute length.
        assert_eq!(parse(&[0, 0, 200]), None);
        let mut b = vec![libc::AF_INET as u8, 0, 200, 0, 0, 0, 0, 0];
        push_attr(&mut b, NHA_ID, &3u32.to_ne_bytes());
        push_attr(&mut b, 4, &[]);
        assert_eq!(parse(&b), None);
        let mut b = vec![libc::AF_INET as u8, 0, 200, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[200, 0, 1, 0]);
        assert_eq!(parse(&b), None);
    }
}
