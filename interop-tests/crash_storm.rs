//! A crash storm: one node's agent killed (SIGKILL) again and again at
//! random moments while its pod talks to the other node's pod.
//!
//!   node a (podbgp, pod 10.244.1.1) ---- node b (podbgp, pod 10.244.2.1)
//!   iBGP, graceful restart and BFD (300 ms x 3) on the session
//!
//! Each kill closes the agent's sockets: b sees the session end with the
//! TCP connection (not a silence), keeps a's routes as graceful restart
//! says, and a's kernel keeps its routes (no one removes them; the agent
//! adopts them when it is back). So no packet between the pods is lost and
//! neither kernel ever lacks the other's pod route. Then node a dies for
//! real (its cable cut): b drops its route within the BFD time. Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lab::podbgp::Podbgp;
use lab::{eventually, Advert, BfdSpec, Lab, PeerSpec, Speaker};

const CRASHES: usize = 20;

const ECHO: &str = "import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('10.244.2.1', 9000))
while True:
    data, a = s.recvfrom(64)
    s.sendto(data, a)
";

/// Numbered datagrams from pod a to pod b, one every 20 ms, until the file
/// STOPFILE exists; then how many came back.
const PROBE: &str = "import os, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('10.244.1.1', 0))
s.setblocking(False)
back = set()
def drain():
    while True:
        try:
            data, _ = s.recvfrom(64)
            back.add(int(data))
        except BlockingIOError:
            return
sent = 0
while not os.path.exists('STOPFILE'):
    try:
        s.sendto(str(sent).encode(), ('10.244.2.1', 9000))
    except OSError:
        pass
    sent += 1
    time.sleep(0.02)
    drain()
end = time.time() + 1
while time.time() < end:
    drain()
    time.sleep(0.01)
print('lost', sent - len(back), 'of', sent, 'sent', flush=True)
";

/// A node's pod: an address of the node's own (on its loopback), in the
/// /24 the node advertises.
fn pod(host: &lab::Host, addr: &str) {
    let args = ["ip", "addr", "add", addr, "dev", "lo"];
    let out = host.exec(&args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn has_route(host: &lab::Host, prefix: &str) -> bool {
    host.text(&["ip", "-4", "route", "show", prefix])
        .contains(prefix)
}

#[test]
fn killed_twenty_times_under_traffic_the_node_loses_no_packet_and_a_dead_node_goes_at_once() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("crash-storm");
    let (ha, hb) = (lab.host("a"), lab.host("b"));
    pod(&ha, "10.244.1.1/32");
    pod(&hb, "10.244.2.1/32");
    let bfd = BfdSpec {
        min_rx: 300,
        min_tx: 300,
        multiplier: 3,
    };
    let mut a = Podbgp::new(&ha, 64512);
    let mut b = Podbgp::new(&hb, 64512);
    let mut to_b = PeerSpec::new(hb.v4.into(), 64512);
    to_b.bfd = Some(bfd);
    let mut to_a = PeerSpec::new(ha.v4.into(), 64512);
    to_a.bfd = Some(bfd);
    a.add_peer(to_b);
    b.add_peer(to_a);
    a.advertise(Advert::plain("10.244.1.0/24"));
    b.advertise(Advert::plain("10.244.2.0/24"));
    b.start(&mut lab);
    a.start(&mut lab);
    b.wait_established(&lab, ha.v4.into());
    b.wait_kernel(&lab, "10.244.1.0/24");
    a.wait_kernel(&lab, "10.244.2.0/24");

    lab.spawn(&hb, &["python3", "-c", ECHO], "echo.log");
    let echoing = eventually(Duration::from_secs(10), || {
        hb.text(&["ss", "-Hunl", "sport", "= :9000"])
            .contains("9000")
    });
    assert!(echoing, "the echo server did not start");

    // Both kernels watched every 20 ms for a missing pod route.
    let stop = AtomicBool::new(false);
    let (missing_a, missing_b, samples) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if !has_route(&ha, "10.244.2.0/24") {
                    missing_a.fetch_add(1, Ordering::Relaxed);
                }
                if !has_route(&hb, "10.244.1.0/24") {
                    missing_b.fetch_add(1, Ordering::Relaxed);
                }
                samples.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let stop_file = ha.dir.join("STOP");
        let probe = PROBE.replace("STOPFILE", &stop_file.to_string_lossy());
        lab.spawn(&ha, &["python3", "-c", &probe], "probe.log");
        std::thread::sleep(Duration::from_millis(500));

        // Kill a's agent at random moments (0.3 to 2.3 s after it is back),
        // start it again at once, as a DaemonSet restarts it.
        let mut rng: u64 = 0x00c0_ffee_1234_5678;
        let storm = Instant::now();
        for _ in 0..CRASHES {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            std::thread::sleep(Duration::from_millis(300 + rng % 2000));
            lab.kill_all_in_named(&ha, "podbgp");
            a.start(&mut lab);
            b.wait_established(&lab, ha.v4.into());
        }
        let storm = storm.elapsed();
        std::fs::write(&stop_file, b"").expect("stop file");
        stop.store(true, Ordering::Relaxed);
        let log = ha.dir.join("probe.log");
        let done = eventually(Duration::from_secs(10), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("sent"))
        });
        let result = std::fs::read_to_string(&log).unwrap_or_default();
        println!(
            "crash storm: {CRASHES} kills in {:.1} s; {}; pod routes missing in {} and {} of {} samples",
            storm.as_secs_f64(),
            result.trim(),
            missing_a.load(Ordering::Relaxed),
            missing_b.load(Ordering::Relaxed),
            samples.load(Ordering::Relaxed)
        );
        assert!(done, "the probe did not finish: {result}");
        assert!(
            result.starts_with("lost 0 "),
            "packets lost: {result}\n{}",
            lab.logs(&hb)
        );
        assert_eq!(
            missing_a.load(Ordering::Relaxed),
            0,
            "a's kernel lost b's pod route"
        );
        assert_eq!(
            missing_b.load(Ordering::Relaxed),
            0,
            "b's kernel lost a's pod route\n{}",
            lab.logs(&hb)
        );
    });

    // Node a dies for real: b hears nothing more, and BFD ends it.
    let cut = Instant::now();
    lab.cut(&ha);
    let gone = eventually(Duration::from_secs(5), || !has_route(&hb, "10.244.1.0/24"));
    let took = cut.elapsed();
    assert!(
        gone,
        "b kept a dead node's route for 5 s\n{}",
        lab.logs(&hb)
    );
    println!(
        "dead node: its route left b's kernel {:.2} s after its cable was cut",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}
