//! `make scale`: podbgp at cluster sizes from ten to a thousand nodes, as
//! a full mesh (up to 100 nodes: past that its sessions grow as n²) and
//! with 2 and 4 reflectors chosen from the Node API, podbgp's and BIRD's
//! in the same run, each node a network namespace (see
//! `interop-tests/lab/scale/`). For each size and topology, one row:
//!
//! - the time from every daemon started to every kernel holding every
//!   other node's pod prefix;
//! - one node joining (Node object and agent), leaving with a Cease and
//!   dying (off the switch and killed): p50 / p99 to the last kernel of
//!   the other nodes, over `TRIALS` and `DEATHS` trials (p99 is the
//!   largest under a hundred);
//! - a tenth of the nodes (at most 100) leaving at once (Node objects
//!   deleted) and joining at once, and whether any other route moved or
//!   any agent listed the API again (a resync);
//! - RSS and CPU of the agents and the reflectors, idle after converging,
//!   and the CPU time an agent took to start and converge.
//!
//! Each row ends with every kernel checked to hold exactly the other
//! nodes' pod prefixes, each via its node; a row that does not is where
//! the run stops.
//!
//! Usage: `scale [SIZES] [REFLECTORS]`, e.g. `scale 10,50,100 0,2,4`; the
//! defaults are 10,50,100,250,500,1000 and 0,2,4.
//!
//! A size the machine cannot hold stops the run, saying why. Needs root
//! and the podbgp binary beside this program's directory (or `PODBGP`).

#[path = "../../interop-tests/lab/mod.rs"]
mod lab;

use std::process::ExitCode;
use std::time::Duration;

use lab::scale::events::{p50_p99, Loss, LISTS_PER_AGENT};
use lab::scale::{Plan, Reflector, Scale, HOLD_TIME, REFLECTOR_NICE};
use lab::Lab;

/// Past this many nodes a full mesh is not run.
const MESH_MAX: usize = 100;
/// How long a size may take to converge.
const LIMIT: Duration = Duration::from_secs(300);
/// How long one join or loss may take.
const EVENT_LIMIT: Duration = Duration::from_secs(60);
/// The idle window RSS and CPU are measured over.
const IDLE: Duration = Duration::from_secs(10);
/// Joins and Ceases per row.
const TRIALS: usize = 10;
/// Deaths per row (each waits out the hold time).
const DEATHS: usize = 3;
/// The most nodes of a group joining or leaving at once.
const CHURN_MAX: usize = 100;

