//! BMP messages: the layout of RFC 7854 §4 byte for byte, every message
//! back from its bytes, and any bytes decoded without a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bmp::message::{flag, stat, tlv, PeerType};
use bmp::{DecodeError, DownReason, Message, PeerHeader, Stat, Tlv};
use bytes::Bytes;
use proptest::prelude::*;

fn peer() -> PeerHeader {
    PeerHeader::global(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        65001,
        Ipv4Addr::new(192, 0, 2, 1),
        false,
    )
    .at((1000, 5))
}

/// A BGP message of `kind` with `body`, whole.
fn bgp(kind: u8, body: &[u8]) -> Bytes {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(19 + body.len() as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    Bytes::from(m)
}

#[test]
fn a_peer_down_is_laid_out_as_the_rfc_draws_it() {
    let m = Message::PeerDown {
        peer: peer(),
        reason: DownReason::RemoteNoData,
    };
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        // Common header: version 3, length 49, type 2 (Peer Down).
        3, 0, 0, 0, 49, 2,
        // Per-peer header: global instance, no flags, distinguisher 0.
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        // The IPv4 address in the last 4 of 16 octets.
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
        // AS 65001, BGP identifier, 1000 s, 5 µs.
        0, 0, 0xfd, 0xe9, 192, 0, 2, 1, 0, 0, 0x03, 0xe8, 0, 0, 0, 5,
        // Reason 4: the remote system closed, no data.
        4,
    ];
    assert_eq!(m.to_bytes().to_vec(), want);
    assert_eq!(Message::decode(&want), Ok(m));
}

#[test]
fn every_message_comes_back_from_its_bytes() {
    let open = bgp(1, &[4, 0xfd, 0xe9, 0, 90, 192, 0, 2, 1, 0]);
    let v6 = PeerHeader::global(
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
        4_200_000_000,
        Ipv4Addr::new(10, 0, 0, 2),
        true,
    );
    assert_eq!(v6.flags, flag::IPV6 | flag::POST_POLICY);
    let messages = vec![
        Message::Initiation(vec![
            Tlv::string(tlv::SYS_DESCR, "podbgp 0.1.0"),
            Tlv::string(tlv::SYS_NAME, "node-1"),
        ]),
        Message::PeerUp {
            peer: peer(),
            local_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            local_port: 179,
            remote_port: 40000,
            sent_open: open.clone(),
            received_open: open.clone(),
            information: vec![],
        },
        Message::PeerUp {
            peer: v6.clone(),
            local_address: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            local_port: 33000,
            remote_port: 179,
            sent_open: open.clone(),
            received_open: open,
            information: vec![Tlv::string(tlv::STRING, "hello")],
        },
        Message::RouteMonitoring {
            peer: v6.clone(),
            update: bgp(2, &[0, 0, 0, 0]),
        },
        Message::RouteMonitoring {
            peer: PeerHeader::loc_rib(64512, Ipv4Addr::new(10, 0, 0, 1)),
            update: bgp(2, &[0, 0, 0, 0]),
        },
        Message::StatisticsReport {
            peer: peer(),
            stats: vec![
                Stat::Counter {
                    kind: stat::REJECTED_PREFIXES,
                    value: 7,
                },
                Stat::Gauge {
                    kind: stat::ADJ_RIB_IN_ROUTES,
                    value: 1 << 40,
                },
                Stat::FamilyGauge {
                    kind: stat::LOC_RIB_ROUTES_PER_FAMILY,
                    afi: 2,
                    safi: 1,
                    value: 12,
                },
                Stat::Counter {
                    kind: stat::TREAT_AS_WITHDRAW_UPDATES,
                    value: 3,
                },
            ],
        },
        Message::PeerDown {
            peer: peer(),
            reason: DownReason::RemoteNotification(bgp(3, &[6, 2])),
        },
        Message::PeerDown {
            peer: peer(),
            reason: DownReason::LocalNotification(bgp(3, &[4, 0])),
        },
        Message::PeerDown {
            peer: peer(),
            reason: DownReason::LocalNoNotification(18),
        },
        Message::PeerDown {
            peer: v6,
            reason: DownReason::Deconfigured,
        },
        Message::PeerDown {
            peer: PeerHeader::loc_rib(64512, Ipv4Addr::new(10, 0, 0, 1)),
            reason: DownReason::LocalWithTlvs(vec![Tlv::string(tlv::STRING, "gone")]),
        },
        Message::Termination(vec![Tlv {
            kind: tlv::REASON,
            value: Bytes::from_static(&[0, 2]),
        }]),
    ];
    for m in messages {
        let bytes = m.to_bytes();
        assert_eq!(Message::length(&bytes), Ok(Some(bytes.len())), "{m:?}");
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(&m));
    }
}

