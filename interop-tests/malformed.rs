//! Malformed input from a live peer, over TCP, against the running daemon.
//!
//!   good (podbgp, AS 64512) ---- podbgp D (AS 64512) ---- x1 .. xN (scripted, AS 64513)
//!
//! Each case has a scripted peer of its own (a host and a passive
//! neighbour of D), so the cases run side by side and no case waits out
//! the idle hold time another one's error started. A case opens a session,
//! or fails to, the way it says, sends its bytes, and checks D's answer:
//! the NOTIFICATION RFC 4271 §6 and RFC 6608 prescribe, or, for what RFC
//! 7606 repairs, the route withdrawn (treat-as-withdraw) or kept with the
//! attribute dropped (attribute discard), the session up. After every
//! case D still holds the good peer's route, in its RIB and in the kernel,
//! and answers its API. Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use lab::podbgp::Podbgp;
use lab::{Advert, Lab, PeerSpec, Speaker};

const BAD_AS: u32 = 64513;
const GOOD_PREFIX: &str = "10.244.9.0/24";

/// What D must do with a case's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Close the session with this NOTIFICATION (code, subcode).
    Notification(u8, u8),
    /// Keep the session; the case's route, announced first, is withdrawn.
    Withdrawn,
    /// Keep the session and the route (the bad attribute dropped).
    Kept,
}

/// When in the session the case's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Right after the TCP connection, before our OPEN (D has sent its own).
    Connected,
    /// Instead of our OPEN.
    Open,
    /// After our OPEN and D's, before our KEEPALIVE.
    OpenConfirm,
    /// In Established, after a valid route of the case's own.
    Established,
}

struct Case {
    name: &'static str,
    rule: &'static str,
    stage: Stage,
    /// The bytes, given the case's route (10.66.i.0/24) and our address.
    bytes: fn(u8, Ipv4Addr) -> Vec<u8>,
    expect: Expect,
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(19 + body.len() as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// An OPEN from AS `asn` with hold time `hold`, identifier `id`, and the
/// capabilities multiprotocol IPv4 unicast and 4-octet AS.
fn open_with(version: u8, asn: u32, hold: u16, id: Ipv4Addr) -> Vec<u8> {
    let caps = [
        &[1u8, 4, 0, 1, 0, 1][..],
        &[&[65u8, 4][..], &asn.to_be_bytes()[..]].concat(),
    ]
    .concat();
    let mut body = vec![version];
    // AS_TRANS (RFC 6793) for an AS above 16 bits; these fit.
    let my_as = u16::try_from(asn).unwrap_or(23456);
    body.extend_from_slice(&my_as.to_be_bytes());
    body.extend_from_slice(&hold.to_be_bytes());
    body.extend_from_slice(&id.octets());
    body.push(caps.len() as u8 + 2);
    body.push(2);
    body.push(caps.len() as u8);
    body.extend_from_slice(&caps);
    message(1, &body)
}

fn open(me: Ipv4Addr) -> Vec<u8> {
    open_with(4, BAD_AS, 90, me)
}

fn keepalive() -> Vec<u8> {
    message(4, &[])
}

fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, code, value.len() as u8];
    a.extend_from_slice(value);
    a
}

fn origin() -> Vec<u8> {
    attr(0x40, 1, &[0])
}

fn as_path() -> Vec<u8> {
    attr(
        0x40,
        2,
        &[&[2u8, 1][..], &BAD_AS.to_be_bytes()[..]].concat(),
    )
}

fn next_hop(me: Ipv4Addr) -> Vec<u8> {
    attr(0x40, 3, &me.octets())
}

fn nlri(i: u8) -> Vec<u8> {
    vec![24, 10, 66, i]
}

fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    message(2, &body)
}

/// The case's route with these attributes in place of the usual three.
fn announce_with(i: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
    update(&[], &attrs.concat(), &nlri(i))
}

