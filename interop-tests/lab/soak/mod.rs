//! The churn soak: one podbgp (D) and twenty scripted iBGP peers, each a
//! namespace on the lab's switch.
//!
//! Every peer holds a base table of its own the whole run. In waves, the
//! peers announce 100,000 more prefixes (each from two peers, so 200,000
//! paths; which two moves with the wave), then for a while peers flap at
//! random — a Cease (D drops the routes at once) or a crash (no
//! NOTIFICATION: D keeps the routes as a graceful restart helper until the
//! peer is back and has sent End-of-RIB; a crashed peer comes back without
//! a few of its prefixes, which D must sweep) — then every peer is back,
//! and the wave is withdrawn.
//!
//! At each quiescent point (every peer up, the last message sent) the
//! kernel must come to hold exactly the expected routes, each via the peer
//! with the highest LOCAL_PREF among those announcing it, and D's RIB must
//! say the same; every session must be Established with nothing stale and
//! every peer's routes accepted. After each wave's withdrawal D's RSS, open
//! descriptors and runtime tasks must be back in the band of the first
//! such point. No session may end that the soak did not end, none may take
//! longer than `peer::ESTABLISH_LIMIT` to come up, and D must run the whole
//! time without a panic. A thread samples D once a second into a CSV file.

pub mod peer;
pub mod sample;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::lab::podbgp::Podbgp;
use crate::lab::rng::Rng;
use crate::lab::{Lab, PeerSpec, Speaker};
use peer::Peer;
use sample::{Gauge, Sample, Sampler};

pub const ASN: u32 = 64512;

/// What one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Waves start until this much time has passed, and until
    /// `min_waves` have run, however long they take.
    pub duration: Duration,
    pub min_waves: usize,
    pub peers: usize,
    /// Prefixes a wave adds (each announced by two peers).
    pub wave: u32,
    /// Prefixes held the whole run (each by one peer).
    pub base: u32,
    /// How long peers flap in each wave.
    pub chaos: Duration,
    pub seed: u64,
    /// Where the once-a-second samples go (CSV); the lab's work directory
    /// (removed with it) when not set.
    pub samples_file: Option<PathBuf>,
}

impl Plan {
    /// The soak for `duration`: 20 peers, 100,000 prefixes a wave, flaps
    /// for a sixth of the time or 30 s a wave, whichever is less (10 s at
    /// least).
    pub fn new(duration: Duration, seed: u64) -> Plan {
        Plan {
            duration,
            min_waves: 1,
            peers: 20,
            wave: 100_000,
            base: 5_000,
            chaos: (duration / 6).clamp(Duration::from_secs(10), Duration::from_secs(30)),
            seed,
            samples_file: None,
        }
    }
}

/// D at a quiescent point.
#[derive(Debug, Clone, Copy)]
pub struct Quiet {
    pub gauge: Gauge,
    pub routes: usize,
    /// From the last message sent to the kernel matching.
    pub converged: Duration,
}

/// What a run did and saw.
#[derive(Debug, Default)]
pub struct Report {
    pub elapsed: Duration,
    pub waves: usize,
    pub ceases: usize,
    pub crashes: usize,
    /// Prefixes announced and withdrawn by the peers in UPDATEs (paths),
    /// and the tables re-sent after flaps counted in `announced`.
    pub announced: u64,
    pub withdrawn: u64,
    /// Quiescent points checked (kernel = RIB = expected at each).
    pub checks: usize,
    /// The point before the first wave.
    pub start: Option<Quiet>,
    /// The point after each wave's withdrawal.
    pub after_waves: Vec<Quiet>,
    /// The point with each wave's routes in place.
    pub loaded: Vec<Quiet>,
    pub establish_max: Duration,
    pub samples: Vec<Sample>,
    pub samples_file: PathBuf,
    pub interrupted: bool,
}

impl Report {
    /// (min, max) of a figure over the samples.
    pub fn range(&self, f: impl Fn(&Sample) -> u64) -> (u64, u64) {
        let v: Vec<u64> = self.samples.iter().map(f).collect();
        (
            v.iter().copied().min().unwrap_or(0),
            v.iter().copied().max().unwrap_or(0),
        )
    }
}

/// RSS after a wave may exceed the first wave's by this much (allocator
/// slack, the FIB's batch buffers) before it counts as growth.
pub const RSS_SLACK_KB: u64 = 4 * 1024;
/// Descriptors and runtime tasks may differ by this many (an API or
/// metrics connection open at the moment of the reading).
pub const FD_SLACK: usize = 2;
pub const TASK_SLACK: u64 = 2;
/// How long D is left alone before its RSS is read for the band.
const REST: Duration = Duration::from_secs(4);

