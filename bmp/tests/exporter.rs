//! The exporter: what a collector is sent, in what order, and what
//! happens when it reads too slowly.

use std::net::{IpAddr, Ipv4Addr};

use bgp::wire::{AsPath, AttrValue, Context, Family, Message as Bgp, Nlri, Open, Origin, Update};
use bmp::message::{termination, tlv, PeerType};
use bmp::{Config, DownReason, Exporter, Message, Monitoring, PeerHeader};

fn config(queue_limit: usize) -> Config {
    Config {
        sys_name: "node-1".into(),
        sys_descr: "podbgp 0.1.0".into(),
        queue_limit,
        monitoring: Monitoring {
            pre_policy: true,
            post_policy: true,
            loc_rib: true,
        },
    }
}

fn peer() -> PeerHeader {
    PeerHeader::global(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        65001,
        Ipv4Addr::new(192, 0, 2, 1),
        true,
    )
}

fn update(i: u32) -> Update {
    Update::new(
        vec![
            AttrValue::Origin(Origin::Igp),
            AttrValue::AsPath(AsPath::sequence([65001])),
            AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
        ],
        vec![Nlri::new(
            format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap(),
        )],
    )
}

fn drain(e: &mut Exporter) -> Vec<Message> {
    std::iter::from_fn(|| e.poll_transmit())
        .map(|b| Message::decode(&b).expect("a BMP message"))
        .collect()
}

#[test]
fn a_session_starts_with_the_initiation_and_carries_what_it_is_given() {
    let mut e = Exporter::new(config(1 << 20));
    // Nothing is taken before a connection.
    e.peer_down(peer(), DownReason::RemoteNoData);
    assert_eq!(e.poll_transmit(), None);

    e.connected();
    let ctx = Context::modern();
    let open = Open::new(64512, 90, Ipv4Addr::new(10, 0, 0, 1), vec![]);
    let theirs = Open::new(65001, 90, Ipv4Addr::new(192, 0, 2, 1), vec![]);
    e.peer_up(
        peer(),
        (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 179),
        40000,
        &open,
        &theirs,
    )
    .unwrap();
    e.route_monitoring(&peer(), &[update(1), update(2)], &ctx)
        .unwrap();
    e.end_of_rib(&peer(), Family::IPV4_UNICAST, &ctx).unwrap();
    e.loc_rib_up(
        64512,
        Ipv4Addr::new(10, 0, 0, 1),
        &[Family::IPV4_UNICAST],
        (7, 0),
    )
    .unwrap();
    let got = drain(&mut e);
    assert_eq!(got.len(), 6);
    let Message::Initiation(tlvs) = &got[0] else {
        panic!("first: {:?}", got[0]);
    };
    assert_eq!(tlvs[0].kind, tlv::SYS_DESCR);
    assert_eq!(tlvs[0].text(), Some("podbgp 0.1.0"));
    assert_eq!(tlvs[1].kind, tlv::SYS_NAME);
    assert_eq!(tlvs[1].text(), Some("node-1"));
    let Message::PeerUp {
        sent_open,
        received_open,
        local_port,
        remote_port,
        ..
    } = &got[1]
    else {
        panic!("second: {:?}", got[1]);
    };
    assert_eq!((*local_port, *remote_port), (179, 40000));
    assert_eq!(Bgp::decode(sent_open, &ctx), Ok(Bgp::Open(open)));
    assert_eq!(Bgp::decode(received_open, &ctx), Ok(Bgp::Open(theirs)));
    for (i, m) in got[2..4].iter().enumerate() {
        let Message::RouteMonitoring { update: u, peer: h } = m else {
            panic!("{m:?}");
        };
        assert_eq!(h, &peer());
        assert_eq!(Bgp::decode(u, &ctx), Ok(Bgp::Update(update(i as u32 + 1))));
    }
    let Message::RouteMonitoring { update: eor, .. } = &got[4] else {
        panic!("{:?}", got[4]);
    };
    let Ok(Bgp::Update(eor)) = Bgp::decode(eor, &ctx) else {
        panic!("End-of-RIB");
    };
    assert_eq!(eor.as_end_of_rib(), Some(Family::IPV4_UNICAST));
    let Message::PeerUp {
        peer: h,
        information,
        sent_open,
        received_open,
        ..
    } = &got[5]
    else {
        panic!("{:?}", got[5]);
    };
    assert_eq!(h.peer_type, PeerType::LocRib);
    assert_eq!((h.seconds, h.asn), (7, 64512));
    assert_eq!(information[0].kind, tlv::TABLE_NAME);
    assert_eq!(sent_open, received_open);
    assert!(matches!(Bgp::decode(sent_open, &ctx), Ok(Bgp::Open(_))));
    let c = e.counters();
    assert_eq!((c.messages, c.resyncs), (6, 0));
}

#[test]
fn a_collector_that_falls_behind_gets_a_termination_not_a_slower_speaker() {
    let mut e = Exporter::new(config(4096));
    e.connected();
    let ctx = Context::modern();
    let mut sent = 0;
    while !e.given_up() {
        e.route_monitoring(&peer(), &[update(sent)], &ctx).unwrap();
        sent += 1;
        assert!(e.queued() <= 4096);
    }
    // Whatever was queued is dropped for one Termination, out of
    // resources; nothing more is taken.
    e.route_monitoring(&peer(), &[update(0)], &ctx).unwrap();
    let got = drain(&mut e);
    assert_eq!(got.len(), 1);
    let Message::Termination(tlvs) = &got[0] else {
        panic!("{got:?}");
    };
    assert_eq!(tlvs[0].kind, tlv::REASON);
    assert_eq!(
        tlvs[0].value.as_ref(),
        termination::OUT_OF_RESOURCES.to_be_bytes()
    );
    let c = e.counters();
    assert_eq!(c.resyncs, 1);
    assert_eq!(
        c.dropped,
        sent as u64 + 1,
        "the Initiation and every update"
    );
    // The next connection starts afresh.
    e.disconnected();
    e.connected();
    assert!(e.is_up());
    assert!(matches!(drain(&mut e)[..], [Message::Initiation(_)]));
}

#[test]
fn a_termination_ends_the_session_and_a_lost_connection_drops_the_queue() {
    let mut e = Exporter::new(config(1 << 20));
    e.connected();
    e.terminate(termination::ADMINISTRATIVELY_CLOSED);
    assert!(e.given_up());
    e.peer_down(peer(), DownReason::Deconfigured);
    let got = drain(&mut e);
    assert!(matches!(
        got[..],
        [Message::Initiation(_), Message::Termination(_)]
    ));

    e.connected();
    e.peer_down(peer(), DownReason::Deconfigured);
    e.disconnected();
    assert_eq!((e.poll_transmit(), e.queued()), (None, 0));
}
