//! Session cores wired to each other in memory: what one sends is encoded,
//! decoded as the other would, and fed to it; time moves only when the test
//! moves it.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::session::{
    negotiate, resolve_collision, Down, Event, Keep, Output, Session, SessionConfig, State,
    MAX_HOLD_DEFERRALS,
};
use bgp::wire::iana::{CeaseSubcode, FsmSubcode, OpenSubcode};
use bgp::wire::{
    AddPathFamily, AddPathMode, AsPath, AttrValue, Capability, Cause, Context, Family, Message,
    Nlri, Notification, Open, Origin, Update,
};

/// Two sessions and the wire between them.
struct Pair {
    a: Session,
    b: Session,
    now: Instant,
    /// Messages in flight, to b and to a.
    to_b: Vec<Message>,
    to_a: Vec<Message>,
    /// Whether messages get through (false: the link was cut silently).
    link: bool,
    connected: bool,
    /// Everything each side reported, for the test to look at.
    seen_a: Vec<Output>,
    seen_b: Vec<Output>,
}

fn config(local_as: u32, id: u8, peer_as: u32) -> SessionConfig {
    let mut c = SessionConfig::new(local_as, Ipv4Addr::new(10, 255, 0, id), peer_as);
    c.hold_time = 9;
    c.connect_retry = Duration::from_secs(5);
    c
}

/// What the encoder and decoder of each side use.
fn ctx_of(s: &Session, tx: bool) -> Context {
    match s.negotiated() {
        Some(n) if tx => n.tx(),
        Some(n) => n.rx(),
        None => Context::modern(),
    }
}

impl Pair {
    fn new(a: SessionConfig, b: SessionConfig) -> Self {
        Pair {
            a: Session::new(a),
            b: Session::new(b),
            now: Instant::now(),
            to_b: Vec::new(),
            to_a: Vec::new(),
            link: true,
            connected: false,
            seen_a: Vec::new(),
            seen_b: Vec::new(),
        }
    }

    /// Carry out one side's outputs.
    fn carry(&mut self, from_a: bool, outputs: Vec<Output>) {
        for o in outputs {
            match &o {
                Output::Connect => {
                    // The other side accepts when it is listening.
                    let other = if from_a { &self.b } else { &self.a };
                    if self.link && matches!(other.state(), State::Active | State::Connect) {
                        self.connected = true;
                        let now = self.now;
                        let (me, peer) = if from_a {
                            (&mut self.a, &mut self.b)
                        } else {
                            (&mut self.b, &mut self.a)
                        };
                        let mine = me.handle(now, Event::Connected);
                        let theirs = peer.handle(now, Event::Accepted);
                        self.carry(from_a, mine);
                        self.carry(!from_a, theirs);
                    } else {
                        let now = self.now;
                        let me = if from_a { &mut self.a } else { &mut self.b };
                        let out = me.handle(now, Event::ConnectFailed);
                        self.carry(from_a, out);
                    }
                }
                Output::Send(m) => {
                    let (me, peer) = if from_a {
                        (&self.a, &self.b)
                    } else {
                        (&self.b, &self.a)
                    };
                    let bytes = m.to_bytes(&ctx_of(me, true)).expect("encodes");
                    let back = Message::decode(&bytes, &ctx_of(peer, false)).expect("decodes");
                    if self.link && self.connected {
                        if from_a {
                            self.to_b.push(back)
                        } else {
                            self.to_a.push(back)
                        }
                    }
                }
                Output::Close if self.connected => {
                    self.connected = false;
                    // The other side gets what was sent before the close
                    // (a NOTIFICATION, say), then sees the connection go.
                    let now = self.now;
                    let queued = std::mem::take(if from_a {
                        &mut self.to_b
                    } else {
                        &mut self.to_a
                    });
                    let peer = if from_a { &mut self.b } else { &mut self.a };
                    let mut outs = Vec::new();
                    for m in queued {
                        outs.extend(peer.handle(now, Event::Message(m)));
                    }
                    outs.extend(peer.handle(now, Event::Closed));
                    self.carry(!from_a, outs);
                }
                _ => {}
            }
            if from_a {
                self.seen_a.push(o)
            } else {
                self.seen_b.push(o)
            }
        }
    }

