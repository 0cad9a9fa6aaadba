//! A network of speaker cores wired in memory. Each connection carries
//! bytes: what one side sends is encoded with the context it was given and
//! decoded with the receiver's, so the real codec sits on every link. Time
//! moves only when a test moves it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp::rib::PeerId;
use bgp::session::{Down, State};
use bgp::speaker::{Action, ConnId, Input, PeerConfig, Speaker, SpeakerConfig};
use bgp::wire::{Context, Message};
use bytes::Bytes;
use ipnet::IpNet;

/// One speaker on the network.
pub struct Node {
    pub addr: IpAddr,
    pub speaker: Speaker,
    /// Its FIB as the best-path changes left it: prefix to next hop, for
    /// learned routes only.
    pub fib: BTreeMap<IpNet, IpAddr>,
    /// Every Down it reported, by peer address.
    pub downs: Vec<(IpAddr, Down)>,
    /// Whether it runs; a stopped node refuses connections.
    pub running: bool,
}

/// One TCP connection: `ends[0]` opened it.
struct Link {
    ends: [(usize, PeerId); 2],
    /// Bytes in flight towards ends[0] and ends[1].
    queues: [VecDeque<Bytes>; 2],
    /// A side that closed: the other sees Closed once it has read all.
    closed_by: Option<usize>,
    /// How each end decodes what it receives.
    rx: [Context; 2],
}

/// A message seen on the wire, for tests to look at.
#[derive(Debug, Clone)]
pub struct Sent {
    pub from: usize,
    pub to: usize,
    pub conn: ConnId,
    pub message: Message,
}

pub struct Net {
    pub now: Instant,
    pub nodes: Vec<Node>,
    links: HashMap<ConnId, Link>,
    next_conn: ConnId,
    /// Node pairs whose wire is cut: nothing gets through, silently.
    cut: Vec<(usize, usize)>,
    pub wire: Vec<Sent>,
    /// Which node opened each connection.
    pub opened_by: HashMap<ConnId, usize>,
    /// The prefix length of the subnet every session runs over: 32 makes
    /// every link point-to-point; 24 puts all nodes on one LAN,
    /// 10.0.0.0/24, where third-party next hops apply.
    pub lan: u8,
}

impl Net {
    pub fn new() -> Self {
        Net {
            now: Instant::now(),
            nodes: Vec::new(),
            links: HashMap::new(),
            next_conn: 1,
            cut: Vec::new(),
            wire: Vec::new(),
            opened_by: HashMap::new(),
            lan: 32,
        }
    }

    /// Add a speaker with address 10.0.0.`n` and router id 10.255.0.`n`.
    pub fn node(&mut self, n: u8, asn: u32) -> usize {
        self.node_with(n, SpeakerConfig::new(asn, Ipv4Addr::new(10, 255, 0, n)))
    }

    pub fn node_with(&mut self, n: u8, config: SpeakerConfig) -> usize {
        self.nodes.push(Node {
            addr: addr(n),
            speaker: Speaker::new(self.now, config),
            fib: BTreeMap::new(),
            downs: Vec::new(),
            running: true,
        });
        self.nodes.len() - 1
    }

    pub fn addr(&self, node: usize) -> IpAddr {
        self.nodes[node].addr
    }

    /// Configure `node` to peer with `other`, changing the defaults with `f`.
    pub fn peer(&mut self, node: usize, other: usize, f: impl FnOnce(&mut PeerConfig)) -> PeerId {
        let me = self.nodes[node].speaker.config().clone();
        let them = self.nodes[other].speaker.config().clone();
        let mut session =
            bgp::session::SessionConfig::new(me.local_as, me.router_id, them.local_as);
        session.hold_time = 9;
        session.connect_retry = Duration::from_secs(5);
        let mut config = PeerConfig::new(self.addr(other), session);
        f(&mut config);
        let now = self.now;
        self.nodes[node]
            .speaker
            .add_peer(now, config)
            .expect("peer added")
    }

