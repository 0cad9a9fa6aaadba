//! `make soak`: the churn soak (`interop-tests/lab/soak/`) for a given
//! time: one podbgp, twenty scripted iBGP peers flapping at random
//! (Ceases and crashes, graceful restart interleaved), 100,000 prefixes
//! announced and withdrawn in waves, the kernel and the RIB checked
//! against what the peers sent at every quiescent point, RSS, descriptors
//! and runtime tasks sampled once a second.
//!
//! Usage: `soak [SECONDS] [SEED]` (600 and a seed from the clock by
//! default). Ctrl-C ends the run after the step in progress, with the
//! figures so far. Needs root and the podbgp binary beside this program's
//! directory (or `PODBGP`).

#[path = "../../interop-tests/lab/mod.rs"]
mod lab;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lab::rng::Rng;
use lab::soak::{Plan, Report, Soak};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds = args.first().map_or(Ok(600), |a| a.parse::<u64>());
    let seed = args
        .get(1)
        .map_or(Ok(Rng::clock_seed()), |a| a.parse::<u64>());
    let (Ok(seconds), Ok(seed)) = (seconds, seed) else {
        eprintln!("usage: soak [SECONDS] [SEED]");
        return ExitCode::from(2);
    };
    if args.len() > 2 || seconds == 0 {
        eprintln!("usage: soak [SECONDS] [SEED]; SECONDS above 0");
        return ExitCode::from(2);
    }
    if !lab::ready() {
        return ExitCode::FAILURE;
    }
    // SIGINT or SIGTERM ends the run after the step in progress.
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    lab::on_signal(move |_| {
        eprintln!("soak: stopping after the step in progress");
        stopping.store(true, Ordering::SeqCst);
    });
    let mut plan = Plan::new(Duration::from_secs(seconds), seed);
    let samples = std::path::PathBuf::from("soak-samples.csv");
    plan.samples_file = Some(samples.clone());
    println!(
        "podbgp soak: {seconds} s, {} peers, {} prefixes a wave from two peers each, {} held throughout, \
         flaps for {:?} a wave; seed {seed}",
        plan.peers, plan.wave, plan.base, plan.chaos
    );
    let soak = match Soak::start(plan) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("soak: the lab did not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let work = soak.work();
    match soak.run(&stop) {
        Ok(report) => {
            print(&report);
            println!("samples (one a second): {}", samples.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("soak FAILED: {e}\n(lab in {})", work.display());
            ExitCode::FAILURE
        }
    }
}

fn print(r: &Report) {
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "{:.0} s, {} wave{}{}: {} Ceases, {} crashes (graceful restarts); {} paths announced, {} withdrawn",
        r.elapsed.as_secs_f64(),
        r.waves,
        if r.waves == 1 { "" } else { "s" },
        if r.interrupted { " (interrupted)" } else { "" },
        r.ceases,
        r.crashes,
        r.announced,
        r.withdrawn
    );
    println!(
        "{} quiescent points: kernel = RIB = what the peers sent at each; slowest session to come up {:.0} ms",
        r.checks,
        r.establish_max.as_secs_f64() * 1e3
    );
    if let Some(s) = r.start {
        println!(
            "before the first wave: RSS {:.1} MB, {} descriptors, {} tasks, {} routes",
            mb(s.gauge.rss_kb),
            s.gauge.fds,
            s.gauge.tasks.unwrap_or(0),
            s.routes
        );
    }
    for (i, (l, a)) in r.loaded.iter().zip(&r.after_waves).enumerate() {
        println!(
            "wave {i}: {} routes in {:.2} s, RSS {:.1} MB; withdrawn in {:.2} s: RSS {:.1} MB, {} descriptors, {} tasks",
            l.routes,
            l.converged.as_secs_f64(),
            mb(l.gauge.rss_kb),
            a.converged.as_secs_f64(),
            mb(a.gauge.rss_kb),
            a.gauge.fds,
            a.gauge.tasks.unwrap_or(0)
        );
    }
    let (lo, hi) = r.range(|s| s.gauge.rss_kb);
    let (flo, fhi) = r.range(|s| s.gauge.fds as u64);
    let (tlo, thi) = r.range(|s| s.gauge.tasks.unwrap_or(0));
    println!(
        "over {} samples: RSS {:.1}–{:.1} MB, descriptors {flo}–{fhi}, tasks {tlo}–{thi}",
        r.samples.len(),
        mb(lo),
        mb(hi)
    );
}