#[test]
fn the_loc_rib_header_has_no_address_and_its_own_type() {
    let h = PeerHeader::loc_rib(64512, Ipv4Addr::new(10, 0, 0, 1));
    let bytes = Message::RouteMonitoring {
        peer: h,
        update: bgp(2, &[0, 0, 0, 0]),
    }
    .to_bytes();
    assert_eq!(bytes[6], 3, "peer type 3, Loc-RIB instance");
    assert!(bytes[16..32].iter().all(|b| *b == 0), "zero address");
    let Ok(Message::RouteMonitoring { peer, .. }) = Message::decode(&bytes) else {
        panic!("not decoded");
    };
    assert_eq!(peer.peer_type, PeerType::LocRib);
}

#[test]
fn what_is_not_bmp_is_refused_with_a_reason() {
    let good = Message::PeerDown {
        peer: peer(),
        reason: DownReason::RemoteNoData,
    }
    .to_bytes()
    .to_vec();
    let mut v2 = good.clone();
    v2[0] = 2;
    assert_eq!(Message::decode(&v2), Err(DecodeError::Version(2)));
    let mut tiny = good.clone();
    tiny[1..5].copy_from_slice(&5u32.to_be_bytes());
    assert_eq!(Message::decode(&tiny), Err(DecodeError::Length(5)));
    let mut kind = good.clone();
    kind[5] = 9;
    assert_eq!(Message::decode(&kind), Err(DecodeError::Type(9)));
    // A Route Monitoring whose UPDATE has no marker.
    let mut rm = Message::RouteMonitoring {
        peer: peer(),
        update: bgp(2, &[0, 0, 0, 0]),
    }
    .to_bytes()
    .to_vec();
    rm[48] = 0;
    assert!(matches!(
        Message::decode(&rm),
        Err(DecodeError::Malformed(..))
    ));
    // A counter of the wrong length.
    let mut st = Message::StatisticsReport {
        peer: peer(),
        stats: vec![Stat::Counter {
            kind: stat::REJECTED_PREFIXES,
            value: 1,
        }],
    }
    .to_bytes()
    .to_vec();
    st[55] = 3; // the statistic's length, 4 → 3
    st.pop();
    let len = st.len() as u32;
    st[1..5].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(
        Message::decode(&st),
        Err(DecodeError::Malformed(..))
    ));
    // Not yet whole: no length until the common header is in.
    assert_eq!(Message::length(&good[..5]), Ok(None));
}

proptest! {
    #[test]
    fn any_bytes_decode_or_fail_without_a_panic(
        kind in 0u8..8,
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut m = vec![3, 0, 0, 0, 0, kind];
        m.extend_from_slice(&body);
        let len = m.len() as u32;
        m[1..5].copy_from_slice(&len.to_be_bytes());
        let _ = Message::decode(&m);
    }

    #[test]
    fn a_message_cut_anywhere_is_an_error(cut in 0usize..60) {
        let m = Message::PeerUp {
            peer: peer(),
            local_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            local_port: 179,
            remote_port: 40000,
            sent_open: bgp(1, &[4, 0xfd, 0xe9, 0, 90, 192, 0, 2, 1, 0]),
            received_open: bgp(1, &[4, 0xfd, 0xe9, 0, 90, 192, 0, 2, 1, 0]),
            // No TLVs: without its last TLVs a Peer Up is still whole.
            information: vec![],
        }
        .to_bytes()
        .to_vec();
        let short = &m[..m.len() - 1 - cut.min(m.len() - 1)];
        prop_assert!(Message::decode(short).is_err());
        // Framed as if whole: still an error, not a panic.
        let mut framed = short.to_vec();
        if framed.len() >= 6 {
            let len = framed.len() as u32;
            framed[1..5].copy_from_slice(&len.to_be_bytes());
            prop_assert!(Message::decode(&framed).is_err());
        }
    }
}
