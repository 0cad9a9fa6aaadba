//! Framing, header checks and the behaviour of each message kind on
//! hand-built bytes.

mod common;

use std::net::Ipv4Addr;

use bgp::wire::iana::{CeaseSubcode, HeaderSubcode, OpenSubcode, RouteRefreshSubcode};
use bgp::wire::*;
use bytes::BytesMut;
use common::*;

fn ctx2() -> Context {
    Context::default()
}

fn roundtrip(m: &Message, ctx: &Context) -> Vec<u8> {
    let bytes = m.to_bytes(ctx).expect("encodes");
    assert_eq!(&Message::decode(&bytes, ctx).expect("decodes"), m);
    bytes.to_vec()
}

// Framing

#[test]
fn message_len_asks_for_a_header_then_the_whole_message() {
    let ka = message(4, &[]);
    let ctx = Context::modern();
    assert_eq!(message_len(&[], &ctx), Ok(19));
    assert_eq!(message_len(&ka[..18], &ctx), Ok(19));
    assert_eq!(message_len(&ka, &ctx), Ok(19));
    let up = update(&[], &mandatory(), NLRI);
    assert_eq!(message_len(&up[..19], &ctx), Ok(up.len()));
}

#[test]
fn framing_rejects_a_bad_marker() {
    let mut ka = message(4, &[]);
    ka[3] = 0;
    let err = message_len(&ka, &Context::modern()).expect_err("bad marker");
    assert_eq!(err, DecodeError::NotSynchronized);
    assert_eq!(
        err.notification().cause,
        Cause::MessageHeader(HeaderSubcode::ConnectionNotSynchronized)
    );
}

#[test]
fn framing_rejects_lengths_outside_19_to_4096() {
    let ctx = Context::modern();
    for len in [0u16, 18, 4097, 65535] {
        let mut h = message(4, &[]);
        h[16..18].copy_from_slice(&len.to_be_bytes());
        let err = message_len(&h, &ctx).expect_err("bad length");
        assert_eq!(err, DecodeError::BadLength(len));
        let n = err.notification();
        assert_eq!(
            n.cause,
            Cause::MessageHeader(HeaderSubcode::BadMessageLength)
        );
        assert_eq!(&n.data[..], &len.to_be_bytes());
    }
}

#[test]
fn extended_messages_allow_up_to_65535() {
    let ctx = Context {
        extended_message: true,
        ..Context::modern()
    };
    let body = vec![0u8; 5000 - 23];
    let mut m = update(&[], &[], &[]);
    m.extend_from_slice(&body);
    let total = m.len() as u16;
    m[16..18].copy_from_slice(&total.to_be_bytes());
    m[21..23].copy_from_slice(&(body.len() as u16).to_be_bytes());
    assert_eq!(message_len(&m, &ctx), Ok(5000));
    assert!(message_len(&m, &Context::modern()).is_err());
}

#[test]
fn keepalive_and_open_stay_within_4096_even_when_extended() {
    let ctx = Context {
        extended_message: true,
        ..Context::modern()
    };
    let mut ka = message(4, &[0; 10]);
    assert_eq!(Message::decode(&ka, &ctx), Err(DecodeError::BadLength(29)));
    ka.truncate(19);
    ka[16..18].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(Message::decode(&ka, &ctx), Ok(Message::Keepalive));
}

#[test]
fn unknown_message_type_is_a_header_error() {
    let err = decode_err(&message(9, &[]));
    assert_eq!(err, DecodeError::BadType(9));
    let n = err.notification();
    assert_eq!(n.cause, Cause::MessageHeader(HeaderSubcode::BadMessageType));
    assert_eq!(&n.data[..], &[9]);
}

#[test]
fn messages_below_their_minimum_length_are_header_errors() {
    assert_eq!(
        decode_err(&message(1, &[4, 0, 1])),
        DecodeError::BadLength(22)
    );
    assert_eq!(decode_err(&message(2, &[0, 0])), DecodeError::BadLength(21));
    assert_eq!(decode_err(&message(3, &[6])), DecodeError::BadLength(20));
    assert_eq!(
        decode_err(&message(5, &[0, 1, 0])),
        DecodeError::BadLength(22)
    );
}

