//! Two sessions wired back to back over a simulated link (packets cross as
//! bytes, with a delay, or are all lost while the link is cut); time moves
//! only when the simulation moves it.
//!
//! ```text
//!   A (discr a0a00001) ───── link, 1 ms, can drop all ───── B (discr b0b00002)
//! ```
//! Under test: the three-way handshake (RFC 5880 §6.2, §6.8.6), timer
//! negotiation and the detection time (§6.8.2, §6.8.4), the one-second rate
//! while not Up and the Poll Sequence of a timer change (§6.8.3, §6.5),
//! jitter (§6.8.7), failure detection, and AdminDown as seen by the peer
//! (§6.8.16, RFC 5882 §3.2).

mod common;

use std::time::Duration;

use bfd::{Config, Diag, Event, State};
use common::{ms, Side, Sim};
use proptest::prelude::*;

fn config(tx: u64, rx: u64, mult: u8) -> Config {
    Config {
        desired_min_tx: ms(tx),
        required_min_rx: ms(rx),
        detect_mult: mult,
    }
}

#[test]
fn three_way_handshake_brings_both_up_at_the_slow_rate() {
    let mut sim = Sim::new(Config::default(), Config::default(), 1);
    let up = sim.bring_up();
    assert!(
        up - sim.start <= Duration::from_secs(3),
        "{:?}",
        up - sim.start
    );
    for side in [Side::A, Side::B] {
        let path: Vec<_> = sim.changes(side).iter().map(|c| (c.1, c.2, c.3)).collect();
        let handshake = [
            vec![
                (State::Down, State::Init, Diag::NoDiagnostic),
                (State::Init, State::Up, Diag::NoDiagnostic),
            ],
            vec![(State::Down, State::Up, Diag::NoDiagnostic)],
        ];
        assert!(handshake.contains(&path), "{side:?}: {path:?}");
        let events: Vec<_> = sim.events(side).iter().map(|e| e.1).collect();
        assert_eq!(events, vec![Event::Up], "{side:?}");
        // Before Up: Desired Min TX one second, and packets at most every
        // second, at least every 750 ms (§6.8.3, §6.8.7).
        let became_up = sim.changes(side).last().map(|c| c.0).expect("up");
        let before: Vec<_> = sim
            .sent(side)
            .into_iter()
            .filter(|(at, c)| *at < became_up && !c.final_)
            .collect();
        // The side that hears Init first goes Up after its first packet.
        assert!(!before.is_empty(), "{side:?}");
        for (_, c) in &before {
            assert_eq!(c.desired_min_tx.as_micros(), 1_000_000);
            assert_ne!(c.state, State::Up);
        }
        for w in before.windows(2) {
            let gap = w[1].0 - w[0].0;
            assert!(gap >= ms(750) && gap <= ms(1000), "{side:?} {gap:?}");
        }
    }
    assert_eq!(sim.a.remote_discriminator(), common::B_DISCR);
    assert_eq!(sim.b.remote_discriminator(), common::A_DISCR);
}

#[test]
fn intervals_negotiated_300_300_3_against_100_200_5() {
    let mut sim = Sim::new(config(300, 300, 3), config(100, 200, 5), 2);
    let up = sim.bring_up();
    // A sends at max(its 300, B's Required Min RX 200); B at max(its 100, A's 300).
    assert_eq!(sim.a.negotiated_tx(), ms(300));
    assert_eq!(sim.b.negotiated_tx(), ms(300));
    // A waits B's Detect Mult 5 × max(A's Required Min RX 300, B's Desired Min TX 100).
    assert_eq!(sim.a.detection_time(), ms(1500));
    // B waits A's 3 × max(B's 200, A's 300).
    assert_eq!(sim.b.detection_time(), ms(900));
    sim.run_for(Duration::from_secs(10));
    for side in [Side::A, Side::B] {
        let sent: Vec<_> = sim.sent(side).into_iter().filter(|s| s.0 > up).collect();
        assert!(sent.len() >= 33, "{side:?}: {}", sent.len());
        for w in sent.windows(2) {
            let gap = w[1].0 - w[0].0;
            assert!(gap >= ms(225) && gap <= ms(300), "{side:?} {gap:?}");
        }
    }
    let b_packet = sim.sent(Side::B).last().expect("sent").1;
    assert_eq!(
        (
            b_packet.desired_min_tx.as_micros(),
            b_packet.required_min_rx.as_micros(),
            b_packet.detect_mult
        ),
        (100_000, 200_000, 5)
    );
    assert_eq!(sim.a.state(), State::Up);
    assert_eq!(sim.b.state(), State::Up);
}

