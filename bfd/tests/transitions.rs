//! One session driven by hand-made packets from an imaginary peer: every
//! transition of the state diagram (RFC 5880 §6.2) and of the reception
//! table (§6.8.6), detection-time expiry (§6.8.4), AdminDown (§6.8.16),
//! Poll and Final (§6.5, §6.8.7), and the Events of RFC 5882 §3.2.

mod common;

use std::time::{Duration, Instant};

use bfd::{Config, ConfigError, Control, Diag, Discard, Event, PacketError, Session, State};
use common::{changes, events, from_peer, ms, sends, LOCAL, REMOTE};

/// A session brought to `state` at `now` by packets (or the operator), its
/// outputs so far drained.
fn session_in(state: State, now: Instant) -> Session {
    let mut s = Session::new(now, Config::default(), LOCAL, 7).expect("config");
    match state {
        State::Down => {}
        State::Init => s.receive(now, &from_peer(State::Down, 0)).expect("Down"),
        State::Up => s
            .receive(now, &from_peer(State::Init, LOCAL))
            .expect("Init"),
        State::AdminDown => s.set_admin_down(now, true),
    }
    s.poll(now);
    assert_eq!(s.state(), state);
    s
}

#[test]
fn reception_table_of_6_8_6() {
    use State::*;
    let diag3 = Diag::NeighborSignaledSessionDown;
    let none = Diag::NoDiagnostic;
    /// Name, our state, the peer's, our state after, our diag after, the event.
    type Row = (&'static str, State, State, State, Diag, Option<Event>);
    #[rustfmt::skip]
    let table: [Row; 12] = [
        ("Down, peer Down: Init",               Down, Down,      Init, none,  None),
        ("Down, peer Init: Up",                 Down, Init,      Up,   none,  Some(Event::Up)),
        ("Down, peer Up: stays Down",           Down, Up,        Down, none,  None),
        ("Down, peer AdminDown: stays Down",    Down, AdminDown, Down, none,  None),
        ("Init, peer Down: stays Init",         Init, Down,      Init, none,  None),
        ("Init, peer Init: Up",                 Init, Init,      Up,   none,  Some(Event::Up)),
        ("Init, peer Up: Up",                   Init, Up,        Up,   none,  Some(Event::Up)),
        ("Init, peer AdminDown: Down, diag 3",  Init, AdminDown, Down, diag3, None),
        ("Up, peer Down: Down, diag 3",         Up,   Down,      Down, diag3, Some(Event::Down { diag: diag3 })),
        ("Up, peer Init: stays Up",             Up,   Init,      Up,   none,  None),
        ("Up, peer Up: stays Up",               Up,   Up,        Up,   none,  None),
        ("Up, peer AdminDown: Down, diag 3, not a failure",
                                                Up,   AdminDown, Down, diag3, Some(Event::PeerAdminDown)),
    ];
    for (name, from, received, to, diag, event) in table {
        let now = Instant::now();
        let mut s = session_in(from, now);
        let before = s.counters().state_changes;
        let later = now + ms(10);
        assert_eq!(
            s.receive(later, &from_peer(received, LOCAL)),
            Ok(()),
            "{name}"
        );
        let out = s.poll(later);
        assert_eq!(s.state(), to, "{name}");
        assert_eq!(s.local_diag(), diag, "{name}");
        assert_eq!(s.remote_state(), received, "{name}");
        assert_eq!(s.remote_discriminator(), REMOTE, "{name}");
        if from == to {
            assert!(changes(&out).is_empty(), "{name}");
            assert_eq!(s.counters().state_changes, before, "{name}");
        } else {
            assert_eq!(changes(&out), vec![(from, to, diag)], "{name}");
            assert_eq!(s.counters().state_changes, before + 1, "{name}");
            assert_eq!(s.since(), later, "{name}");
        }
        assert_eq!(
            events(&out),
            event.into_iter().collect::<Vec<_>>(),
            "{name}"
        );
    }
}

#[test]
fn admin_down_discards_every_packet_after_recording_it() {
    for received in [State::AdminDown, State::Down, State::Init, State::Up] {
        let now = Instant::now();
        let mut s = session_in(State::AdminDown, now);
        assert_eq!(
            s.receive(now, &from_peer(received, LOCAL)),
            Err(Discard::AdminDown)
        );
        assert_eq!(s.state(), State::AdminDown);
        assert_eq!(s.local_diag(), Diag::AdministrativelyDown);
        assert_eq!(s.remote_discriminator(), REMOTE);
        assert_eq!(s.counters().dropped_for_state, 1);
        assert_eq!(s.counters().packets_received, 0);
        assert!(changes(&s.poll(now)).is_empty());
    }
}

#[test]
fn detection_time_expiry_in_up_is_a_failure_at_the_exact_deadline() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    // Peer's Detect Mult 3 × max(our Required Min RX 300 ms, its Desired Min TX 1 s).
    assert_eq!(s.detection_time(), ms(3000));
    let rx = t0 + ms(500);
    s.receive(rx, &from_peer(State::Up, LOCAL)).expect("Up");
    s.poll(rx);
    assert_eq!(s.poll_at().map(|at| at <= rx + ms(3000)), Some(true));
    let just_before = rx + ms(3000) - Duration::from_nanos(1);
    assert!(changes(&s.poll(just_before)).is_empty());
    assert_eq!(s.state(), State::Up);
    let out = s.poll(rx + ms(3000));
    let diag1 = Diag::ControlDetectionTimeExpired;
    assert_eq!(changes(&out), vec![(State::Up, State::Down, diag1)]);
    assert_eq!(events(&out), vec![Event::Down { diag: diag1 }]);
    assert!(events(&out)[0].is_failure());
    // §6.8.1: bfd.RemoteDiscr is zeroed when a detection time passes
    // without a packet; from now on our packets say Your Discriminator 0.
    assert_eq!(s.remote_discriminator(), 0);
    let next = s.poll_at().expect("keeps sending");
    let packet = sends(&s.poll(next))[0];
    assert_eq!(packet.state, State::Down);
    assert_eq!(packet.diag, diag1);
    assert_eq!(packet.your_discriminator, 0);
}

