//! Helpers shared by the test files: packets from an imaginary peer, and a
//! simulated link between two sessions where time moves only when the
//! test moves it.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use bfd::{Config, Control, Diag, Event, Interval, Output, Session, State};

/// Our discriminator in single-session tests.
pub const LOCAL: u32 = 0x1111_1111;
/// The imaginary peer's discriminator.
pub const REMOTE: u32 = 0x2222_2222;

/// A packet from the peer in `state`, naming us as `your`, with FRR's
/// timers while not Up (1 s, 1 s, 3).
pub fn from_peer(state: State, your: u32) -> Control {
    Control {
        version: 1,
        diag: Diag::NoDiagnostic,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discriminator: REMOTE,
        your_discriminator: your,
        desired_min_tx: Interval::from_micros(1_000_000),
        required_min_rx: Interval::from_micros(1_000_000),
        required_min_echo_rx: Interval::ZERO,
    }
}

/// `ms` milliseconds.
pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The packets among `outputs`.
pub fn sends(outputs: &[Output]) -> Vec<Control> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(c) => Some(*c),
            _ => None,
        })
        .collect()
}

/// The events among `outputs`.
pub fn events(outputs: &[Output]) -> Vec<Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(*e),
            _ => None,
        })
        .collect()
}

/// The state changes among `outputs`, as (from, to, diag).
pub fn changes(outputs: &[Output]) -> Vec<(State, State, Diag)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::StateChanged { from, to, diag } => Some((*from, *to, *diag)),
            _ => None,
        })
        .collect()
}

/// Which end of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Something a session put out, and when.
#[derive(Debug, Clone)]
pub struct Record {
    pub at: Instant,
    pub side: Side,
    pub output: Output,
}

/// Two sessions and a link between them that delays every packet by
/// `delay`, or loses everything while `link_up` is false. Packets cross as
/// bytes, through the real encoder and decoder.
pub struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub a: Session,
    pub b: Session,
    pub delay: Duration,
    pub link_up: bool,
    in_flight: Vec<(Instant, Side, [u8; 24])>,
    /// Everything both sessions put out.
    pub log: Vec<Record>,
    /// Every packet delivered: when, to which side, what.
    pub delivered: Vec<(Instant, Side, Control)>,
}

pub const A_DISCR: u32 = 0xa0a0_0001;
pub const B_DISCR: u32 = 0xb0b0_0002;

impl Sim {
    /// Sessions with configurations `a` and `b`, both starting now, over a
    /// link of 1 ms.
    pub fn new(a: Config, b: Config, seed: u64) -> Sim {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            a: Session::new(start, a, A_DISCR, seed).expect("config a"),
            b: Session::new(start, b, B_DISCR, seed ^ 0xffff).expect("config b"),
            delay: ms(1),
            link_up: true,
            in_flight: Vec::new(),
            log: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// The session at `side`.
    pub fn session(&mut self, side: Side) -> &mut Session {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Runs until `until`, event by event.
    pub fn run_until(&mut self, until: Instant) {
        // Bounded: even at 1 ms intervals a test runs minutes, not hours.
        for _ in 0..10_000_000 {
            let next = [
                self.a.poll_at(),
                self.b.poll_at(),
                self.in_flight.iter().map(|f| f.0).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(next) if next <= until => self.step(next.max(self.now)),
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
        panic!("simulation did not reach its end");
    }

    /// Runs for `d` from now.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until `pred` holds or `limit` passes; the time it first held.
    pub fn run_until_true(
        &mut self,
        limit: Duration,
        pred: impl Fn(&Sim) -> bool,
    ) -> Option<Instant> {
        let end = self.now + limit;
        while self.now < end {
            if pred(self) {
                return Some(self.now);
            }
            let next = [
                self.a.poll_at(),
                self.b.poll_at(),
                self.in_flight.iter().map(|f| f.0).min(),
            ]
            .into_iter()
            .flatten()
            .min()?;
            if next > end {
                break;
            }
            self.step(next.max(self.now));
        }
        pred(self).then_some(self.now)
    }

    fn step(&mut self, now: Instant) {
        self.now = now;
        let (due, later): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|f| f.0 <= now);
        self.in_flight = later;
        for (_, to, bytes) in due {
            let packet = Control::decode(&bytes).expect("what a session sends decodes");
            self.delivered.push((now, to, packet));
            let _ = self.session(to).receive(now, &packet);
        }
        for side in [Side::A, Side::B] {
            if self.session(side).poll_at().is_some_and(|at| at <= now) {
                let outputs = self.session(side).poll(now);
                for output in outputs {
                    if let Output::Send(packet) = &output {
                        if self.link_up {
                            self.in_flight
                                .push((now + self.delay, side.other(), packet.encode()));
                        }
                    }
                    self.log.push(Record {
                        at: now,
                        side,
                        output,
                    });
                }
            }
        }
    }

    /// The packets `side` sent, with their times.
    pub fn sent(&self, side: Side) -> Vec<(Instant, Control)> {
        self.log
            .iter()
            .filter(|r| r.side == side)
            .filter_map(|r| match r.output {
                Output::Send(c) => Some((r.at, c)),
                _ => None,
            })
            .collect()
    }

    /// The events `side` reported, with their times.
    pub fn events(&self, side: Side) -> Vec<(Instant, Event)> {
        self.log
            .iter()
            .filter(|r| r.side == side)
            .filter_map(|r| match r.output {
                Output::Event(e) => Some((r.at, e)),
                _ => None,
            })
            .collect()
    }

    /// The state changes `side` reported, with their times.
    pub fn changes(&self, side: Side) -> Vec<(Instant, State, State, Diag)> {
        self.log
            .iter()
            .filter(|r| r.side == side)
            .filter_map(|r| match r.output {
                Output::StateChanged { from, to, diag } => Some((r.at, from, to, diag)),
                _ => None,
            })
            .collect()
    }

    /// When `side` last accepted a packet.
    pub fn last_delivered(&self, side: Side) -> Option<Instant> {
        self.delivered
            .iter()
            .rev()
            .find(|d| d.1 == side)
            .map(|d| d.0)
    }

    /// Runs until both sides are Up and their Poll Sequences are over.
    pub fn bring_up(&mut self) -> Instant {
        self.run_until_true(Duration::from_secs(10), |s| {
            s.a.state() == State::Up && s.b.state() == State::Up && !s.a.polling() && !s.b.polling()
        })
        .expect("the sessions come up")
    }
}
