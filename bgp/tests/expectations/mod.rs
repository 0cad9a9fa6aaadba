//! Reading the `# expect:` lines of a vector and checking each against the
//! decoded message. A line this reader does not understand is an error.

use std::net::Ipv4Addr;

use bgp::wire::*;
use regex::Regex;

use crate::Vector;

/// A compiled pattern, built once per thread.
fn re(pattern: &'static str) -> Regex {
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<&'static str, Regex>> = Default::default();
    }
    CACHE.with(|c| {
        c.borrow_mut()
            .entry(pattern)
            .or_insert_with(|| Regex::new(pattern).expect("valid pattern"))
            .clone()
    })
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

pub fn check(
    v: &Vector,
    m: &Message,
    line: &str,
    next_capability: &mut usize,
) -> Result<(), String> {
    let kind_len = re(r"^(OPEN|UPDATE|KEEPALIVE|NOTIFICATION|ROUTE-REFRESH), length (\d+)");
    if let Some(c) = kind_len.captures(line) {
        let kind = match m {
            Message::Open(_) => "OPEN",
            Message::Update(_) => "UPDATE",
            Message::Keepalive => "KEEPALIVE",
            Message::Notification(_) => "NOTIFICATION",
            Message::RouteRefresh(_) => "ROUTE-REFRESH",
        };
        ensure(&c[1] == kind, || format!("decoded as {kind}"))?;
        ensure(num::<usize>(&c[2])? == v.bytes.len(), || {
            format!("{} bytes", v.bytes.len())
        })?;
        return match m {
            Message::Open(o) => check_open_line(o, line),
            Message::Update(u) => check_update_line(v, u, line),
            Message::Notification(n) => check_notification(n, line),
            Message::RouteRefresh(r) => check_route_refresh(r, line),
            Message::Keepalive => Ok(()),
        };
    }
    match m {
        Message::Open(o) => check_open_detail(o, line, next_capability),
        Message::Update(u) => check_update_detail(v, u, line),
        _ => Err("an expectation this test cannot read".into()),
    }
}

fn check_open_line(o: &Open, line: &str) -> Result<(), String> {
    let c = re(r"my AS (\d+).*hold time (\d+); BGP identifier ([\d.]+)")
        .captures(line)
        .ok_or("no AS, hold time and identifier")?;
    ensure(num::<u16>(&c[1])? == o.my_as, || {
        format!("my AS {}", o.my_as)
    })?;
    ensure(num::<u16>(&c[2])? == o.hold_time, || {
        format!("hold time {}", o.hold_time)
    })?;
    ensure(num::<Ipv4Addr>(&c[3])? == o.bgp_id, || {
        format!("identifier {}", o.bgp_id)
    })
}

fn check_open_detail(o: &Open, line: &str, next_capability: &mut usize) -> Result<(), String> {
    if line == "no optional parameters (no capabilities)" {
        return ensure(o.params.is_empty(), || {
            format!("{} parameters", o.params.len())
        });
    }
    if let Some(c) =
        re(r"^(\d+) optional parameter\(s\) of type 2 \(capabilities\) holding (\d+) capabilities")
            .captures(line)
    {
        let n: usize = num(&c[1])?;
        ensure(n == 1 && o.params.len() == 1, || {
            format!("{} parameters", o.params.len())
        })?;
        return ensure(o.params[0].len() == num::<usize>(&c[2])?, || {
            format!("{} capabilities", o.params[0].len())
        });
    }
    if let Some(c) = re(r"^(\d+) optional parameters of type 2 \(capabilities\), each holding (?:exactly )?one capability$").captures(line) {
        ensure(o.params.len() == num::<usize>(&c[1])?, || format!("{} parameters", o.params.len()))?;
        return ensure(o.params.iter().all(|p| p.len() == 1), || "a parameter holds several".into());
    }
    if line.starts_with("capability ") {
        let cap = o
            .capabilities()
            .nth(*next_capability)
            .ok_or("fewer capabilities decoded")?;
        *next_capability += 1;
        return check_capability(cap, line);
    }
    Err("an OPEN expectation this test cannot read".into())
}

fn hex_u8(s: &str) -> Result<u8, String> {
    u8::from_str_radix(s, 16).map_err(|e| e.to_string())
}