#[test]
fn detection_time_expiry_in_init_goes_down_without_an_event() {
    let t0 = Instant::now();
    let mut s = session_in(State::Init, t0);
    let out = s.poll(t0 + s.detection_time());
    assert_eq!(
        changes(&out),
        vec![(State::Init, State::Down, Diag::ControlDetectionTimeExpired)]
    );
    assert!(events(&out).is_empty());
    assert_eq!(s.remote_discriminator(), 0);
}

#[test]
fn detection_time_expiry_in_down_only_forgets_the_peer() {
    let t0 = Instant::now();
    let mut s = session_in(State::Down, t0);
    s.receive(t0, &from_peer(State::AdminDown, LOCAL))
        .expect("AdminDown keeps us Down");
    s.poll(t0);
    assert_eq!(s.remote_discriminator(), REMOTE);
    let out = s.poll(t0 + s.detection_time());
    assert!(changes(&out).is_empty());
    assert_eq!(s.state(), State::Down);
    assert_eq!(s.remote_discriminator(), 0);
    assert_eq!(s.counters().state_changes, 0);
}

#[test]
fn no_detection_timer_before_the_first_packet() {
    let t0 = Instant::now();
    let mut s = session_in(State::Down, t0);
    assert_eq!(s.detection_time(), Duration::ZERO);
    for _ in 0..20 {
        let at = s.poll_at().expect("sends");
        assert!(changes(&s.poll(at)).is_empty());
    }
}

#[test]
fn local_admin_down_from_up_is_not_a_failure_and_keeps_sending_slowly() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let t1 = t0 + ms(100);
    s.set_admin_down(t1, true);
    let out = s.poll(t1);
    assert_eq!(
        changes(&out),
        vec![(State::Up, State::AdminDown, Diag::AdministrativelyDown)]
    );
    assert_eq!(events(&out), vec![Event::AdminDown]);
    assert!(!Event::AdminDown.is_failure());
    assert_eq!(s.desired_min_tx(), ms(1000));
    let mut times = Vec::new();
    while times.len() < 10 {
        let at = s.poll_at().expect("an AdminDown session keeps sending");
        for p in sends(&s.poll(at)) {
            assert_eq!(p.state, State::AdminDown);
            assert_eq!(p.diag, Diag::AdministrativelyDown);
            assert_eq!(p.desired_min_tx.as_micros(), 1_000_000);
            times.push(at);
        }
    }
    for pair in times.windows(2).skip(1) {
        let gap = pair[1] - pair[0];
        assert!(gap >= ms(750) && gap <= ms(1000), "{gap:?}");
    }
    // The detection timer does not run while AdminDown.
    assert_eq!(s.state(), State::AdminDown);
}

#[test]
fn admin_down_from_down_has_no_event_and_leaving_it_gives_down() {
    let t0 = Instant::now();
    let mut s = session_in(State::Down, t0);
    s.set_admin_down(t0, true);
    let out = s.poll(t0);
    assert_eq!(
        changes(&out),
        vec![(State::Down, State::AdminDown, Diag::AdministrativelyDown)]
    );
    assert!(events(&out).is_empty());
    s.set_admin_down(t0 + ms(1), false);
    let out = s.poll(t0 + ms(1));
    assert_eq!(
        changes(&out),
        vec![(State::AdminDown, State::Down, Diag::NoDiagnostic)]
    );
    // And from Down the handshake runs again.
    s.receive(t0 + ms(2), &from_peer(State::Init, LOCAL))
        .expect("Init");
    assert_eq!(s.state(), State::Up);
}

