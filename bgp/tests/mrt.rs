//! MRT records (RFC 6396, RFC 8050): the layout byte for byte, every
//! record back from its bytes, and any bytes read without a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgp::wire::mrt::{kind, MrtError, Peer, Record, RibEntry};
use bgp::wire::{
    AsPath, AttrValue, Community, Family, MpReach, NextHop, Origin, PathAttribute, Update,
};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

fn encode(r: &Record, ts: u32) -> Vec<u8> {
    let mut out = BytesMut::new();
    r.encode(ts, &mut out).expect("encodes");
    out.to_vec()
}

fn attrs_v4() -> Vec<PathAttribute> {
    [
        AttrValue::Origin(Origin::Igp),
        AttrValue::AsPath(AsPath::sequence([65001, 4_200_000_000])),
        AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
        AttrValue::MultiExitDisc(10),
        AttrValue::Communities([Community::new(65001, 7)].into_iter().collect()),
    ]
    .into_iter()
    .map(PathAttribute::new)
    .collect()
}

#[test]
fn a_peer_index_table_and_a_rib_record_are_laid_out_as_the_rfc_draws_them() {
    let table = Record::PeerIndexTable {
        collector_id: Ipv4Addr::new(10, 0, 0, 1),
        view: "v".into(),
        peers: vec![Peer {
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            asn: 65001,
        }],
    };
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        // Timestamp 100, TABLE_DUMP_V2 (13), PEER_INDEX_TABLE (1), length 22.
        0, 0, 0, 100, 0, 13, 0, 1, 0, 0, 0, 22,
        // Collector id, view name "v".
        10, 0, 0, 1, 0, 1, b'v',
        // One peer: type 0x02 (IPv4, 4-octet AS), id, address, AS 65001.
        0, 1, 0x02, 192, 0, 2, 1, 192, 0, 2, 1, 0, 0, 0xfd, 0xe9,
    ];
    assert_eq!(encode(&table, 100), want);
    assert_eq!(Record::decode(&want), Ok(Some((100, table, want.len()))));

    let rib = Record::Rib {
        sequence: 7,
        prefix: "10.1.0.0/16".parse().unwrap(),
        entries: vec![RibEntry {
            peer_index: 0,
            originated: 50,
            path_id: None,
            attributes: vec![
                PathAttribute::new(AttrValue::Origin(Origin::Igp)),
                PathAttribute::new(AttrValue::AsPath(AsPath::sequence([65001]))),
                PathAttribute::new(AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1))),
            ],
        }],
    };
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        // Timestamp 100, TABLE_DUMP_V2, RIB_IPV4_UNICAST (2), length 37.
        0, 0, 0, 100, 0, 13, 0, 2, 0, 0, 0, 37,
        // Sequence 7, 10.1/16, one entry.
        0, 0, 0, 7, 16, 10, 1, 0, 1,
        // Peer 0, originated at 50, 20 octets of attributes.
        0, 0, 0, 0, 0, 50, 0, 20,
        // ORIGIN IGP; AS_PATH of one 4-octet AS; NEXT_HOP.
        0x40, 1, 1, 0,
        0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9,
        0x40, 3, 4, 192, 0, 2, 1,
    ];
    assert_eq!(encode(&rib, 100), want);
    assert_eq!(Record::decode(&want), Ok(Some((100, rib, want.len()))));
}