#[test]
fn a_dead_link_takes_both_down_within_the_detection_time() {
    let mut sim = Sim::new(config(300, 300, 3), config(100, 200, 5), 3);
    sim.bring_up();
    sim.run_for(Duration::from_secs(2));
    let cut = sim.now;
    sim.link_up = false;
    sim.run_for(Duration::from_secs(5));
    let diag1 = Diag::ControlDetectionTimeExpired;
    for (side, detection, peer_tx) in [(Side::A, ms(1500), ms(300)), (Side::B, ms(900), ms(300))] {
        let last = sim.last_delivered(side).expect("heard the peer");
        let changes = sim.changes(side);
        let (down_at, from, to, diag) = *changes.last().expect("went down");
        assert_eq!(
            (from, to, diag),
            (State::Up, State::Down, diag1),
            "{side:?}"
        );
        // Exactly one detection time after the last packet...
        assert_eq!(down_at, last + detection, "{side:?}");
        // ...which the peer sent at most one interval before the cut (the
        // jitter only shortens intervals), and 1 ms reached us.
        assert!(down_at <= cut + detection + ms(1), "{side:?}");
        assert!(down_at >= cut + detection - peer_tx, "{side:?}");
        let events: Vec<_> = sim.events(side).iter().map(|e| e.1).collect();
        assert_eq!(events, vec![Event::Up, Event::Down { diag: diag1 }]);
        // Down: the slow rate again, and the peer forgotten.
        let s = sim.session(side);
        assert_eq!(s.remote_discriminator(), 0);
        assert_eq!(s.negotiated_tx(), ms(1000));
        let sent = sim.sent(side);
        let (_, last_sent) = sent.last().expect("sent");
        assert_eq!(last_sent.state, State::Down);
        assert_eq!(last_sent.your_discriminator, 0);
        assert_eq!(last_sent.desired_min_tx.as_micros(), 1_000_000);
    }
    // The link heals: the sessions come back by themselves.
    sim.link_up = true;
    sim.bring_up();
}

#[test]
fn admin_down_on_one_side_is_peer_admin_down_on_the_other() {
    let mut sim = Sim::new(config(300, 300, 3), config(100, 200, 5), 4);
    sim.bring_up();
    sim.run_for(ms(777));
    let t = sim.now;
    sim.a.set_admin_down(t, true);
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.a.state(), State::AdminDown);
    assert_eq!(sim.a.local_diag(), Diag::AdministrativelyDown);
    assert_eq!(sim.b.state(), State::Down);
    assert_eq!(sim.b.local_diag(), Diag::NeighborSignaledSessionDown);
    assert_eq!(sim.b.remote_state(), State::AdminDown);
    let a_events: Vec<_> = sim.events(Side::A).iter().map(|e| e.1).collect();
    let b_events: Vec<_> = sim.events(Side::B).iter().map(|e| e.1).collect();
    assert_eq!(a_events, vec![Event::Up, Event::AdminDown]);
    assert_eq!(b_events, vec![Event::Up, Event::PeerAdminDown]);
    assert!(!b_events.iter().any(Event::is_failure));
    // B heard of it within one of A's old intervals, long before its
    // detection time could have run out.
    let b_down = sim.changes(Side::B).last().expect("down").0;
    assert!(b_down - t <= ms(301), "{:?}", b_down - t);
    // AdminDown keeps sending, at the slow rate.
    let admin: Vec<_> = sim
        .sent(Side::A)
        .into_iter()
        .filter(|(_, c)| c.state == State::AdminDown && !c.final_)
        .collect();
    assert!(admin.len() >= 3);
    for w in admin.windows(2).skip(1) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= ms(750) && gap <= ms(1000), "{gap:?}");
    }
    // Enabled again: both come back.
    let t = sim.now;
    sim.a.set_admin_down(t, false);
    sim.bring_up();
    let b_events: Vec<_> = sim.events(Side::B).iter().map(|e| e.1).collect();
    assert_eq!(b_events, vec![Event::Up, Event::PeerAdminDown, Event::Up]);
}

