//! How fast the kernel of this network namespace takes IPv4 routes over
//! rtnetlink: the ceiling a FIB writer can reach, measured on its own.
//!
//! It adds N routes, prefix i being (FIRST + (i << 8))/24 for i in 0..N
//! (10.0.0.0/24, 10.0.1.0/24, ...: the prefixes of the FIB benchmark's
//! feed), all via one on-link gateway, with many requests in flight, each
//! acknowledged by the kernel, and prints the rate. Two ways to write:
//!
//! - `batch` (default), the limit: a netlink socket of its own; requests
//!   are packed `--batch` to a `sendmsg`, and more are sent whenever the
//!   kernel has answered enough that at most `--in-flight` are left
//!   unread. With `--acks last` (as podbgp's FIB writer) only the last
//!   request of a `sendmsg` asks for an answer if it succeeds: the kernel
//!   answers every failure anyway, and a batch's requests are carried out
//!   in order, so that answer settles the whole batch.
//! - `handle`: one `rtnetlink` request per route through a `Handle`,
//!   `--in-flight` at a time (`buffer_unordered`), as an application built
//!   on the crate would write them.
//!
//! Run it in a fresh namespace, as root, with the gateway on a connected
//! subnet:
//!
//! ```sh
//! ip netns add nl; ip -n nl link add eth0 type veth peer name eth1
//! ip -n nl link set eth0 up; ip -n nl link set eth1 up
//! ip -n nl addr add 192.168.255.1/24 dev eth0
//! ip netns exec nl target/release/examples/netlink_limit --gateway 192.168.255.11
//! ip netns del nl
//! ```
//!
//! Prints one line of `key=value` fields on stdout; exits non-zero when a
//! request failed (a route already there, say: `--replace` writes over
//! those).

use std::net::Ipv4Addr;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use futures::stream::{self, StreamExt};
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{
    protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket,
};
use rtnetlink::RouteMessageBuilder;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Requests packed many to a sendmsg on a socket of our own.
    Batch,
    /// One request per route through an rtnetlink Handle.
    Handle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AckMode {
    /// Every request asks for an answer.
    Every,
    /// Only each sendmsg's last request does (failures are answered anyway).
    Last,
}

#[derive(Parser, Debug)]
#[command(
    about = "Add N IPv4 /24 routes to this namespace's kernel, pipelined, and print routes/s"
)]
struct Args {
    /// Routes to add.
    #[arg(long, default_value_t = 1_000_000)]
    routes: u32,
    /// The first prefix's address; prefix i is (FIRST + (i << 8))/24.
    #[arg(long, default_value = "10.0.0.0")]
    first: Ipv4Addr,
    /// The gateway of every route; it must be on a connected subnet.
    #[arg(long)]
    gateway: Ipv4Addr,
    /// Requests sent but not yet acknowledged, at most.
    #[arg(long, default_value_t = 512)]
    in_flight: usize,
    /// Requests per sendmsg (batch mode).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, value_enum, default_value_t = Mode::Batch)]
    mode: Mode,
    /// Which requests ask for an answer when they succeed (batch mode).
    #[arg(long, value_enum, default_value_t = AckMode::Every)]
    acks: AckMode,
    /// The routing table (254: main).
    #[arg(long, default_value_t = 254)]
    table: u32,
    /// The routes' protocol number (200, as podbgp's fib.protocol).
    #[arg(long, default_value_t = 200)]
    protocol: u8,
    /// NLM_F_REPLACE instead of NLM_F_EXCL: write over routes already there.
    #[arg(long)]
    replace: bool,
}

/// Kernel acknowledgements: how many, and the failures by errno.
#[derive(Default)]
struct Acks {
    ok: u64,
    failed: Vec<(i32, u64)>,
    /// Failures answered since the last settled batch (`--acks last`).
    unsettled_failures: u64,
}