    /// Deliver what is in flight until nothing moves.
    fn settle(&mut self) {
        for _ in 0..100 {
            if self.to_a.is_empty() && self.to_b.is_empty() {
                return;
            }
            let now = self.now;
            for m in std::mem::take(&mut self.to_b) {
                let out = self.b.handle(now, Event::Message(m));
                self.carry(false, out);
            }
            for m in std::mem::take(&mut self.to_a) {
                let out = self.a.handle(now, Event::Message(m));
                self.carry(true, out);
            }
        }
        panic!("messages kept flowing");
    }

    fn event(&mut self, to_a: bool, e: Event) {
        let now = self.now;
        let out = if to_a {
            self.a.handle(now, e)
        } else {
            self.b.handle(now, e)
        };
        self.carry(to_a, out);
        self.settle();
    }

    /// Move time forward in one-second steps, firing timers and delivering.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now += Duration::from_secs(1).min(end - self.now);
            let now = self.now;
            let out = self.a.tick(now);
            self.carry(true, out);
            let out = self.b.tick(now);
            self.carry(false, out);
            self.settle();
        }
    }

    fn start_both(&mut self) {
        self.event(false, Event::Start);
        self.event(true, Event::Start);
    }
}

/// a (in AS `a_as`, expecting its peer in `a_expects`) connects to b (in
/// `b_as`, expecting `b_expects`), which listens; both are started.
fn started(a_as: u32, a_expects: u32, b_as: u32, b_expects: u32) -> Pair {
    let mut b = config(b_as, 2, b_expects);
    b.passive = true;
    let mut p = Pair::new(config(a_as, 1, a_expects), b);
    p.start_both();
    p
}

