//! What the soak watches of the daemon: its RSS, open descriptors and
//! runtime tasks (from its metrics), and the routes of its protocol in the
//! kernel; once a second by a thread of its own, and on demand at the
//! quiescent points.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::Host;

/// The daemon's state at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauge {
    pub rss_kb: u64,
    pub fds: usize,
    /// `podbgp_tokio_tasks`, when the metrics answered.
    pub tasks: Option<u64>,
}

impl Gauge {
    pub fn read(host: &Host, pid: i32) -> Gauge {
        let (_, rss_kb) = crate::lab::usage(pid);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        Gauge {
            rss_kb,
            fds,
            tasks: tokio_tasks(host),
        }
    }
}

/// One line of the samples file.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Duration,
    pub phase: String,
    pub gauge: Gauge,
    pub kernel: usize,
    pub expected: usize,
}

/// The routes of protocol 200 in the host's kernel, prefix → next hop
/// (`ip` prints a route of one next hop on one line; a multipath route's
/// next hops on lines of their own, which this reads as no next hop).
pub fn kernel_routes(host: &Host) -> HashMap<String, String> {
    host.text(&["ip", "-4", "route", "show", "proto", "200"])
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let via = words
                .iter()
                .position(|w| *w == "via")
                .and_then(|i| words.get(i + 1))
                .map_or(String::new(), |w| w.to_string());
            Some((words.first()?.to_string(), via))
        })
        .collect()
}

/// How many routes of protocol 200 the kernel holds.
fn kernel_count(host: &Host) -> usize {
    host.text(&["ip", "-4", "route", "show", "proto", "200"])
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .count()
}

/// `podbgp_tokio_tasks` from the daemon's metrics (127.0.0.1:9179 in its
/// namespace), read with a bare HTTP/1.1 request.
pub fn tokio_tasks(host: &Host) -> Option<u64> {
    let at = SocketAddr::from(([127, 0, 0, 1], 9179));
    let mut s = crate::lab::connect_in(host, at).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix("podbgp_tokio_tasks "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// The once-a-second sampler.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    phase: Arc<Mutex<String>>,
    expected: Arc<AtomicUsize>,
    thread: Option<JoinHandle<Vec<Sample>>>,
}

impl Sampler {
    /// Sample `pid` in `host` every second, each line also appended to
    /// `file` (CSV) as it is taken.
    pub fn start(host: Host, pid: i32, file: std::path::PathBuf) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(Mutex::new(String::from("start")));
        let expected = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, phase, expected) = (stop.clone(), phase.clone(), expected.clone());
            std::thread::spawn(move || {
                let mut out = std::fs::File::create(&file).ok();
                if let Some(f) = out.as_mut() {
                    let _ = writeln!(
                        f,
                        "seconds,phase,rss_kb,fds,tokio_tasks,kernel_routes,expected_routes"
                    );
                }
                let start = Instant::now();
                let mut samples = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let tick = Instant::now();
                    let gauge = Gauge::read(&host, pid);
                    let s = Sample {
                        at: start.elapsed(),
                        phase: phase.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                        gauge,
                        kernel: kernel_count(&host),
                        expected: expected.load(Ordering::SeqCst),
                    };
                    if let Some(f) = out.as_mut() {
                        let _ = writeln!(
                            f,
                            "{:.1},{},{},{},{},{},{}",
                            s.at.as_secs_f64(),
                            s.phase,
                            s.gauge.rss_kb,
                            s.gauge.fds,
                            s.gauge.tasks.map_or(String::new(), |t| t.to_string()),
                            s.kernel,
                            s.expected
                        );
                    }
                    samples.push(s);
                    let rest = Duration::from_secs(1).saturating_sub(tick.elapsed());
                    let until = Instant::now() + rest;
                    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                samples
            })
        };
        Sampler {
            stop,
            phase,
            expected,
            thread: Some(thread),
        }
    }

    pub fn phase(&self, phase: &str, expected: usize) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase.to_string();
        self.expected.store(expected, Ordering::SeqCst);
    }

    /// Stop and hand over every sample taken.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