impl Acks {
    fn fail(&mut self, errno: i32) {
        match self.failed.iter_mut().find(|(e, _)| *e == errno) {
            Some((_, n)) => *n += 1,
            None => self.failed.push((errno, 1)),
        }
    }

    fn failures(&self) -> u64 {
        self.failed.iter().map(|(_, n)| n).sum()
    }

    fn total(&self) -> u64 {
        self.ok + self.failures()
    }
}

fn prefix(args: &Args, i: u32) -> Option<Ipv4Addr> {
    u32::from(args.first)
        .checked_add(i.checked_shl(8)?)
        .map(Ipv4Addr::from)
}

fn route(args: &Args, i: u32) -> RouteMessage {
    let dest = prefix(args, i).expect("checked in main");
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dest, 24)
        .gateway(args.gateway)
        .table_id(args.table)
        .protocol(RouteProtocol::from(args.protocol))
        .build()
}

/// Append route `i`'s request to `out`; `ask`: for an answer even if it
/// succeeds.
fn encode(args: &Args, i: u32, ask: bool, out: &mut Vec<u8>) {
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(route(args, i)));
    let how = if args.replace {
        NLM_F_REPLACE
    } else {
        NLM_F_EXCL
    };
    let ack = if ask { NLM_F_ACK } else { 0 };
    req.header.flags = NLM_F_REQUEST | ack | NLM_F_CREATE | how;
    req.header.sequence_number = i;
    req.finalize();
    let start = out.len();
    // Netlink messages in one datagram start on 4-byte boundaries.
    out.resize(start + req.buffer_len().next_multiple_of(4), 0);
    req.serialize(&mut out[start..]);
}

/// Read the answers in one datagram. With `--acks last`, the answer to a
/// batch's last request (of `per_send` from 0, the last batch maybe
/// short) settles the batch: what of it did not fail succeeded.
fn read_acks(datagram: &[u8], acks: &mut Acks, args: &Args, per_send: u32) -> Result<(), String> {
    let mut rest = datagram;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if len < 16 || len > rest.len() {
            return Err(format!("bad netlink message length {len}"));
        }
        let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len])
            .map_err(|e| format!("netlink message: {e}"))?;
        match m.payload {
            NetlinkPayload::Error(e) if args.acks == AckMode::Every => match e.code {
                None => acks.ok += 1,
                Some(code) => acks.fail(-code.get()),
            },
            NetlinkPayload::Error(e) => {
                if let Some(code) = e.code {
                    acks.fail(-code.get());
                    acks.unsettled_failures += 1;
                }
                let seq = m.header.sequence_number;
                let first = seq - seq % per_send;
                if seq + 1 == (first + per_send).min(args.routes) {
                    let size = u64::from(seq - first + 1);
                    acks.ok += size - acks.unsettled_failures.min(size);
                    acks.unsettled_failures = 0;
                }
            }
            NetlinkPayload::Overrun(_) => return Err("netlink overrun".into()),
            _ => {}
        }
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    Ok(())
}