#[test]
fn a_table_dump_record_is_laid_out_as_the_rfc_draws_it() {
    let path = Record::TableDump {
        view: 0,
        sequence: 5,
        prefix: "10.1.0.0/16".parse().unwrap(),
        status: 1,
        originated: 50,
        peer: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        peer_as: 65001,
        attributes: vec![
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence([65001, 3]))),
            PathAttribute::new(AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1))),
        ],
    };
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        // Timestamp 100, TABLE_DUMP (12), AFI_IPv4 (1), length 42.
        0, 0, 0, 100, 0, 12, 0, 1, 0, 0, 0, 42,
        // View 0, sequence 5, prefix 10.1.0.0 length 16, status 1.
        0, 0, 0, 5, 10, 1, 0, 0, 16, 1,
        // Originated at 50, peer 192.0.2.1, AS 65001, 20 octets of attributes.
        0, 0, 0, 50, 192, 0, 2, 1, 0xfd, 0xe9, 0, 20,
        // ORIGIN IGP; AS_PATH of two 2-octet ASes; NEXT_HOP.
        0x40, 1, 1, 0,
        0x40, 2, 6, 2, 2, 0xfd, 0xe9, 0, 3,
        0x40, 3, 4, 192, 0, 2, 1,
    ];
    assert_eq!(encode(&path, 100), want);
    assert_eq!(Record::decode(&want), Ok(Some((100, path, want.len()))));

    // A 4-octet AS reaches a TABLE_DUMP as AS_TRANS, the true path in
    // AS4_PATH; read as an UPDATE of a 2-octet speaker, they merge.
    let path = Record::TableDump {
        view: 0,
        sequence: 6,
        prefix: "10.2.0.0/16".parse().unwrap(),
        status: 1,
        originated: 50,
        peer: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        peer_as: 65001,
        attributes: vec![
            PathAttribute::new(AttrValue::Origin(Origin::Igp)),
            PathAttribute::new(AttrValue::AsPath(AsPath::sequence([65001, 23456]))),
            PathAttribute::new(AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1))),
            PathAttribute::new(AttrValue::As4Path(AsPath::sequence([65001, 4_200_000_000]))),
        ],
    };
    let bytes = encode(&path, 100);
    let Ok(Some((_, Record::TableDump { attributes, .. }, _))) = Record::decode(&bytes) else {
        panic!("decodes");
    };
    let update = Update {
        attributes,
        ..Update::default()
    };
    let merged = update.as4_merged();
    assert!(merged
        .iter()
        .any(|a| a.value == AttrValue::AsPath(AsPath::sequence([65001, 4_200_000_000]))));
    assert!(!merged
        .iter()
        .any(|a| matches!(a.value, AttrValue::As4Path(_))));
}

#[test]
fn every_record_comes_back_from_its_bytes() {
    let v6_next_hop = PathAttribute::new(AttrValue::MpReach(MpReach {
        family: Family::IPV6_UNICAST,
        next_hop: NextHop::V6 {
            global: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
            link_local: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
        },
        nlri: Vec::new(),
    }));
    let mut v6_attrs = vec![v6_next_hop];
    v6_attrs.extend(
        attrs_v4()
            .into_iter()
            .filter(|a| !matches!(a.value, AttrValue::NextHop(_))),
    );
    let records = vec![
        Record::PeerIndexTable {
            collector_id: Ipv4Addr::new(10, 0, 0, 1),
            view: String::new(),
            peers: vec![
                Peer {
                    bgp_id: Ipv4Addr::new(192, 0, 2, 1),
                    address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    asn: 4_200_000_000,
                },
                Peer {
                    bgp_id: Ipv4Addr::new(192, 0, 2, 2),
                    address: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
                    asn: 65002,
                },
            ],
        },
        Record::Rib {
            sequence: 1,
            prefix: "10.2.3.0/24".parse().unwrap(),
            entries: vec![
                RibEntry {
                    peer_index: 0,
                    originated: 1,
                    path_id: None,
                    attributes: attrs_v4(),
                },
                RibEntry {
                    peer_index: 1,
                    originated: 2,
                    path_id: None,
                    attributes: attrs_v4(),
                },
            ],
        },
        Record::Rib {
            sequence: 2,
            prefix: "fd00:1::/48".parse().unwrap(),
            entries: vec![RibEntry {
                peer_index: 1,
                originated: 3,
                path_id: None,
                attributes: v6_attrs.clone(),
            }],
        },
        Record::Rib {
            sequence: 3,
            prefix: "10.9.0.0/16".parse().unwrap(),
            entries: vec![RibEntry {
                peer_index: 0,
                originated: 4,
                path_id: Some(9),
                attributes: attrs_v4(),
            }],
        },
        Record::Rib {
            sequence: 4,
            prefix: "fd00:2::/48".parse().unwrap(),
            entries: vec![RibEntry {
                peer_index: 1,
                originated: 5,
                path_id: Some(2),
                attributes: v6_attrs,
            }],
        },
        Record::Message {
            peer_as: 65001,
            local_as: 64512,
            interface: 0,
            peer: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            local: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            add_path: false,
            message: Bytes::from([&[0xffu8; 16][..], &[0, 19, 4]].concat()),
        },
        Record::Message {
            peer_as: 65002,
            local_as: 64512,
            interface: 3,
            peer: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            local: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 9)),
            add_path: true,
            message: Bytes::from([&[0xffu8; 16][..], &[0, 19, 4]].concat()),
        },
        Record::StateChange {
            peer_as: 65001,
            local_as: 64512,
            interface: 0,
            peer: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            local: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            old: 5,
            new: 6,
        },
        Record::TableDump {
            view: 0,
            sequence: 9,
            prefix: "fd00:3::/48".parse().unwrap(),
            status: 1,
            originated: 6,
            peer: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            peer_as: 65002,
            attributes: vec![
                PathAttribute::new(AttrValue::Origin(Origin::Egp)),
                PathAttribute::new(AttrValue::AsPath(AsPath::sequence([65002, 3]))),
            ],
        },
        Record::Other {
            kind: 99,
            subtype: 1,
            body: Bytes::from_static(b"opaque"),
        },
    ];
    let expected_kinds = [
        (kind::TABLE_DUMP_V2, kind::PEER_INDEX_TABLE),
        (kind::TABLE_DUMP_V2, kind::RIB_IPV4_UNICAST),
        (kind::TABLE_DUMP_V2, kind::RIB_IPV6_UNICAST),
        (kind::TABLE_DUMP_V2, kind::RIB_IPV4_UNICAST_ADDPATH),
        (kind::TABLE_DUMP_V2, kind::RIB_IPV6_UNICAST_ADDPATH),
        (kind::BGP4MP, kind::BGP4MP_MESSAGE_AS4),
        (kind::BGP4MP, kind::BGP4MP_MESSAGE_AS4_ADDPATH),
        (kind::BGP4MP, kind::BGP4MP_STATE_CHANGE_AS4),
        (kind::TABLE_DUMP, kind::AFI_IPV6),
        (99, 1),
    ];
    // One file of them all, read back record by record.
    let mut file = Vec::new();
    for (r, k) in records.iter().zip(expected_kinds) {
        assert_eq!(r.kind(), k);
        file.extend(encode(r, 1_700_000_000));
    }
    let mut at = 0;
    for r in &records {
        let (ts, got, len) = Record::decode(&file[at..])
            .expect("decodes")
            .expect("whole");
        assert_eq!((ts, &got), (1_700_000_000, r));
        at += len;
    }
    assert_eq!(at, file.len());
    assert_eq!(Record::decode(&file[at..]), Ok(None));
}