struct PeerState {
    peer: Peer,
    base: Vec<u32>,
    wave: Vec<u32>,
    /// Down by a crash: D keeps its routes until it is back.
    crashed: bool,
    /// When a peer that is down comes back.
    back_at: Option<Instant>,
}

impl PeerState {
    fn table(&self) -> Vec<u32> {
        let mut t = self.base.clone();
        t.extend_from_slice(&self.wave);
        t
    }
}

pub struct Soak {
    plan: Plan,
    lab: Lab,
    d: Podbgp,
    pid: i32,
    peers: Vec<PeerState>,
    rng: Rng,
    report: Report,
}

impl Soak {
    /// Build the lab, start D, bring every peer up with its base table.
    pub fn start(plan: Plan) -> Result<Soak, String> {
        let mut lab = Lab::new("soak");
        let dh = lab.host("d");
        let hosts: Vec<_> = (0..plan.peers)
            .map(|i| lab.host(&format!("p{}", i + 1)))
            .collect();
        let mut d = Podbgp::new(&dh, ASN);
        d.metrics = true;
        d.base_mut().adverts = vec![crate::lab::Advert::plain("10.244.1.0/24")];
        for h in &hosts {
            let mut p = PeerSpec::new(IpAddr::V4(h.v4), ASN);
            p.passive = true;
            d.base_mut().peers.push(p);
        }
        d.spawn(&mut lab);
        d.wait_up(&lab);
        let pid = crate::lab::pid_in(&dh, "podbgp").ok_or("podbgp is not running")?;
        let peers = hosts
            .into_iter()
            .enumerate()
            .map(|(i, h)| PeerState {
                peer: Peer::new(h, ASN, 100 + i as u32, dh.v4),
                base: (0..plan.base)
                    .filter(|j| *j as usize % plan.peers == i)
                    .map(|j| plan.wave + j)
                    .collect(),
                wave: Vec::new(),
                crashed: false,
                back_at: None,
            })
            .collect();
        let samples_file = plan
            .samples_file
            .clone()
            .unwrap_or_else(|| lab.work().join("soak-samples.csv"));
        let mut soak = Soak {
            rng: Rng::new(plan.seed),
            plan,
            lab,
            d,
            pid,
            peers,
            report: Report {
                samples_file,
                ..Report::default()
            },
        };
        for i in 0..soak.peers.len() {
            soak.bring_up(i)?;
        }
        Ok(soak)
    }

    pub fn work(&self) -> PathBuf {
        self.lab.work().to_path_buf()
    }

    /// Waves until the plan's time is up (at least one), or `stop`.
    pub fn run(mut self, stop: &AtomicBool) -> Result<Report, String> {
        let sampler = Sampler::start(
            self.d.host().clone(),
            self.pid,
            self.report.samples_file.clone(),
        );
        let start = Instant::now();
        let result = self.waves(&sampler, start, stop);
        self.report.elapsed = start.elapsed();
        self.report.samples = sampler.finish();
        if let Err(e) = result {
            return Err(format!("{e}\n{}", self.tail_of_log()));
        }
        self.finish()?;
        Ok(self.report)
    }

    fn waves(
        &mut self,
        sampler: &Sampler,
        start: Instant,
        stop: &AtomicBool,
    ) -> Result<(), String> {
        sampler.phase("base", self.expected().len());
        let q = self.settle("before the first wave", Instant::now(), true)?;
        self.report.start = Some(q);
        let mut wave = 0;
        while wave < self.plan.min_waves.max(1) || start.elapsed() < self.plan.duration {
            if stop.load(Ordering::SeqCst) {
                self.report.interrupted = true;
                return Ok(());
            }
            self.wave(sampler, wave, stop)?;
            wave += 1;
            self.report.waves = wave;
        }
        Ok(())
    }