/// The limit: many requests to a sendmsg, a bounded window of unread acks.
async fn batch(args: &Args) -> Result<Acks, String> {
    let mut socket = TokioSocket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
    {
        let s = socket.socket_mut();
        s.bind_auto().map_err(|e| format!("bind: {e}"))?;
        s.connect(&SocketAddr::new(0, 0))
            .map_err(|e| format!("connect: {e}"))?;
        // Acknowledgements carry only the request's header.
        s.set_cap_ack(true)
            .map_err(|e| format!("NETLINK_CAP_ACK: {e}"))?;
    }
    // Room for every unread acknowledgement (about 1 KB of buffer each): a
    // full buffer would drop them. Root may exceed net.core.rmem_max.
    let want = (args.in_flight * 2048).max(1 << 20) as libc::c_int;
    let fd = std::os::fd::AsRawFd::as_raw_fd(socket.socket_ref());
    // SAFETY: setsockopt on our own socket with a c_int option value.
    let forced = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::addr_of!(want).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced != 0 {
        socket
            .socket_ref()
            .set_rx_buf_sz(want)
            .map_err(|e| format!("SO_RCVBUF: {e}"))?;
    }

    let n = u64::from(args.routes);
    let per_send = args.batch.clamp(1, args.in_flight);
    let mut out = Vec::with_capacity(per_send * 64);
    let mut inbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut acks = Acks::default();
    let mut next: u32 = 0;
    while acks.total() < n {
        let unread = u64::from(next) - acks.total();
        let room = args.in_flight as u64 - unread;
        let left = n - u64::from(next);
        if left > 0 && room >= (per_send as u64).min(left) {
            let k = (per_send as u64).min(left) as u32;
            out.clear();
            for i in next..next + k {
                let ask = args.acks == AckMode::Every || i + 1 == next + k;
                encode(args, i, ask, &mut out);
            }
            let sent = socket.send(&out).await.map_err(|e| format!("send: {e}"))?;
            if sent != out.len() {
                return Err(format!("sent {sent} of {} bytes", out.len()));
            }
            next += k;
            continue;
        }
        inbuf.clear();
        socket
            .recv(&mut inbuf)
            .await
            .map_err(|e| format!("recv: {e}"))?;
        read_acks(&inbuf, &mut acks, args, per_send as u32)?;
    }
    Ok(acks)
}

/// Through rtnetlink's Handle, as an application using the crate writes.
async fn handle(args: &Args) -> Result<Acks, String> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| format!("netlink: {e}"))?;
    tokio::spawn(conn);
    let mut results = stream::iter(0..args.routes)
        .map(|i| {
            let request = handle.route().add(route(args, i));
            let request = if args.replace {
                request.replace()
            } else {
                request
            };
            request.execute()
        })
        .buffer_unordered(args.in_flight);
    let mut acks = Acks::default();
    while let Some(r) = results.next().await {
        match r {
            Ok(()) => acks.ok += 1,
            Err(rtnetlink::Error::NetlinkError(e)) => acks.fail(-e.raw_code()),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(acks)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.routes == 0 || args.in_flight == 0 {
        eprintln!("netlink_limit: --routes and --in-flight must be at least 1");
        std::process::exit(2);
    }
    if prefix(&args, args.routes - 1).is_none() {
        eprintln!(
            "netlink_limit: {} /24s from {} run past 255.255.255.0",
            args.routes, args.first
        );
        std::process::exit(2);
    }
    let started = Instant::now();
    let result = match args.mode {
        Mode::Batch => batch(&args).await,
        Mode::Handle => handle(&args).await,
    };
    let seconds = started.elapsed().as_secs_f64();
    let acks = match result {
        Ok(acks) => acks,
        Err(e) => {
            eprintln!("netlink_limit: {e}");
            std::process::exit(1);
        }
    };
    let failed: Vec<String> = acks
        .failed
        .iter()
        .map(|(errno, n)| format!("{}x{n}", std::io::Error::from_raw_os_error(*errno)))
        .collect();
    println!(
        "mode={} acks={} routes={} seconds={seconds:.3} routes_per_s={:.0} in_flight={} batch={} \
         table={} protocol={} ok={} failed={}",
        match args.mode {
            Mode::Batch => "batch",
            Mode::Handle => "handle",
        },
        match args.acks {
            AckMode::Every => "every",
            AckMode::Last => "last",
        },
        args.routes,
        f64::from(args.routes) / seconds,
        args.in_flight,
        if args.mode == Mode::Batch {
            args.batch.clamp(1, args.in_flight)
        } else {
            1
        },
        args.table,
        args.protocol,
        acks.ok,
        acks.failures(),
    );
    if !failed.is_empty() {
        eprintln!("netlink_limit: failed requests: {}", failed.join(", "));
        std::process::exit(1);
    }
}
