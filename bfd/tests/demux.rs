//! The session table: discriminator allocation, and demultiplexing of
//! received packets by Your Discriminator or, while it is zero, by the
//! addresses and interface (RFC 5880 §6.3, §6.8.6; RFC 5881 §3; RFC 5883).

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use bfd::{AddError, Config, Control, Discard, Event, Key, Output, SessionId, Sessions, State};
use common::{from_peer, ms, REMOTE};

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 99, 0, last))
}

/// Add a session with the default timers.
fn add(table: &mut Sessions, now: Instant, key: Key) -> SessionId {
    table.add(now, key, Config::default()).expect("add")
}

fn hop(local: u8, peer: u8, ifindex: Option<u32>) -> Key {
    Key::single_hop(v4(local), v4(peer), ifindex)
}

#[test]
fn a_packet_naming_a_discriminator_goes_to_that_session() {
    let now = Instant::now();
    let mut table = Sessions::new(1);
    let one = add(&mut table, now, hop(1, 2, Some(3)));
    let two = add(&mut table, now, hop(1, 4, Some(3)));
    let packet = from_peer(State::Init, two.discriminator());
    assert_eq!(table.receive(now, &hop(1, 4, Some(3)), &packet), Ok(two));
    assert_eq!(table.get(two).map(|s| s.state()), Some(State::Up));
    assert_eq!(table.get(one).map(|s| s.state()), Some(State::Down));
}

#[test]
fn your_discriminator_zero_goes_by_the_addresses() {
    let now = Instant::now();
    let mut table = Sessions::new(2);
    let one = add(&mut table, now, hop(1, 2, Some(3)));
    let two = add(&mut table, now, hop(1, 4, Some(3)));
    let hello = from_peer(State::Down, 0);
    assert_eq!(table.receive(now, &hop(1, 2, Some(3)), &hello), Ok(one));
    assert_eq!(table.get(one).map(|s| s.state()), Some(State::Init));
    assert_eq!(
        table.get(one).map(|s| s.remote_discriminator()),
        Some(REMOTE)
    );
    assert_eq!(table.get(two).map(|s| s.state()), Some(State::Down));
    assert_eq!(table.get(two).map(|s| s.remote_discriminator()), Some(0));
}

#[test]
fn an_unknown_discriminator_is_dropped_and_counted() {
    let now = Instant::now();
    let mut table = Sessions::new(3);
    let id = add(&mut table, now, hop(1, 2, None));
    let stranger = id.discriminator().wrapping_add(1).max(1);
    let packet = from_peer(State::Up, stranger);
    assert_eq!(
        table.receive(now, &hop(1, 2, None), &packet),
        Err(Discard::UnknownDiscriminator(stranger))
    );
    assert_eq!(table.counters().unknown_discriminator, 1);
    assert_eq!(
        table.get(id).map(|s| s.counters().packets_received),
        Some(0)
    );
}

#[test]
fn your_discriminator_zero_from_unknown_addresses_is_dropped() {
    let now = Instant::now();
    let mut table = Sessions::new(4);
    add(&mut table, now, hop(1, 2, Some(3)));
    let hello = from_peer(State::Down, 0);
    for key in [hop(1, 9, Some(3)), hop(7, 2, Some(3)), hop(1, 2, Some(4))] {
        assert_eq!(
            table.receive(now, &key, &hello),
            Err(Discard::NoSession),
            "{key:?}"
        );
    }
    assert_eq!(table.counters().no_session, 3);
}

#[test]
fn a_discriminator_arriving_on_other_addresses_is_dropped() {
    let now = Instant::now();
    let mut table = Sessions::new(5);
    let id = add(&mut table, now, hop(1, 2, Some(3)));
    let packet = from_peer(State::Init, id.discriminator());
    for key in [
        hop(1, 9, Some(3)),
        hop(1, 2, Some(4)),
        Key::multihop(v4(1), v4(2)),
    ] {
        assert_eq!(
            table.receive(now, &key, &packet),
            Err(Discard::KeyMismatch(id.discriminator())),
            "{key:?}"
        );
    }
    assert_eq!(table.counters().key_mismatch, 3);
    assert_eq!(table.get(id).map(|s| s.state()), Some(State::Down));
}