fn downs(seen: &[Output]) -> Vec<Down> {
    seen.iter()
        .filter_map(|o| match o {
            Output::Down(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn cause_sent(seen: &[Output]) -> Option<Cause> {
    downs(seen).into_iter().find_map(|d| match d {
        Down::Sent(n) => Some(n.cause),
        _ => None,
    })
}

#[test]
fn sessions_establish_with_one_connecting_and_one_listening() {
    let p = started(64512, 64512, 64512, 64512);
    assert_eq!(
        (p.a.state(), p.b.state()),
        (State::Established, State::Established)
    );
    let established = p.seen_a.iter().find_map(|o| match o {
        Output::Established(n) => Some(n.clone()),
        _ => None,
    });
    let n = established.expect("a reported Established");
    assert_eq!(n.peer_id, Ipv4Addr::new(10, 255, 0, 2));
    assert_eq!((n.hold_time, n.keepalive), (9, 3));
    assert_eq!(n.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    assert!(n.four_octet_as && n.route_refresh && n.extended_message);
}

#[test]
fn states_follow_rfc_4271_in_order() {
    let p = started(64512, 64512, 64512, 64512);
    let path: Vec<State> = p
        .seen_a
        .iter()
        .filter_map(|o| match o {
            Output::State { to, .. } => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(
        path,
        vec![
            State::Connect,
            State::OpenSent,
            State::OpenConfirm,
            State::Established
        ]
    );
}

#[test]
fn updates_flow_once_established_and_keepalives_hold_the_session() {
    let mut p = started(64512, 65001, 65001, 64512);
    let update = Update::new(
        vec![
            AttrValue::Origin(Origin::Igp),
            AttrValue::AsPath(AsPath::sequence([64512])),
            AttrValue::NextHop(Ipv4Addr::new(172, 18, 0, 2)),
        ],
        vec![Nlri::new("10.244.1.0/24".parse().expect("prefix"))],
    );
    p.to_b.push(Message::Update(update.clone()));
    p.settle();
    assert!(p
        .seen_b
        .iter()
        .any(|o| matches!(o, Output::Update(u) if *u == update)));

    // A minute of keepalives every 2.25 to 3 s keeps a 9 s hold time satisfied.
    p.advance(Duration::from_secs(60));
    assert_eq!(
        (p.a.state(), p.b.state()),
        (State::Established, State::Established)
    );
    let keepalives = p
        .seen_a
        .iter()
        .filter(|o| matches!(o, Output::Send(Message::Keepalive)))
        .count();
    assert!(
        (20..=27).contains(&keepalives),
        "{keepalives} keepalives in 60 s"
    );
}

#[test]
fn a_silent_peer_is_dropped_when_the_hold_timer_expires() {
    let mut p = started(64512, 64512, 64512, 64512);
    p.link = false;
    p.advance(Duration::from_secs(10));
    assert_eq!(cause_sent(&p.seen_a), Some(Cause::HoldTimerExpired));
    assert_ne!(p.a.state(), State::Established);
}

impl Pair {
    /// Run a's clock for up to `limit` in one-second steps, a driver that
    /// finds the peer's input waiting each time a's hold timer runs out,
    /// and the peer's keepalive handed in every `keepalive_every`; b is
    /// silent otherwise. Returns how often the driver said input waits and
    /// how long a stayed up.
    fn behind(&mut self, limit: Duration, keepalive_every: Option<u64>) -> (u32, Duration) {
        self.link = false;
        let (start, mut said) = (self.now, 0);
        while self.a.state() == State::Established && self.now - start < limit {
            self.now += Duration::from_secs(1);
            let now = self.now;
            let secs = (now - start).as_secs();
            if keepalive_every.is_some_and(|k| secs.is_multiple_of(k)) {
                let out = self.a.handle(now, Event::Message(Message::Keepalive));
                self.carry(true, out);
            }
            if self.a.hold_due(now) {
                said += 1;
                let out = self.a.handle(now, Event::InputWaiting);
                self.carry(true, out);
            }
            let out = self.a.tick(now);
            self.carry(true, out);
        }
        (said, self.now - start)
    }
}

/// A node too busy to read its sockets in time is not the peer's fault:
/// while the driver says the peer's bytes wait unread, the hold timer waits
/// for them — a few hold times at most without a whole message.
#[test]
fn a_hold_timer_waits_for_input_still_unread_but_not_for_ever() {
    let mut p = started(64512, 64512, 64512, 64512);
    let (said, up) = p.behind(Duration::from_secs(120), None);
    assert_eq!(said, u32::from(MAX_HOLD_DEFERRALS) + 1);
    assert_eq!(
        up,
        Duration::from_secs(9 * (1 + u64::from(MAX_HOLD_DEFERRALS)))
    );
    assert_eq!(cause_sent(&p.seen_a), Some(Cause::HoldTimerExpired));
}

#[test]
fn a_slow_reader_keeps_a_session_whose_messages_do_come_in() {
    let mut p = started(64512, 64512, 64512, 64512);
    // Keepalives handed in 20 s apart, each after the hold time of 9 s.
    let (said, up) = p.behind(Duration::from_secs(120), Some(20));
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(up, Duration::from_secs(120));
    assert!(said >= 6, "{said}");
    assert_eq!(cause_sent(&p.seen_a), None);
}

#[test]
fn a_wrong_peer_as_is_refused_with_bad_peer_as() {
    // a expects AS 65099 but b is 65001.
    let p = started(64512, 65099, 65001, 64512);
    assert_eq!(
        cause_sent(&p.seen_a),
        Some(Cause::Open(OpenSubcode::BadPeerAs))
    );
    assert!(downs(&p.seen_b)
        .iter()
        .any(|d| matches!(d, Down::Received(n) if n.cause == Cause::Open(OpenSubcode::BadPeerAs))));
    assert_ne!(p.b.state(), State::Established);
}

#[test]
fn stop_sends_the_shutdown_message_and_stays_down() {
    let mut p = started(64512, 64512, 64512, 64512);
    p.event(
        true,
        Event::Stop {
            message: "node drained".into(),
        },
    );
    let got = downs(&p.seen_b).into_iter().find_map(|d| match d {
        Down::Received(n) => Some(n),
        _ => None,
    });
    let n = got.expect("b heard a NOTIFICATION");
    assert_eq!(n.cause, Cause::Cease(CeaseSubcode::AdministrativeShutdown));
    assert_eq!(n.shutdown_message(), Some("node drained"));
    // b, still enabled, goes back to listening; a, stopped, never reconnects.
    p.advance(Duration::from_secs(300));
    assert_eq!(p.a.state(), State::Idle);
    assert_eq!(p.b.state(), State::Active);
}

#[test]
fn a_dropped_session_comes_back_by_itself() {
    let mut p = started(64512, 64512, 64512, 64512);
    p.link = false;
    p.advance(Duration::from_secs(10));
    p.link = true;
    p.advance(Duration::from_secs(30));
    assert_eq!(
        (p.a.state(), p.b.state()),
        (State::Established, State::Established)
    );
}

#[test]
fn an_update_before_established_is_an_fsm_error() {
    let mut s = Session::new(config(64512, 1, 64512));
    let now = Instant::now();
    s.handle(now, Event::Start);
    s.handle(now, Event::Connected);
    assert_eq!(s.state(), State::OpenSent);
    let out = s.handle(now, Event::Message(Message::Update(Update::default())));
    assert!(out.iter().any(|o| matches!(o, Output::Send(Message::Notification(n)) if n.cause == Cause::Fsm(FsmSubcode::UnexpectedMessageInOpenSent))));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn the_open_wait_is_four_minutes_then_hold_timer_expired() {
    let mut s = Session::new(config(64512, 1, 64512));
    let now = Instant::now();
    s.handle(now, Event::Start);
    s.handle(now, Event::Connected);
    assert_eq!(s.poll_at(), Some(now + Duration::from_secs(240)));
    assert!(s.tick(now + Duration::from_secs(239)).is_empty());
    let out = s.tick(now + Duration::from_secs(240));
    assert!(out.iter().any(|o| matches!(o, Output::Send(Message::Notification(n)) if n.cause == Cause::HoldTimerExpired)));
}

// Negotiation

fn their_open(asn: u32, id: [u8; 4], hold: u16, caps: Vec<Capability>) -> Open {
    let mut o = Open::new(asn, hold, Ipv4Addr::from(id), caps);
    o.params.retain(|p| !p.is_empty());
    o
}

#[test]
fn hold_time_is_the_smaller_and_zero_means_none() {
    let c = config(64512, 1, 64512);
    let n = negotiate(&c, &their_open(64512, [1, 1, 1, 1], 30, vec![])).expect("accepted");
    assert_eq!((n.hold_time, n.keepalive), (9, 3));
    let n = negotiate(&c, &their_open(64512, [1, 1, 1, 1], 0, vec![])).expect("accepted");
    assert_eq!((n.hold_time, n.keepalive), (0, 0));
}

#[test]
fn a_peer_without_multiprotocol_speaks_ipv4_unicast_only() {
    let c = config(64512, 1, 64512);
    let n = negotiate(&c, &their_open(64512, [1, 1, 1, 1], 90, vec![])).expect("accepted");
    assert_eq!(n.families, vec![Family::IPV4_UNICAST]);
}

#[test]
fn no_common_family_is_an_unsupported_capability() {
    let mut c = config(64512, 1, 64512);
    c.families = vec![Family::IPV6_UNICAST];
    let err = negotiate(
        &c,
        &their_open(
            64512,
            [1, 1, 1, 1],
            90,
            vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
        ),
    )
    .expect_err("refused");
    assert_eq!(err.cause, Cause::Open(OpenSubcode::UnsupportedCapability));
    assert_eq!(&err.data[..], &[1, 4, 0, 2, 0, 1]);
}

#[test]
fn as_trans_without_the_four_octet_capability_is_a_bad_peer_as() {
    let c = config(64512, 1, 23456);
    let mut open = their_open(23456, [1, 1, 1, 1], 90, vec![]);
    open.params
        .retain(|p| !p.iter().any(|c| matches!(c, Capability::FourOctetAs(_))));
    let err = negotiate(&c, &open).expect_err("refused");
    assert_eq!(err.cause, Cause::Open(OpenSubcode::BadPeerAs));
}

#[test]
fn a_four_octet_peer_as_comes_from_the_capability() {
    let c = config(64512, 1, 4_200_000_001);
    let n = negotiate(&c, &their_open(4_200_000_001, [1, 1, 1, 1], 90, vec![])).expect("accepted");
    assert_eq!(n.peer_as, 4_200_000_001);
}

#[test]
fn our_own_identifier_within_the_as_is_refused() {
    let c = config(64512, 1, 64512);
    let err = negotiate(&c, &their_open(64512, [10, 255, 0, 1], 90, vec![])).expect_err("refused");
    assert_eq!(err.cause, Cause::Open(OpenSubcode::BadBgpIdentifier));
    // Across ASes the same identifier is allowed (RFC 6286 §2.3).
    let c = config(64512, 1, 65001);
    assert!(negotiate(&c, &their_open(65001, [10, 255, 0, 1], 90, vec![])).is_ok());
}

#[test]
fn add_path_directions_follow_both_offers() {
    let mut c = config(64512, 1, 64512);
    c.add_path = vec![
        AddPathFamily {
            family: Family::IPV4_UNICAST,
            mode: AddPathMode::Both,
        },
        AddPathFamily {
            family: Family::IPV6_UNICAST,
            mode: AddPathMode::Receive,
        },
    ];
    let theirs = vec![Capability::AddPath(vec![
        AddPathFamily {
            family: Family::IPV4_UNICAST,
            mode: AddPathMode::Receive,
        },
        AddPathFamily {
            family: Family::IPV6_UNICAST,
            mode: AddPathMode::Both,
        },
    ])];
    let n = negotiate(&c, &their_open(64512, [1, 1, 1, 1], 90, theirs)).expect("accepted");
    assert!(n.add_path_tx.ipv4_unicast && !n.add_path_rx.ipv4_unicast);
    assert!(n.add_path_rx.ipv6_unicast && !n.add_path_tx.ipv6_unicast);
}

#[test]
fn the_higher_identifier_keeps_its_own_connection() {
    let low = Ipv4Addr::new(10, 0, 0, 1);
    let high = Ipv4Addr::new(10, 0, 0, 2);
    assert_eq!(resolve_collision(high, 64512, low, 64512), Keep::Ours);
    assert_eq!(resolve_collision(low, 64512, high, 64512), Keep::Theirs);
    // Equal identifiers between ASes: the higher AS keeps its connection.
    assert_eq!(resolve_collision(low, 65002, low, 65001), Keep::Ours);
}

#[test]
fn a_collision_cease_from_the_peer_restarts_at_once_but_only_once() {
    let collision = || {
        Event::Message(Message::Notification(Notification::new(
            Cause::Cease(CeaseSubcode::ConnectionCollisionResolution),
            bytes::Bytes::new(),
        )))
    };
    let open = || {
        Event::Message(Message::Open(their_open(
            64512,
            [10, 0, 0, 2],
            90,
            Vec::new(),
        )))
    };
    let mut s = Session::new(config(64512, 1, 64512));
    let now = Instant::now();
    s.handle(now, Event::Start);
    s.handle(now, Event::Connected);
    s.handle(now, open());
    s.handle(now, Event::Message(Message::Keepalive));
    assert_eq!(s.state(), State::Established);
    // The peer kept the other connection, which we had let go: no
    // back-off, the next attempt is due now.
    s.handle(now, collision());
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.poll_at(), Some(now));
    s.tick(now);
    assert_eq!(s.state(), State::Connect);
    // A second one soon after is a peer refusing us: the back-off.
    let later = now + Duration::from_secs(1);
    s.handle(later, Event::Connected);
    s.handle(later, open());
    s.handle(later, collision());
    assert_eq!(s.state(), State::Idle);
    assert!(s
        .poll_at()
        .is_some_and(|t| t >= later + Duration::from_secs(5)));
}