#[test]
fn diag_stays_through_init_and_clears_on_up() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    s.receive(t0, &from_peer(State::Down, LOCAL)).expect("Down");
    assert_eq!(s.local_diag(), Diag::NeighborSignaledSessionDown);
    s.receive(t0, &from_peer(State::Down, LOCAL)).expect("Down");
    assert_eq!(s.state(), State::Init);
    assert_eq!(s.local_diag(), Diag::NeighborSignaledSessionDown);
    s.receive(t0, &from_peer(State::Up, LOCAL)).expect("Up");
    assert_eq!(s.state(), State::Up);
    assert_eq!(s.local_diag(), Diag::NoDiagnostic);
}

#[test]
fn a_poll_is_answered_at_once_with_final_in_every_state() {
    for state in [State::AdminDown, State::Down, State::Init, State::Up] {
        let t0 = Instant::now();
        let mut s = session_in(state, t0);
        let scheduled = s.poll_at().expect("sending");
        let t1 = t0 + ms(1);
        assert!(
            scheduled > t1,
            "{state}: the periodic packet is not due yet"
        );
        // A peer state that leaves ours as it is.
        let theirs = match state {
            State::Down => State::AdminDown,
            State::Init => State::Down,
            _ => State::Up,
        };
        let poll = Control {
            poll: true,
            ..from_peer(theirs, LOCAL)
        };
        let _ = s.receive(t1, &poll);
        assert_eq!(s.poll_at(), Some(t1), "{state}");
        let answer = sends(&s.poll(t1));
        assert_eq!(answer.len(), 1, "{state}");
        assert!(answer[0].final_ && !answer[0].poll, "{state}");
        assert_eq!(answer[0].your_discriminator, REMOTE, "{state}");
        // The periodic schedule is untouched by the Final.
        assert_eq!(s.poll_at(), Some(scheduled), "{state}");
    }
}

#[test]
fn a_packet_for_another_discriminator_is_discarded() {
    let t0 = Instant::now();
    let mut s = session_in(State::Down, t0);
    assert_eq!(
        s.receive(t0, &from_peer(State::Init, LOCAL + 1)),
        Err(Discard::WrongDiscriminator(LOCAL + 1))
    );
    assert_eq!(s.state(), State::Down);
    assert_eq!(s.remote_discriminator(), 0);
    assert_eq!(s.counters().discarded, 1);
}

#[test]
fn a_malformed_packet_built_by_hand_is_discarded() {
    let t0 = Instant::now();
    let mut s = session_in(State::Down, t0);
    let bad = Control {
        detect_mult: 0,
        ..from_peer(State::Init, LOCAL)
    };
    assert_eq!(
        s.receive(t0, &bad),
        Err(Discard::Malformed(PacketError::ZeroDetectMult))
    );
    assert_eq!(s.state(), State::Down);
}

#[test]
fn nothing_periodic_while_the_peer_requires_no_packets() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    let silent = Control {
        required_min_rx: bfd::Interval::ZERO,
        ..from_peer(State::Up, LOCAL)
    };
    s.receive(t0, &silent).expect("Up");
    assert!(sends(&s.poll(t0)).is_empty());
    // Only the detection timer is left; when it fires we go Down, and still
    // send nothing.
    let deadline = t0 + s.detection_time();
    assert_eq!(s.poll_at(), Some(deadline));
    let out = s.poll(deadline);
    assert!(sends(&out).is_empty());
    assert_eq!(s.state(), State::Down);
    assert_eq!(s.poll_at(), None);
}

#[test]
fn periodic_packets_stop_while_demand_mode_is_active_on_the_peer() {
    let t0 = Instant::now();
    let mut s = session_in(State::Up, t0);
    // Let the Poll Sequence of coming Up end first.
    let final_ = Control {
        final_: true,
        ..from_peer(State::Up, LOCAL)
    };
    s.receive(t0, &final_).expect("Final");
    let demand = Control {
        demand: true,
        ..from_peer(State::Up, LOCAL)
    };
    s.receive(t0, &demand).expect("Up, Demand");
    s.poll(t0);
    // Only the detection timer is left, and it still runs (Demand mode is
    // active on the peer, not here).
    assert_eq!(s.poll_at(), Some(t0 + s.detection_time()));
    // Back out of Demand mode: periodic packets resume.
    s.receive(t0 + ms(10), &from_peer(State::Up, LOCAL))
        .expect("Up");
    assert!(s.poll_at() < Some(t0 + s.detection_time()));
}

