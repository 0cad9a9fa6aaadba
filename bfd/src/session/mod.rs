//! One BFD session in Asynchronous mode (RFC 5880 §6.2, §6.8), sans-IO.
//!
//! The driver hands received Control packets to [`Session::receive`] and
//! calls [`Session::poll`] when [`Session::poll_at`] says; what comes out
//! are packets to send, state changes, and the [`Event`]s a client such as
//! BGP acts on. Nothing here reads a clock: every call takes `now`, and the
//! jitter's random numbers come from a seed, so a test replays exactly.
//!
//! The state variables are those of §6.8.1 (their `bfd.` names are in the
//! field docs). Where the RFC leaves room, the choices made are:
//! - a session is always Active (§6.1): it sends from the start;
//! - the local Diag is cleared when the session comes Up, so an Up session
//!   reports no diagnostic (what FRR does too), and leaving AdminDown gives
//!   Down with no diagnostic;
//! - when the detection time passes without a packet, bfd.RemoteDiscr is
//!   zeroed as §6.8.1 requires, and the remote state is taken to be Down,
//!   since what we knew of it is stale;
//! - while AdminDown, the detection timer does not run: there is no session
//!   whose failure could be detected. It restarts on leaving AdminDown;
//! - Demand mode and the Echo function are never requested (D clear,
//!   Required Min Echo RX zero), but a peer in Demand mode is honoured: our
//!   periodic packets stop while it asks (§6.8.7);
//! - a Poll is answered at once with a packet of its own (F set, P clear),
//!   in every state, AdminDown included (§6.8.7: "without respect to the
//!   session state").

mod timers;

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::packet::{Control, Diag, Interval, PacketError, State, VERSION};
use crate::rng::Rng;

/// The timers an operator sets for a session (RFC 5880 §6.8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// bfd.DesiredMinTxInterval while Up: the fastest we wish to send.
    /// While not Up, one second is used if this is faster (§6.8.3).
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval: the fastest we are willing to receive.
    pub required_min_rx: Duration,
    /// bfd.DetectMult: how many of our intervals the peer waits before
    /// declaring us gone.
    pub detect_mult: u8,
}

impl Default for Config {
    /// 300 ms, 300 ms, 3: FRR's defaults, a failure found within a second.
    fn default() -> Config {
        Config {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
        }
    }
}

impl Config {
    /// Checks that every value can go on the wire and makes sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.micros().map(|_| ())
    }

    /// The two intervals in wire microseconds, checked.
    fn micros(&self) -> Result<(u32, u32), ConfigError> {
        if self.detect_mult == 0 {
            return Err(ConfigError::ZeroDetectMult);
        }
        let micros = |d: Duration| {
            Interval::from_duration(d)
                .map(Interval::as_micros)
                .ok_or(ConfigError::IntervalTooLong(d))
        };
        let (tx, rx) = (micros(self.desired_min_tx)?, micros(self.required_min_rx)?);
        if tx == 0 {
            return Err(ConfigError::ZeroDesiredMinTx);
        }
        if rx == 0 {
            return Err(ConfigError::ZeroRequiredMinRx);
        }
        Ok((tx, rx))
    }
}

/// Why a [`Config`] or a discriminator cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// bfd.DetectMult "MUST be nonzero" (§6.8.1).
    #[error("Detect Mult must not be zero")]
    ZeroDetectMult,
    /// Desired Min TX below one microsecond; zero is reserved (§4.1).
    #[error("Desired Min TX must be at least one microsecond")]
    ZeroDesiredMinTx,
    /// Required Min RX of zero asks the peer for silence, which would leave
    /// nothing to detect failures with: podbgp does not run sessions so.
    #[error("Required Min RX must be at least one microsecond")]
    ZeroRequiredMinRx,
    /// An interval past the 32-bit microsecond fields (about 71 minutes).
    #[error("{0:?} does not fit a 32-bit count of microseconds")]
    IntervalTooLong(Duration),
    /// bfd.LocalDiscr "MUST be nonzero" (§6.8.1).
    #[error("the local discriminator must not be zero")]
    ZeroDiscriminator,
}

/// What a session's state change means to a client such as BGP (RFC 5882).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The session came Up: the path works in both directions.
    Up,
    /// The session left Up because the path failed: the detection time
    /// expired (diag 1) or the peer signalled Down (diag 3). Clients
    /// relying on the path tear down (RFC 5882 §3.2, §4.3).
    Down {
        /// Our diagnostic for the change.
        diag: Diag,
    },
    /// The session left Up because the peer set it AdminDown. Not a failure:
    /// RFC 5882 §3.2 says clients "MUST NOT" take it as one; they carry on
    /// as if BFD were not running.
    PeerAdminDown,
    /// We set the session AdminDown while it was Up. Not a failure either.
    AdminDown,
}