#[test]
fn decode_wants_exactly_one_message() {
    let mut two = message(4, &[]);
    two.extend_from_slice(&message(4, &[]));
    assert_eq!(decode_err(&two), DecodeError::BadLength(19));
}

// OPEN

fn open_body(version: u8, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let mut b = vec![version, 0xfd, 0xe9];
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(params.len() as u8);
    b.extend_from_slice(params);
    b
}

#[test]
fn open_with_capabilities_round_trips() {
    let open = Open::new(
        4_200_000_001,
        90,
        Ipv4Addr::new(10, 255, 0, 1),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::ExtendedMessage,
            Capability::ExtendedNextHop(vec![ExtendedNextHop {
                family: Family::IPV4_UNICAST,
                next_hop_afi: Afi::Ipv6,
            }]),
            Capability::GracefulRestart(GracefulRestart {
                flags: GracefulRestart::NOTIFICATION,
                time: 120,
                families: vec![GracefulRestartFamily {
                    family: Family::IPV6_UNICAST,
                    flags: GracefulRestartFamily::FORWARDING_STATE,
                }],
            }),
            Capability::AddPath(vec![AddPathFamily {
                family: Family::IPV4_UNICAST,
                mode: AddPathMode::Both,
            }]),
            Capability::Fqdn(Fqdn {
                hostname: "node-1".into(),
                domain: "".into(),
            }),
            Capability::Unknown {
                code: 200,
                value: vec![1, 2, 3].into(),
            },
        ],
    );
    assert_eq!(open.my_as, 23456, "AS_TRANS stands in for a 4-octet AS");
    assert_eq!(open.asn(), 4_200_000_001);
    let bytes = roundtrip(&Message::Open(open), &Context::default());
    assert_eq!(
        bytes[28],
        bytes.len() as u8 - 29,
        "short optional parameters length"
    );
}

#[test]
fn open_with_extended_optional_parameters_round_trips() {
    // A 252-byte hostname capability pushes the parameters past 255 (RFC 9072).
    let open = Open::new(
        65001,
        9,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![
            Capability::Fqdn(Fqdn {
                hostname: "h".repeat(200),
                domain: "d".repeat(50),
            }),
            Capability::RouteRefresh,
        ],
    );
    let bytes = roundtrip(&Message::Open(open), &Context::default());
    assert_eq!(
        &bytes[28..30],
        &[255, 255],
        "Non-Ext OP Len and Type mark the extended form"
    );
    let ext_len = u16::from_be_bytes([bytes[30], bytes[31]]) as usize;
    assert_eq!(ext_len, bytes.len() - 32);
}

#[test]
fn open_capabilities_in_one_parameter_stay_in_one() {
    let caps = [&[1, 4, 0, 1, 0, 1][..], &[2, 0], &[65, 4, 0, 0, 0xfd, 0xe9]].concat();
    let mut params = vec![2, caps.len() as u8];
    params.extend_from_slice(&caps);
    let m = message(1, &open_body(4, 180, [1, 2, 3, 4], &params));
    let Message::Open(open) = decode(&m).expect("decodes") else {
        panic!("not an OPEN")
    };
    assert_eq!(open.params.len(), 1);
    assert_eq!(open.params[0].len(), 3);
    assert_eq!(
        Message::Open(open)
            .to_bytes(&Context::default())
            .expect("encodes"),
        m
    );
}

#[test]
fn open_with_wrong_version_names_version_4() {
    let err = decode_err(&message(1, &open_body(3, 90, [1, 1, 1, 1], &[])));
    assert_eq!(err, DecodeError::UnsupportedVersion(3));
    let n = err.notification();
    assert_eq!(n.cause, Cause::Open(OpenSubcode::UnsupportedVersionNumber));
    assert_eq!(&n.data[..], &[0, 4]);
}

#[test]
fn open_with_hold_time_one_or_two_is_refused() {
    for hold in [1, 2] {
        let err = decode_err(&message(1, &open_body(4, hold, [1, 1, 1, 1], &[])));
        assert_eq!(
            err.notification().cause,
            Cause::Open(OpenSubcode::UnacceptableHoldTime)
        );
    }
    assert!(decode(&message(1, &open_body(4, 0, [1, 1, 1, 1], &[]))).is_ok());
    assert!(decode(&message(1, &open_body(4, 3, [1, 1, 1, 1], &[]))).is_ok());
}

