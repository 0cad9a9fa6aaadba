//! Properties of the codec: every generated message survives
//! encode-then-decode unchanged, and no input makes decoding panic.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::wire::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::prelude::*;

fn v4_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32)
        .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).expect("len").trunc()))
}

fn v6_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).expect("len").trunc()))
}

fn nlri(prefix: impl Strategy<Value = IpNet>, add_path: bool) -> impl Strategy<Value = Vec<Nlri>> {
    vec((prefix, any::<u32>()), 0..12).prop_map(move |v| {
        v.into_iter()
            .map(|(p, id)| Nlri {
                prefix: p,
                path_id: add_path.then_some(id),
            })
            .collect()
    })
}

fn asn(four_octet: bool) -> BoxedStrategy<u32> {
    if four_octet {
        any::<u32>().boxed()
    } else {
        (0u32..=0xffff).boxed()
    }
}

fn as_path(four_octet: bool) -> impl Strategy<Value = AsPath> {
    let kind = prop_oneof![
        Just(SegmentType::Set),
        Just(SegmentType::Sequence),
        Just(SegmentType::ConfedSequence),
        Just(SegmentType::ConfedSet),
    ];
    vec((kind, vec(asn(four_octet), 1..8)), 0..4).prop_map(|segs| AsPath {
        segments: segs
            .into_iter()
            .map(|(kind, asns)| AsSegment::new(kind, asns))
            .collect(),
    })
}

fn family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::from_codes(a, s))
}

/// Optional attributes besides the mandatory three, each kind at most once.
fn optional_attrs(ctx: Context) -> impl Strategy<Value = Vec<AttrValue>> {
    let four = ctx.four_octet_as;
    let v6_nh =
        (any::<u128>(), proptest::option::of(any::<u128>())).prop_map(|(g, ll)| NextHop::V6 {
            global: Ipv6Addr::from(g),
            link_local: ll.map(Ipv6Addr::from),
        });
    let v4_nh = prop_oneof![
        any::<u32>().prop_map(|a| NextHop::V4(Ipv4Addr::from(a))),
        v6_nh.clone()
    ];
    let ap = ctx.add_path;
    let reach = prop_oneof![
        (v4_nh, nlri(v4_prefix(), ap.ipv4_unicast)).prop_map(|(next_hop, nlri)| MpReach {
            family: Family::IPV4_UNICAST,
            next_hop,
            nlri
        }),
        (v6_nh, nlri(v6_prefix(), ap.ipv6_unicast)).prop_map(|(next_hop, nlri)| MpReach {
            family: Family::IPV6_UNICAST,
            next_hop,
            nlri
        }),
    ];
    let unreach = prop_oneof![
        nlri(v4_prefix(), ap.ipv4_unicast).prop_map(|withdrawn| MpUnreach {
            family: Family::IPV4_UNICAST,
            withdrawn
        }),
        nlri(v6_prefix(), ap.ipv6_unicast).prop_map(|withdrawn| MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn
        }),
    ];
    let candidates = (
        proptest::option::of(any::<u32>().prop_map(AttrValue::MultiExitDisc)),
        proptest::option::of(any::<u32>().prop_map(AttrValue::LocalPref)),
        proptest::option::of(Just(AttrValue::AtomicAggregate)),
        proptest::option::of((asn(four), any::<u32>()).prop_map(|(asn, a)| {
            AttrValue::Aggregator(Aggregator {
                asn,
                address: Ipv4Addr::from(a),
            })
        })),
        proptest::option::of(
            vec(any::<u32>().prop_map(Community), 1..60)
                .prop_map(|v| AttrValue::Communities(v.into())),
        ),
        proptest::option::of(any::<u32>().prop_map(|a| AttrValue::OriginatorId(Ipv4Addr::from(a)))),
        proptest::option::of(
            vec(any::<u32>().prop_map(Ipv4Addr::from), 1..10).prop_map(AttrValue::ClusterList),
        ),
        proptest::option::of(reach.prop_map(AttrValue::MpReach)),
        proptest::option::of(unreach.prop_map(AttrValue::MpUnreach)),
        proptest::option::of(
            vec(any::<[u8; 8]>().prop_map(ExtendedCommunity), 1..20)
                .prop_map(|v| AttrValue::ExtendedCommunities(v.into())),
        ),
        proptest::option::of(
            vec(
                (any::<u32>(), any::<u32>(), any::<u32>())
                    .prop_map(|(a, b, c)| LargeCommunity::new(a, b, c)),
                1..20,
            )
            .prop_map(|v| AttrValue::LargeCommunities(v.into())),
        ),
        proptest::option::of(
            (100u8..=255, vec(any::<u8>(), 0..200)).prop_map(|(type_code, v)| AttrValue::Unknown {
                type_code,
                value: v.into(),
            }),
        ),
    );
    candidates.prop_map(|(a, b, c, d, e, f, g, h, i, j, k, l)| {
        [a, b, c, d, e, f, g, h, i, j, k, l]
            .into_iter()
            .flatten()
            .collect()
    })
}