/// A valid announcement of the case's route.
fn valid(i: u8, me: Ipv4Addr) -> Vec<u8> {
    announce_with(i, &[origin(), as_path(), next_hop(me)])
}

fn cases() -> Vec<Case> {
    use Expect::*;
    use Stage::*;
    vec![
        Case {
            name: "marker not all ones",
            rule: "4271 §6.1",
            stage: Established,
            bytes: |_, _| {
                let mut m = keepalive();
                m[3] = 0;
                m
            },
            expect: Notification(1, 1),
        },
        Case {
            name: "length below 19",
            rule: "4271 §6.1",
            stage: Established,
            bytes: |_, _| {
                let mut m = keepalive();
                m[17] = 18;
                m
            },
            expect: Notification(1, 2),
        },
        Case {
            name: "length above 4096",
            rule: "4271 §6.1",
            stage: Established,
            bytes: |_, _| {
                let mut m = keepalive();
                m[16..18].copy_from_slice(&4097u16.to_be_bytes());
                m
            },
            expect: Notification(1, 2),
        },
        Case {
            name: "unknown message type",
            rule: "4271 §6.1",
            stage: Established,
            bytes: |_, _| message(9, &[]),
            expect: Notification(1, 3),
        },
        Case {
            name: "KEEPALIVE with a body",
            rule: "4271 §6.1",
            stage: Established,
            bytes: |_, _| message(4, &[0]),
            expect: Notification(1, 2),
        },
        Case {
            name: "OPEN of version 3",
            rule: "4271 §6.2",
            stage: Open,
            bytes: |_, me| open_with(3, BAD_AS, 90, me),
            expect: Notification(2, 1),
        },
        Case {
            name: "OPEN from another AS",
            rule: "4271 §6.2",
            stage: Open,
            bytes: |_, me| open_with(4, 64999, 90, me),
            expect: Notification(2, 2),
        },
        Case {
            name: "OPEN with BGP identifier 0.0.0.0",
            rule: "4271 §6.2",
            stage: Open,
            bytes: |_, _| open_with(4, BAD_AS, 90, Ipv4Addr::UNSPECIFIED),
            expect: Notification(2, 3),
        },
        Case {
            name: "OPEN with hold time 1",
            rule: "4271 §6.2",
            stage: Open,
            bytes: |_, me| open_with(4, BAD_AS, 1, me),
            expect: Notification(2, 6),
        },
        Case {
            name: "OPEN with hold time 2",
            rule: "4271 §6.2",
            stage: Open,
            bytes: |_, me| open_with(4, BAD_AS, 2, me),
            expect: Notification(2, 6),
        },
        Case {
            name: "OPEN with a capability past its parameter",
            rule: "4271 §6.2, 5492 §3",
            stage: Open,
            bytes: |_, me| {
                let mut m = open_with(4, BAD_AS, 90, me);
                // The multiprotocol capability's length: 4 becomes 12.
                m[32] = 12;
                m
            },
            // OPEN Message Error, unspecific: no subcode names a malformed
            // capability.
            expect: Notification(2, 0),
        },
        Case {
            name: "UPDATE before OPEN",
            rule: "6608 (OpenSent)",
            stage: Connected,
            bytes: |i, me| valid(i, me),
            expect: Notification(5, 1),
        },
        Case {
            name: "KEEPALIVE before OPEN",
            rule: "6608 (OpenSent)",
            stage: Connected,
            bytes: |_, _| keepalive(),
            expect: Notification(5, 1),
        },
        Case {
            name: "a second OPEN in OpenConfirm",
            rule: "6608 (OpenConfirm)",
            stage: OpenConfirm,
            bytes: |_, me| open(me),
            expect: Notification(5, 2),
        },
        Case {
            name: "OPEN in Established",
            rule: "6608 (Established)",
            stage: Established,
            bytes: |_, me| open(me),
            expect: Notification(5, 3),
        },
        Case {
            name: "withdrawn routes longer than the message",
            rule: "4271 §6.3, 7606 §4",
            stage: Established,
            bytes: |i, _| {
                let mut m = update(&nlri(i), &[], &[]);
                m[19..21].copy_from_slice(&200u16.to_be_bytes());
                m
            },
            expect: Notification(3, 1),
        },
        Case {
            name: "path attributes longer than the message",
            rule: "4271 §6.3, 7606 §4",
            stage: Established,
            bytes: |i, me| {
                let mut m = valid(i, me);
                m[21..23].copy_from_slice(&300u16.to_be_bytes());
                m
            },
            expect: Notification(3, 1),
        },
        Case {
            name: "NLRI prefix length 33",
            rule: "7606 §5.3",
            stage: Established,
            bytes: |_, me| {
                update(
                    &[],
                    &[origin(), as_path(), next_hop(me)].concat(),
                    &[33, 10, 66, 0, 0, 0],
                )
            },
            expect: Notification(3, 10),
        },
        Case {
            name: "ORIGIN flagged optional",
            rule: "7606 §3.c",
            stage: Established,
            bytes: |i, me| announce_with(i, &[attr(0xc0, 1, &[0]), as_path(), next_hop(me)]),
            expect: Withdrawn,
        },
        Case {
            name: "ORIGIN of length 2",
            rule: "7606 §7.1",
            stage: Established,
            bytes: |i, me| announce_with(i, &[attr(0x40, 1, &[0, 0]), as_path(), next_hop(me)]),
            expect: Withdrawn,
        },
        Case {
            name: "ORIGIN value 5",
            rule: "7606 §7.1",
            stage: Established,
            bytes: |i, me| announce_with(i, &[attr(0x40, 1, &[5]), as_path(), next_hop(me)]),
            expect: Withdrawn,
        },
        Case {
            name: "AS_PATH segment past its attribute",
            rule: "7606 §7.2",
            stage: Established,
            bytes: |i, me| {
                let path = attr(
                    0x40,
                    2,
                    &[&[2u8, 3][..], &BAD_AS.to_be_bytes()[..]].concat(),
                );
                announce_with(i, &[origin(), path, next_hop(me)])
            },
            expect: Withdrawn,
        },
        Case {
            name: "NEXT_HOP of length 5",
            rule: "7606 §7.3",
            stage: Established,
            bytes: |i, me| {
                let nh = attr(0x40, 3, &[&me.octets()[..], &[0u8][..]].concat());
                announce_with(i, &[origin(), as_path(), nh])
            },
            expect: Withdrawn,
        },
        Case {
            name: "ORIGIN missing",
            rule: "7606 §3.d",
            stage: Established,
            bytes: |i, me| announce_with(i, &[as_path(), next_hop(me)]),
            expect: Withdrawn,
        },
        Case {
            name: "MP_REACH_NLRI with a prefix past its end",
            rule: "7606 §7.11, 4760 §7",
            stage: Established,
            bytes: |_, me| {
                // AFI 1, SAFI 1, next hop of 4, no SNPA, a /24 cut short.
                let reach = [
                    &[0u8, 1, 1, 4][..],
                    &me.octets()[..],
                    &[0u8, 24, 10, 66][..],
                ]
                .concat();
                let attrs = [origin(), as_path(), attr(0x80, 14, &reach)].concat();
                // The family goes off for the session: the case's route,
                // IPv4 unicast too, goes with it.
                update(&[], &attrs, &[])
            },
            expect: Withdrawn,
        },
        Case {
            name: "MULTI_EXIT_DISC of length 3",
            rule: "7606 §7.4",
            stage: Established,
            bytes: |i, me| {
                announce_with(
                    i,
                    &[origin(), as_path(), next_hop(me), attr(0x80, 4, &[0, 0, 1])],
                )
            },
            expect: Withdrawn,
        },
        Case {
            name: "MULTI_EXIT_DISC twice",
            rule: "7606 §3.g",
            stage: Established,
            bytes: |i, me| {
                let med = attr(0x80, 4, &[0, 0, 0, 1]);
                announce_with(i, &[origin(), as_path(), next_hop(me), med.clone(), med])
            },
            expect: Kept,
        },
        Case {
            name: "LOCAL_PREF from an eBGP peer",
            rule: "7606 §7.5",
            stage: Established,
            bytes: |i, me| {
                let lp = attr(0x40, 5, &[0, 0, 0, 200]);
                announce_with(i, &[origin(), as_path(), next_hop(me), lp])
            },
            expect: Kept,
        },
        Case {
            name: "ATOMIC_AGGREGATE of length 1",
            rule: "7606 §7.6",
            stage: Established,
            bytes: |i, me| {
                announce_with(i, &[origin(), as_path(), next_hop(me), attr(0x40, 6, &[0])])
            },
            expect: Kept,
        },
        Case {
            name: "unrecognised well-known attribute",
            rule: "4271 §6.3",
            stage: Established,
            bytes: |i, me| {
                announce_with(
                    i,
                    &[origin(), as_path(), next_hop(me), attr(0x40, 200, &[1])],
                )
            },
            expect: Notification(3, 2),
        },
    ]
}