fn list(arg: Option<&String>, default: &[usize]) -> Result<Vec<usize>, String> {
    match arg {
        None => Ok(default.to_vec()),
        Some(a) => a
            .split(',')
            .map(|x| x.trim().parse().map_err(|_| format!("{x}: not a number")))
            .collect(),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (
        list(args.first(), &[10, 50, 100, 250, 500, 1000]),
        list(args.get(1), &[0, 2, 4]),
    );
    let (Ok(sizes), Ok(topologies)) = parsed else {
        eprintln!("usage: scale [SIZES] [REFLECTORS], e.g. scale 10,50,100 0,2,4");
        return ExitCode::from(2);
    };
    if args.len() > 2 || sizes.iter().any(|&n| !(2..=1000).contains(&n)) {
        eprintln!("usage: scale [SIZES] [REFLECTORS]; sizes from 2 to 1000");
        return ExitCode::from(2);
    }
    lab::scale::clean_up_on_signal();
    lab::scale::harness_first();
    if !lab::ready() {
        return ExitCode::FAILURE;
    }
    println!(
        "podbgp scale: hold time {HOLD_TIME} s, BFD off; join and Cease p50/p99 over {TRIALS} trials, \
         death over {DEATHS}; reflectors at nice {REFLECTOR_NICE}; {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>5} {:<22} {:>8} {:>9} {:>15} {:>15} {:>13} {:>21} {:>13} {:>9} {:>9} {:>13}",
        "nodes",
        "topology",
        "sessions",
        "converged",
        "join ms",
        "Cease ms",
        "death s",
        "group out / in s",
        "agent MB",
        "start ms",
        "idle CPU",
        "reflector"
    );
    // A row whose trials fail says why and the run goes on; a size the
    // machine cannot build or start stops it.
    let mut failed = false;
    for &nodes in &sizes {
        for &reflectors in &topologies {
            let plans = if reflectors == 0 {
                vec![Plan::mesh(nodes)]
            } else {
                vec![
                    Plan::reflected(nodes, reflectors, Reflector::Podbgp),
                    Plan::reflected(nodes, reflectors, Reflector::Bird),
                ]
            };
            if (reflectors == 0 && nodes > MESH_MAX) || reflectors >= nodes {
                continue;
            }
            for plan in plans {
                let run = std::panic::catch_unwind(|| measure(plan));
                while lab::scale::interrupted() {
                    // Taking the lab down ends the process.
                    std::thread::park();
                }
                match run {
                    Ok(Ok(line)) => println!("{line}"),
                    Ok(Err(Failure::Row(why))) => {
                        println!("{nodes:>5} {:<22} failed: {why}", plan.name());
                        failed = true;
                    }
                    Ok(Err(Failure::Size(why))) => {
                        println!("stopped at {nodes} nodes ({}): {why}", plan.name());
                        return ExitCode::FAILURE;
                    }
                    Err(e) => {
                        let why = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        let why = why.lines().next().unwrap_or("").to_string();
                        println!("stopped at {nodes} nodes ({}): {why}", plan.name());
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A fraction in [0, 1), from the clock: enough to spread trials.
fn random_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn pair(samples: &[Duration], unit: fn(Duration) -> String) -> String {
    p50_p99(samples).map_or("-".into(), |(a, b)| format!("{} / {}", unit(a), unit(b)))
}

/// Why a row has no figures.
enum Failure {
    /// Its trials went wrong: said in its row, and the run goes on.
    Row(String),
    /// The machine does not hold this size: the run stops here.
    Size(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure::Row(why)
    }
}

/// One size and topology: its table row, or why it could not finish.
fn measure(plan: Plan) -> Result<String, Failure> {
    let n = plan.nodes;
    eprintln!("scale: {n} nodes, {}: building", plan.name());
    let mut s = Scale::build(Lab::new("scale"), plan);
    eprintln!("scale: starting {n} daemons");
    let start = s.start(LIMIT);
    let converged = start.took.ok_or_else(|| {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load = load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        Failure::Size(format!(
            "not converged within {LIMIT:?}: {} of {} routes not in the kernels yet (kernel of \
             node, prefix of node: {:?}, ...); load average {load}; {} sessions ended by an \
             expired hold timer",
            start.left.0,
            start.left.1,
            start.missing,
            s.hold_expiries()
        ))
    })?;
    eprintln!("scale: converged in {:.2} s", converged.as_secs_f64());
    let idle = s.idle(IDLE);
    let last = n - 1;
    let (mut joins, mut ceases, mut deaths) = (Vec::new(), Vec::new(), Vec::new());
    let mut moved = 0;
    let mut gone = |what: &str, e: lab::scale::Settled| {
        moved += e.others;
        e.took.ok_or(format!(
            "{what} not seen everywhere within {EVENT_LIMIT:?}: (kernel of node, prefix of node) {:?}",
            e.missing
        ))
    };
    for _ in 0..TRIALS {
        ceases.push(gone("Cease", s.leave(last, Loss::Cease, EVENT_LIMIT))?);
        joins.push(gone("a join", s.join(last, EVENT_LIMIT))?);
    }
    eprintln!("scale: joins and Ceases done");
    for _ in 0..DEATHS {
        // A node dies at any moment of its keepalive cycle, not just as it
        // has joined: its sessions run for a keepalive interval (a third of
        // the hold time) and a random part of another first.
        let keepalive = Duration::from_secs(u64::from(plan.hold / 3).max(1));
        std::thread::sleep(keepalive + keepalive.mul_f64(random_fraction()));
        deaths.push(gone("a death", s.leave(last, Loss::Dead, EVENT_LIMIT))?);
        gone("a rejoin", s.join(last, EVENT_LIMIT))?;
    }
    let size = (n / 10).clamp(1, CHURN_MAX);
    let group: Vec<usize> = (n - size..n).filter(|&i| i >= plan.reflectors).collect();
    let out = s.churn_leave(&group, LIMIT);
    let back = s.churn_join(&group, LIMIT);
    let (out_lists, back_lists) = (out.lists, back.lists);
    let out_took = gone("a group leaving", out.settled)?;
    let in_took = gone("a group joining", back.settled)?;
    let relists = (out_lists + back_lists).saturating_sub(LISTS_PER_AGENT * group.len() as u32);
    let churn = format!(
        "{} {} / {}{}",
        group.len(),
        secs(out_took),
        secs(in_took),
        if moved + relists as usize == 0 {
            ""
        } else {
            " !"
        }
    );
    if moved > 0 || relists > 0 {
        eprintln!(
            "scale: {moved} changes to other nodes' routes, {relists} lists beyond new agents'"
        );
    }
    // The end: every kernel holds exactly the other nodes' pod prefixes,
    // each via its node.
    let mut wrong = None;
    lab::eventually(EVENT_LIMIT, || {
        wrong = s.misrouted();
        wrong.is_none()
    });
    if let Some(w) = wrong {
        return Err(Failure::Row(w));
    }
    let reflector = idle
        .reflector
        .map_or("-".to_string(), |(rss, cpu)| format!("{rss:.1} / {cpu:.2}"));
    Ok(format!(
        "{:>5} {:<22} {:>8} {:>9} {:>15} {:>15} {:>13} {:>21} {:>13} {:>9.0} {:>9.3} {:>13}",
        n,
        plan.name(),
        plan.sessions(),
        secs(converged),
        pair(&joins, ms),
        pair(&ceases, ms),
        pair(&deaths, secs),
        churn,
        format!("{:.1} / {:.1}", idle.agent_rss.0, idle.agent_rss.1),
        idle.agent_start_cpu,
        idle.agent_cpu,
        reflector
    ))
}