#[test]
fn sessions_with_different_keys_are_kept_apart() {
    // Same addresses on two interfaces, and the same pair multihop: three
    // sessions, each seeing only its own packets.
    let now = Instant::now();
    let mut table = Sessions::new(6);
    let eth0 = hop(1, 2, Some(3));
    let eth1 = hop(1, 2, Some(4));
    let multi = Key::multihop(v4(1), v4(2));
    let ids: Vec<_> = [eth0, eth1, multi]
        .iter()
        .map(|k| add(&mut table, now, *k))
        .collect();
    assert_eq!(table.len(), 3);
    let hello = from_peer(State::Down, 0);
    assert_eq!(table.receive(now, &eth1, &hello), Ok(ids[1]));
    let states: Vec<_> = ids
        .iter()
        .map(|id| table.get(*id).map(|s| s.state()))
        .collect();
    assert_eq!(
        states,
        vec![Some(State::Down), Some(State::Init), Some(State::Down)]
    );
    // A multihop packet carries no meaningful interface.
    let multi_in = Key {
        ifindex: Some(77),
        ..multi
    };
    assert_eq!(table.receive(now, &multi_in, &hello), Ok(ids[2]));
    assert_eq!(table.find(&eth0), Some(ids[0]));
    assert_eq!(table.find(&multi_in), Some(ids[2]));
}

#[test]
fn a_session_bound_to_no_interface_takes_packets_from_any() {
    let now = Instant::now();
    let mut table = Sessions::new(7);
    let id = add(&mut table, now, hop(1, 2, None));
    let hello = from_peer(State::Down, 0);
    assert_eq!(table.receive(now, &hop(1, 2, Some(5)), &hello), Ok(id));
    let packet = from_peer(State::Up, id.discriminator());
    assert_eq!(table.receive(now, &hop(1, 2, Some(6)), &packet), Ok(id));
    assert_eq!(table.get(id).map(|s| s.state()), Some(State::Up));
}

#[test]
fn one_session_per_key() {
    let now = Instant::now();
    let mut table = Sessions::new(8);
    let id = add(&mut table, now, hop(1, 2, Some(3)));
    assert_eq!(
        table.add(now, hop(1, 2, Some(3)), Config::default()),
        Err(AddError::Duplicate(id))
    );
    let bad = Config {
        detect_mult: 0,
        ..Config::default()
    };
    assert!(matches!(
        table.add(now, hop(1, 5, None), bad),
        Err(AddError::Config(_))
    ));
    assert_eq!(table.len(), 1);
}

#[test]
fn discriminators_are_non_zero_unique_and_reproducible() {
    let now = Instant::now();
    let build = |seed| {
        let mut table = Sessions::new(seed);
        let ids: Vec<_> = (0..2000u32)
            .map(|i| {
                let peer = IpAddr::V6(Ipv6Addr::from(u128::from(i) + 1));
                let key = Key::single_hop(IpAddr::V6(Ipv6Addr::LOCALHOST), peer, None);
                add(&mut table, now, key)
            })
            .collect();
        (table, ids)
    };
    let (table, ids) = build(9);
    let unique: BTreeSet<_> = ids.iter().map(|id| id.discriminator()).collect();
    assert_eq!(unique.len(), ids.len());
    assert!(!unique.contains(&0));
    assert!(ids
        .iter()
        .all(|id| table.get(*id).map(|s| s.local_discriminator()) == Some(id.discriminator())));
    assert_eq!(build(9).1, ids);
    assert_ne!(build(10).1, ids);
}