#[test]
fn open_with_zero_bgp_identifier_is_refused() {
    let err = decode_err(&message(1, &open_body(4, 90, [0, 0, 0, 0], &[])));
    assert_eq!(
        err.notification().cause,
        Cause::Open(OpenSubcode::BadBgpIdentifier)
    );
}

#[test]
fn open_with_unknown_optional_parameter_is_refused() {
    let err = decode_err(&message(1, &open_body(4, 90, [1, 1, 1, 1], &[1, 2, 0, 0])));
    assert_eq!(err, DecodeError::UnsupportedOptionalParameter(1));
    assert_eq!(
        err.notification().cause,
        Cause::Open(OpenSubcode::UnsupportedOptionalParameter)
    );
}

#[test]
fn open_with_inconsistent_parameter_lengths_is_refused() {
    let mut body = open_body(4, 90, [1, 1, 1, 1], &[2, 6, 1, 4, 0, 1, 0, 1]);
    body[9] = 9; // claims one byte more than there is
    assert_eq!(
        decode_err(&message(1, &body)),
        DecodeError::MalformedOptionalParameters
    );
    let body = open_body(4, 90, [1, 1, 1, 1], &[2, 7, 1, 4, 0, 1, 0, 1]);
    assert_eq!(
        decode_err(&message(1, &body)),
        DecodeError::MalformedOptionalParameters
    );
}

#[test]
fn malformed_known_capability_is_an_open_error_with_the_capability() {
    let body = open_body(4, 90, [1, 1, 1, 1], &[2, 5, 65, 3, 0, 0, 1]);
    let err = decode_err(&message(1, &body));
    assert_eq!(
        err,
        DecodeError::MalformedCapability {
            code: 65,
            data: vec![65, 3, 0, 0, 1].into()
        }
    );
    assert_eq!(
        err.notification().cause,
        Cause::Open(OpenSubcode::Unspecific)
    );
}

#[test]
fn graceful_restart_flags_and_time_are_split_from_one_word() {
    // R and N set, time 0x0ab = 171, IPv4 unicast with F set.
    let body = open_body(
        4,
        90,
        [1, 1, 1, 1],
        &[2, 8, 64, 6, 0xc0, 0xab, 0, 1, 1, 0x80],
    );
    let Message::Open(open) = decode(&message(1, &body)).expect("decodes") else {
        panic!()
    };
    let Some(Capability::GracefulRestart(gr)) = open.capabilities().next() else {
        panic!()
    };
    assert!(gr.restart_state() && gr.notification());
    assert_eq!(gr.time, 171);
    assert!(gr.families[0].forwarding_preserved());
}

#[test]
fn non_utf8_hostname_is_kept_as_opaque_bytes() {
    let body = open_body(4, 90, [1, 1, 1, 1], &[2, 5, 73, 3, 1, 0xff, 0]);
    let m = message(1, &body);
    let Message::Open(open) = decode(&m).expect("decodes") else {
        panic!()
    };
    assert_eq!(
        open.params[0][0],
        Capability::Unknown {
            code: 73,
            value: vec![1, 0xff, 0].into()
        }
    );
    assert_eq!(
        Message::Open(open)
            .to_bytes(&Context::default())
            .expect("encodes"),
        m
    );
}

// UPDATE

