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
//!   kernel has acknowledged enough that at most `--in-flight` are left
//!   unread.
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

/// Append route `i`'s request to `out`.
fn encode(args: &Args, i: u32, out: &mut Vec<u8>) {
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(route(args, i)));
    let how = if args.replace {
        NLM_F_REPLACE
    } else {
        NLM_F_EXCL
    };
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | how;
    req.header.sequence_number = i;
    req.finalize();
    let start = out.len();
    // Netlink messages in one datagram start on 4-byte boundaries.
    out.resize(start + req.buffer_len().next_multiple_of(4), 0);
    req.serialize(&mut out[start..]);
}

/// Read the acknowledgements in one datagram.
fn read_acks(datagram: &[u8], acks: &mut Acks) -> Result<(), String> {
    let mut rest = datagram;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if len < 16 || len > rest.len() {
            return Err(format!("bad netlink message length {len}"));
        }
        let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len])
            .map_err(|e| format!("netlink message: {e}"))?;
        match m.payload {
            NetlinkPayload::Error(e) => match e.code {
                None => acks.ok += 1,
                Some(code) => acks.fail(-code.get()),
            },
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
                encode(args, i, &mut out);
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
        read_acks(&inbuf, &mut acks)?;
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
        "mode={} routes={} seconds={seconds:.3} routes_per_s={:.0} in_flight={} batch={} \
         table={} protocol={} ok={} failed={}",
        match args.mode {
            Mode::Batch => "batch",
            Mode::Handle => "handle",
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
