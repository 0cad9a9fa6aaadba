//! What happens to a converged cluster: one node joining, one leaving
//! with a Cease (`podbgp shutdown`), one dying without a word (cut off
//! the switch, then killed: only the hold time tells), and many nodes
//! joining or leaving at once. Each is timed to the last kernel of the
//! other live nodes, on the monitor's clock.

use std::time::{Duration, Instant};

use super::{Scale, Settled};

/// How a node goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Its agent says goodbye: every session ends with a Cease.
    Cease,
    /// The node is gone at once: off the switch and its agent killed.
    Dead,
}

/// A group joining or leaving at once.
#[derive(Debug, Clone)]
pub struct Churn {
    pub settled: Settled,
    /// Lists the API server answered meanwhile: the new agents' own
    /// (one per kind they watch) and any other agent's resync.
    pub lists: u32,
}

/// Lists a podbgp agent makes at its start: Nodes, Services,
/// EndpointSlices and ServiceCIDRs, and one to learn whether the API
/// server serves ServiceCIDRs at all.
pub const LISTS_PER_AGENT: u32 = 5;

impl Scale {
    /// Node `i` leaves; the time until every other live kernel lost its
    /// pod prefix. After, its Node object is gone and nothing runs there.
    pub fn leave(&mut self, i: usize, how: Loss, limit: Duration) -> Settled {
        self.monitor.clear();
        let hosts: Vec<usize> = self.alive().into_iter().filter(|&h| h != i).collect();
        let t0 = Instant::now();
        match how {
            Loss::Cease => {
                let agent = self.agents[i].as_ref().expect("a podbgp node");
                let (code, _, err) = agent.cli(&["shutdown"]);
                assert_eq!(code, 0, "node {i}: podbgp shutdown: {err}");
            }
            Loss::Dead => {
                self.lab.cut(&self.nodes[i]);
                self.kill(i);
            }
        }
        let settled = self.settle(t0, &hosts, &[i], false, limit);
        self.kill(i);
        if how == Loss::Dead {
            self.lab.mend(&self.nodes[i]);
            // Back on the switch, its neighbours found again, before
            // anything is started there.
            let host = &self.nodes[i];
            super::super::eventually(Duration::from_secs(5), || {
                super::super::connect_in(host, super::API).is_ok()
            });
        }
        self.server.delete(&format!("n{i}"));
        settled
    }

    /// Node `i` joins: its Node object, then its agent; the time until
    /// every other live kernel holds its pod prefix.
    pub fn join(&mut self, i: usize, limit: Duration) -> Settled {
        self.monitor.clear();
        let hosts = self.alive();
        let t0 = Instant::now();
        self.register(i);
        self.launch(i);
        self.settle(t0, &hosts, &[i], true, limit)
    }

    /// The nodes of `group` leave at once, as a cluster scaled down: their
    /// Node objects deleted together; the time until every other live
    /// kernel lost their prefixes. Their agents are stopped after.
    pub fn churn_leave(&mut self, group: &[usize], limit: Duration) -> Churn {
        self.monitor.clear();
        let hosts: Vec<usize> = self
            .alive()
            .into_iter()
            .filter(|h| !group.contains(h))
            .collect();
        let lists = self.server.lock().lists;
        let t0 = Instant::now();
        for &i in group {
            self.server.delete(&format!("n{i}"));
        }
        let settled = self.settle(t0, &hosts, group, false, limit);
        let lists = self.server.lock().lists - lists;
        for &i in group {
            self.kill(i);
        }
        Churn { settled, lists }
    }

    /// The nodes of `group` join at once: their Node objects, then their
    /// agents; the time until every kernel of the nodes already there
    /// holds their prefixes.
    pub fn churn_join(&mut self, group: &[usize], limit: Duration) -> Churn {
        self.monitor.clear();
        let hosts = self.alive();
        let lists = self.server.lock().lists;
        let t0 = Instant::now();
        for &i in group {
            self.register(i);
        }
        for &i in group {
            self.launch(i);
        }
        let settled = self.settle(t0, &hosts, group, true, limit);
        let lists = self.server.lock().lists - lists;
        Churn { settled, lists }
    }
}

/// The median and the 99th percentile (the largest, under a hundred
/// samples) of the trials that finished, in the order given.
pub fn p50_p99(samples: &[Duration]) -> Option<(Duration, Duration)> {
    let mut s = samples.to_vec();
    if s.is_empty() {
        return None;
    }
    s.sort();
    let p99 = (s.len() * 99).div_ceil(100).max(1) - 1;
    Some((s[s.len() / 2], s[p99]))
}
