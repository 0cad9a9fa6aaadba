//! A receive-only BGP speaker for the fan-out benchmark
//! (`bgp/benches/fanout`): opens sessions from consecutive source
//! addresses to the daemon under test, answers its OPEN and keepalives,
//! and counts the IPv4 routes each session is sent, walking the NLRI of
//! every UPDATE without decoding the attributes (a Python receiver would
//! spend more CPU than the daemon it measures).
//!
//! ```text
//! sink --daemon ADDR --local FIRST_ADDR --sessions N --first-as ASN --target ROUTES
//! ```
//!
//! Events go to stdout, one a line, `EVENT UNIX_TIME key=value...` as the
//! feeder writes them: `established` (every session is up), `full`
//! (session `n` holds `ROUTES` routes: announced minus withdrawn NLRI),
//! `all-full`, `down` (a session ended; with the NOTIFICATION's code),
//! `error`. The sessions stay up until stdin ends.

use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bgp::wire::{Capability, Context, Family, Message, Open};
use bytes::BytesMut;

const HEADER: usize = 19;
const UPDATE: u8 = 2;
const NOTIFICATION: u8 = 3;
const KEEPALIVE: u8 = 4;
const OPEN: u8 = 1;
const HOLD: u16 = 180;
const KEEPALIVE_EVERY: Duration = Duration::from_secs(30);

struct Args {
    daemon: Ipv4Addr,
    local: Ipv4Addr,
    sessions: u32,
    first_as: u32,
    target: u64,
}

fn usage(why: &str) -> ! {
    eprintln!("sink: {why}");
    eprintln!(
        "usage: sink --daemon ADDR --local FIRST_ADDR --sessions N --first-as ASN --target ROUTES"
    );
    std::process::exit(2);
}

fn args() -> Args {
    let mut a = Args {
        daemon: Ipv4Addr::UNSPECIFIED,
        local: Ipv4Addr::UNSPECIFIED,
        sessions: 1,
        first_as: 65101,
        target: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> T {
            value
                .parse()
                .unwrap_or_else(|_| usage(&format!("{flag}: bad value {value:?}")))
        }
        match flag.as_str() {
            "--daemon" => a.daemon = parse(&flag, &value),
            "--local" => a.local = parse(&flag, &value),
            "--sessions" => a.sessions = parse(&flag, &value),
            "--first-as" => a.first_as = parse(&flag, &value),
            "--target" => a.target = parse(&flag, &value),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    if a.daemon.is_unspecified() || a.local.is_unspecified() || a.sessions == 0 {
        usage("--daemon, --local and --sessions are needed");
    }
    a
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn event(name: &str, fields: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{name} {:.6} {fields}", now()).and_then(|()| out.flush());
}

/// What a session reports to the main thread.
enum Report {
    Established,
    Full(u32, f64),
    Down(u32, String),
}

/// Routes in the withdrawn-routes or NLRI field `field`: each prefix is a
/// length in bits and as many bytes as that needs.
fn count_prefixes(field: &[u8]) -> Option<u64> {
    let (mut at, mut n) = (0, 0);
    while at < field.len() {
        let bits = usize::from(field[at]);
        at += 1 + bits.div_ceil(8);
        n += 1;
    }
    (at == field.len()).then_some(n)
}

/// Routes announced and withdrawn by one UPDATE body (IPv4 unicast in the
/// body itself; the daemons send no other family here).
fn count_update(body: &[u8]) -> Option<(u64, u64)> {
    let wlen = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let withdrawn = count_prefixes(body.get(2..2 + wlen)?)?;
    let rest = body.get(2 + wlen..)?;
    let alen = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let announced = count_prefixes(rest.get(2 + alen..)?)?;
    Some((announced, withdrawn))
}

fn open_bytes(asn: u32, id: Ipv4Addr) -> Vec<u8> {
    let caps = vec![Capability::Multiprotocol(Family::IPV4_UNICAST)];
    let open = Open::new(asn, HOLD, id, caps);
    let mut out = BytesMut::new();
    // An OPEN of two capabilities always encodes.
    let _ = Message::Open(open).encode(&Context::modern(), &mut out);
    out.to_vec()
}

fn keepalive_bytes() -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(HEADER as u16).to_be_bytes());
    m.push(KEEPALIVE);
    m
}

fn session(n: u32, args: &Args, tx: &mpsc::Sender<Report>) -> Result<(), String> {
    let local = Ipv4Addr::from(u32::from(args.local) + n);
    let stream = connect_from(local, args.daemon)?;
    stream
        .set_read_timeout(Some(KEEPALIVE_EVERY))
        .map_err(|e| e.to_string())?;
    let mut w = stream.try_clone().map_err(|e| e.to_string())?;
    w.write_all(&open_bytes(args.first_as + n, local))
        .map_err(|e| format!("send OPEN: {e}"))?;
    let keepalive = keepalive_bytes();
    let mut r = std::io::BufReader::with_capacity(1 << 20, stream);
    let (mut routes, mut up, mut full) = (0i64, false, false);
    let mut last_sent = Instant::now();
    let mut buf = vec![0u8; 65535];
    loop {
        if last_sent.elapsed() >= KEEPALIVE_EVERY {
            w.write_all(&keepalive).map_err(|e| e.to_string())?;
            last_sent = Instant::now();
        }
        match r.read_exact(&mut buf[..HEADER]) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(format!("read: {e}")),
        }
        let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
        if !(HEADER..=buf.len()).contains(&len) {
            return Err(format!("bad message length {len}"));
        }
        r.read_exact(&mut buf[HEADER..len])
            .map_err(|e| format!("read: {e}"))?;
        let body = &buf[HEADER..len];
        match buf[18] {
            OPEN => {
                w.write_all(&keepalive).map_err(|e| e.to_string())?;
                last_sent = Instant::now();
            }
            KEEPALIVE if !up => {
                up = true;
                let _ = tx.send(Report::Established);
            }
            UPDATE => {
                let (a, wd) = count_update(body).ok_or("malformed UPDATE")?;
                routes += a as i64 - wd as i64;
                if !full && routes >= args.target as i64 {
                    full = true;
                    let _ = tx.send(Report::Full(n, now()));
                }
            }
            NOTIFICATION => {
                let (code, sub) = (body.first().copied(), body.get(1).copied());
                return Err(format!("NOTIFICATION {code:?}/{sub:?}"));
            }
            _ => {}
        }
    }
}