#[test]
fn a_removed_session_receives_nothing() {
    let now = Instant::now();
    let mut table = Sessions::new(11);
    let key = hop(1, 2, None);
    let id = add(&mut table, now, key);
    assert!(table.remove(id).is_some());
    assert!(table.is_empty());
    assert_eq!(table.find(&key), None);
    assert_eq!(
        table.receive(now, &key, &from_peer(State::Up, id.discriminator())),
        Err(Discard::UnknownDiscriminator(id.discriminator()))
    );
    assert_eq!(
        table.receive(now, &key, &from_peer(State::Down, 0)),
        Err(Discard::NoSession)
    );
    // The key is free again.
    assert!(table.add(now, key, Config::default()).is_ok());
}

#[test]
fn poll_and_poll_at_cover_every_session() {
    let t0 = Instant::now();
    let mut table = Sessions::new(12);
    let one = add(&mut table, t0, hop(1, 2, None));
    let two = table
        .add(t0 + ms(10), hop(1, 3, None), Config::default())
        .expect("add");
    assert_eq!(table.poll_at(), Some(t0));
    let out = table.poll(t0);
    assert!(out
        .iter()
        .all(|(id, o)| *id == one && matches!(o, Output::Send(_))));
    assert_eq!(table.poll_at(), Some(t0 + ms(10)));
    let out = table.poll(t0 + ms(10));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, two);
    assert_eq!(table.key(two), Some(&hop(1, 3, None)));
}

#[test]
fn a_hand_built_malformed_packet_is_counted() {
    let now = Instant::now();
    let mut table = Sessions::new(13);
    add(&mut table, now, hop(1, 2, None));
    let bad = Control {
        multipoint: true,
        ..from_peer(State::Down, 0)
    };
    assert!(matches!(
        table.receive(now, &hop(1, 2, None), &bad),
        Err(Discard::Malformed(_))
    ));
    assert_eq!(table.counters().malformed, 1);
}

/// Runs `from`'s timers and carries its packets, as bytes, into `to`.
fn exchange(
    now: Instant,
    from: &mut Sessions,
    to: &mut Sessions,
    to_key: Key,
    events: &mut Vec<Event>,
) {
    for (_, output) in from.poll(now) {
        match output {
            Output::Send(packet) => {
                let packet = Control::decode(&packet.encode()).expect("decodes");
                let _ = to.receive(now, &to_key, &packet);
            }
            Output::Event(e) => events.push(e),
            Output::StateChanged { .. } => {}
        }
    }
}

/// Two speakers' tables back to back, as the agent would drive them:
/// decode, demultiplex, poll, encode.
#[test]
fn two_tables_back_to_back_come_up() {
    let t0 = Instant::now();
    let (a_key, b_key) = (hop(1, 2, Some(3)), hop(2, 1, Some(7)));
    let mut a = Sessions::new(20);
    let mut b = Sessions::new(21);
    let a_id = a.add(t0, a_key, Config::default()).expect("add");
    let b_id = b.add(t0, b_key, Config::default()).expect("add");
    let mut a_events = Vec::new();
    let mut b_events = Vec::new();
    let mut now = t0;
    while now < t0 + Duration::from_secs(5) {
        let Some(next) = [a.poll_at(), b.poll_at()].into_iter().flatten().min() else {
            break;
        };
        now = next.max(now);
        exchange(now, &mut a, &mut b, b_key, &mut a_events);
        exchange(now, &mut b, &mut a, a_key, &mut b_events);
    }
    assert_eq!(a_events, vec![Event::Up]);
    assert_eq!(b_events, vec![Event::Up]);
    assert_eq!(
        a.get(a_id).map(|s| s.remote_discriminator()),
        Some(b_id.discriminator())
    );
    assert_eq!(
        b.get(b_id).map(|s| s.remote_discriminator()),
        Some(a_id.discriminator())
    );
}
