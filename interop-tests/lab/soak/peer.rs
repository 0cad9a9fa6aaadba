//! A scripted iBGP peer for the soak: connects to the daemon from its own
//! namespace, offers graceful restart (RFC 4724) for IPv4 unicast, sends
//! its table with the bgp crate's encoder, answers keepalives, and leaves
//! either with a Cease or as a crash (the connection closed with no
//! NOTIFICATION, as a restarting speaker's would be).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bgp::wire::{
    iana::CeaseSubcode, AsPath, AttrValue, Capability, Context, Family, GracefulRestart,
    GracefulRestartFamily, Message, Nlri, Notification, Open, Origin, Update, HEADER_LEN,
};
use bytes::BytesMut;

use crate::lab::Host;

/// The hold time the peers offer; the daemon's own is the same.
pub const HOLD: u16 = 9;
/// How long the daemon is asked to keep a crashed peer's routes.
pub const RESTART_TIME: u16 = 60;
/// NLRI per UPDATE: 700 /27s and the attributes stay under 4096 octets.
const PER_UPDATE: usize = 700;
/// How long a connection may take to reach Established before the
/// session counts as stuck.
pub const ESTABLISH_LIMIT: Duration = Duration::from_secs(15);

/// Prefix `k` of the soak: the `k`th /27 from 10.128.0.0 (inside the
/// default `fib.accept`, clear of the lab's own addresses).
pub fn prefix(k: u32) -> ipnet::Ipv4Net {
    let base = u32::from(Ipv4Addr::new(10, 128, 0, 0));
    ipnet::Ipv4Net::new(Ipv4Addr::from(base + (k << 5)), 27).expect("a /27")
}

/// One open session: the writer (shared with the keepalive thread) and
/// what the reader saw.
struct Conn {
    stream: Arc<Mutex<TcpStream>>,
    /// Set when the daemon closed the session or the reader stopped.
    closed: Arc<AtomicBool>,
    /// Why the daemon ended it (its NOTIFICATION), if it did.
    why: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

pub struct Peer {
    pub host: Host,
    pub asn: u32,
    /// LOCAL_PREF on every route it sends: peers rank by it, so each
    /// prefix has one best path.
    pub local_pref: u32,
    daemon: SocketAddr,
    conn: Option<Conn>,
}

impl Peer {
    pub fn new(host: Host, asn: u32, local_pref: u32, daemon: Ipv4Addr) -> Peer {
        Peer {
            host,
            asn,
            local_pref,
            daemon: SocketAddr::from((daemon, 179)),
            conn: None,
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.host.v4
    }

    pub fn is_up(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| !c.closed.load(Ordering::SeqCst))
    }

    /// The daemon ended the session (or it broke) since it was opened.
    pub fn lost(&self) -> Option<String> {
        let c = self.conn.as_ref()?;
        if !c.closed.load(Ordering::SeqCst) {
            return None;
        }
        let why = c.why.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Some(why.unwrap_or_else(|| "connection closed".into()))
    }

