//! The control API fed garbage, on loopback in the daemon's namespace:
//! random methods, paths, headers and bodies; a header of a megabyte; and
//! clients that open connections and trickle bytes for ever (slowloris).
//! The daemon answers every request it can parse with a client error or a
//! success, never a server error; it keeps answering the CLI; its memory
//! stays bounded; it logs no panic. Needs root.

#[path = "lab/mod.rs"]
mod lab;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use lab::podbgp::Podbgp;
use lab::rng::Rng;
use lab::{Lab, PeerSpec, Speaker};

const REQUESTS: usize = 1500;

/// One random request: mostly well-framed HTTP with odd contents, some
/// not HTTP at all. `/v1/shutdown` is left out: it is a command that works.
fn request(rng: &mut Rng) -> Vec<u8> {
    let methods = [
        "GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "BREW", "G\0ET",
    ];
    let paths = [
        "/v1/global",
        "/v1/neighbors",
        "/v1/neighbors/10.77.0.2",
        "/v1/neighbors/10.77.0.2/adj-in",
        "/v1/neighbors/10.77.0.2/reset",
        "/v1/neighbors/not-an-address/adj-out",
        "/v1/rib",
        "/v1/rib?family=ipv9",
        "/v1/rib?prefix=10.0.0.0/33",
        "/v1/rib/summary",
        "/v1/fib",
        "/v1/snat",
        "/v1/bfd",
        "/",
        "/v1/../../etc/passwd",
        "/v1/rib%00",
        "//////",
    ];
    let bodies: [&[u8]; 6] = [
        b"",
        b"{}",
        b"{\"prefix\": \"10.0.0.0/8\", \"next_hop\": 12}",
        b"{\"prefix\": [",
        b"null",
        b"\xff\xfe\xfd",
    ];
    match rng.below(10) {
        // Not HTTP: random bytes, then the end of a head.
        0 => {
            let n = 1 + rng.below(300);
            let mut r = rng.bytes(n);
            r.extend_from_slice(b"\r\n\r\n");
            r
        }
        // A request line and headers with random bytes in them.
        1 => {
            let mut r = format!("GET {} HTTP/1.1\r\nHost: x\r\nX-", rng.pick(&paths)).into_bytes();
            let n = rng.below(200);
            r.extend(
                rng.bytes(n)
                    .into_iter()
                    .filter(|b| *b != b'\r' && *b != b'\n'),
            );
            r.extend_from_slice(b": y\r\n\r\n");
            r
        }
        _ => {
            let method = rng.pick(&methods);
            let mut path = rng.pick(&paths).to_string();
            if rng.below(3) == 0 {
                path.push('/');
                path.push_str(&format!("{:x}", rng.next()));
            }
            let body: Vec<u8> = match rng.below(4) {
                0 => {
                    let n = rng.below(65536);
                    rng.bytes(n)
                }
                _ => bodies[rng.below(bodies.len())].to_vec(),
            };
            // Now and then a length that is not the body's.
            let length = match rng.below(8) {
                0 => body.len() + 1 + rng.below(10),
                1 => body.len().saturating_sub(1),
                _ => body.len(),
            };
            let mut r = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
            )
            .into_bytes();
            r.extend_from_slice(&body);
            r
        }
    }
}

/// The status code of the answer on `s`, if there is one.
fn status(s: &mut TcpStream) -> Option<u16> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&answer);
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn garbage_slow_clients_and_huge_headers_leave_the_api_answering() {
    if !lab::ready() {
        return;
    }
    let mut lab = Lab::new("api-input");
    let (hd, hp) = (lab.host("d"), lab.host("peer"));
    let mut dut = Podbgp::new(&hd, 64512);
    dut.add_peer(PeerSpec::new(hp.v4.into(), 64512));
    let pid = dut.spawn(&mut lab);
    dut.wait_up(&lab);
    let api = SocketAddr::from((Ipv4Addr::LOCALHOST, 7179));
    let answers = |dut: &Podbgp| dut.cli(&["global"]).0 == 0;
    let rss_before = rss_kb(pid);

    // With the default `api.listen` the API is on loopback alone: the
    // node's own address refuses the port, from the peer as from the node.
    for (from, name) in [(&hp, "the peer"), (&hd, "the node")] {
        let outside = SocketAddr::from((hd.v4, 7179));
        let r = lab::connect_in(from, outside);
        assert!(
            r.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
            "the API answered on {outside} from {name}: {r:?}"
        );
    }

    // Random requests, each on a connection of its own.
    let mut rng = Rng::new(0x5eed_0fa9_1bad_cafe);
    let (mut answered, mut closed) = (0, 0);
    let mut server_errors = Vec::new();
    for _ in 0..REQUESTS {
        let req = request(&mut rng);
        let mut s = lab::connect_in(&hd, api).expect("connect to the API");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let _ = s.write_all(&req);
        match status(&mut s) {
            Some(code) if code >= 500 => server_errors.push((
                code,
                String::from_utf8_lossy(&req[..req.len().min(120)]).into_owned(),
            )),
            Some(_) => answered += 1,
            None => closed += 1,
        }
    }
    assert!(server_errors.is_empty(), "server errors: {server_errors:?}");
    assert!(
        answered > REQUESTS / 2,
        "only {answered} answered, {closed} closed"
    );

    // A header of a megabyte: refused (431) or cut off, nothing more.
    let mut s = lab::connect_in(&hd, api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut huge = b"GET /v1/global HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1 << 20));
    huge.extend_from_slice(b"\r\n\r\n");
    let _ = s.write_all(&huge);
    let code = status(&mut s);
    assert!(
        matches!(code, None | Some(431)),
        "a 1 MB header got {code:?}"
    );

    // Slow clients: more than the API takes at once, each sending its
    // head a byte at a time and never ending it.
    let slow: Vec<TcpStream> = (0..100)
        .filter_map(|_| lab::connect_in(&hd, api).ok())
        .collect();
    let start = Instant::now();
    let mut open = slow.len();
    while start.elapsed() < Duration::from_secs(14) && open > 0 {
        open = 0;
        for mut s in &slow {
            if s.write_all(b"G").is_ok() {
                open += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // The head timeout (10 s) has closed them all (those past the API's
    // 64 at once right away), and the CLI is answered.
    assert_eq!(open, 0, "{open} slow clients still open after 14 s");
    let ok = lab::eventually(Duration::from_secs(10), || answers(&dut));
    assert!(
        ok,
        "the API stopped answering after the slow clients\n{}",
        lab.logs(&hd)
    );
    drop(slow);

    let rss_after = rss_kb(pid);
    assert!(
        rss_after < rss_before + 20 * 1024,
        "RSS grew from {rss_before} kB to {rss_after} kB"
    );
    let logs = lab.logs(&hd);
    assert!(!logs.contains("panicked"), "{logs}");
    println!(
        "api input: {REQUESTS} random requests ({answered} answered, {closed} closed by the daemon, no 5xx); \
         1 MB header: {code:?}; 100 slow clients cut; RSS {rss_before} -> {rss_after} kB"
    );
}