/// Read one whole message; `None` at end of stream or on a timeout.
fn read_message(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 19];
    s.read_exact(&mut header).ok()?;
    let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
    let mut body = vec![0u8; len.checked_sub(19)?];
    s.read_exact(&mut body).ok()?;
    Some((header[18], body))
}

/// Read until a NOTIFICATION (its code and subcode) or the end.
fn notification(s: &mut TcpStream, within: Duration) -> Option<(u8, u8)> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        let (kind, body) = read_message(s)?;
        if kind == 3 {
            return Some((*body.first()?, *body.get(1)?));
        }
    }
    None
}

/// Read until a message of `kind`; false at the end of the stream.
fn wait_for(s: &mut TcpStream, kind: u8) -> bool {
    for _ in 0..10 {
        match read_message(s) {
            Some((k, _)) if k == kind => return true,
            Some(_) => {}
            None => return false,
        }
    }
    false
}

/// Run one case from `me`; `Err` says what went wrong.
fn run(
    case: &Case,
    i: u8,
    host: &lab::Host,
    d: SocketAddr,
    me: Ipv4Addr,
    dut: &Podbgp,
) -> Result<(), String> {
    let mut s = lab::connect_in(host, d).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let send = |s: &mut TcpStream, b: &[u8]| s.write_all(b).map_err(|e| format!("send: {e}"));
    let bytes = (case.bytes)(i, me);
    let route = format!("10.66.{i}.0/24");
    match case.stage {
        Stage::Connected => {
            if !wait_for(&mut s, 1) {
                return Err("no OPEN from D".into());
            }
            send(&mut s, &bytes)?;
        }
        Stage::Open => send(&mut s, &bytes)?,
        Stage::OpenConfirm | Stage::Established => {
            send(&mut s, &open(me))?;
            if !wait_for(&mut s, 1) {
                return Err("no OPEN from D".into());
            }
            if case.stage == Stage::OpenConfirm {
                send(&mut s, &bytes)?;
            } else {
                send(&mut s, &keepalive())?;
                if !wait_for(&mut s, 4) {
                    return Err("no KEEPALIVE from D".into());
                }
                send(&mut s, &valid(i, me))?;
                let there = lab::eventually(Duration::from_secs(10), || has_route(dut, &route));
                if !there {
                    return Err(format!("the valid {route} never reached D's RIB"));
                }
                send(&mut s, &bytes)?;
            }
        }
    }
    match case.expect {
        Expect::Notification(code, sub) => match notification(&mut s, Duration::from_secs(10)) {
            Some((c, n)) if (c, n) == (code, sub) => Ok(()),
            Some((c, n)) => Err(format!("NOTIFICATION {c}/{n}, not {code}/{sub}")),
            None => Err(format!("no NOTIFICATION (wanted {code}/{sub})")),
        },
        Expect::Withdrawn | Expect::Kept => {
            let want = case.expect == Expect::Kept;
            // Time for D to act, answering its keepalives meanwhile.
            std::thread::sleep(Duration::from_secs(1));
            send(&mut s, &keepalive())?;
            let settled =
                lab::eventually(Duration::from_secs(5), || has_route(dut, &route) == want);
            if !settled {
                return Err(format!(
                    "{route} {} D's RIB",
                    if want { "left" } else { "stayed in" }
                ));
            }
            if !dut.established(IpAddr::V4(me)) {
                return Err("the session went down".into());
            }
            // Nothing else came: no NOTIFICATION waiting on the socket.
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .map_err(|e| e.to_string())?;
            match notification(&mut s, Duration::from_millis(300)) {
                Some((c, n)) => Err(format!("NOTIFICATION {c}/{n} after all")),
                None => Ok(()),
            }
        }
    }
}

