//! BFD's idle cost (`cargo bench -p agent --bench bfd_idle`, part of `make
//! bench`; root, bird2): one node with 10 BFD sessions at 100 ms (3 x 100
//! ms detection), its BGP sessions idle, and the CPU and memory it spends,
//! first podbgp on it, then BIRD in its place with the same ten sessions,
//! in the same run.
//!
//!   hub (podbgp, then BIRD) --- ten podbgp peers, one namespace each
//!
//! CPU is the process's user and system time over IDLE_SECONDS (default
//! 20) once every session is Up, as a share of one core.

#[path = "lab/mod.rs"]
mod lab;

use std::time::{Duration, Instant};

use lab::bird::Bird;
use lab::podbgp::Podbgp;
use lab::{eventually, BfdSpec, Host, Lab, PeerSpec, Speaker};

const PEERS: usize = 10;
const FAST: BfdSpec = BfdSpec {
    min_rx: 100,
    min_tx: 100,
    multiplier: 3,
};

/// CPU share of one core and RSS of `pid` over `seconds`.
fn measure(pid: i32, seconds: u64) -> (f64, u64) {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let (t0, _) = lab::usage(pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let (t1, rss) = lab::usage(pid);
    let elapsed = start.elapsed().as_secs_f64();
    ((t1.saturating_sub(t0)) as f64 / hz / elapsed * 100.0, rss)
}

fn main() {
    if !lab::ready() {
        return;
    }
    let seconds: u64 = std::env::var("IDLE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut lab = Lab::new("bfd-idle");
    let hub = lab.host("hub");
    let peers: Vec<Host> = (0..PEERS).map(|i| lab.host(&format!("p{i}"))).collect();
    let session = |h: &Host, asn: u32| {
        let mut p = PeerSpec::new(h.v4.into(), asn);
        p.bfd = Some(FAST);
        p
    };
    let mut others = Vec::new();
    for (i, h) in peers.iter().enumerate() {
        let mut p = Podbgp::new(h, 65001 + i as u32);
        p.add_peer(session(&hub, 64512));
        p.start(&mut lab);
        others.push(p);
    }

    eprintln!("bfd_idle: podbgp with {PEERS} BFD sessions at 3 x 100 ms");
    let mut p = Podbgp::new(&hub, 64512);
    for (i, h) in peers.iter().enumerate() {
        p.add_peer(session(h, 65001 + i as u32));
    }
    p.start(&mut lab);
    let all_up = || {
        let list = p.json(&["bfd"]);
        let sessions = list.as_array().cloned().unwrap_or_default();
        sessions.len() == PEERS && sessions.iter().all(|s| s["state"] == "Up")
    };
    assert!(
        eventually(Duration::from_secs(30), all_up),
        "podbgp: sessions not Up: {}",
        p.json(&["bfd"])
    );
    let pid = lab::pid_in(&hub, "podbgp").expect("the hub's podbgp");
    let (podbgp_cpu, podbgp_rss) = measure(pid, seconds);
    let sent: u64 = p
        .json(&["bfd"])
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["packets_sent"].as_u64())
        .sum();
    lab.kill_all_in_named(&hub, "podbgp");

    eprintln!("bfd_idle: BIRD in its place, the same sessions");
    let mut b = Bird::new(&hub, 64512);
    for (i, h) in peers.iter().enumerate() {
        b.add_peer(session(h, 65001 + i as u32));
    }
    b.start(&mut lab);
    let bird_up = || {
        b.birdc(&["show", "bfd", "sessions"])
            .lines()
            .filter(|l| l.contains(" Up "))
            .count()
            == PEERS
    };
    assert!(
        eventually(Duration::from_secs(60), bird_up),
        "BIRD: sessions not Up: {}",
        b.birdc(&["show", "bfd", "sessions"])
    );
    let pid = lab::pid_in(&hub, "bird").expect("the hub's BIRD");
    let (bird_cpu, bird_rss) = measure(pid, seconds);

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "BFD idle cost: one node, {PEERS} sessions Up at 3 x 100 ms, over {seconds} s; load average {}",
        load.split_whitespace().next().unwrap_or("?")
    );
    println!("{:<10} {:>14} {:>10}", "", "CPU, % of a core", "RSS MB");
    println!(
        "{:<10} {:>14.2} {:>10.1}",
        "podbgp",
        podbgp_cpu,
        podbgp_rss as f64 / 1024.0
    );
    println!(
        "{:<10} {:>14.2} {:>10.1}",
        "BIRD",
        bird_cpu,
        bird_rss as f64 / 1024.0
    );
    println!("(podbgp sent {sent} packets in all, from the sessions' start)");
}
