//! `make scale`: podbgp at cluster sizes from ten to a thousand nodes, as
//! a full mesh (up to 100 nodes: past that its sessions grow as n²) and
//! with 2 and 4 reflectors chosen from the Node API, each node a network
//! namespace (see `interop-tests/lab/scale.rs`). For each size and
//! topology: the time from every agent started to every kernel holding
//! every other node's pod prefix, then the agents' RSS and idle CPU.
//!
//!   scale [SIZES] [REFLECTORS]     e.g. `scale 10,50,100 0,2,4` (the
//!                                  defaults: 10,50,100,250,500,1000 and 0,2,4)
//!
//! A size the machine cannot hold stops the run, saying why. Needs root
//! and the podbgp binary beside this program's directory (or `PODBGP`).

#[path = "../../interop-tests/lab/mod.rs"]
mod lab;

use std::process::ExitCode;
use std::time::Duration;

use lab::scale::{Plan, Scale};
use lab::Lab;

/// Past this many nodes a full mesh is not run.
const MESH_MAX: usize = 100;
/// How long a size may take to converge.
const LIMIT: Duration = Duration::from_secs(300);
/// The idle window RSS and CPU are measured over.
const IDLE: Duration = Duration::from_secs(10);

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
    if !lab::ready() {
        return ExitCode::FAILURE;
    }
    println!(
        "{:>6} {:<24} {:>9} {:>13} {:>17} {:>12} {:>18}",
        "nodes",
        "topology",
        "sessions",
        "converged s",
        "agent RSS MB mean/max",
        "agent CPU %",
        "reflector MB / CPU %"
    );
    for &nodes in &sizes {
        for &reflectors in &topologies {
            if reflectors == 0 && nodes > MESH_MAX {
                continue;
            }
            if reflectors >= nodes {
                continue;
            }
            let plan = Plan { nodes, reflectors };
            let run = std::panic::catch_unwind(|| measure(plan));
            match run {
                Ok(Some(line)) => println!("{line}"),
                Ok(None) => {
                    println!(
                        "stopped: {nodes} nodes ({}) did not converge within {LIMIT:?}",
                        plan.name()
                    );
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
    ExitCode::SUCCESS
}

/// One size and topology: its table row, `None` if it never converged.
fn measure(plan: Plan) -> Option<String> {
    eprintln!("scale: {} nodes, {}: building", plan.nodes, plan.name());
    let mut s = Scale::build(Lab::new("scale"), plan);
    eprintln!("scale: starting {} agents", plan.nodes);
    let took = s.start(LIMIT)?;
    let f = s.idle(IDLE);
    let reflector = f
        .reflector
        .map_or("-".to_string(), |(rss, cpu)| format!("{rss:.1} / {cpu:.2}"));
    Some(format!(
        "{:>6} {:<24} {:>9} {:>13.2} {:>17} {:>12.3} {:>18}",
        plan.nodes,
        plan.name(),
        plan.sessions(),
        took.as_secs_f64(),
        format!("{:.1} / {:.1}", f.agent_rss.0, f.agent_rss.1),
        f.agent_cpu,
        reflector
    ))
}