fn has_route(dut: &Podbgp, prefix: &str) -> bool {
    dut.rib(false).iter().any(|r| r.prefix == prefix)
}

#[test]
fn every_malformed_case_gets_its_prescribed_answer_and_nothing_else_changes() {
    if !lab::ready() {
        return;
    }
    let cases = cases();
    let mut lab = Lab::new("malformed");
    let (hd, hg) = (lab.host("d"), lab.host("good"));
    let bad: Vec<lab::Host> = (0..cases.len())
        .map(|i| lab.host(&format!("x{i}")))
        .collect();
    let mut dut = Podbgp::new(&hd, 64512);
    let mut good = Podbgp::new(&hg, 64512);
    dut.add_peer(PeerSpec::new(hg.v4.into(), 64512));
    for h in &bad {
        let mut p = PeerSpec::new(h.v4.into(), BAD_AS);
        p.passive = true;
        dut.add_peer(p);
    }
    good.add_peer(PeerSpec::new(hd.v4.into(), 64512));
    good.advertise(Advert::plain(GOOD_PREFIX));
    dut.start(&mut lab);
    good.start(&mut lab);
    dut.wait_established(&lab, hg.v4.into());
    dut.wait_route(&lab, GOOD_PREFIX);
    dut.wait_kernel(&lab, GOOD_PREFIX);
    let good_in_kernel = || -> Vec<String> {
        let routes = dut.kernel_routes(false);
        routes
            .into_iter()
            .filter(|r| r.starts_with(GOOD_PREFIX))
            .collect()
    };
    let kernel_before = good_in_kernel();
    assert_eq!(kernel_before.len(), 1, "{kernel_before:?}");

    let d = SocketAddr::from((hd.v4, 179));
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .zip(&bad)
            .enumerate()
            .map(|(i, (case, host))| {
                let dut = &dut;
                s.spawn(move || run(case, i as u8, host, d, host.v4, dut))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
            .collect()
    });

    let failed: Vec<String> = cases
        .iter()
        .zip(&results)
        .filter_map(|(c, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("{} ({}): {e}", c.name, c.rule))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n"),
        lab.logs(&hd)
    );

    // The rest of D is untouched: the good peer's session and route, the
    // kernel's routes, and the API.
    assert!(
        dut.established(hg.v4.into()),
        "the good session went down\n{}",
        lab.logs(&hd)
    );
    assert!(has_route(&dut, GOOD_PREFIX), "the good route left the RIB");
    assert_eq!(
        good_in_kernel(),
        kernel_before,
        "the good route changed in the kernel"
    );
    let (code, _, err) = dut.cli(&["global"]);
    assert_eq!(code, 0, "the API stopped answering: {err}");
}