impl Event {
    /// Whether a client must treat the event as a forwarding failure.
    pub fn is_failure(&self) -> bool {
        matches!(self, Event::Down { .. })
    }
}

/// What the driver must do or know after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this Control packet to the peer now.
    Send(Control),
    /// bfd.SessionState changed, with the diagnostic now in bfd.LocalDiag.
    StateChanged {
        /// The state before.
        from: State,
        /// The state now.
        to: State,
        /// The local diagnostic after the change.
        diag: Diag,
    },
    /// What the change just reported means to a client (only for changes
    /// into or out of Up).
    Event(Event),
}

/// Why a received packet was discarded (RFC 5880 §6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum Discard {
    /// The packet fails a packet-only check (for a packet built by hand;
    /// [`Control::decode`] applies these already).
    #[error(transparent)]
    Malformed(#[from] PacketError),
    /// Your Discriminator names no session: "If no session is found, the
    /// packet MUST be discarded."
    #[error("Your Discriminator {0} names no session")]
    UnknownDiscriminator(u32),
    /// Your Discriminator is zero and no session has the packet's addresses.
    #[error("Your Discriminator is zero and no session has the packet's addresses")]
    NoSession,
    /// Your Discriminator names a session of other addresses (RFC 5881 §3
    /// binds a session to its addresses and interface).
    #[error("Your Discriminator {0} arrived on another session's addresses")]
    KeyMismatch(u32),
    /// Your Discriminator is not this session's.
    #[error("Your Discriminator {0} is not this session's")]
    WrongDiscriminator(u32),
    /// The session is AdminDown: the packet's fields were recorded, and then
    /// it was discarded, as §6.8.6 orders.
    #[error("the session is AdminDown")]
    AdminDown,
}

/// Packet and state-change counts of one session, for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Control packets handed out to send, Finals included.
    pub packets_sent: u64,
    /// Control packets accepted.
    pub packets_received: u64,
    /// Packets discarded because the session is AdminDown.
    pub dropped_for_state: u64,
    /// Packets discarded as malformed or not this session's.
    pub discarded: u64,
    /// Changes of bfd.SessionState.
    pub state_changes: u64,
}

/// One BFD session: its state machine and its timers.
#[derive(Debug, Clone)]
pub struct Session {
    config: Config,
    /// The configured intervals in microseconds, checked.
    config_tx: u32,
    config_rx: u32,
    /// bfd.SessionState.
    state: State,
    /// bfd.RemoteSessionState.
    remote_state: State,
    /// bfd.LocalDiscr.
    local_discr: u32,
    /// bfd.RemoteDiscr.
    remote_discr: u32,
    /// bfd.LocalDiag.
    local_diag: Diag,
    /// The Diag of the last packet received, for the operator.
    remote_diag: Diag,
    /// bfd.DesiredMinTxInterval, as advertised (µs).
    desired_min_tx: u32,
    /// bfd.RequiredMinRxInterval, as advertised (µs).
    required_min_rx: u32,
    /// bfd.RemoteMinRxInterval (µs), initialised to 1.
    remote_min_rx: u32,
    /// The last Desired Min TX received (µs), for the detection time.
    remote_desired_min_tx: u32,
    /// The last Detect Mult received; zero before any packet.
    remote_detect_mult: u8,
    /// bfd.RemoteDemandMode.
    remote_demand: bool,
    /// The Desired Min TX our sending follows: behind `desired_min_tx`
    /// while a slow-down waits for its Final (§6.8.3).
    tx_basis: u32,
    /// The Required Min RX our detection time follows: behind
    /// `required_min_rx` while a speed-up waits for its Final (§6.8.3).
    rx_basis: u32,
    /// A Poll Sequence is being transmitted (§6.5).
    polling: bool,
    /// The parameters changed again during the Poll Sequence: one more
    /// Poll Sequence is needed before they all apply.
    repoll: bool,
    /// A packet with Final set is owed to the peer.
    final_owed: bool,
    /// Outputs are waiting since this instant.
    due: Option<Instant>,
    /// When the last periodic packet went out.
    last_tx: Option<Instant>,
    /// When the next periodic packet is due; `None` while none may be sent.
    next_tx: Option<Instant>,
    /// The transmit interval (µs) `next_tx` was drawn for.
    scheduled: Option<u32>,
    /// When the detection timer last restarted; `None` while it is stopped.
    detect_from: Option<Instant>,
    /// When bfd.SessionState last changed.
    since: Instant,
    pending: Vec<Output>,
    rng: Rng,
    counters: Counters,
}