/// A TCP connection to the daemon's BGP port from `local`: the daemon
/// knows its peers by address.
fn connect_from(local: Ipv4Addr, daemon: Ipv4Addr) -> Result<TcpStream, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(&SocketAddr::from((local, 0)).into())
        .map_err(|e| format!("bind {local}: {e}"))?;
    socket
        .connect_timeout(
            &SocketAddr::from((daemon, 179)).into(),
            Duration::from_secs(10),
        )
        .map_err(|e| format!("connect {daemon} from {local}: {e}"))?;
    Ok(socket.into())
}

fn main() {
    let args = args();
    let (tx, rx) = mpsc::channel();
    let args = std::sync::Arc::new(args);
    for n in 0..args.sessions {
        let (args, tx) = (std::sync::Arc::clone(&args), tx.clone());
        std::thread::spawn(move || {
            if let Err(why) = session(n, &args, &tx) {
                let _ = tx.send(Report::Down(n, why));
            }
        });
    }
    drop(tx);
    // End of input: exit, closing every session.
    std::thread::spawn(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            if line.map_or(true, |l| l.trim() == "quit") {
                break;
            }
        }
        event("quit", "");
        std::process::exit(0);
    });
    let (mut up, mut full) = (0, 0);
    for report in rx {
        match report {
            Report::Established => {
                up += 1;
                if up == args.sessions {
                    event("established", &format!("sessions={up}"));
                }
            }
            Report::Full(n, at) => {
                full += 1;
                event("full", &format!("session={n} at={at:.6}"));
                if full == args.sessions {
                    event(
                        "all-full",
                        &format!("sessions={full} routes={}", args.target),
                    );
                }
            }
            Report::Down(n, why) => {
                event(
                    "down",
                    &format!("session={n} reason={}", why.replace(' ', "_")),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_counts_its_routes_both_ways() {
        // Two withdrawn (/24, /0), no attributes, three announced (/32, /8, /17).
        let body = [
            0, 5, 24, 10, 0, 0, 0, // withdrawn
            0, 0, // attributes
            32, 1, 2, 3, 4, 8, 10, 17, 10, 1, 128,
        ];
        assert_eq!(count_update(&body), Some((3, 2)));
        assert_eq!(count_update(&body[..body.len() - 1]), None, "cut short");
    }
}
