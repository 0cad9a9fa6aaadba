//! One BGP session's finite state machine (RFC 4271 §8), sans-IO.
//!
//! The driver feeds in [`Event`]s with the current time and carries out the
//! [`Output`]s that come back: open or close the connection, send a message,
//! hand an UPDATE to the RIB. Timers are deadlines the core keeps; the driver
//! asks [`Session::poll_at`] when to call [`Session::tick`] next.

mod open;

use std::time::{Duration, Instant};

pub use open::{negotiate, resolve_collision, Keep, Negotiated, PeerRestart, SessionConfig};

use crate::wire::iana::{CeaseSubcode, FsmSubcode};
use crate::wire::{Cause, DecodeError, Message, Notification, RouteRefresh, Update};

/// The states of RFC 4271 §8.2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// Something that happened to the session.
#[derive(Debug)]
pub enum Event {
    /// ManualStart: begin connecting (or waiting, if passive).
    Start,
    /// ManualStop: close with Cease / Administrative Shutdown and this
    /// RFC 9003 message, and stay down until started again.
    Stop { message: String },
    /// As `Stop`, but we are going away to come back (a daemon restart), so
    /// a peer that helps with graceful restart keeps our routes meanwhile:
    /// with the N-bit on both sides a Cease never wrapped in a Hard Reset
    /// (RFC 8538 §4); with graceful restart alone the connection closes
    /// with no NOTIFICATION, which would end it (RFC 4724 §4.2); without
    /// graceful restart, a Cease.
    StopForRestart { message: String },
    /// Our connection attempt succeeded.
    Connected,
    /// We accepted the peer's connection.
    Accepted,
    /// Our connection attempt failed.
    ConnectFailed,
    /// The connection closed under us.
    Closed,
    /// A message arrived.
    Message(Message),
    /// A message could not be decoded.
    DecodeError(DecodeError),
    /// This connection lost a collision (RFC 4271 §6.8) and must go.
    CollisionLost,
    /// The speaker ends the session with this NOTIFICATION (too many
    /// prefixes, an operator's reset); it starts again after the back-off.
    Fail(Notification),
    /// The peer's bytes wait on our side, not yet read or not yet handed
    /// in: the peer is alive and we are the ones behind. A hold timer that
    /// has run out waits one more hold time for them, as long as they keep
    /// coming ([`MAX_HOLD_DEFERRALS`]); an overloaded node so catches up
    /// instead of tearing down sessions that are fine.
    InputWaiting,
}

/// Why the session left Established, or failed to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    /// We sent this NOTIFICATION.
    Sent(Notification),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// The connection closed without a NOTIFICATION.
    Closed,
    /// The connection could not be opened.
    ConnectFailed,
}

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    /// Open a TCP connection to the peer.
    Connect,
    /// Send this message on the connection.
    Send(Message),
    /// Close the connection, once what was sent is flushed.
    Close,
    /// The state changed.
    State { from: State, to: State },
    /// The session is up with these parameters.
    Established(Box<Negotiated>),
    /// The session went down (or the attempt failed).
    Down(Down),
    /// An UPDATE for the RIB.
    Update(Update),
    /// A ROUTE-REFRESH from the peer.
    RouteRefresh(RouteRefresh),
}

/// The Hold Timer while waiting for the peer's OPEN (RFC 4271 §8.2.2: 4 minutes).
const OPEN_HOLD: Duration = Duration::from_secs(240);
/// The first and the longest wait before starting again after a failure.
const IDLE_HOLD_FIRST: Duration = Duration::from_secs(5);
const IDLE_HOLD_MAX: Duration = Duration::from_secs(120);
/// How many hold times in a row [`Event::InputWaiting`] may add before a
/// KEEPALIVE or UPDATE is handed in: a peer trickling bytes that never make
/// a message does not keep a session up for long.
pub const MAX_HOLD_DEFERRALS: u8 = 3;

