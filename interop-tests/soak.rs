//! The churn soak's smoke size (`make soak` runs it for longer): one
//! podbgp, twenty scripted iBGP peers flapping at random with graceful
//! restarts interleaved, 100,000 prefixes announced and withdrawn in
//! two waves or more, for a minute or longer; the checks are the soak's own (see
//! `lab/soak/mod.rs`). Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use lab::soak::{Plan, Soak};

#[test]
fn a_minute_of_churn_leaves_the_kernel_right_and_nothing_leaked() {
    if !lab::ready() {
        return;
    }
    let seed = lab::rng::Rng::clock_seed();
    // Two waves at least, however slow the machine: what a wave leaves
    // behind is only seen against the one before.
    let mut plan = Plan::new(Duration::from_secs(60), seed);
    plan.min_waves = 2;
    let soak = Soak::start(plan).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let report = soak
        .run(&AtomicBool::new(false))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    eprintln!(
        "seed {seed}: {} waves, {} Ceases, {} crashes, {} checks, RSS after each wave {:?} kB",
        report.waves,
        report.ceases,
        report.crashes,
        report.checks,
        report
            .after_waves
            .iter()
            .map(|q| q.gauge.rss_kb)
            .collect::<Vec<_>>()
    );
    assert!(report.waves >= 2, "fewer than two waves");
    assert!(
        report.ceases > 0 && report.crashes > 0,
        "no flaps of both kinds"
    );
    // Before the first wave, after each wave's announcement, flaps and
    // withdrawal.
    assert_eq!(report.checks, 1 + 3 * report.waves);
}