#[test]
fn a_slower_tx_runs_a_poll_sequence_and_applies_after_the_final() {
    let mut sim = Sim::new(config(300, 300, 3), config(300, 300, 3), 5);
    sim.bring_up();
    sim.delay = ms(40);
    sim.run_for(Duration::from_secs(1));
    let change = sim.now;
    sim.a
        .set_config(change, config(600, 300, 3))
        .expect("config");
    assert!(sim.a.polling());
    // Not yet: B still times A by 300 ms.
    assert_eq!(sim.a.negotiated_tx(), ms(300));
    assert_eq!(sim.a.desired_min_tx(), ms(600));
    let ended = sim
        .run_until_true(Duration::from_secs(3), |s| !s.a.polling())
        .expect("the Poll Sequence ends");
    assert_eq!(sim.a.negotiated_tx(), ms(600));
    // B took the new interval into its detection time from the first Poll.
    assert_eq!(sim.b.detection_time(), ms(1800));
    let polls: Vec<_> = sim
        .sent(Side::A)
        .into_iter()
        .filter(|(at, _)| *at >= change && *at < ended)
        .collect();
    assert!(!polls.is_empty());
    for (_, c) in &polls {
        assert!(c.poll && !c.final_);
        assert_eq!(c.desired_min_tx.as_micros(), 600_000);
    }
    // Until the Final, A kept its old pace.
    for w in polls.windows(2) {
        assert!(w[1].0 - w[0].0 <= ms(300));
    }
    // B answered each Poll with a Final, with P clear.
    let finals: Vec<_> = sim
        .sent(Side::B)
        .into_iter()
        .filter(|(at, c)| *at >= change && c.final_)
        .collect();
    assert_eq!(finals.len(), polls.len());
    assert!(finals.iter().all(|(_, c)| !c.poll));
    sim.run_for(Duration::from_secs(6));
    let after: Vec<_> = sim
        .sent(Side::A)
        .into_iter()
        .filter(|(at, _)| *at > ended)
        .collect();
    assert!(after.iter().all(|(_, c)| !c.poll && !c.final_));
    for w in after.windows(2).skip(1) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= ms(450) && gap <= ms(600), "{gap:?}");
    }
    // B never doubted A meanwhile.
    let b_events: Vec<_> = sim.events(Side::B).iter().map(|e| e.1).collect();
    assert_eq!(b_events, vec![Event::Up]);
}

#[test]
fn a_faster_tx_applies_at_once() {
    let mut sim = Sim::new(config(300, 300, 3), config(300, 100, 3), 6);
    sim.bring_up();
    assert_eq!(sim.a.negotiated_tx(), ms(300));
    let t = sim.now;
    sim.a.set_config(t, config(100, 300, 3)).expect("config");
    assert!(sim.a.polling());
    assert_eq!(sim.a.negotiated_tx(), ms(100));
    sim.run_for(Duration::from_secs(2));
    assert!(!sim.a.polling());
    let recent: Vec<_> = sim
        .sent(Side::A)
        .into_iter()
        .filter(|(at, c)| *at > t + ms(500) && !c.final_)
        .collect();
    for w in recent.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= ms(75) && gap <= ms(100), "{gap:?}");
    }
}

#[test]
fn a_faster_rx_shortens_the_detection_time_only_after_the_final() {
    let mut sim = Sim::new(config(300, 300, 3), config(100, 200, 5), 7);
    sim.bring_up();
    sim.delay = ms(40);
    assert_eq!(sim.a.detection_time(), ms(1500));
    let t = sim.now;
    sim.a.set_config(t, config(300, 50, 3)).expect("config");
    assert_eq!(sim.a.detection_time(), ms(1500));
    // B speeds up as soon as it hears A's new Required Min RX (§6.8.3:
    // "MUST honor the new interval immediately"): max(100, 50).
    sim.run_until_true(Duration::from_secs(1), |s| s.b.negotiated_tx() == ms(100))
        .expect("B speeds up");
    assert!(sim.a.polling());
    assert_eq!(sim.a.detection_time(), ms(1500));
    sim.run_until_true(Duration::from_secs(1), |s| !s.a.polling())
        .expect("the Poll Sequence ends");
    // 5 × max(50, B's 100).
    assert_eq!(sim.a.detection_time(), ms(500));
    // A slower RX needs no wait: the detection time grows at once.
    let t = sim.now;
    sim.a.set_config(t, config(300, 1000, 3)).expect("config");
    assert_eq!(sim.a.detection_time(), ms(5000));
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.a.state(), State::Up);
    assert_eq!(sim.b.state(), State::Up);
    assert_eq!(sim.b.negotiated_tx(), ms(1000));
}

