//! `podbgp mrt replay FILE --peer ADDR --local-as N [--port N] [--source-peer N|ADDR]`:
//! a table from an MRT file (TABLE_DUMP_V2, or the TABLE_DUMP of older
//! archives; gzip-compressed or not) fed into a BGP session, the CLI
//! itself the speaker (for tests and benchmarks: a real table from a
//! route collector's dump into any BGP implementation).
//!
//! For each prefix one path is sent: the source peer's when it has one
//! (`--source-peer`: an index of the dump's peer index table, or the
//! peer's address), else the first in the dump. Over eBGP the path is sent as an eBGP speaker would: our AS
//! first on the AS_PATH, our address as next hop, LOCAL_PREF dropped;
//! over iBGP as it was, our address as next hop. Then End-of-RIB, and the
//! session stays up, kept alive, until the peer closes it or the process
//! is stopped.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bgp::wire::mrt::Record;
use bgp::wire::{
    pack, AttrValue, Capability, Context, Family, Message, NextHop, Nlri, Open, PathAttribute,
    Update,
};
use bytes::BytesMut;

use super::Usage;

const HOLD: u16 = 90;

/// What `mrt replay` was asked.
#[derive(Debug, PartialEq, Eq)]
pub struct Replay {
    pub file: std::path::PathBuf,
    pub peer: SocketAddr,
    pub local_as: u32,
    pub source_peer: Option<SourcePeer>,
}

/// The collector's peer whose paths are replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePeer {
    /// Its index in the TABLE_DUMP_V2 peer index table.
    Index(u16),
    Address(IpAddr),
}

impl std::str::FromStr for SourcePeer {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.parse::<u16>() {
            Ok(i) => Ok(SourcePeer::Index(i)),
            Err(_) => s.parse().map(SourcePeer::Address).map_err(|_| ()),
        }
    }
}

/// `replay FILE --peer ADDR --local-as N [--port N] [--source-peer N|ADDR]`.
pub fn parse(args: &[String]) -> Result<Replay, Usage> {
    let [file, rest @ ..] = args else {
        return Err(Usage(
            "mrt replay FILE --peer ADDR --local-as N: the file is missing".into(),
        ));
    };
    let (mut peer, mut port, mut local_as, mut source_peer) = (None, 179u16, None, None);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| Usage(format!("mrt replay: {flag} needs a value")))?;
        let bad = |what: &str| Usage(format!("mrt replay: {flag} {value}: {what}"));
        match flag.as_str() {
            "--peer" => peer = Some(value.parse::<IpAddr>().map_err(|_| bad("not an address"))?),
            "--port" => port = value.parse().map_err(|_| bad("not a port"))?,
            "--local-as" => {
                local_as = Some(value.parse::<u32>().ok().filter(|a| *a != 0).ok_or_else(|| bad("not an AS number"))?)
            }
            "--source-peer" => {
                source_peer = Some(value.parse().map_err(|_| bad("neither a peer index nor an address"))?)
            }
            other => {
                return Err(Usage(format!(
                    "mrt replay: unknown option {other}; expected --peer, --port, --local-as or --source-peer"
                )))
            }
        }
    }
    Ok(Replay {
        file: file.into(),
        peer: SocketAddr::new(
            peer.ok_or_else(|| Usage("mrt replay: --peer ADDR is required".into()))?,
            port,
        ),
        local_as: local_as.ok_or_else(|| Usage("mrt replay: --local-as N is required".into()))?,
        source_peer,
    })
}

/// One path per prefix from the dump: (prefix, attributes).
type Routes = Vec<(ipnet::IpNet, Vec<PathAttribute>)>;

/// The file's bytes, gunzipped when it is gzip (as collectors publish).
fn read_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut data = Vec::with_capacity(raw.len() * 4);
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut data)
        .map_err(|e| format!("{}: gzip: {e}", path.display()))?;
    Ok(data)
}

fn read_dump(r: &Replay) -> Result<Routes, String> {
    let name = r.file.display();
    let data = read_file(&r.file)?;
    let mut at = 0;
    let mut routes = Routes::new();
    // TABLE_DUMP_V2: the source peer's index, once the table named it.
    let mut index = match r.source_peer {
        Some(SourcePeer::Index(i)) => Some(i),
        _ => None,
    };
    // TABLE_DUMP: one record per path; the prefixes with one sent.
    let mut sent = std::collections::HashSet::new();
    while at < data.len() {
        let Some((_, record, len)) =
            Record::decode(&data[at..]).map_err(|e| format!("{name}: at byte {at}: {e}"))?
        else {
            return Err(format!("{name}: cut short at byte {at}"));
        };
        at += len;
        match record {
            Record::PeerIndexTable { peers, .. } => {
                if let Some(SourcePeer::Address(a)) = r.source_peer {
                    let i = peers.iter().position(|p| p.address == a).ok_or_else(|| {
                        format!("{name}: no peer {a} in the dump's peer index table")
                    })?;
                    index = u16::try_from(i).ok();
                }
            }
            Record::Rib {
                prefix, entries, ..
            } => {
                let chosen = match index {
                    Some(i) => entries.iter().find(|e| e.peer_index == i),
                    None => entries.first(),
                };
                if let Some(e) = chosen {
                    routes.push((prefix, e.attributes.clone()));
                }
            }
            Record::TableDump {
                prefix,
                peer,
                attributes,
                ..
            } => {
                let wanted = match r.source_peer {
                    Some(SourcePeer::Address(a)) => a == peer,
                    Some(SourcePeer::Index(_)) => {
                        return Err(format!(
                            "{name} is a TABLE_DUMP, without a peer index table: \
                             name the source peer by its address"
                        ))
                    }
                    None => true,
                };
                if wanted && sent.insert(prefix) {
                    // Read as a 2-octet speaker's: AS4_PATH merged in.
                    let update = Update {
                        attributes,
                        ..Update::default()
                    };
                    routes.push((prefix, update.as4_merged().into_owned()));
                }
            }
            _ => {}
        }
    }
    Ok(routes)
}