fn update(ctx: Context) -> impl Strategy<Value = Update> {
    let four = ctx.four_octet_as;
    let ap = ctx.add_path.ipv4_unicast;
    (
        nlri(v4_prefix(), ap),
        nlri(v4_prefix(), ap),
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        as_path(four),
        any::<u32>(),
        optional_attrs(ctx),
        any::<u8>(),
    )
        .prop_flat_map(
            move |(withdrawn, nlri, origin, path, nh, extra, flag_bits)| {
                let mut values = vec![
                    AttrValue::Origin(origin),
                    AttrValue::AsPath(path),
                    AttrValue::NextHop(Ipv4Addr::from(nh)),
                ];
                values.extend(extra);
                let attrs: Vec<PathAttribute> = values
                    .into_iter()
                    .map(|v| {
                        let mut a = PathAttribute::new(v);
                        // Extended Length may always be set; Partial on optional transitive ones.
                        a.flags |= flag_bits & 0x10;
                        if a.is_optional() && a.is_transitive() {
                            a.flags |= flag_bits & 0x20;
                        }
                        a
                    })
                    .collect();
                (Just(withdrawn), Just(nlri), Just(attrs).prop_shuffle())
            },
        )
        .prop_map(|(withdrawn, nlri, attributes)| Update {
            withdrawn,
            attributes,
            nlri,
            errors: vec![],
        })
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        Just(Capability::ExtendedMessage),
        any::<u32>().prop_map(Capability::FourOctetAs),
        vec((family(), any::<u16>()), 0..4).prop_map(|v| Capability::ExtendedNextHop(
            v.into_iter()
                .map(|(family, a)| ExtendedNextHop {
                    family,
                    next_hop_afi: a.into()
                })
                .collect()
        )),
        vec((family(), any::<u8>()), 0..4).prop_map(|v| Capability::AddPath(
            v.into_iter()
                .map(|(family, m)| AddPathFamily {
                    family,
                    mode: m.into()
                })
                .collect()
        )),
        (0u8..16, 0u16..4096, vec((family(), any::<u8>()), 0..4)).prop_map(
            |(flags, time, fams)| {
                Capability::GracefulRestart(GracefulRestart {
                    flags,
                    time,
                    families: fams
                        .into_iter()
                        .map(|(family, flags)| GracefulRestartFamily { family, flags })
                        .collect(),
                })
            }
        ),
        ("[a-z0-9.-]{0,40}", "[a-z0-9.-]{0,40}")
            .prop_map(|(hostname, domain)| Capability::Fqdn(Fqdn { hostname, domain })),
        (200u8..=255, vec(any::<u8>(), 0..30)).prop_map(|(code, v)| Capability::Unknown {
            code,
            value: v.into()
        }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        any::<u16>(),
        prop_oneof![Just(0u16), 3u16..],
        1u32..,
        vec(vec(capability(), 0..5), 0..6),
    )
        .prop_map(|(my_as, hold_time, id, params)| Open {
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from(id),
            params,
        })
}