#[test]
fn update_round_trips_with_every_attribute() {
    let u = Update::new(
        vec![
            AttrValue::Origin(Origin::Egp),
            AttrValue::AsPath(AsPath::from_segments([
                AsSegment::new(SegmentType::ConfedSequence, [65010]),
                AsSegment::new(SegmentType::Sequence, [65001, 4_200_000_001]),
                AsSegment::new(SegmentType::Set, [64512, 64513]),
            ])),
            AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
            AttrValue::MultiExitDisc(10),
            AttrValue::LocalPref(200),
            AttrValue::AtomicAggregate,
            AttrValue::Aggregator(Aggregator {
                asn: 4_200_000_001,
                address: Ipv4Addr::new(192, 0, 2, 9),
            }),
            AttrValue::Communities(smallvec![Community::new(65001, 1), Community::NO_EXPORT]),
            AttrValue::OriginatorId(Ipv4Addr::new(10, 0, 0, 1)),
            AttrValue::ClusterList(vec![Ipv4Addr::new(10, 0, 0, 2)]),
            AttrValue::MpReach(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: NextHop::V6 {
                    global: "2001:db8::1".parse().expect("v6"),
                    link_local: Some("fe80::1".parse().expect("v6")),
                },
                nlri: vec![Nlri::new("2001:db8:1::/48".parse().expect("prefix"))],
            }),
            AttrValue::MpUnreach(MpUnreach {
                family: Family::IPV6_UNICAST,
                withdrawn: vec![Nlri::new("2001:db8:2::/48".parse().expect("prefix"))],
            }),
            AttrValue::ExtendedCommunities(smallvec![ExtendedCommunity::route_target(65001, 7)]),
            AttrValue::LargeCommunities(smallvec![LargeCommunity::new(4_200_000_001, 1, 2)]),
            AttrValue::Unknown {
                type_code: 99,
                value: vec![9, 9].into(),
            },
        ],
        vec![Nlri::new("10.1.0.0/16".parse().expect("prefix"))],
    );
    let mut u = u;
    u.withdrawn = vec![Nlri::new("10.2.0.0/24".parse().expect("prefix"))];
    roundtrip(&Message::Update(u), &Context::modern());
}

#[test]
fn ipv4_nlri_with_ipv6_next_hop_round_trips() {
    let u = Update::new(
        vec![
            AttrValue::MpReach(MpReach {
                family: Family::IPV4_UNICAST,
                next_hop: NextHop::V6 {
                    global: "2001:db8::1".parse().expect("v6"),
                    link_local: None,
                },
                nlri: vec![Nlri::new("10.9.0.0/16".parse().expect("prefix"))],
            }),
            AttrValue::Origin(Origin::Igp),
            AttrValue::AsPath(AsPath::default()),
        ],
        vec![],
    );
    roundtrip(&Message::Update(u), &Context::modern());
}

#[test]
fn add_path_identifiers_follow_the_context() {
    let mut ctx = Context::modern();
    ctx.add_path.set(Family::IPV4_UNICAST, true);
    let mut u = Update::new(
        vec![
            AttrValue::Origin(Origin::Igp),
            AttrValue::AsPath(AsPath::default()),
            AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
        ],
        vec![Nlri::with_path_id(
            "10.1.0.0/16".parse().expect("prefix"),
            7,
        )],
    );
    u.withdrawn = vec![Nlri::with_path_id(
        "10.2.0.0/16".parse().expect("prefix"),
        8,
    )];
    let bytes = roundtrip(&Message::Update(u), &ctx);
    assert_eq!(&bytes[bytes.len() - 7..], &[0, 0, 0, 7, 16, 10, 1]);
    // Without ADD-PATH the same bytes read differently: the path id is taken as prefixes.
    assert!(Message::decode(&bytes, &Context::modern()).is_err());
}

#[test]
fn host_bits_past_the_prefix_length_are_cleared() {
    let u = decode_update(&update(&[], &mandatory(), &[23, 10, 1, 0xff]));
    assert_eq!(
        u.nlri[0].prefix,
        "10.1.254.0/23".parse::<ipnet::IpNet>().expect("prefix")
    );
}