    /// One wave: announce, flap, settle, withdraw, settle.
    fn wave(&mut self, sampler: &Sampler, w: usize, stop: &AtomicBool) -> Result<(), String> {
        let n = self.plan.peers;
        for (i, p) in self.peers.iter_mut().enumerate() {
            // Prefix k from peers (k + w) mod n and (k + w + 7) mod n.
            p.wave = (0..self.plan.wave)
                .filter(|k| {
                    let k = *k as usize + w;
                    k % n == i || (k + 7) % n == i
                })
                .collect();
        }
        sampler.phase(&format!("wave {w} announce"), self.expected().len());
        for p in &self.peers {
            p.peer.announce(&p.wave)?;
            self.report.announced += p.wave.len() as u64;
        }
        let q = self.settle(&format!("wave {w} announced"), Instant::now(), false)?;
        self.report.loaded.push(q);

        sampler.phase(&format!("wave {w} flaps"), self.expected().len());
        self.chaos(stop)?;
        sampler.phase(&format!("wave {w} back"), self.expected().len());
        let back = Instant::now();
        for i in 0..n {
            if !self.peers[i].peer.is_up() {
                self.bring_up(i)?;
            }
        }
        self.settle(&format!("wave {w} after the flaps"), back, false)?;

        for p in &mut self.peers {
            let wave = std::mem::take(&mut p.wave);
            p.peer.withdraw(&wave)?;
            self.report.withdrawn += wave.len() as u64;
        }
        sampler.phase(&format!("wave {w} withdrawn"), self.expected().len());
        let q = self.settle(&format!("wave {w} withdrawn"), Instant::now(), true)?;
        self.check_band(w, q)?;
        self.report.after_waves.push(q);
        Ok(())
    }