impl Session {
    /// A session in state Down that starts sending at `now`, identified
    /// locally by `local_discriminator`; `seed` drives its jitter.
    pub fn new(
        now: Instant,
        config: Config,
        local_discriminator: u32,
        seed: u64,
    ) -> Result<Session, ConfigError> {
        let (config_tx, config_rx) = config.micros()?;
        if local_discriminator == 0 {
            return Err(ConfigError::ZeroDiscriminator);
        }
        let desired_min_tx = config_tx.max(timers::SLOW_TX);
        let mut session = Session {
            config,
            config_tx,
            config_rx,
            state: State::Down,
            remote_state: State::Down,
            local_discr: local_discriminator,
            remote_discr: 0,
            local_diag: Diag::NoDiagnostic,
            remote_diag: Diag::NoDiagnostic,
            desired_min_tx,
            required_min_rx: config_rx,
            remote_min_rx: 1,
            remote_desired_min_tx: 0,
            remote_detect_mult: 0,
            remote_demand: false,
            tx_basis: desired_min_tx,
            rx_basis: config_rx,
            polling: false,
            repoll: false,
            final_owed: false,
            due: None,
            last_tx: None,
            next_tx: None,
            scheduled: None,
            detect_from: None,
            since: now,
            pending: Vec::new(),
            rng: Rng::new(seed),
            counters: Counters::default(),
        };
        session.reschedule(now);
        Ok(session)
    }