#[test]
fn end_of_rib_markers_for_both_families() {
    for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        let eor = Update::end_of_rib(family);
        assert_eq!(eor.as_end_of_rib(), Some(family));
        let bytes = roundtrip(&Message::Update(eor), &Context::modern());
        if family == Family::IPV4_UNICAST {
            assert_eq!(bytes.len(), 23);
        } else {
            assert_eq!(&bytes[19..], &[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
        }
    }
    assert_eq!(
        decode_update(&update(&[], &mandatory(), NLRI)).as_end_of_rib(),
        None
    );
}

#[test]
fn two_octet_session_sends_as_trans_for_large_asns() {
    let u = Update::new(
        vec![
            AttrValue::AsPath(AsPath::sequence([65001, 4_200_000_001])),
            AttrValue::Aggregator(Aggregator {
                asn: 4_200_000_001,
                address: Ipv4Addr::new(1, 1, 1, 1),
            }),
        ],
        vec![],
    );
    let bytes = Message::Update(u).to_bytes(&ctx2()).expect("encodes");
    // AS_PATH: SEQUENCE of 2: 65001, 23456.
    assert!(bytes
        .windows(6)
        .any(|w| w == [2, 2, 0xfd, 0xe9, 0x5b, 0xa0]));
    // AGGREGATOR: 23456, 1.1.1.1.
    assert!(bytes.windows(6).any(|w| w == [0x5b, 0xa0, 1, 1, 1, 1]));
}

#[test]
fn as4_path_from_a_two_octet_speaker_is_merged() {
    // AS_PATH 65001 23456 23456 ; AS4_PATH 4200000001 4200000002
    let attrs = [
        attr(0x40, 1, &[0]),
        attr(0x40, 2, &[2, 3, 0xfd, 0xe9, 0x5b, 0xa0, 0x5b, 0xa0]),
        attr(0x40, 3, &[192, 0, 2, 1]),
        attr(
            0xc0,
            17,
            &[2, 2, 0xfa, 0x56, 0xea, 0x01, 0xfa, 0x56, 0xea, 0x02],
        ),
    ]
    .concat();
    let bytes = update(&[], &attrs, NLRI);
    let u = decode_update_with(&bytes, &ctx2());
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    assert_eq!(
        u.as_path().as_deref(),
        Some(&AsPath::sequence([65001, 4_200_000_001, 4_200_000_002]))
    );
    // And it encodes back to what a correct 2-octet speaker sent.
    assert_eq!(
        Message::Update(u).to_bytes(&ctx2()).expect("encodes"),
        bytes
    );
}

#[test]
fn as4_path_longer_than_as_path_is_ignored() {
    let attrs = [
        attr(0x40, 1, &[0]),
        attr(0x40, 2, &[2, 1, 0x5b, 0xa0]),
        attr(0x40, 3, &[192, 0, 2, 1]),
        attr(
            0xc0,
            17,
            &[2, 2, 0xfa, 0x56, 0xea, 0x01, 0xfa, 0x56, 0xea, 0x02],
        ),
    ]
    .concat();
    let u = decode_update_with(&update(&[], &attrs, NLRI), &ctx2());
    assert_eq!(u.as_path().as_deref(), Some(&AsPath::sequence([23456])));
}

/// From a 2-octet speaker: AS_PATH 65001 AS_TRANS, AGGREGATOR AS 65002,
/// AS4_PATH 4200000001, and AS4_AGGREGATOR too if asked.
fn aggregated_by_an_old_speaker(with_as4_aggregator: bool) -> Update {
    let mut attrs = [
        attr(0x40, 1, &[0]),
        attr(0x40, 2, &[2, 2, 0xfd, 0xe9, 0x5b, 0xa0]),
        attr(0x40, 3, &[192, 0, 2, 1]),
        attr(0xc0, 7, &[0xfd, 0xea, 1, 1, 1, 1]),
        attr(0xc0, 17, &[2, 1, 0xfa, 0x56, 0xea, 0x01]),
    ]
    .concat();
    if with_as4_aggregator {
        attrs.extend(attr(0xc0, 18, &[0xfa, 0x56, 0xea, 0x01, 2, 2, 2, 2]));
    }
    decode_update_with(&update(&[], &attrs, NLRI), &ctx2())
}

#[test]
fn as4_attributes_are_ignored_when_an_old_speaker_aggregated() {
    let u = aggregated_by_an_old_speaker(true);
    assert_eq!(
        u.as_path().as_deref(),
        Some(&AsPath::sequence([65001, 23456]))
    );
    assert_eq!(u.aggregator().map(|a| a.asn), Some(65002));
}

#[test]
fn as4_aggregator_replaces_as_trans() {
    let attrs = [
        mandatory_for(&ctx2()),
        attr(0xc0, 7, &[0x5b, 0xa0, 1, 1, 1, 1]),
        attr(0xc0, 18, &[0xfa, 0x56, 0xea, 0x01, 1, 1, 1, 1]),
    ]
    .concat();
    let u = decode_update_with(&update(&[], &attrs, NLRI), &ctx2());
    assert_eq!(u.aggregator().map(|a| a.asn), Some(4_200_000_001));
    // The attribute itself stays as received.
    assert!(
        matches!(u.attr(AttrType::Aggregator), Some(AttrValue::Aggregator(a)) if a.asn == 23456)
    );
}

#[test]
fn long_attribute_switches_to_extended_length() {
    let communities: Vec<Community> = (0..100).map(|i| Community::new(65001, i)).collect();
    let u = Update::new(vec![AttrValue::Communities(communities.into())], vec![]);
    assert_eq!(u.attributes[0].flags, 0xc0);
    let bytes = Message::Update(u)
        .to_bytes(&Context::modern())
        .expect("encodes");
    assert_eq!(&bytes[23..27], &[0xd0, 8, 1, 144]);
    let back = decode_update(&bytes);
    assert_eq!(back.communities().len(), 100);
}

#[test]
fn an_update_too_long_for_the_session_is_an_encode_error() {
    let nlri: Vec<Nlri> = (0..2000u32)
        .map(|i| {
            Nlri::new(ipnet::IpNet::V4(
                ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).expect("prefix"),
            ))
        })
        .collect();
    let m = Message::Update(Update::new(vec![], nlri));
    let mut out = BytesMut::from(&b"keep"[..]);
    let err = m
        .encode(&Context::modern(), &mut out)
        .expect_err("too long");
    assert!(matches!(err, EncodeError::MessageTooLong { max: 4096, .. }));
    assert_eq!(
        &out[..],
        b"keep",
        "a failed encode leaves the buffer as it was"
    );
    let ext = Context {
        extended_message: true,
        ..Context::modern()
    };
    assert!(m.to_bytes(&ext).is_ok());
}