    /// Open a session (retrying while the daemon refuses, up to
    /// `ESTABLISH_LIMIT`) and send `table`, then End-of-RIB. `restarting`
    /// sets the Restart State bit, as a speaker back from a crash does.
    /// Returns how long it took to reach Established.
    pub fn connect(&mut self, table: &[u32], restarting: bool) -> Result<Duration, String> {
        self.drop_conn();
        let start = Instant::now();
        let stream = loop {
            match self.handshake(restarting) {
                Ok(s) => break s,
                Err(e) if start.elapsed() > ESTABLISH_LIMIT => {
                    return Err(format!(
                        "{}: no session in {ESTABLISH_LIMIT:?}: {e}",
                        self.host.name
                    ))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        let took = start.elapsed();
        self.start_session(stream)?;
        self.announce(table)?;
        self.send(&[Message::Update(Update::end_of_rib(Family::IPV4_UNICAST))])?;
        Ok(took)
    }

    /// Send UPDATEs announcing `prefixes`.
    pub fn announce(&self, prefixes: &[u32]) -> Result<(), String> {
        let attrs = vec![
            AttrValue::Origin(Origin::Igp),
            AttrValue::AsPath(AsPath::from_segments([])),
            AttrValue::NextHop(self.addr()),
            AttrValue::LocalPref(self.local_pref),
        ];
        let messages: Vec<Message> = prefixes
            .chunks(PER_UPDATE)
            .map(|c| {
                let nlri = c.iter().map(|&k| Nlri::new(prefix(k).into())).collect();
                Message::Update(Update::new(attrs.clone(), nlri))
            })
            .collect();
        self.send(&messages)
    }

    /// Send UPDATEs announcing `prefixes` with `attrs` (the next hop and
    /// LOCAL_PREF added).
    pub fn announce_with(&self, mut attrs: Vec<AttrValue>, prefixes: &[u32]) -> Result<(), String> {
        attrs.push(AttrValue::NextHop(self.addr()));
        attrs.push(AttrValue::LocalPref(self.local_pref));
        let nlri = prefixes
            .iter()
            .map(|&k| Nlri::new(prefix(k).into()))
            .collect();
        self.send(&[Message::Update(Update::new(attrs, nlri))])
    }

    /// Send bytes as they are: a message the encoder would never make.
    pub fn send_raw(&self, bytes: &[u8]) -> Result<(), String> {
        let conn = self.conn.as_ref().ok_or("no session")?;
        let mut s = conn.stream.lock().unwrap_or_else(|e| e.into_inner());
        s.write_all(bytes)
            .map_err(|e| format!("{}: write: {e}", self.host.name))
    }

    /// Send UPDATEs withdrawing `prefixes`.
    pub fn withdraw(&self, prefixes: &[u32]) -> Result<(), String> {
        let messages: Vec<Message> = prefixes
            .chunks(PER_UPDATE)
            .map(|c| {
                let mut u = Update::new(Vec::new(), Vec::new());
                u.withdrawn = c.iter().map(|&k| Nlri::new(prefix(k).into())).collect();
                Message::Update(u)
            })
            .collect();
        self.send(&messages)
    }

    /// Leave with a Cease (Administrative Reset): the daemon drops the
    /// peer's routes at once.
    pub fn cease(&mut self) {
        let n = Notification::shutdown(CeaseSubcode::AdministrativeReset, "soak flap");
        let _ = self.send(&[Message::Notification(n)]);
        self.drop_conn();
    }

    /// Crash: the connection closes with no NOTIFICATION; the daemon, as
    /// a graceful restart helper, keeps the routes until we are back.
    pub fn crash(&mut self) {
        self.drop_conn();
    }

    fn send(&self, messages: &[Message]) -> Result<(), String> {
        let conn = self.conn.as_ref().ok_or("no session")?;
        let mut buf = BytesMut::new();
        for m in messages {
            m.encode(&Context::modern(), &mut buf)
                .map_err(|e| format!("encode: {e}"))?;
        }
        let mut s = conn.stream.lock().unwrap_or_else(|e| e.into_inner());
        s.write_all(&buf)
            .map_err(|e| format!("{}: write: {e}", self.host.name))
    }

    fn open(&self, restarting: bool) -> Message {
        let gr = GracefulRestart {
            flags: if restarting { 0x8 } else { 0 },
            time: RESTART_TIME,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                flags: GracefulRestartFamily::FORWARDING_STATE,
            }],
        };
        let caps = vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::GracefulRestart(gr),
        ];
        Message::Open(Open::new(self.asn, HOLD, self.addr(), caps))
    }

