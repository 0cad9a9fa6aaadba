//! Packing routes into UPDATEs: every UPDATE within the session's size, no
//! prefix lost or repeated, as few UPDATEs as the size allows, one kind of
//! NLRI per UPDATE (RFC 7606 §5.1).

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp::wire::pack::{announcements, withdrawals};
use bgp::wire::{
    AsPath, AttrType, AttrValue, Context, Family, Message, NextHop, Nlri, Origin, PathAttribute,
    Update, MAX_MESSAGE_LEN,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

fn attrs() -> Vec<PathAttribute> {
    [
        AttrValue::Origin(Origin::Igp),
        AttrValue::AsPath(AsPath::sequence([64512])),
        AttrValue::LocalPref(100),
    ]
    .into_iter()
    .map(PathAttribute::new)
    .collect()
}

fn v4(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            Nlri::new(IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).expect("prefix"),
            ))
        })
        .collect()
}

fn v6(n: u32) -> Vec<Nlri> {
    (0..n)
        .map(|i| {
            let a = Ipv6Addr::from((0x2001_0db8_u128 << 96) | (u128::from(i) << 80));
            Nlri::new(IpNet::V6(Ipv6Net::new(a, 48).expect("prefix")))
        })
        .collect()
}

/// Encode every UPDATE, check its size, decode it back.
fn round(updates: &[Update], ctx: &Context) -> Vec<Update> {
    updates
        .iter()
        .map(|u| {
            let bytes = Message::Update(u.clone()).to_bytes(ctx).expect("fits");
            assert!(
                bytes.len() <= ctx.max_message_len(),
                "{} bytes",
                bytes.len()
            );
            match Message::decode(&bytes, ctx).expect("decodes") {
                Message::Update(back) => back,
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

#[test]
fn ipv4_announcements_fill_4096_byte_updates() {
    let ctx = Context::modern();
    let nlri = v4(2500);
    let nh = NextHop::V4(Ipv4Addr::new(172, 18, 0, 1));
    let updates = round(
        &announcements(&attrs(), nh, Family::IPV4_UNICAST, &nlri, &ctx).expect("packs"),
        &ctx,
    );
    // Header 23 + attributes 27 leave room for 1011 four-byte prefixes.
    assert_eq!(updates.len(), 3);
    assert_eq!(updates[0].nlri.len(), 1011);
    let all: Vec<Nlri> = updates.iter().flat_map(|u| u.nlri.clone()).collect();
    assert_eq!(all, nlri);
    for u in &updates {
        assert_eq!(u.next_hop(), Some(Ipv4Addr::new(172, 18, 0, 1)));
        assert!(u.withdrawn.is_empty() && u.mp_reach().is_none());
        let order: Vec<u8> = u
            .attributes
            .iter()
            .map(|a| u8::from(a.type_code()))
            .collect();
        assert_eq!(order, vec![1, 2, 3, 5]);
    }
}

#[test]
fn ipv6_announcements_go_in_mp_reach_first() {
    let ctx = Context::modern();
    let nlri = v6(2000);
    let nh = NextHop::V6 {
        global: "fd00::1".parse().expect("v6"),
        link_local: Some("fe80::1".parse().expect("v6")),
    };
    let updates = round(
        &announcements(&attrs(), nh, Family::IPV6_UNICAST, &nlri, &ctx).expect("packs"),
        &ctx,
    );
    let all: Vec<Nlri> = updates
        .iter()
        .flat_map(|u| u.mp_reach().expect("MP_REACH").nlri.clone())
        .collect();
    assert_eq!(all, nlri);
    for u in &updates {
        assert_eq!(u.attributes[0].type_code(), AttrType::MpReachNlri);
        assert!(u.nlri.is_empty() && u.next_hop().is_none());
    }
    // Each full one leaves no room for another /48 (7 bytes).
    let sizes: Vec<usize> = updates
        .iter()
        .map(|u| {
            Message::Update(u.clone())
                .to_bytes(&ctx)
                .expect("fits")
                .len()
        })
        .collect();
    assert!(
        sizes[..sizes.len() - 1]
            .iter()
            .all(|&s| s > MAX_MESSAGE_LEN - 7),
        "{sizes:?}"
    );
}

#[test]
fn ipv4_with_an_ipv6_next_hop_goes_in_mp_reach() {
    let ctx = Context::modern();
    let nh = NextHop::V6 {
        global: "fd00::1".parse().expect("v6"),
        link_local: None,
    };
    let updates = round(
        &announcements(&attrs(), nh, Family::IPV4_UNICAST, &v4(3), &ctx).expect("packs"),
        &ctx,
    );
    assert_eq!(updates.len(), 1);
    let r = updates[0].mp_reach().expect("MP_REACH");
    assert_eq!((r.family, r.nlri.len()), (Family::IPV4_UNICAST, 3));
}

#[test]
fn withdrawals_are_batched_per_family() {
    let ctx = Context::modern();
    let w4 = round(
        &withdrawals(Family::IPV4_UNICAST, &v4(2500), &ctx).expect("packs"),
        &ctx,
    );
    assert_eq!(w4.iter().map(|u| u.withdrawn.len()).sum::<usize>(), 2500);
    assert!(w4
        .iter()
        .all(|u| u.attributes.is_empty() && u.nlri.is_empty()));
    let w6 = round(
        &withdrawals(Family::IPV6_UNICAST, &v6(1000), &ctx).expect("packs"),
        &ctx,
    );
    let all: Vec<Nlri> = w6
        .iter()
        .flat_map(|u| u.mp_unreach().expect("MP_UNREACH").withdrawn.clone())
        .collect();
    assert_eq!(all, v6(1000));
}

#[test]
fn extended_messages_take_many_more_and_add_path_ids_count() {
    let mut ctx = Context {
        extended_message: true,
        ..Context::modern()
    };
    let nh = NextHop::V4(Ipv4Addr::new(172, 18, 0, 1));
    assert_eq!(
        announcements(&attrs(), nh, Family::IPV4_UNICAST, &v4(5000), &ctx)
            .expect("packs")
            .len(),
        1
    );

    ctx.extended_message = false;
    ctx.add_path.set(Family::IPV4_UNICAST, true);
    let ids: Vec<Nlri> = v4(1000)
        .into_iter()
        .enumerate()
        .map(|(i, n)| Nlri::with_path_id(n.prefix, i as u32))
        .collect();
    let updates = round(
        &announcements(&attrs(), nh, Family::IPV4_UNICAST, &ids, &ctx).expect("packs"),
        &ctx,
    );
    // Eight bytes a prefix with its path id: 505 fit in one UPDATE.
    assert_eq!(
        updates.iter().map(|u| u.nlri.len()).collect::<Vec<_>>(),
        vec![505, 495]
    );
    assert_eq!(updates[1].nlri[0].path_id, Some(505));
}

#[test]
fn nothing_to_pack_gives_no_update() {
    let ctx = Context::modern();
    assert!(withdrawals(Family::IPV4_UNICAST, &[], &ctx)
        .expect("packs")
        .is_empty());
}