#[test]
fn configurations_that_cannot_work_are_refused() {
    let now = Instant::now();
    let good = Config::default();
    let cases = [
        (
            Config {
                detect_mult: 0,
                ..good
            },
            ConfigError::ZeroDetectMult,
        ),
        (
            Config {
                desired_min_tx: Duration::from_nanos(999),
                ..good
            },
            ConfigError::ZeroDesiredMinTx,
        ),
        (
            Config {
                required_min_rx: Duration::ZERO,
                ..good
            },
            ConfigError::ZeroRequiredMinRx,
        ),
        (
            Config {
                desired_min_tx: Duration::from_secs(5000),
                ..good
            },
            ConfigError::IntervalTooLong(Duration::from_secs(5000)),
        ),
    ];
    for (config, error) in cases {
        assert_eq!(Session::new(now, config, LOCAL, 0).err(), Some(error));
        let mut s = Session::new(now, good, LOCAL, 0).expect("good");
        assert_eq!(s.set_config(now, config), Err(error));
        assert_eq!(s.config(), &good);
    }
    assert_eq!(
        Session::new(now, good, 0, 0).err(),
        Some(ConfigError::ZeroDiscriminator)
    );
}

#[test]
fn the_first_packet_goes_at_once_and_says_down() {
    let t0 = Instant::now();
    let mut s = Session::new(t0, Config::default(), LOCAL, 1).expect("config");
    assert_eq!(s.poll_at(), Some(t0));
    let first = sends(&s.poll(t0));
    assert_eq!(first.len(), 1);
    let p = first[0];
    assert_eq!(
        (p.state, p.diag, p.poll, p.final_),
        (State::Down, Diag::NoDiagnostic, false, false)
    );
    assert_eq!((p.my_discriminator, p.your_discriminator), (LOCAL, 0));
    assert_eq!(p.detect_mult, 3);
    // §6.8.3: not Up, so Desired Min TX is at least one second; Required
    // Min RX is as configured.
    assert_eq!(p.desired_min_tx.as_micros(), 1_000_000);
    assert_eq!(p.required_min_rx.as_micros(), 300_000);
    assert_eq!(p.required_min_echo_rx.as_micros(), 0);
    assert_eq!(Control::decode(&p.encode()), Ok(p));
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// FRR 8.4's packets (see tests/packet.rs) fed to our session in the place
/// of the FRR peer that sent them: same configuration (100 ms / 200 ms / 5),
/// same discriminator. Our answer to FRR's Poll is FRR's own Final byte for
/// byte, but for Required Min Echo RX (we loop back no Echo packets).
#[test]
fn our_session_answers_frr_as_frr_did() {
    const B: u32 = 3_533_179_766;
    let frr = |h: &str| Control::decode(&hex(h)).expect("FRR's packets decode");
    let t0 = Instant::now();
    let config = Config {
        desired_min_tx: ms(100),
        required_min_rx: ms(200),
        detect_mult: 5,
    };
    let mut s = Session::new(t0, config, B, 3).expect("config");
    s.poll(t0);
    s.receive(
        t0 + ms(1),
        &frr("2040031830a6409500000000000f4240000f42400000c350"),
    )
    .expect("FRR Down");
    assert_eq!(s.state(), State::Init);
    s.receive(
        t0 + ms(2),
        &frr("20e0031830a64095d2980b76000493e0000493e00000c350"),
    )
    .expect("FRR Up, Poll");
    assert_eq!(s.state(), State::Up);
    let out = s.poll(t0 + ms(2));
    assert_eq!(events(&out), vec![Event::Up]);
    let finals: Vec<_> = sends(&out).into_iter().filter(|c| c.final_).collect();
    assert_eq!(finals.len(), 1);
    let ours = finals[0].encode();
    let theirs = hex("20d00518d2980b7630a64095000186a000030d400000c350");
    assert_eq!(ours[..20], theirs[..20]);
    assert_eq!(ours[20..], [0, 0, 0, 0]);
    // FRR's timers: it sends at max(300, our 200), we at max(100, its 300);
    // we wait 3 × max(200, 300).
    assert_eq!(s.negotiated_tx(), ms(300));
    assert_eq!(s.detection_time(), ms(900));
    // FRR's `shutdown`: AdminDown, which is not a failure.
    s.receive(
        t0 + ms(50),
        &frr("2000031830a64095d2980b76000493e0000493e00000c350"),
    )
    .expect("FRR AdminDown");
    let out = s.poll(t0 + ms(50));
    assert_eq!(events(&out), vec![Event::PeerAdminDown]);
    assert_eq!(s.local_diag(), Diag::NeighborSignaledSessionDown);
}