    /// TCP, OPENs both ways, KEEPALIVEs both ways.
    fn handshake(&self, restarting: bool) -> Result<TcpStream, String> {
        let mut s = crate::lab::connect_in(&self.host, self.daemon).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut out = BytesMut::new();
        self.open(restarting)
            .encode(&Context::modern(), &mut out)
            .map_err(|e| e.to_string())?;
        Message::Keepalive
            .encode(&Context::modern(), &mut out)
            .map_err(|e| e.to_string())?;
        // Our OPEN, then (the daemon's OPEN read) our KEEPALIVE.
        s.write_all(&out[..out.len() - HEADER_LEN])
            .map_err(|e| e.to_string())?;
        match read_message(&mut s)? {
            Message::Open(_) => {}
            other => return Err(format!("expected OPEN, got {:?}", other.kind())),
        }
        s.write_all(&out[out.len() - HEADER_LEN..])
            .map_err(|e| e.to_string())?;
        loop {
            match read_message(&mut s)? {
                Message::Keepalive => return Ok(s),
                Message::Notification(n) => return Err(format!("NOTIFICATION {}", n.cause)),
                _ => {}
            }
        }
    }

    fn start_session(&mut self, stream: TcpStream) -> Result<(), String> {
        let reader = stream.try_clone().map_err(|e| e.to_string())?;
        reader
            .set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(|e| e.to_string())?;
        let stream = Arc::new(Mutex::new(stream));
        let closed = Arc::new(AtomicBool::new(false));
        let why = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let (closed, why, stop) = (closed.clone(), why.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                read_until_closed(reader, &closed, &why, &stop)
            }));
        }
        {
            let (stream, stop, closed) = (stream.clone(), stop.clone(), closed.clone());
            threads.push(std::thread::spawn(move || {
                let every = Duration::from_secs(u64::from(HOLD) / 3);
                let mut last = Instant::now();
                let mut ka = BytesMut::new();
                let _ = Message::Keepalive.encode(&Context::modern(), &mut ka);
                while !stop.load(Ordering::SeqCst) && !closed.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() >= every {
                        let mut s = stream.lock().unwrap_or_else(|e| e.into_inner());
                        if s.write_all(&ka).is_err() {
                            return;
                        }
                        last = Instant::now();
                    }
                }
            }));
        }
        self.conn = Some(Conn {
            stream,
            closed,
            why,
            stop,
            threads,
        });
        Ok(())
    }

    /// Close the connection (no NOTIFICATION) and end its threads.
    fn drop_conn(&mut self) {
        if let Some(c) = self.conn.take() {
            c.stop.store(true, Ordering::SeqCst);
            let s = c.stream.lock().unwrap_or_else(|e| e.into_inner());
            let _ = s.shutdown(Shutdown::Both);
            drop(s);
            for t in c.threads {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.drop_conn();
    }
}

/// One whole message from a blocking stream.
fn read_message(s: &mut TcpStream) -> Result<Message, String> {
    let mut head = [0u8; HEADER_LEN];
    s.read_exact(&mut head).map_err(|e| format!("read: {e}"))?;
    let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
    if len < HEADER_LEN {
        return Err(format!("bad length {len}"));
    }
    let mut whole = head.to_vec();
    whole.resize(len, 0);
    s.read_exact(&mut whole[HEADER_LEN..])
        .map_err(|e| format!("read: {e}"))?;
    Message::decode(&whole, &Context::modern()).map_err(|e| format!("decode: {e}"))
}

/// Read and drop what the daemon sends (keepalives, its own prefix) until
/// it closes the session, noting a NOTIFICATION.
fn read_until_closed(
    mut s: TcpStream,
    closed: &AtomicBool,
    why: &Mutex<Option<String>>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65536];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        }
        // Whole messages only; a NOTIFICATION is the reason.
        while pending.len() >= HEADER_LEN {
            let len = usize::from(u16::from_be_bytes([pending[16], pending[17]]));
            if len < HEADER_LEN || pending.len() < len {
                break;
            }
            if pending[18] == 3 {
                let text = match Message::decode(&pending[..len], &Context::modern()) {
                    Ok(Message::Notification(n)) => format!("NOTIFICATION {}", n.cause),
                    _ => "a NOTIFICATION".into(),
                };
                *why.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
            }
            pending.drain(..len);
        }
    }
    closed.store(true, Ordering::SeqCst);
}
