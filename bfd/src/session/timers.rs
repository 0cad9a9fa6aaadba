//! A session's timers: the transmit interval and its jitter (§6.8.2,
//! §6.8.7), the detection time (§6.8.4), and the Poll Sequence that
//! changes them safely (§6.5, §6.8.3).
//!
//! The rule behind §6.8.3 is that the peer's idea of our timing must never
//! be slower than what we really do: we send at least as often as the peer
//! last heard we would, and we wait at least as long as the peer last heard
//! we would. So while Up, a slower TX and a faster RX apply only once the
//! peer has confirmed the new values with a Final; a faster TX and a slower
//! RX apply at once. Two bases (`tx_basis`, `rx_basis`) hold the values in
//! force, apart from the advertised ones.

use std::time::{Duration, Instant};

use super::Session;
use crate::packet::State;

/// bfd.DesiredMinTxInterval's floor while the session is not Up: one
/// second, in microseconds (§6.8.3).
pub(super) const SLOW_TX: u32 = 1_000_000;

impl Session {
    /// The transmit interval before jitter (µs): the greater of the Desired
    /// Min TX in force and bfd.RemoteMinRxInterval (§6.8.7).
    pub(super) fn tx_interval(&self) -> u32 {
        self.tx_basis.max(self.remote_min_rx)
    }

    /// Whether periodic packets may be sent (§6.8.7): not while the peer
    /// asks for none (Required Min RX zero), nor while Demand mode is
    /// active on the peer, unless we are polling.
    fn periodic_allowed(&self) -> bool {
        let remote_demand_active =
            self.remote_demand && self.state == State::Up && self.remote_state == State::Up;
        self.remote_min_rx != 0 && (!remote_demand_active || self.polling)
    }

    /// Places the next periodic packet after anything that may change the
    /// transmit interval.
    pub(super) fn reschedule(&mut self, now: Instant) {
        if !self.periodic_allowed() {
            self.next_tx = None;
            self.scheduled = None;
            return;
        }
        let interval = self.tx_interval();
        if self.next_tx.is_some() && self.scheduled == Some(interval) {
            return;
        }
        let keep = match (self.next_tx, self.scheduled) {
            // We slowed down (the session left Up, or a slower TX was
            // confirmed): the packet already scheduled keeps its time, so
            // a peer still timing us by the old interval hears the news
            // (a Down, an AdminDown) before it gives up on us.
            (Some(next), Some(old)) if interval > old && self.remote_min_rx <= old => Some(next),
            _ => None,
        };
        // Otherwise, faster: "the local system cannot wait longer than the
        // new interval between the previous packet transmission and the
        // next one" (§6.8.3), and if that is past, the packet is due now.
        // Slower because the peer asks it: honoured from the last packet.
        self.next_tx = keep.or_else(|| match self.last_tx {
            Some(last) => Some(last + self.jittered(interval)),
            None => Some(now),
        });
        self.scheduled = Some(interval);
    }

    /// `interval` (µs) less a random 0-25 %, or 10-25 % when bfd.DetectMult
    /// is 1, so the interval is never above 90 % of the negotiated one and
    /// the peer's detection time cannot pass between two packets (§6.8.7).
    pub(super) fn jittered(&mut self, interval: u32) -> Duration {
        let full = u64::from(interval) * 1000;
        let most = full / 4;
        let least = if self.config.detect_mult == 1 {
            full.div_ceil(10).min(most)
        } else {
            0
        };
        let cut = least + self.rng.up_to(most - least);
        Duration::from_nanos(full - cut)
    }

    /// When the detection time runs out, if its timer runs.
    pub(super) fn detect_at(&self) -> Option<Instant> {
        self.detect_from.map(|from| from + self.detection_time())
    }

    /// Recomputes bfd.DesiredMinTxInterval and bfd.RequiredMinRxInterval
    /// from the configuration and the state; if either changed, applies what
    /// may apply at once and starts a Poll Sequence (§6.8.3).
    pub(super) fn refresh_params(&mut self, now: Instant) {
        let desired = if self.state == State::Up {
            self.config_tx
        } else {
            self.config_tx.max(SLOW_TX)
        };
        let required = self.config_rx;
        if desired == self.desired_min_tx && required == self.required_min_rx {
            return;
        }
        if self.state == State::Up {
            self.tx_basis = self.tx_basis.min(desired);
            self.rx_basis = self.rx_basis.max(required);
        } else {
            self.tx_basis = desired;
            self.rx_basis = required;
        }
        self.desired_min_tx = desired;
        self.required_min_rx = required;
        // "If either bfd.DesiredMinTxInterval is changed or
        // bfd.RequiredMinRxInterval is changed, a Poll Sequence MUST be
        // initiated." One already under way may have been answered for the
        // old values, so it is followed by another.
        if self.polling {
            self.repoll = true;
        } else {
            self.polling = true;
        }
        self.reschedule(now);
    }

    /// A Final arrived: the Poll Sequence ends, and with it the wait of a
    /// slower TX and a faster RX; unless values changed during it, in
    /// which case the next Poll Sequence starts at once.
    pub(super) fn end_poll(&mut self) {
        if self.repoll {
            self.repoll = false;
            return;
        }
        self.polling = false;
        self.tx_basis = self.desired_min_tx;
        self.rx_basis = self.required_min_rx;
    }
}