    /// Configure both ends of a session between `a` and `b`, with defaults.
    pub fn link(&mut self, a: usize, b: usize) {
        self.peer(a, b, |_| {});
        self.peer(b, a, |_| {});
    }

    /// The peer id `node` has for `other`.
    pub fn id(&self, node: usize, other: usize) -> PeerId {
        self.nodes[node]
            .speaker
            .peer_by_address(self.addr(other))
            .expect("configured peer")
    }

    pub fn state(&self, node: usize, other: usize) -> State {
        let id = self.id(node, other);
        self.nodes[node].speaker.status(id).expect("peer").state
    }

    /// Run until nothing more happens at this instant.
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            let mut busy = false;
            for n in 0..self.nodes.len() {
                if !self.nodes[n].running {
                    continue;
                }
                let now = self.now;
                let actions = self.nodes[n].speaker.poll(now);
                busy |= !actions.is_empty();
                for a in actions {
                    self.act(n, a);
                }
                let changes = self.nodes[n].speaker.take_best_changes();
                let local = self.nodes[n].speaker.local_peer();
                for c in changes {
                    match c.best.filter(|r| r.peer != local) {
                        Some(r) => {
                            self.nodes[n].fib.insert(c.prefix, r.attrs.next_hop_addr());
                        }
                        None => {
                            self.nodes[n].fib.remove(&c.prefix);
                        }
                    }
                }
            }
            busy |= self.deliver_one();
            if !busy {
                return;
            }
        }
        panic!("the network does not settle");
    }

    /// Let `d` pass, running every deadline on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.settle();
            let next = self
                .nodes
                .iter()
                .filter(|n| n.running)
                .filter_map(|n| n.speaker.poll_at())
                .min();
            match next {
                Some(t) if t <= end => self.now = t.max(self.now),
                _ => break,
            }
        }
        self.now = end;
        self.settle();
    }

    /// Cut the wire between two nodes without either noticing.
    pub fn cut(&mut self, a: usize, b: usize) {
        self.cut.push((a, b));
    }

    pub fn mend(&mut self, a: usize, b: usize) {
        self.cut
            .retain(|&(x, y)| (x, y) != (a, b) && (x, y) != (b, a));
    }

    fn is_cut(&self, a: usize, b: usize) -> bool {
        self.cut
            .iter()
            .any(|&(x, y)| (x, y) == (a, b) || (x, y) == (b, a))
    }

    /// The node's process dies: its connections reset, which its peers
    /// see; it stays down until [`Net::restart`].
    pub fn kill(&mut self, node: usize) {
        self.nodes[node].running = false;
        let conns: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.ends.iter().any(|e| e.0 == node))
            .map(|(c, _)| *c)
            .collect();
        for c in conns {
            let Some(link) = self.links.remove(&c) else {
                continue;
            };
            for (n, peer) in link.ends {
                if n != node && self.nodes[n].running {
                    let now = self.now;
                    self.nodes[n]
                        .speaker
                        .handle(now, peer, Input::Closed { conn: c });
                }
            }
        }
    }

    /// The node's host dies without a word: its peers' connections stay
    /// half-open, with nothing more coming on them.
    pub fn vanish(&mut self, node: usize) {
        self.nodes[node].running = false;
        self.links
            .retain(|_, l| !l.ends.iter().any(|e| e.0 == node));
    }

    /// A new speaker process on a killed node.
    pub fn restart(&mut self, node: usize, config: SpeakerConfig) {
        self.nodes[node].speaker = Speaker::new(self.now, config);
        self.nodes[node].running = true;
    }

    /// Messages `from` sent `to` so far.
    pub fn sent(&self, from: usize, to: usize) -> impl Iterator<Item = &Message> {
        self.wire
            .iter()
            .filter(move |s| s.from == from && s.to == to)
            .map(|s| &s.message)
    }

    fn act(&mut self, n: usize, action: Action) {
        let now = self.now;
        match action {
            Action::Connect { peer } => {
                let target = self.nodes[n]
                    .speaker
                    .status(peer)
                    .expect("peer")
                    .config
                    .address;
                let other = self.nodes.iter().position(|x| x.addr == target);
                let theirs = other.filter(|&o| self.nodes[o].running && !self.is_cut(n, o));
                let theirs = theirs.and_then(|o| {
                    let id = self.nodes[o].speaker.peer_by_address(self.nodes[n].addr)?;
                    Some((o, id))
                });
                let Some((o, their_id)) = theirs else {
                    self.nodes[n]
                        .speaker
                        .handle(now, peer, Input::ConnectFailed);
                    return;
                };
                let conn = self.next_conn;
                self.next_conn += 1;
                self.opened_by.insert(conn, n);
                self.links.insert(
                    conn,
                    Link {
                        ends: [(n, peer), (o, their_id)],
                        queues: [VecDeque::new(), VecDeque::new()],
                        closed_by: None,
                        rx: [Context::modern(); 2],
                    },
                );
                let lan = |a: IpAddr| IpNet::new(a, self.lan).expect("prefix length");
                let (mine, theirs) = (lan(self.nodes[n].addr), lan(self.nodes[o].addr));
                self.nodes[n]
                    .speaker
                    .handle(now, peer, Input::Connected { conn, local: mine });
                self.nodes[o].speaker.handle(
                    now,
                    their_id,
                    Input::Accepted {
                        conn,
                        local: theirs,
                    },
                );
            }
            Action::Send {
                conn, message, ctx, ..
            } => {
                let Some(link) = self.links.get_mut(&conn) else {
                    return;
                };
                if link.closed_by.is_some() {
                    return;
                }
                let me = usize::from(link.ends[1].0 == n);
                let other = link.ends[1 - me].0;
                let bytes = message.to_bytes(&ctx).expect("encodes");
                if !self
                    .cut
                    .iter()
                    .any(|&(x, y)| (x, y) == (n, other) || (x, y) == (other, n))
                {
                    link.queues[1 - me].push_back(bytes);
                }
                self.wire.push(Sent {
                    from: n,
                    to: other,
                    conn,
                    message,
                });
            }
            Action::Close { conn, .. } => {
                if let Some(link) = self.links.get_mut(&conn) {
                    let me = usize::from(link.ends[1].0 == n);
                    if link.closed_by.is_none() {
                        link.closed_by = Some(me);
                        // Nothing more reaches the side that closed.
                        link.queues[me].clear();
                    }
                }
            }
            Action::Negotiated { conn, rx, .. } => {
                if let Some(link) = self.links.get_mut(&conn) {
                    let me = usize::from(link.ends[1].0 == n);
                    link.rx[me] = rx;
                }
            }
            Action::Down { peer, reason } => {
                let address = self.nodes[n]
                    .speaker
                    .status(peer)
                    .expect("peer")
                    .config
                    .address;
                self.nodes[n].downs.push((address, reason));
            }
            Action::State { .. } | Action::Up { .. } => {}
        }
    }

    /// Deliver one message, or one close; `false` when nothing is in flight.
    fn deliver_one(&mut self) -> bool {
        let mut conns: Vec<ConnId> = self.links.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            let Some(link) = self.links.get_mut(&conn) else {
                continue;
            };
            for side in 0..2 {
                if let Some(bytes) = link.queues[side].pop_front() {
                    let (node, peer) = link.ends[side];
                    let ctx = link.rx[side];
                    let now = self.now;
                    let input = match Message::decode(&bytes, &ctx) {
                        Ok(message) => Input::Message { conn, message },
                        Err(error) => Input::DecodeError { conn, error },
                    };
                    if self.nodes[node].running {
                        self.nodes[node].speaker.handle(now, peer, input);
                    }
                    return true;
                }
            }
            if let Some(closer) = link.closed_by {
                // Everything sent before the close is read: the other side
                // sees the connection go.
                let (node, peer) = link.ends[1 - closer];
                self.links.remove(&conn);
                let now = self.now;
                if self.nodes[node].running {
                    self.nodes[node]
                        .speaker
                        .handle(now, peer, Input::Closed { conn });
                }
                return true;
            }
        }
        false
    }
}

pub fn addr(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

pub fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}