#[test]
fn bad_records_are_refused_with_a_reason() {
    // Length past the limit.
    let huge = [0, 0, 0, 1, 0, 13, 0, 2, 0x7f, 0, 0, 0];
    assert!(matches!(Record::decode(&huge), Err(MrtError::Length(_))));
    // A RIB record whose entry count runs past its end.
    let short = [0, 0, 0, 1, 0, 13, 0, 2, 0, 0, 0, 8, 0, 0, 0, 1, 8, 10, 0, 1];
    assert_eq!(Record::decode(&short), Err(MrtError::Truncated));
    // An AS_PATH whose segment runs past the attribute.
    let bad_path = [
        0, 0, 0, 1, 0, 13, 0, 2, 0, 0, 0, 22, 0, 0, 0, 1, 8, 10, 0, 1, 0, 0, 0, 0, 0, 0, 0, 6,
        0x40, 2, 3, 2, 5, 0,
    ];
    assert!(matches!(
        Record::decode(&bad_path),
        Err(MrtError::Attributes(_))
    ));
}

proptest! {
    #[test]
    fn any_bytes_read_or_fail_without_a_panic(
        subtype in 0u16..12,
        bgp4mp in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut r = vec![0, 0, 0, 1];
        r.extend_from_slice(&(if bgp4mp { 16u16 } else { 13 }).to_be_bytes());
        r.extend_from_slice(&subtype.to_be_bytes());
        r.extend_from_slice(&(body.len() as u32).to_be_bytes());
        r.extend_from_slice(&body);
        let _ = Record::decode(&r);
    }

    #[test]
    fn a_record_not_yet_whole_is_waited_for(cut in 1usize..60) {
        let r = Record::Rib {
            sequence: 1,
            prefix: "10.2.3.0/24".parse().unwrap(),
            entries: vec![RibEntry { peer_index: 0, originated: 1, path_id: None, attributes: attrs_v4() }],
        };
        let bytes = encode(&r, 5);
        let cut = cut.min(bytes.len());
        prop_assert_eq!(Record::decode(&bytes[..bytes.len() - cut]), Ok(None));
    }
}