    /// Peers flap at random for the plan's chaos time: a Cease or a crash
    /// every 0.2–1.2 s, each down for 0.3–3 s, at most a quarter down at
    /// once.
    fn chaos(&mut self, stop: &AtomicBool) -> Result<(), String> {
        let end = Instant::now() + self.plan.chaos;
        while Instant::now() < end && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(self.rng.between(200, 1200)));
            self.sessions_kept()?;
            let now = Instant::now();
            for i in 0..self.peers.len() {
                if self.peers[i].back_at.is_some_and(|t| t <= now) {
                    self.bring_up(i)?;
                }
            }
            let down = self.peers.iter().filter(|p| p.back_at.is_some()).count();
            let i = self.rng.below(self.peers.len());
            if self.peers[i].back_at.is_some() || down >= self.peers.len() / 4 {
                continue;
            }
            let back = now + Duration::from_millis(self.rng.between(300, 3000));
            let p = &mut self.peers[i];
            p.back_at = Some(back);
            if self.rng.one_in(2) {
                p.peer.cease();
                p.crashed = false;
                self.report.ceases += 1;
            } else {
                p.peer.crash();
                p.crashed = true;
                self.report.crashes += 1;
            }
        }
        Ok(())
    }

    /// (Re)open peer `i`'s session and send its table. A peer back from a
    /// crash leaves out one in fifty of its wave prefixes: D must sweep
    /// those when End-of-RIB comes.
    fn bring_up(&mut self, i: usize) -> Result<(), String> {
        let restarting = self.peers[i].crashed;
        if restarting {
            let rng = &mut self.rng;
            self.peers[i].wave.retain(|_| !rng.one_in(50));
        }
        let p = &mut self.peers[i];
        let table = p.table();
        let took = p.peer.connect(&table, restarting)?;
        self.report.announced += table.len() as u64;
        self.report.establish_max = self.report.establish_max.max(took);
        p.crashed = false;
        p.back_at = None;
        Ok(())
    }

    /// No session the soak did not end has ended.
    fn sessions_kept(&self) -> Result<(), String> {
        for p in &self.peers {
            if p.back_at.is_none() {
                if let Some(why) = p.peer.lost() {
                    return Err(format!(
                        "D ended {}'s session on its own: {why}",
                        p.peer.host.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Prefix → the address of its best peer: the highest LOCAL_PREF of
    /// the peers announcing it that are up or crashed (D keeps a crashed
    /// peer's routes).
    fn expected(&self) -> HashMap<String, String> {
        let mut best: HashMap<u32, usize> = HashMap::new();
        for (i, p) in self.peers.iter().enumerate() {
            if p.back_at.is_some() && !p.crashed {
                continue;
            }
            for &k in p.base.iter().chain(&p.wave) {
                let e = best.entry(k).or_insert(i);
                if self.peers[*e].peer.local_pref < p.peer.local_pref {
                    *e = i;
                }
            }
        }
        best.into_iter()
            .map(|(k, i)| {
                (
                    peer::prefix(k).to_string(),
                    self.peers[i].peer.addr().to_string(),
                )
            })
            .collect()
    }

    /// A quiescent point: every session Established with nothing stale
    /// and the peer's whole table accepted, the kernel equal to the
    /// expected routes (waited for, up to a minute), D's RIB the same.
    /// `at_rest`: D's figures are read after it has been left alone for
    /// `REST`.
    fn settle(&mut self, when: &str, since: Instant, at_rest: bool) -> Result<Quiet, String> {
        self.sessions_kept()?;
        let expected = self.expected();
        let limit = Duration::from_secs(60);
        let wanted: HashMap<String, usize> = self
            .peers
            .iter()
            .map(|p| (p.peer.addr().to_string(), p.base.len() + p.wave.len()))
            .collect();
        let mut neighbors = String::new();
        let sessions = crate::lab::eventually(limit, || {
            let v = self.d.json(&["neighbor"]);
            let Some(list) = v.as_array() else {
                return false;
            };
            neighbors = list
                .iter()
                .filter(|n| {
                    let addr = n["address"].as_str().unwrap_or("");
                    n["state"] != "Established"
                        || n["stale"].as_array().is_some_and(|s| !s.is_empty())
                        || n["accepted"]["ipv4"].as_u64() != wanted.get(addr).map(|&c| c as u64)
                })
                .map(|n| {
                    format!(
                        "{} {} stale {} accepted {}",
                        n["address"], n["state"], n["stale"], n["accepted"]
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            list.len() == wanted.len() && neighbors.is_empty()
        });
        if !sessions {
            return Err(format!(
                "{when}: sessions not settled in {limit:?}: {neighbors}"
            ));
        }
        let mut kernel = HashMap::new();
        let matched = crate::lab::eventually(limit, || {
            kernel = sample::kernel_routes(self.d.host());
            kernel == expected
        });
        let converged = since.elapsed();
        if !matched {
            return Err(format!(
                "{when}: {}",
                differences("kernel", &kernel, &expected)
            ));
        }
        // The listing comes in pages: each prefix once.
        let listed = self.d.rib(false);
        let count = listed.len();
        let rib: HashMap<String, String> =
            listed.into_iter().map(|r| (r.prefix, r.next_hop)).collect();
        if rib.len() != count {
            return Err(format!(
                "{when}: the RIB listing has {count} routes for {} prefixes",
                rib.len()
            ));
        }
        if rib != expected {
            return Err(format!("{when}: {}", differences("RIB", &rib, &expected)));
        }
        self.report.checks += 1;
        if at_rest {
            // D gives freed heap pages back once it has been quiet for a
            // moment (agent/src/alloc.rs): the band is what it holds then.
            std::thread::sleep(REST);
        }
        Ok(Quiet {
            gauge: Gauge::read(self.d.host(), self.pid),
            routes: expected.len(),
            converged,
        })
    }

    /// After a wave's withdrawal D is back where the first wave left it.
    fn check_band(&self, w: usize, q: Quiet) -> Result<(), String> {
        let Some(first) = self.report.after_waves.first() else {
            return Ok(());
        };
        let (a, b) = (first.gauge, q.gauge);
        if b.rss_kb > a.rss_kb + RSS_SLACK_KB {
            return Err(format!(
                "wave {w}: RSS {} kB after the withdrawal, {} kB after the first wave's",
                b.rss_kb, a.rss_kb
            ));
        }
        if b.fds.abs_diff(a.fds) > FD_SLACK {
            return Err(format!(
                "wave {w}: {} open descriptors after the withdrawal, {} after the first wave's",
                b.fds, a.fds
            ));
        }
        if let (Some(x), Some(y)) = (a.tasks, b.tasks) {
            if y.abs_diff(x) > TASK_SLACK {
                return Err(format!(
                    "wave {w}: {y} runtime tasks after the withdrawal, {x} after the first wave's"
                ));
            }
        }
        Ok(())
    }

    /// D ran the whole time: the same process, no panic in its log.
    fn finish(&mut self) -> Result<(), String> {
        let pid = crate::lab::pid_in(self.d.host(), "podbgp");
        if pid != Some(self.pid) {
            return Err(format!(
                "podbgp is not the process it was (pid {:?}, was {})\n{}",
                pid,
                self.pid,
                self.tail_of_log()
            ));
        }
        let log = self.lab.logs(self.d.host());
        if log.contains("panicked") {
            return Err(format!("podbgp panicked\n{}", self.tail_of_log()));
        }
        Ok(())
    }

    fn tail_of_log(&self) -> String {
        let log = self.lab.logs(self.d.host());
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// What differs between `got` and `want`, briefly.
fn differences(
    what: &str,
    got: &HashMap<String, String>,
    want: &HashMap<String, String>,
) -> String {
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(5)
        .collect();
    let wrong: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .take(5)
        .map(|(k, v)| format!("{k} via {} (want {v})", got[k]))
        .collect();
    format!(
        "{what} holds {} routes, {} expected; missing e.g. {missing:?}, extra e.g. {extra:?}, wrong next hop e.g. {wrong:?}",
        got.len(),
        want.len()
    )
}