/// Check a capability's per-family entries against the matches of
/// `pattern` in `line`: groups 1 and 2 are AFI and SAFI, group 3 the value
/// `third` checks.
fn check_families<T>(
    line: &str,
    pattern: &'static str,
    entries: &[T],
    family: impl Fn(&T) -> Family,
    third: impl Fn(&T, &str) -> Result<bool, String>,
) -> Result<(), String> {
    let found: Vec<_> = re(pattern).captures_iter(line).collect();
    ensure(found.len() == entries.len(), || {
        format!("{} entries", entries.len())
    })?;
    for (c, e) in found.iter().zip(entries) {
        let f = family(e);
        ensure(f == Family::from_codes(num(&c[1])?, num(&c[2])?), || {
            format!("family {f}")
        })?;
        ensure(third(e, &c[3])?, || format!("{f}: not {}", &c[3]))?;
    }
    Ok(())
}

fn check_capability(cap: &Capability, line: &str) -> Result<(), String> {
    let code: u8 = num(&re(r"^capability (\d+)").captures(line).ok_or("no code")?[1])?;
    ensure(u8::from(cap.code()) == code, || format!("decoded {cap:?}"))?;
    let families =
        |pat: &'static str| -> Vec<regex::Captures<'_>> { re(pat).captures_iter(line).collect() };
    let fam =
        |a: &str, s: &str| -> Result<Family, String> { Ok(Family::from_codes(num(a)?, num(s)?)) };
    match cap {
        Capability::Multiprotocol(f) => {
            let c = &families(r"AFI (\d+) \(\w+\) SAFI (\d+)")[0];
            ensure(*f == fam(&c[1], &c[2])?, || format!("decoded {f}"))
        }
        Capability::FourOctetAs(asn) => {
            let c = re(r"AS (\d+)$").captures(line).ok_or("no AS")?;
            ensure(*asn == num::<u32>(&c[1])?, || format!("decoded AS {asn}"))
        }
        Capability::GracefulRestart(gr) => {
            let c = re(r"restart flags 0x([0-9a-f]+) .*restart time (\d+) s")
                .captures(line)
                .ok_or("no flags")?;
            ensure(gr.flags == hex_u8(&c[1])?, || {
                format!("flags {:x}", gr.flags)
            })?;
            ensure(gr.time == num::<u16>(&c[2])?, || {
                format!("time {}", gr.time)
            })?;
            check_families(
                line,
                r"AFI (\d+) \(\w+\) SAFI (\d+) \(\w+\) flags 0x([0-9a-f]+)",
                &gr.families,
                |f| f.family,
                |f, v| Ok(f.flags == hex_u8(v)?),
            )
        }
        Capability::AddPath(entries) => check_families(
            line,
            r"AFI (\d+) \(\w+\) SAFI (\d+) \(\w+\) send/receive (\d+)",
            entries,
            |e| e.family,
            |e, v| Ok(u8::from(e.mode) == num::<u8>(v)?),
        ),
        Capability::ExtendedNextHop(entries) => check_families(
            line,
            r"NLRI AFI (\d+) \(\w+\) SAFI (\d+) \(\w+\) with next hop AFI (\d+)",
            entries,
            |e| e.family,
            |e, v| Ok(u16::from(e.next_hop_afi) == num::<u16>(v)?),
        ),
        Capability::Fqdn(f) => {
            let c = re(r#"hostname length \d+ "([^"]*)", domain name length \d+ "([^"]*)""#)
                .captures(line)
                .ok_or("no names")?;
            ensure(f.hostname == c[1] && f.domain == c[2], || {
                format!("decoded {f:?}")
            })
        }
        Capability::RouteRefresh
        | Capability::EnhancedRouteRefresh
        | Capability::ExtendedMessage => ensure(line.contains("length 0: no value"), || {
            "expected a value".into()
        }),
        // Kept opaque: long-lived graceful restart, BGP role, Cisco route refresh.
        Capability::Unknown { value, .. } => {
            let c = re(r"length (\d+)").captures(line).ok_or("no length")?;
            ensure(value.len() == num::<usize>(&c[1])?, || {
                format!("{} bytes", value.len())
            })
        }
    }
}

fn check_update_line(v: &Vector, u: &Update, line: &str) -> Result<(), String> {
    if let Some(c) =
        re(r"withdrawn routes length (\d+); total path attribute length (\d+)").captures(line)
    {
        let w = usize::from(u16::from_be_bytes([v.bytes[19], v.bytes[20]]));
        ensure(w == num::<usize>(&c[1])?, || {
            format!("withdrawn length {w}")
        })?;
        let a = usize::from(u16::from_be_bytes([v.bytes[21 + w], v.bytes[22 + w]]));
        return ensure(a == num::<usize>(&c[2])?, || {
            format!("attribute length {a}")
        });
    }
    if line.contains("End-of-RIB marker for IPv4 unicast") {
        return ensure(u.as_end_of_rib() == Some(Family::IPV4_UNICAST), || {
            "not an IPv4 End-of-RIB".into()
        });
    }
    if let Some(c) = re(r"End-of-RIB marker for AFI (\d+) \(\w+\) SAFI (\d+)").captures(line) {
        let f = Family::from_codes(num(&c[1])?, num(&c[2])?);
        return ensure(u.as_end_of_rib() == Some(f), || {
            format!("not an End-of-RIB for {f}")
        });
    }
    Err("an UPDATE header this test cannot read".into())
}

fn parse_nlri_list(list: &str) -> Result<Vec<Nlri>, String> {
    let item = re(r"(?:path id (\d+) )?([0-9a-f.:]+/\d+)");
    item.captures_iter(list)
        .map(|c| {
            let prefix: ipnet::IpNet = num(&c[2])?;
            Ok(match c.get(1) {
                Some(id) => Nlri::with_path_id(prefix, num(id.as_str())?),
                None => Nlri::new(prefix),
            })
        })
        .collect()
}

fn check_list(decoded: &[Nlri], count: &str, list: &str) -> Result<(), String> {
    let expected = parse_nlri_list(list)?;
    ensure(expected.len() == num::<usize>(count)?, || {
        "count and list differ in the expectation".into()
    })?;
    ensure(decoded == expected.as_slice(), || {
        format!("decoded {decoded:?}")
    })
}

fn check_update_detail(v: &Vector, u: &Update, line: &str) -> Result<(), String> {
    if let Some(c) = re(r"^attribute order \(type codes\): ([\d ]+)$").captures(line) {
        let expected: Vec<u8> = c[1].split_whitespace().map(num).collect::<Result<_, _>>()?;
        let decoded: Vec<u8> = u
            .attributes
            .iter()
            .map(|a| u8::from(a.type_code()))
            .collect();
        return ensure(decoded == expected, || format!("decoded {decoded:?}"));
    }
    if let Some(c) = re(r"^IPv4 NLRI \((\d+)\): (.*)$").captures(line) {
        return check_list(&u.nlri, &c[1], &c[2]);
    }
    if line == "no IPv4 NLRI field" {
        return ensure(u.nlri.is_empty(), || format!("decoded {:?}", u.nlri));
    }
    if let Some(c) = re(r"^withdrawn IPv4 routes \((\d+)\): (.*)$").captures(line) {
        return check_list(&u.withdrawn, &c[1], &c[2]);
    }
    let c = re(
        r"^attribute (\d+) [A-Z0-9_ ()a-z]+, flags 0x([0-9a-f]+) \([a-z, -]+\), length (\d+)(.*)$",
    )
    .captures(line)
    .ok_or("an UPDATE expectation this test cannot read")?;
    let code: u8 = num(&c[1])?;
    let a = u
        .attributes
        .iter()
        .find(|a| u8::from(a.type_code()) == code)
        .ok_or("attribute not decoded")?;
    let flags = u8::from_str_radix(&c[2], 16).map_err(|e| e.to_string())?;
    ensure(a.flags == flags, || format!("flags {:#x}", a.flags))?;
    check_value(v, &a.value, &c[4])
}

fn check_as_path(path: &AsPath, rest: &str, two_octet: bool) -> Result<(), String> {
    let narrow = |asn: u32| {
        if two_octet {
            u32::from(u16::try_from(asn).unwrap_or(23456))
        } else {
            asn
        }
    };
    let mut expected = Vec::new();
    for c in re(r"(AS_SEQUENCE|AS_SET|AS_CONFED_SEQUENCE|AS_CONFED_SET) of \d+ \[([\d ]+)\]")
        .captures_iter(rest)
    {
        let kind = match &c[1] {
            "AS_SET" => SegmentType::Set,
            "AS_SEQUENCE" => SegmentType::Sequence,
            "AS_CONFED_SEQUENCE" => SegmentType::ConfedSequence,
            _ => SegmentType::ConfedSet,
        };
        let asns: Vec<u32> = c[2].split_whitespace().map(num).collect::<Result<_, _>>()?;
        expected.push((kind, asns));
    }
    ensure(rest.contains("empty") == expected.is_empty(), || {
        "unreadable path".into()
    })?;
    let decoded: Vec<(SegmentType, Vec<u32>)> = path
        .segments
        .iter()
        .map(|s| (s.kind, s.asns.iter().map(|&a| narrow(a)).collect()))
        .collect();
    ensure(decoded == expected, || format!("decoded {path}"))
}

fn check_value(v: &Vector, value: &AttrValue, rest: &str) -> Result<(), String> {
    let first_num =
        || -> Result<u32, String> { num(&re(r"^: (\d+)").captures(rest).ok_or("no number")?[1]) };
    let two_octet = !v.ctx.four_octet_as;
    match value {
        AttrValue::Origin(o) => {
            let code = match o {
                Origin::Igp => 0,
                Origin::Egp => 1,
                Origin::Incomplete => 2,
            };
            ensure(first_num()? == code, || format!("decoded {o:?}"))
        }
        AttrValue::AsPath(p) => check_as_path(p, rest, rest.contains("2-octet")),
        AttrValue::As4Path(p) => check_as_path(p, rest, false),
        AttrValue::NextHop(a) => {
            let c = re(r"^: ([\d.]+)$").captures(rest).ok_or("no address")?;
            ensure(*a == num::<Ipv4Addr>(&c[1])?, || format!("decoded {a}"))
        }
        AttrValue::MultiExitDisc(n) | AttrValue::LocalPref(n) => {
            ensure(first_num()? == *n, || format!("decoded {n}"))
        }
        AttrValue::AtomicAggregate => {
            ensure(rest.contains("(no value)"), || "expected a value".into())
        }
        AttrValue::Aggregator(g) | AttrValue::As4Aggregator(g) => {
            let c = re(r"AS (\d+) \((\d)-octet\), router ([\d.]+)")
                .captures(rest)
                .ok_or("no aggregator")?;
            let narrow = &c[2] == "2" && two_octet;
            let asn = if narrow {
                u32::from(u16::try_from(g.asn).unwrap_or(23456))
            } else {
                g.asn
            };
            ensure(asn == num::<u32>(&c[1])?, || {
                format!("decoded AS {}", g.asn)
            })?;
            ensure(g.address == num::<Ipv4Addr>(&c[3])?, || {
                format!("decoded {}", g.address)
            })
        }
        AttrValue::Communities(cs) => {
            let expected: Vec<Community> = re(r"(\d+):(\d+)")
                .captures_iter(rest)
                .map(|c| Ok(Community::new(num(&c[1])?, num(&c[2])?)))
                .collect::<Result<_, String>>()?;
            ensure(cs.as_slice() == expected.as_slice(), || {
                format!("decoded {cs:?}")
            })
        }
        AttrValue::LargeCommunities(cs) => {
            let expected: Vec<LargeCommunity> = re(r"(\d+):(\d+):(\d+)")
                .captures_iter(rest)
                .map(|c| Ok(LargeCommunity::new(num(&c[1])?, num(&c[2])?, num(&c[3])?)))
                .collect::<Result<_, String>>()?;
            ensure(cs.as_slice() == expected.as_slice(), || {
                format!("decoded {cs:?}")
            })
        }
        AttrValue::ExtendedCommunities(cs) => {
            let items: Vec<_> =
                re(r"\(type 0x([0-9a-f]{2}) subtype 0x([0-9a-f]{2})\): ([\d.]+):(\d+)")
                    .captures_iter(rest)
                    .collect();
            ensure(items.len() == cs.len(), || {
                format!("{} communities", cs.len())
            })?;
            for (c, ec) in items.iter().zip(cs) {
                let b = ec.0;
                let ty = u8::from_str_radix(&c[1], 16).map_err(|e| e.to_string())?;
                let sub = u8::from_str_radix(&c[2], 16).map_err(|e| e.to_string())?;
                ensure(b[0] == ty && b[1] == sub, || format!("decoded {b:02x?}"))?;
                let (global, local): (Vec<u8>, u32) = match ty {
                    0x00 => (num::<u16>(&c[3])?.to_be_bytes().to_vec(), num(&c[4])?),
                    0x01 => (num::<Ipv4Addr>(&c[3])?.octets().to_vec(), num(&c[4])?),
                    _ => (num::<u32>(&c[3])?.to_be_bytes().to_vec(), num(&c[4])?),
                };
                let local_bytes = local.to_be_bytes();
                let local_tail = &local_bytes[4 - (6 - global.len())..];
                ensure(
                    b[2..2 + global.len()] == global[..] && &b[2 + global.len()..] == local_tail,
                    || format!("decoded {b:02x?}"),
                )?;
            }
            Ok(())
        }
        AttrValue::MpReach(r) => {
            let c = re(r"AFI (\d+) \(\w+\) SAFI (\d+) \(\w+\), next hop length (\d+): (?:global ([0-9a-f:]+)(?: \+ link-local ([0-9a-f:]+))?|([\d.]+)); reserved byte 0; NLRI \((\d+)\): (.*)$")
                .captures(rest)
                .ok_or("unreadable MP_REACH_NLRI")?;
            ensure(
                r.family == Family::from_codes(num(&c[1])?, num(&c[2])?),
                || format!("family {}", r.family),
            )?;
            let nh = match (c.get(4), c.get(5), c.get(6)) {
                (Some(g), ll, _) => NextHop::V6 {
                    global: num(g.as_str())?,
                    link_local: ll.map(|l| num(l.as_str())).transpose()?,
                },
                (None, _, Some(a)) => NextHop::V4(num(a.as_str())?),
                _ => return Err("no next hop".into()),
            };
            ensure(r.next_hop == nh, || format!("next hop {}", r.next_hop))?;
            check_list(&r.nlri, &c[7], &c[8])
        }
        AttrValue::MpUnreach(r) => {
            let c = re(r"AFI (\d+) \(\w+\) SAFI (\d+) \(\w+\)")
                .captures(rest)
                .ok_or("no family")?;
            ensure(
                r.family == Family::from_codes(num(&c[1])?, num(&c[2])?),
                || format!("family {}", r.family),
            )?;
            match re(r"withdrawn \((\d+)\): (.*)$").captures(rest) {
                Some(w) => check_list(&r.withdrawn, &w[1], &w[2]),
                None => ensure(r.withdrawn.is_empty(), || {
                    format!("decoded {:?}", r.withdrawn)
                }),
            }
        }
        AttrValue::Unknown {
            type_code: 35,
            value,
        } => {
            // OTC (RFC 9234), unknown to this codec: a 4-octet AS kept as bytes.
            let asn = first_num_after(rest, "AS ")?;
            ensure(value[..] == asn.to_be_bytes(), || {
                format!("decoded {value:02x?}")
            })
        }
        other => Err(format!("no reader for {other:?}")),
    }
}

fn first_num_after(rest: &str, label: &str) -> Result<u32, String> {
    let at = rest.find(label).ok_or("no label")? + label.len();
    let digits: String = rest[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    num(&digits)
}

fn check_notification(n: &Notification, line: &str) -> Result<(), String> {
    let c = re(r"error code (\d+) \([^)]*\), subcode (\d+)")
        .captures(line)
        .ok_or("no codes")?;
    ensure(n.cause.codes() == (num(&c[1])?, num(&c[2])?), || {
        format!("decoded {}", n.cause)
    })?;
    if line.ends_with("no data") {
        return ensure(n.data.is_empty(), || format!("data {:02x?}", n.data));
    }
    if let Some(t) = re(r#"text "(.*)"$"#).captures(line) {
        return ensure(n.shutdown_message() == Some(&t[1]), || {
            format!("decoded {:?}", n.shutdown_message())
        });
    }
    if let Some(d) = re(r"data 0x([0-9a-f]+)").captures(line) {
        return ensure(hex::encode(&n.data) == d[1], || {
            format!("data {}", hex::encode(&n.data))
        });
    }
    Err("unreadable NOTIFICATION data".into())
}

fn check_route_refresh(r: &RouteRefresh, line: &str) -> Result<(), String> {
    let c = re(r"AFI (\d+) \(\w+\) SAFI (\d+) \(\w+\), subtype (\d+)")
        .captures(line)
        .ok_or("no fields")?;
    ensure(
        r.family == Family::from_codes(num(&c[1])?, num(&c[2])?),
        || format!("family {}", r.family),
    )?;
    ensure(u8::from(r.subtype) == num::<u8>(&c[3])?, || {
        format!("subtype {:?}", r.subtype)
    })
}