/// One session with one peer.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    negotiated: Option<Negotiated>,
    connect_retry_at: Option<Instant>,
    hold_at: Option<Instant>,
    /// Hold times added by [`Event::InputWaiting`] since the last message.
    hold_deferrals: u8,
    keepalive_at: Option<Instant>,
    /// Automatic restart after a failure, with a growing back-off.
    restart_at: Option<Instant>,
    idle_hold: Duration,
    /// When a lost collision last restarted the session without back-off.
    collision_restart: Option<Instant>,
    /// Started by the operator, so failures restart it.
    enabled: bool,
    /// Stopped to restart: no Hard Reset on the way out.
    soft_stop: bool,
    rng: u64,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        // Seeded from the two identities, so two sessions do not jitter in
        // step and tests are reproducible.
        let seed = (u64::from(u32::from(config.router_id)) << 32)
            ^ u64::from(config.peer_as)
            ^ 0x9e37_79b9_7f4a_7c15;
        Session {
            config,
            state: State::Idle,
            negotiated: None,
            connect_retry_at: None,
            hold_at: None,
            hold_deferrals: 0,
            keepalive_at: None,
            restart_at: None,
            idle_hold: IDLE_HOLD_FIRST,
            collision_restart: None,
            enabled: false,
            soft_stop: false,
            rng: seed | 1,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Started, and not stopped since: failures bring it back by themselves.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// What the OPENs agreed on, once the peer's OPEN was accepted.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The hold timer has run out: the next [`Session::tick`] ends the
    /// session unless [`Event::InputWaiting`] comes first.
    pub fn hold_due(&self, now: Instant) -> bool {
        self.hold_at.is_some_and(|t| t <= now)
    }

    /// The next moment [`Session::tick`] has work to do.
    pub fn poll_at(&self) -> Option<Instant> {
        [
            self.connect_retry_at,
            self.hold_at,
            self.keepalive_at,
            self.restart_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Wait for the peer to connect (`true`) or connect to it, from the
    /// next start on.
    pub fn set_passive(&mut self, passive: bool) {
        self.config.passive = passive;
    }

    /// Set or clear the R-bit our next OPENs carry (RFC 4724 §3): set
    /// while we restart with forwarding state kept, until routes are selected.
    pub fn set_restarting(&mut self, restarting: bool) {
        self.config.restarting = restarting;
    }

    /// Handle an event.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Output> {
        let mut out = Vec::new();
        let soft_stop = matches!(event, Event::StopForRestart { .. });
        match event {
            Event::Start => self.start(now, &mut out),
            Event::Stop { message } | Event::StopForRestart { message } => {
                self.soft_stop = soft_stop;
                self.enabled = false;
                self.restart_at = None;
                if soft_stop
                    && self.state == State::Established
                    && self.restart_without_notification()
                {
                    self.stop_timers();
                    out.push(Output::Close);
                    out.push(Output::Down(Down::Closed));
                    self.go(State::Idle, &mut out);
                } else if matches!(
                    self.state,
                    State::OpenSent | State::OpenConfirm | State::Established
                ) {
                    let n = Notification::shutdown(CeaseSubcode::AdministrativeShutdown, &message);
                    self.fail(now, Down::Sent(n), &mut out);
                } else if self.state != State::Idle {
                    out.push(Output::Close);
                    self.go(State::Idle, &mut out);
                }
            }
            // Waiting out the back-off, but the peer is already back: take
            // its connection rather than refuse it.
            Event::Accepted if self.state == State::Idle && self.enabled => {
                self.restart_at = None;
                out.push(Output::Send(Message::Open(self.config.open())));
                self.hold_at = Some(now + OPEN_HOLD);
                self.go(State::OpenSent, &mut out);
            }
            Event::Connected | Event::Accepted => match self.state {
                State::Connect | State::Active => {
                    self.connect_retry_at = None;
                    out.push(Output::Send(Message::Open(self.config.open())));
                    self.hold_at = Some(now + OPEN_HOLD);
                    self.go(State::OpenSent, &mut out);
                }
                // A connection we no longer want.
                _ => out.push(Output::Close),
            },
            Event::ConnectFailed if self.state == State::Connect => {
                self.connect_retry_at = Some(now + self.jitter(self.config.connect_retry));
                out.push(Output::Down(Down::ConnectFailed));
                self.go(State::Active, &mut out);
            }
            Event::ConnectFailed => {}
            Event::Closed => match self.state {
                State::Idle | State::Connect | State::Active => {}
                State::OpenSent => {
                    // RFC 4271 §8.2.2: back to Active, waiting to retry.
                    self.hold_at = None;
                    self.connect_retry_at = Some(now + self.jitter(self.config.connect_retry));
                    out.push(Output::Down(Down::Closed));
                    self.go(State::Active, &mut out);
                }
                State::OpenConfirm | State::Established => {
                    self.stop_timers();
                    out.push(Output::Down(Down::Closed));
                    self.go(State::Idle, &mut out);
                    self.schedule_restart(now);
                }
            },
            Event::Message(m) => self.message(now, m, &mut out),
            Event::DecodeError(e) => {
                if self.state != State::Idle {
                    self.fail(now, Down::Sent(e.notification()), &mut out);
                }
            }
            Event::CollisionLost => {
                let n = Notification::new(
                    Cause::Cease(CeaseSubcode::ConnectionCollisionResolution),
                    bytes::Bytes::new(),
                );
                self.fail(now, Down::Sent(n), &mut out);
            }
            Event::Fail(n) => {
                if self.state != State::Idle {
                    self.fail(now, Down::Sent(n), &mut out);
                }
            }
            Event::InputWaiting => {
                let hold = self.negotiated.as_ref().map_or(0, |n| n.hold_time);
                if self.hold_due(now) && hold > 0 && self.hold_deferrals < MAX_HOLD_DEFERRALS {
                    self.hold_deferrals += 1;
                    self.hold_at = Some(now + secs(hold));
                }
            }
        }
        out
    }

    /// Carry out what the deadlines that have passed call for.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.restart_at.is_some_and(|t| t <= now) {
            self.restart_at = None;
            self.start(now, &mut out);
        }
        if self.connect_retry_at.is_some_and(|t| t <= now) {
            self.connect_retry_at = Some(now + self.jitter(self.config.connect_retry));
            if matches!(self.state, State::Connect | State::Active) && !self.config.passive {
                self.go(State::Connect, &mut out);
                out.push(Output::Connect);
            }
        }
        if self.hold_at.is_some_and(|t| t <= now) {
            let n = Notification::new(Cause::HoldTimerExpired, bytes::Bytes::new());
            self.fail(now, Down::Sent(n), &mut out);
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            out.push(Output::Send(Message::Keepalive));
            self.arm_keepalive(now);
        }
        out
    }

    fn start(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.enabled = true;
        self.soft_stop = false;
        if self.state != State::Idle {
            return;
        }
        if self.config.passive {
            self.go(State::Active, out);
        } else {
            self.connect_retry_at = Some(now + self.jitter(self.config.connect_retry));
            self.go(State::Connect, out);
            out.push(Output::Connect);
        }
    }

    fn message(&mut self, now: Instant, m: Message, out: &mut Vec<Output>) {
        let unexpected = |state: State| {
            let sub = match state {
                State::OpenSent => FsmSubcode::UnexpectedMessageInOpenSent,
                State::OpenConfirm => FsmSubcode::UnexpectedMessageInOpenConfirm,
                State::Established => FsmSubcode::UnexpectedMessageInEstablished,
                _ => FsmSubcode::Unspecified,
            };
            Down::Sent(Notification::new(Cause::Fsm(sub), bytes::Bytes::new()))
        };
        match (self.state, m) {
            (_, Message::Notification(n)) => {
                if self.state != State::Idle {
                    // The peer kept our other connection of a collision,
                    // which this side had let go already (each side sees
                    // the two connections at different moments): nothing
                    // failed, so try again at once rather than after the
                    // back-off.
                    let collision =
                        n.cause == Cause::Cease(CeaseSubcode::ConnectionCollisionResolution);
                    self.stop_timers();
                    out.push(Output::Close);
                    out.push(Output::Down(Down::Received(n)));
                    self.go(State::Idle, out);
                    // Once: a peer that refuses every connection so gets
                    // the back-off.
                    let again = self
                        .collision_restart
                        .is_some_and(|t| now.saturating_duration_since(t) < IDLE_HOLD_FIRST);
                    if collision && self.enabled && !again {
                        self.collision_restart = Some(now);
                        self.restart_at = Some(now);
                    } else {
                        self.schedule_restart(now);
                    }
                }
            }
            (State::OpenSent, Message::Open(open)) => match negotiate(&self.config, &open) {
                Ok(neg) => {
                    out.push(Output::Send(Message::Keepalive));
                    self.hold_at = (neg.hold_time > 0).then(|| now + secs(neg.hold_time));
                    self.hold_deferrals = 0;
                    self.negotiated = Some(neg);
                    self.arm_keepalive(now);
                    self.go(State::OpenConfirm, out);
                }
                Err(n) => self.fail(now, Down::Sent(n), out),
            },
            (State::OpenConfirm, Message::Keepalive) => {
                self.restart_hold(now);
                self.idle_hold = IDLE_HOLD_FIRST;
                self.go(State::Established, out);
                if let Some(neg) = &self.negotiated {
                    out.push(Output::Established(Box::new(neg.clone())));
                }
            }
            (State::Established, Message::Keepalive) => self.restart_hold(now),
            (State::Established, Message::Update(u)) => {
                self.restart_hold(now);
                out.push(Output::Update(u));
            }
            (State::Established, Message::RouteRefresh(r)) => {
                self.restart_hold(now);
                out.push(Output::RouteRefresh(r));
            }
            (State::Idle | State::Connect | State::Active, _) => {}
            (state, _) => self.fail(now, unexpected(state), out),
        }
    }

    /// Send the NOTIFICATION (if any), close, and go Idle; restart later
    /// unless the operator stopped the session.
    fn fail(&mut self, now: Instant, down: Down, out: &mut Vec<Output>) {
        let down = match down {
            Down::Sent(n) if self.hard_reset_applies(&n) => Down::Sent(n.hard_reset()),
            other => other,
        };
        if let Down::Sent(n) = &down {
            out.push(Output::Send(Message::Notification(n.clone())));
        }
        self.stop_timers();
        out.push(Output::Close);
        out.push(Output::Down(down));
        self.go(State::Idle, out);
        self.schedule_restart(now);
    }

    /// Graceful restart is negotiated, but not for NOTIFICATIONs: a restart
    /// closes the connection without one, so the peer keeps our routes.
    fn restart_without_notification(&self) -> bool {
        let peer_restart = self
            .negotiated
            .as_ref()
            .and_then(|neg| neg.peer_restart.as_ref());
        match (self.config.graceful_restart, peer_restart) {
            (Some(_), Some(theirs)) => !(self.config.gr_notification && theirs.notification),
            _ => false,
        }
    }

    /// With graceful restart for NOTIFICATIONs on both sides (RFC 8538),
    /// the Ceases meant to flush the peer's routes go as a Hard Reset, or
    /// the peer would keep them as stale (§5 of that RFC).
    fn hard_reset_applies(&self, n: &Notification) -> bool {
        let both = !self.soft_stop
            && self.config.graceful_restart.is_some()
            && self.config.gr_notification
            && self
                .negotiated
                .as_ref()
                .and_then(|neg| neg.peer_restart.as_ref())
                .is_some_and(|r| r.notification);
        both && matches!(
            n.cause,
            Cause::Cease(
                CeaseSubcode::MaximumPrefixesReached
                    | CeaseSubcode::AdministrativeShutdown
                    | CeaseSubcode::PeerDeconfigured
                    | CeaseSubcode::AdministrativeReset
                    | CeaseSubcode::BfdDown
            )
        )
    }

    fn schedule_restart(&mut self, now: Instant) {
        if self.enabled {
            self.restart_at = Some(now + self.idle_hold);
            self.idle_hold = (self.idle_hold * 2).min(IDLE_HOLD_MAX);
        }
    }

    fn go(&mut self, to: State, out: &mut Vec<Output>) {
        if to == State::Idle {
            self.negotiated = None;
        }
        if self.state != to {
            out.push(Output::State {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    fn stop_timers(&mut self) {
        self.connect_retry_at = None;
        self.hold_at = None;
        self.keepalive_at = None;
    }

    fn restart_hold(&mut self, now: Instant) {
        self.hold_deferrals = 0;
        if let Some(neg) = &self.negotiated {
            self.hold_at = (neg.hold_time > 0).then(|| now + secs(neg.hold_time));
        }
    }

    fn arm_keepalive(&mut self, now: Instant) {
        let keepalive = self.negotiated.as_ref().map_or(0, |n| n.keepalive);
        self.keepalive_at = (keepalive > 0).then(|| now + self.jitter(secs(keepalive)));
    }

    /// 75% to 100% of `base`, as RFC 4271 §10 suggests for keepalive and
    /// connect-retry timers.
    fn jitter(&mut self, base: Duration) -> Duration {
        // xorshift64: enough to spread timers, no need for more.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let fraction = 0.75 + 0.25 * (self.rng % 1_000_001) as f64 / 1_000_000.0;
        base.mul_f64(fraction)
    }
}

fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}