    /// Processes a received Control packet (the session's part of §6.8.6);
    /// what it calls for comes out of the next [`Session::poll`].
    pub fn receive(&mut self, now: Instant, packet: &Control) -> Result<(), Discard> {
        if let Err(error) = packet.validate() {
            self.counters.discarded += 1;
            return Err(error.into());
        }
        let yours = packet.your_discriminator;
        if yours != 0 && yours != self.local_discr {
            self.counters.discarded += 1;
            return Err(Discard::WrongDiscriminator(yours));
        }
        self.remote_discr = packet.my_discriminator;
        self.remote_state = packet.state;
        self.remote_demand = packet.demand;
        self.remote_min_rx = packet.required_min_rx.as_micros();
        self.remote_desired_min_tx = packet.desired_min_tx.as_micros();
        self.remote_detect_mult = packet.detect_mult;
        self.remote_diag = packet.diag;
        if packet.final_ && self.polling {
            self.end_poll();
        }
        if packet.poll {
            self.final_owed = true;
            self.due.get_or_insert(now);
        }
        if self.state == State::AdminDown {
            self.counters.dropped_for_state += 1;
            self.reschedule(now);
            return Err(Discard::AdminDown);
        }
        self.counters.packets_received += 1;
        self.detect_from = Some(now);
        match (self.state, packet.state) {
            (State::Down, State::AdminDown) => {}
            (_, State::AdminDown) | (State::Up, State::Down) => {
                self.transition(now, State::Down, Diag::NeighborSignaledSessionDown);
            }
            (State::Down, State::Down) => self.transition(now, State::Init, self.local_diag),
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                self.transition(now, State::Up, Diag::NoDiagnostic);
            }
            _ => {}
        }
        self.reschedule(now);
        Ok(())
    }

    /// Runs the timers due by `now` (detection time, periodic transmission)
    /// and returns everything to do, in order.
    pub fn poll(&mut self, now: Instant) -> Vec<Output> {
        if self.detect_at().is_some_and(|at| now >= at) {
            self.expire(now);
        }
        if self.final_owed {
            self.final_owed = false;
            let answer = self.control(false, true);
            self.send(answer);
        }
        if self.next_tx.is_some_and(|at| now >= at) {
            let periodic = self.control(self.polling, false);
            self.send(periodic);
            self.last_tx = Some(now);
            let interval = self.tx_interval();
            self.next_tx = Some(now + self.jittered(interval));
            self.scheduled = Some(interval);
        }
        // Everything owed goes out now, whatever this call added.
        self.due = None;
        std::mem::take(&mut self.pending)
    }

    /// When [`Session::poll`] must next be called, if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        [self.due, self.next_tx, self.detect_at()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sets the session AdminDown (diag 7) or, with `false`, lets it come up
    /// again from Down (§6.8.16). An AdminDown session keeps sending, at the
    /// slow rate of a session that is not Up.
    pub fn set_admin_down(&mut self, now: Instant, admin_down: bool) {
        match (admin_down, self.state) {
            (true, State::AdminDown) | (false, State::Down | State::Init | State::Up) => {}
            (true, _) => {
                self.detect_from = None;
                self.transition(now, State::AdminDown, Diag::AdministrativelyDown);
            }
            (false, State::AdminDown) => {
                if self.remote_detect_mult != 0 {
                    self.detect_from = Some(now);
                }
                self.transition(now, State::Down, Diag::NoDiagnostic);
            }
        }
        self.reschedule(now);
    }

    /// Changes the timers. A change of either interval starts a Poll
    /// Sequence; while Up, a slower TX and a faster RX wait for its Final
    /// (§6.8.3). A new Detect Mult goes out in the next packet (§6.8.12).
    pub fn set_config(&mut self, now: Instant, config: Config) -> Result<(), ConfigError> {
        let (tx, rx) = config.micros()?;
        self.config = config;
        self.config_tx = tx;
        self.config_rx = rx;
        self.refresh_params(now);
        Ok(())
    }

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.RemoteSessionState: the peer's state as it last told us.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// bfd.LocalDiscr.
    pub fn local_discriminator(&self) -> u32 {
        self.local_discr
    }

    /// bfd.RemoteDiscr, zero while unknown.
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    /// bfd.LocalDiag: why the session last changed state.
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }

    /// The Diag of the last packet received.
    pub fn remote_diag(&self) -> Diag {
        self.remote_diag
    }

    /// The timers as configured.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// bfd.DesiredMinTxInterval as advertised now (one second at least
    /// while not Up).
    pub fn desired_min_tx(&self) -> Duration {
        micros(self.desired_min_tx)
    }

    /// bfd.RequiredMinRxInterval as advertised now.
    pub fn required_min_rx(&self) -> Duration {
        micros(self.required_min_rx)
    }

    /// The peer's last Detect Mult; zero before any packet.
    pub fn remote_detect_mult(&self) -> u8 {
        self.remote_detect_mult
    }

    /// The peer's last Desired Min TX Interval.
    pub fn remote_desired_min_tx(&self) -> Duration {
        micros(self.remote_desired_min_tx)
    }

    /// bfd.RemoteMinRxInterval: the peer's last Required Min RX Interval.
    pub fn remote_required_min_rx(&self) -> Duration {
        micros(self.remote_min_rx)
    }

    /// The interval we send at before jitter: the greater of the Desired
    /// Min TX in force and the peer's Required Min RX (§6.8.7).
    pub fn negotiated_tx(&self) -> Duration {
        micros(self.tx_interval())
    }

    /// How long we wait without a packet before declaring the peer gone
    /// (§6.8.4); zero before the first packet.
    pub fn detection_time(&self) -> Duration {
        let interval = self.rx_basis.max(self.remote_desired_min_tx);
        Duration::from_micros(u64::from(self.remote_detect_mult) * u64::from(interval))
    }

    /// When bfd.SessionState last changed.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Whether a Poll Sequence is under way.
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// The session's counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The detection time passed without a packet (§6.8.1, §6.8.4).
    fn expire(&mut self, now: Instant) {
        self.detect_from = None;
        self.remote_discr = 0;
        self.remote_state = State::Down;
        self.remote_demand = false;
        if matches!(self.state, State::Init | State::Up) {
            self.transition(now, State::Down, Diag::ControlDetectionTimeExpired);
        }
        self.reschedule(now);
    }

    /// Moves to `to` with `diag`, reports it, and recomputes the advertised
    /// intervals, which depend on whether the session is Up.
    fn transition(&mut self, now: Instant, to: State, diag: Diag) {
        let from = self.state;
        self.state = to;
        self.local_diag = diag;
        self.since = now;
        self.counters.state_changes += 1;
        self.push(now, Output::StateChanged { from, to, diag });
        let event = match (from, to) {
            (_, State::Up) => Some(Event::Up),
            (State::Up, State::AdminDown) => Some(Event::AdminDown),
            // Only a received AdminDown leaves Up with the peer AdminDown.
            (State::Up, _) if self.remote_state == State::AdminDown => Some(Event::PeerAdminDown),
            (State::Up, _) => Some(Event::Down { diag }),
            _ => None,
        };
        if let Some(event) = event {
            self.push(now, Output::Event(event));
        }
        self.refresh_params(now);
    }

    /// The packet we send now, with the Poll and Final bits given (§6.8.7).
    fn control(&self, poll: bool, final_: bool) -> Control {
        Control {
            version: VERSION,
            diag: self.local_diag,
            state: self.state,
            poll,
            final_,
            control_plane_independent: false,
            demand: false,
            multipoint: false,
            detect_mult: self.config.detect_mult,
            my_discriminator: self.local_discr,
            your_discriminator: self.remote_discr,
            desired_min_tx: Interval::from_micros(self.desired_min_tx),
            required_min_rx: Interval::from_micros(self.required_min_rx),
            required_min_echo_rx: Interval::ZERO,
        }
    }

    fn send(&mut self, packet: Control) {
        self.counters.packets_sent += 1;
        self.pending.push(Output::Send(packet));
    }

    fn push(&mut self, now: Instant, output: Output) {
        self.due.get_or_insert(now);
        self.pending.push(output);
    }
}

fn micros(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}