/// Run the replay; the exit status.
pub fn run(r: &Replay) -> i32 {
    match replay(r) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("podbgp: mrt replay: {e}");
            1
        }
    }
}

fn replay(r: &Replay) -> Result<(), String> {
    let routes = read_dump(r)?;
    let mut s = TcpStream::connect_timeout(&r.peer, Duration::from_secs(10))
        .map_err(|e| format!("{}: {e}", r.peer))?;
    let local = s
        .local_addr()
        .map_err(|e| e.to_string())?
        .ip()
        .to_canonical();
    let router_id = match local {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::new(10, 255, 255, 1),
    };
    let caps = vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
    ];
    send(
        &mut s,
        &[Message::Open(Open::new(r.local_as, HOLD, router_id, caps))],
        &Context::modern(),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let theirs = match read(&mut s)? {
        Message::Open(o) => o,
        Message::Notification(n) => {
            return Err(format!("the peer refused the session: {}", n.cause))
        }
        other => return Err(format!("expected an OPEN, got {:?}", other.kind())),
    };
    let four_octet = theirs
        .capabilities()
        .any(|c| matches!(c, Capability::FourOctetAs(_)));
    let ctx = Context {
        four_octet_as: four_octet,
        ..Context::default()
    };
    send(&mut s, &[Message::Keepalive], &ctx)?;
    loop {
        match read(&mut s)? {
            Message::Keepalive => break,
            Message::Notification(n) => {
                return Err(format!("the peer ended the session: {}", n.cause))
            }
            _ => {}
        }
    }
    let ebgp = theirs.asn() != r.local_as;
    let start = Instant::now();
    let (updates, sent) = build(&routes, r.local_as, local, ebgp, &ctx)?;
    send(&mut s, &updates, &ctx)?;
    let eor: Vec<Message> = [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
        .into_iter()
        .map(|f| Message::Update(Update::end_of_rib(f)))
        .collect();
    send(&mut s, &eor, &ctx)?;
    let skipped = routes.len() - sent;
    println!(
        "sent {sent} routes from {} to {} in {:.2} s{}; the session stays up (Ctrl-C ends it)",
        r.file.display(),
        r.peer,
        start.elapsed().as_secs_f64(),
        if skipped > 0 {
            format!(" ({skipped} of another family than the session's address left out)")
        } else {
            String::new()
        }
    );
    // Keep the session: keepalives every third of the hold time, whatever
    // the peer sends read and dropped, until it closes.
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let every = Duration::from_secs(u64::from(HOLD.min(theirs.hold_time).max(3)) / 3);
    let mut last = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.to_string()),
        }
        if last.elapsed() >= every {
            send(&mut s, &[Message::Keepalive], &ctx)?;
            last = Instant::now();
        }
    }
}

/// The routes as UPDATEs, one attribute set to a group, and how many
/// routes they carry.
fn build(
    routes: &Routes,
    local_as: u32,
    local: IpAddr,
    ebgp: bool,
    ctx: &Context,
) -> Result<(Vec<Message>, usize), String> {
    let mut groups: HashMap<(Family, Vec<PathAttribute>), Vec<Nlri>> = HashMap::new();
    for (prefix, attrs) in routes {
        let family = Family::of(prefix);
        // Only a next hop of our own is reachable for the peer.
        let mut attrs: Vec<PathAttribute> = attrs
            .iter()
            .filter(|a| !a.carries_nlri())
            .filter(|a| !(ebgp && matches!(a.value, AttrValue::LocalPref(_))))
            .cloned()
            .collect();
        if ebgp {
            for a in &mut attrs {
                if let AttrValue::AsPath(p) = &mut a.value {
                    p.prepend(local_as);
                }
            }
        }
        groups
            .entry((family, attrs))
            .or_default()
            .push(Nlri::new(*prefix));
    }
    let (mut out, mut sent) = (Vec::new(), 0);
    for ((family, attrs), nlri) in &groups {
        let next_hop = match (family, local) {
            (f, IpAddr::V4(a)) if *f == Family::IPV4_UNICAST => NextHop::V4(a),
            (_, IpAddr::V6(a)) => NextHop::V6 {
                global: a,
                link_local: None,
            },
            // An IPv6 route over an IPv4 session: no next hop we can give.
            _ => continue,
        };
        let updates =
            pack::announcements(attrs, next_hop, *family, nlri, ctx).map_err(|e| e.to_string())?;
        out.extend(updates.into_iter().map(Message::Update));
        sent += nlri.len();
    }
    Ok((out, sent))
}

fn send(s: &mut TcpStream, messages: &[Message], ctx: &Context) -> Result<(), String> {
    let mut buf = BytesMut::new();
    for m in messages {
        m.encode(ctx, &mut buf).map_err(|e| e.to_string())?;
    }
    s.write_all(&buf).map_err(|e| format!("write: {e}"))
}

/// One whole message.
fn read(s: &mut TcpStream) -> Result<Message, String> {
    let mut head = [0u8; 19];
    s.read_exact(&mut head).map_err(|e| format!("read: {e}"))?;
    let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
    if len < 19 {
        return Err(format!("a message of length {len}"));
    }
    let mut whole = head.to_vec();
    whole.resize(len, 0);
    s.read_exact(&mut whole[19..])
        .map_err(|e| format!("read: {e}"))?;
    Message::decode(&whole, &Context::modern()).map_err(|e| format!("decode: {e}"))
}