#[test]
fn prefix_of_the_wrong_family_is_an_encode_error() {
    let m = Message::Update(Update::new(
        vec![],
        vec![Nlri::new("2001:db8::/32".parse().expect("prefix"))],
    ));
    assert!(matches!(
        m.to_bytes(&Context::modern()),
        Err(EncodeError::PrefixFamily { .. })
    ));
}

// NOTIFICATION

#[test]
fn shutdown_communication_round_trips() {
    let n = Notification::shutdown(
        CeaseSubcode::AdministrativeShutdown,
        "maintenance: back at 10:00 ✓",
    );
    assert_eq!(n.shutdown_message(), Some("maintenance: back at 10:00 ✓"));
    let bytes = roundtrip(&Message::Notification(n.clone()), &Context::modern());
    assert_eq!(&bytes[19..22], &[6, 2, 30]);
    assert_eq!(
        n.to_string(),
        "Cease / AdministrativeShutdown: \"maintenance: back at 10:00 ✓\""
    );
}

#[test]
fn shutdown_communication_is_cut_at_255_bytes_on_a_character_boundary() {
    let long = "é".repeat(200); // 400 bytes
    let n = Notification::shutdown(CeaseSubcode::AdministrativeReset, &long);
    assert_eq!(n.data[0], 254);
    assert_eq!(n.shutdown_message().map(str::len), Some(254));
}

#[test]
fn malformed_shutdown_communication_is_not_read_as_text() {
    let n = Notification::new(
        Cause::Cease(CeaseSubcode::AdministrativeShutdown),
        vec![10, b'a'],
    );
    assert_eq!(n.shutdown_message(), None);
    let n = Notification::new(
        Cause::Cease(CeaseSubcode::AdministrativeShutdown),
        vec![2, 0xff, 0xfe],
    );
    assert_eq!(n.shutdown_message(), None);
}

#[test]
fn every_code_and_subcode_survives_a_round_trip() {
    for code in 0..=255u8 {
        for subcode in [0u8, 1, 2, 3, 7, 11, 255] {
            let cause = Cause::from_codes(code, subcode);
            assert_eq!(cause.codes(), (code, subcode));
        }
    }
    let n = Notification::new(
        Cause::Other {
            code: 42,
            subcode: 1,
        },
        vec![1],
    );
    roundtrip(&Message::Notification(n), &Context::modern());
    let n = Notification::new(Cause::SendHoldTimerExpired, vec![]);
    roundtrip(&Message::Notification(n), &Context::modern());
}

