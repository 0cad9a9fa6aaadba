//! The owner's loop: commands taken in bursts, a turn of the speaker
//! after each, the metrics and the buffers a burst grew looked after.

use std::sync::Arc;
use std::time::Duration;

use bgp::speaker::Input;
use tokio::time::Instant;
use tracing::info;

use super::{Ended, Owner};
use crate::fib::Feed;

/// A burst of UPDATEs is taken in until it has made this many best-path
/// changes; then they are exported and fed to the FIB before more come in,
/// so a full table never waits as one batch of changes.
const TURN_CHANGES: usize = 4096;

/// The metrics follow the speaker at most this often, but at once when a
/// session changes state: bringing them in line walks every peer, and a
/// reflector with hundreds of clients turns on every keepalive.
const METRICS_EVERY: Duration = Duration::from_secs(1);

/// A burst's buffers past this size (those the allocator maps on their
/// own) are let go once no command has come for `RELEASE_AFTER`.
const BUFFERS_KEPT: usize = 64 * 1024;
const RELEASE_AFTER: Duration = Duration::from_millis(50);

impl Owner {
    /// Run until told to stop; says how it ended.
    pub async fn run(mut self) -> Ended {
        loop {
            let poll_at = self.speaker.poll_at().map(Instant::from_std);
            let deadline = [poll_at, self.metrics_due, self.release_at]
                .into_iter()
                .flatten()
                .min();
            // What is waiting comes before the timers: a peer's keepalive
            // queued here while the machine is busy must count before its
            // hold timer is looked at.
            let command = tokio::select! {
                biased;
                c = self.rx.recv() => c,
                () = sleep_until(deadline) => None,
            };
            let worked = command.is_some();
            if let Some(c) = command {
                if let Some(stop) = self.command(c) {
                    return self.shutdown(stop).await;
                }
                // Take what else is waiting before deciding what to send:
                // a burst of UPDATEs is exported in one pass.
                for _ in 0..256 {
                    if self.speaker.pending_changes() >= TURN_CHANGES {
                        break;
                    }
                    let Ok(c) = self.rx.try_recv() else { break };
                    if let Some(stop) = self.command(c) {
                        return self.shutdown(stop).await;
                    }
                }
            }
            self.turn();
            self.release_after_burst(worked);
        }
    }

    /// Once commands stop coming for a while, let go of the buffers a
    /// burst of them grew; `worked`: commands came this time round.
    fn release_after_burst(&mut self, worked: bool) {
        if worked {
            self.release_at = (self.speaker.buffers_held() > BUFFERS_KEPT)
                .then(|| Instant::now() + RELEASE_AFTER);
        } else if self.release_at.is_some_and(|t| t <= Instant::now()) {
            self.release_at = None;
            self.speaker.release_buffers();
        }
    }

    /// Let the speaker decide, carry out its actions, pass changes on.
    pub(crate) fn turn(&mut self) {
        let now = Instant::now().into_std();
        // A hold timer that ran out while the peer's messages wait here, in
        // its socket or our queue, ran out because we are slow: give them
        // time to be read.
        for (peer, conn) in self.speaker.hold_due(now) {
            if self
                .conns
                .get(&conn)
                .is_some_and(|(_, h)| h.input_waiting())
            {
                info!(peer = %self.name(peer), "hold timer ran out with the peer's input still waiting here: waiting for it");
                self.speaker.handle(now, peer, Input::InputWaiting { conn });
            }
        }
        for action in self.speaker.poll(now) {
            self.carry(action);
        }
        // Nobody follows the changes (no FIB, no SNAT, no BMP Loc-RIB, as
        // on a route server): they are dropped without being sorted out.
        if self.subscribers.is_empty() && !self.bmp_wants(|m| m.loc_rib) {
            self.speaker.discard_best_changes();
            return self.after_turn();
        }
        let changes = self.speaker.take_best_changes();
        if !changes.is_empty() {
            let batch = Arc::new(changes);
            self.subscribers
                .retain(|s| s.send(Feed::Changes(Arc::clone(&batch))).is_ok());
            self.bmp_loc_rib(&batch);
        }
        self.after_turn();
    }

    /// Readiness and metrics, after each turn.
    fn after_turn(&mut self) {
        if !self.converged && self.speaker.selection_done() {
            self.converged = true;
            self.subscribers.retain(|s| s.send(Feed::Converged).is_ok());
            // Readiness waits for this: publish it now, not at the next tick.
            self.metrics_now = true;
        }
        let now = Instant::now();
        let forced = std::mem::take(&mut self.metrics_now);
        if forced || now >= self.metrics_next {
            self.metrics.observe(&self.speaker);
            self.metrics_next = now + METRICS_EVERY;
            self.metrics_due = None;
        } else {
            self.metrics_due = Some(self.metrics_next);
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