fn context() -> impl Strategy<Value = Context> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(four, ap4, ap6)| Context {
        four_octet_as: four,
        extended_message: false,
        add_path: AddPathFamilies {
            ipv4_unicast: ap4,
            ipv6_unicast: ap6,
        },
    })
}

fn message_in(ctx: Context) -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        update(ctx).prop_map(Message::Update),
        (any::<u8>(), any::<u8>(), vec(any::<u8>(), 0..64)).prop_map(|(c, s, d)| {
            Message::Notification(Notification::new(Cause::from_codes(c, s), d))
        }),
        Just(Message::Keepalive),
        (family(), any::<u8>())
            .prop_map(|(f, s)| Message::RouteRefresh(RouteRefresh::new(f, s.into()))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decode_of_encode_is_identity((ctx, m) in context().prop_flat_map(|c| (Just(c), message_in(c)))) {
        let bytes = m.to_bytes(&ctx).expect("generated messages fit");
        prop_assert_eq!(message_len(&bytes, &ctx), Ok(bytes.len()));
        let back = Message::decode(&bytes, &ctx);
        prop_assert_eq!(back, Ok(m.clone()));
        // Encoding is a function of the value: the same bytes again.
        prop_assert_eq!(m.to_bytes(&ctx).expect("encodes"), bytes);
    }

    /// A stream of messages cut into arbitrary chunks, framed the way the
    /// I/O layer will frame it, gives back every message in order.
    #[test]
    fn framing_a_chunked_stream_recovers_every_message(
        (ctx, messages) in context().prop_flat_map(|c| (Just(c), vec(message_in(c), 1..6))),
        cuts in vec(1usize..200, 1..40),
    ) {
        let mut stream = Vec::new();
        for m in &messages {
            stream.extend_from_slice(&m.to_bytes(&ctx).expect("generated messages fit"));
        }
        let mut buffer: Vec<u8> = Vec::new();
        let mut received = Vec::new();
        let mut at = 0;
        let mut cut = cuts.iter().cycle();
        while at < stream.len() {
            let end = (at + cut.next().copied().unwrap_or(1)).min(stream.len());
            buffer.extend_from_slice(&stream[at..end]);
            at = end;
            loop {
                let need = message_len(&buffer, &ctx).expect("a valid stream frames");
                if buffer.len() < need {
                    break;
                }
                received.push(Message::decode(&buffer[..need], &ctx).expect("decodes"));
                buffer.drain(..need);
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(received, messages);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..600), ctx in context()) {
        let _ = message_len(&bytes, &ctx);
        let _ = Message::decode(&bytes, &ctx);
    }

    /// Random bodies behind a valid header reach every message decoder.
    #[test]
    fn arbitrary_bodies_decode_or_fail_cleanly(kind in 1u8..=5, body in vec(any::<u8>(), 0..600), ctx in context()) {
        let m = common::message(kind, &body);
        match Message::decode(&m, &ctx) {
            Ok(msg) => {
                // What decodes encodes again, within the same limits.
                prop_assert!(msg.to_bytes(&ctx).is_ok());
            }
            Err(e) => {
                // Every error names a NOTIFICATION.
                let _ = e.notification();
            }
        }
    }

    /// Random attribute lists inside a well-formed UPDATE.
    #[test]
    fn arbitrary_attributes_decode_or_fail_cleanly(attrs in vec(any::<u8>(), 0..400), nlri in vec(any::<u8>(), 0..40), ctx in context()) {
        let m = common::update(&[], &attrs, &nlri);
        if let Ok(Message::Update(u)) = Message::decode(&m, &ctx) {
            for e in &u.errors {
                prop_assert!(e.action <= Action::AfiSafiDisable);
                let _ = e.notification();
            }
        }
    }
}