#[test]
fn max_prefixes_carries_family_and_limit() {
    let n = Notification::max_prefixes(Family::IPV6_UNICAST, 1000);
    assert_eq!(&n.data[..], &[0, 2, 1, 0, 0, 3, 0xe8]);
}

// ROUTE-REFRESH

#[test]
fn route_refresh_subtypes_round_trip() {
    for subtype in [
        RouteRefreshSubtype::Normal,
        RouteRefreshSubtype::BeginningOfRouteRefresh,
        RouteRefreshSubtype::EndOfRouteRefresh,
    ] {
        let rr = RouteRefresh::new(Family::IPV6_UNICAST, subtype);
        let bytes = roundtrip(&Message::RouteRefresh(rr), &Context::modern());
        assert_eq!(bytes.len(), 23);
    }
}

#[test]
fn borr_with_a_bad_length_returns_the_whole_message() {
    let m = message(5, &[0, 1, 1, 1, 0]);
    let err = decode_err(&m);
    let n = err.notification();
    assert_eq!(
        n.cause,
        Cause::RouteRefresh(RouteRefreshSubcode::InvalidMessageLength)
    );
    assert_eq!(&n.data[..], &m[..]);
}

#[test]
fn plain_route_refresh_may_carry_orf_entries() {
    let Ok(Message::RouteRefresh(rr)) = decode(&message(5, &[0, 1, 0, 1, 1, 0x40, 0, 0])) else {
        panic!()
    };
    assert_eq!(rr.subtype, RouteRefreshSubtype::Normal);
}

#[test]
fn new_updates_put_the_mp_attribute_first_then_type_order() {
    let u = Update::new(
        vec![
            AttrValue::LocalPref(100),
            AttrValue::Origin(Origin::Igp),
            AttrValue::MpUnreach(MpUnreach {
                family: Family::IPV6_UNICAST,
                withdrawn: vec![],
            }),
            AttrValue::AsPath(AsPath::default()),
        ],
        vec![],
    );
    let order: Vec<u8> = u
        .attributes
        .iter()
        .map(|a| u8::from(a.type_code()))
        .collect();
    assert_eq!(order, vec![15, 1, 2, 5]);
}

#[test]
fn as4_path_applies_when_no_as4_aggregator_came() {
    // AGGREGATOR names a 2-octet AS, but no AS4_AGGREGATOR: AS4_PATH still counts.
    let u = aggregated_by_an_old_speaker(false);
    assert_eq!(
        u.as_path().as_deref(),
        Some(&AsPath::sequence([65001, 4_200_000_001]))
    );
    assert_eq!(u.aggregator().map(|a| a.asn), Some(65002));
}

#[test]
fn unknown_route_refresh_subtype_is_decoded_for_the_session_to_ignore() {
    let m = message(5, &[0, 1, 9, 1, 0, 0]);
    let Ok(Message::RouteRefresh(rr)) = decode(&m) else {
        panic!()
    };
    assert_eq!(rr.subtype, RouteRefreshSubtype::Other(9));
}

#[test]
fn hard_reset_carries_the_cease_it_wraps() {
    let inner = Notification::max_prefixes(Family::IPV4_UNICAST, 100);
    let hard = inner.hard_reset();
    assert_eq!(hard.cause, Cause::Cease(CeaseSubcode::HardReset));
    assert_eq!(&hard.data[..], &[6, 1, 0, 1, 1, 0, 0, 0, 100]);
    let back = Message::decode(
        &Message::Notification(hard.clone())
            .to_bytes(&Context::modern())
            .expect("encodes"),
        &Context::modern(),
    )
    .expect("decodes");
    let Message::Notification(back) = back else {
        panic!("not a NOTIFICATION");
    };
    assert_eq!(back.hard_reset_inner(), Some(inner));
    assert_eq!(
        back.to_string(),
        "Cease / HardReset (Cease / MaximumPrefixesReached data 00010100000064)"
    );
}