#[test]
fn a_lone_session_sends_once_a_second_at_most() {
    let mut sim = Sim::new(Config::default(), Config::default(), 8);
    sim.link_up = false;
    sim.run_for(Duration::from_secs(30));
    let sent = sim.sent(Side::A);
    assert!(sent.len() >= 30, "{}", sent.len());
    for (_, c) in &sent {
        assert_eq!((c.state, c.your_discriminator), (State::Down, 0));
        assert_eq!(c.desired_min_tx.as_micros(), 1_000_000);
    }
    for w in sent.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= ms(750) && gap <= ms(1000), "{gap:?}");
    }
}

/// The gaps between `side`'s periodic packets after both came Up, as
/// fractions of its negotiated interval.
fn gaps_after_up(seed: u64, a: Config, b: Config, run: Duration) -> Vec<f64> {
    let mut sim = Sim::new(a, b, seed);
    let up = sim.bring_up();
    sim.run_for(run);
    let interval = sim.a.negotiated_tx().as_secs_f64();
    let sent: Vec<_> = sim
        .sent(Side::A)
        .into_iter()
        .filter(|(at, c)| *at > up && !c.final_)
        .collect();
    sent.windows(2)
        .map(|w| (w[1].0 - w[0].0).as_secs_f64() / interval)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn jitter_takes_0_to_25_percent_off(seed in any::<u64>(), tx in 10u64..500) {
        let gaps = gaps_after_up(seed, config(tx, tx, 3), config(tx, tx, 3), ms(tx * 200));
        prop_assert!(gaps.len() >= 150);
        for gap in &gaps {
            prop_assert!((0.75 - 1e-9..=1.0 + 1e-9).contains(gap), "{}", gap);
        }
        // Spread over the whole range, not stuck at one end.
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        prop_assert!((0.84..=0.91).contains(&mean), "mean {}", mean);
    }

    #[test]
    fn with_detect_mult_1_jitter_takes_10_to_25_percent_off(seed in any::<u64>(), tx in 10u64..500) {
        let gaps = gaps_after_up(seed, config(tx, tx, 1), config(tx, tx, 3), ms(tx * 200));
        prop_assert!(gaps.len() >= 150);
        for gap in &gaps {
            prop_assert!((0.75 - 1e-9..=0.90 + 1e-9).contains(gap), "{}", gap);
        }
    }
}

#[test]
fn a_change_during_a_poll_sequence_is_polled_again_before_it_applies() {
    let mut sim = Sim::new(config(300, 300, 3), config(300, 300, 3), 9);
    sim.bring_up();
    sim.delay = ms(40);
    let t = sim.now;
    sim.a.set_config(t, config(500, 300, 3)).expect("config");
    sim.run_for(ms(10));
    let t = sim.now;
    sim.a.set_config(t, config(700, 300, 3)).expect("config");
    // Neither slower interval applies before a Final for the last change.
    assert_eq!(sim.a.negotiated_tx(), ms(300));
    let first_final = sim
        .run_until_true(Duration::from_secs(2), |s| {
            s.delivered.iter().any(|d| d.1 == Side::A && d.2.final_)
        })
        .expect("a Final arrives");
    assert!(sim.a.polling(), "one more Poll Sequence");
    assert_eq!(sim.a.negotiated_tx(), ms(300));
    let ended = sim
        .run_until_true(Duration::from_secs(2), |s| !s.a.polling())
        .expect("the second Poll Sequence ends");
    assert!(ended > first_final);
    assert_eq!(sim.a.negotiated_tx(), ms(700));
    assert_eq!(sim.b.detection_time(), ms(2100));
    sim.run_for(Duration::from_secs(5));
    let b_events: Vec<_> = sim.events(Side::B).iter().map(|e| e.1).collect();
    assert_eq!(b_events, vec![Event::Up]);
}
