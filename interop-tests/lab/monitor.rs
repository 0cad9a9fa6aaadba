//! Kernel route changes as they happen, timed: one rtnetlink socket in the
//! harness's own namespace listening to every namespace that has an id
//! there (NETLINK_LISTEN_ALL_NSID), subscribed to IPv4 route notifications
//! and read on a thread of its own, so each change carries the moment it
//! reached user space. One socket, not one per namespace: the kernel walks
//! every subscribed socket of every namespace for each route it changes,
//! so a thousand watchers would double what each agent's route costs.

use std::collections::HashMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Host;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTA_DST: u16 = 1;
const RT_TABLE_MAIN: u8 = 254;
/// include/uapi/linux/netlink.h
const NETLINK_LISTEN_ALL_NSID: libc::c_int = 8;

/// One change of a main-table IPv4 route.
#[derive(Debug, Clone)]
pub struct Change {
    /// Which of the watched hosts, by its index in [`Monitor::new`]'s list.
    pub host: usize,
    /// The prefix, as `ip route` prints it (`10.10.1.0/24`).
    pub prefix: String,
    pub added: bool,
    pub at: Instant,
}

pub struct Monitor {
    rx: mpsc::Receiver<Change>,
    /// Changes read while waiting for others.
    seen: Vec<Change>,
    /// The write end of a pipe the reader polls beside its socket: closed
    /// when the monitor goes, so its thread ends with it.
    _stop: OwnedFd,
}

impl Monitor {
    /// Watch the kernels of `hosts`; returns once the socket is bound, so
    /// no change after this call is missed.
    pub fn new(hosts: &[&Host]) -> Monitor {
        let ids = nsids(hosts);
        let (tx, rx) = mpsc::channel();
        let mut ends = [0; 2];
        // SAFETY: pipe2 fills `ends` with two fresh descriptors.
        let rc = unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "pipe: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are fresh and owned from here on.
        let (stop_rx, stop_tx) =
            unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
        let socket = subscribe();
        std::thread::spawn(move || read(&ids, &socket, &stop_rx, &tx));
        Monitor {
            rx,
            seen: Vec::new(),
            _stop: stop_tx,
        }
    }
    /// The next change, waiting at most `limit`.
    pub fn next(&mut self, limit: Duration) -> Option<Change> {
        self.rx.recv_timeout(limit).ok()
    }

    /// Forget every change so far.
    pub fn clear(&mut self) {
        self.seen.clear();
        while self.rx.try_recv().is_ok() {}
    }

    /// When each of `hosts` first saw `prefix` added (or deleted), waiting
    /// at most `limit`; `None` for a host that did not.
    pub fn wait(
        &mut self,
        hosts: &[usize],
        prefix: &str,
        added: bool,
        limit: Duration,
    ) -> Vec<Option<Instant>> {
        let end = Instant::now() + limit;
        let mut first: HashMap<usize, Instant> = HashMap::new();
        let matches =
            |c: &Change| c.prefix == prefix && c.added == added && hosts.contains(&c.host);
        for c in self.seen.iter().filter(|c| matches(c)) {
            first.entry(c.host).or_insert(c.at);
        }
        while first.len() < hosts.len() {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(c) => {
                    if matches(&c) {
                        first.entry(c.host).or_insert(c.at);
                    }
                    self.seen.push(c);
                }
                Err(_) => break,
            }
        }
        hosts.iter().map(|h| first.get(h).copied()).collect()
    }
}

/// The id each host's namespace has in ours, given one where it has none
/// (`ip netns set NAME auto`, one `ip` for all), by id.
fn nsids(hosts: &[&Host]) -> HashMap<i32, usize> {
    let mut ip = Command::new("ip")
        .args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ip");
    if let Some(mut stdin) = ip.stdin.take() {
        for h in hosts {
            // Fails (and is skipped) where the namespace has an id already.
            let _ = writeln!(stdin, "netns set {} auto", h.ns);
        }
    }
    let _ = ip.wait();
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    // Lines read `NAME (id: N)`.
    let listed: HashMap<String, i32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(" (id: ")?;
            Some((name.to_string(), rest.trim_end_matches(')').parse().ok()?))
        })
        .collect();
    hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let id = listed
                .get(&h.ns)
                .unwrap_or_else(|| panic!("namespace {} has no id", h.ns));
            (*id, i)
        })
        .collect()
}

/// A NETLINK_ROUTE socket in the IPv4 route group, hearing every
/// namespace with an id in ours.
fn subscribe() -> OwnedFd {
    // SAFETY: plain socket creation; the descriptor is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    assert!(
        fd >= 0,
        "netlink socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let int_option = |level, name, value: libc::c_int| {
        // SAFETY: a c_int option of the right size.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    // A thousand kernels converging at once: a failure only leaves the
    // default buffer, and changes lost show as waits that time out.
    int_option(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 256 << 20);
    let rc = int_option(libc::SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 1);
    assert_eq!(
        rc,
        0,
        "NETLINK_LISTEN_ALL_NSID: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a zeroed sockaddr_nl is valid; we set its family and groups.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = RTMGRP_IPV4_ROUTE;
    // SAFETY: `addr` is a sockaddr_nl of the size we pass.
    let rc = unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "netlink bind: {}", std::io::Error::last_os_error());
    socket
}

/// Read notifications until the monitor is gone; each datagram's
/// namespace comes as its id in a control message.
fn read(ids: &HashMap<i32, usize>, socket: &OwnedFd, stop: &OwnedFd, tx: &mpsc::Sender<Change>) {
    let mut buf = vec![0u8; 1 << 16];
    // Room for one cmsg of one int, aligned as cmsghdr wants.
    let mut control = [0u64; 8];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is an array of two initialised pollfd.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if ready < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            return;
        }
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: a zeroed msghdr is valid; its buffers are set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: `msg` points at `iov` (into `buf`) and `control`, both
        // writable for the lengths given, and alive for the call.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        let at = Instant::now();
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR | libc::EAGAIN) => continue,
                // Changes were dropped: the waits that miss them time out
                // and count as missed.
                Some(libc::ENOBUFS) => {
                    eprintln!("route monitor: {e}");
                    continue;
                }
                _ => {
                    eprintln!("route monitor: {e}; stopped");
                    return;
                }
            }
        }
        // Which namespace: none given means ours, which is not watched.
        let mut nsid = None;
        // SAFETY: the CMSG macros walk the control buffer recvmsg filled,
        // within the length it set.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_NETLINK && (*c).cmsg_type == NETLINK_LISTEN_ALL_NSID
                {
                    nsid = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>()));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let Some(&host) = nsid.and_then(|id| ids.get(&id)) else {
            continue;
        };
        for (prefix, added) in parse(&buf[..n as usize]) {
            let change = Change {
                host,
                prefix,
                added,
                at,
            };
            if tx.send(change).is_err() {
                return;
            }
        }
    }
}

/// The main-table IPv4 route changes in one datagram of netlink messages.
fn parse(mut data: &[u8]) -> Vec<(String, bool)> {
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    let mut out = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            break;
        }
        let kind = u16_at(data, 4);
        let msg = &data[16..len];
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol,
        // scope, type, flags (u32); attributes follow.
        if (kind == RTM_NEWROUTE || kind == RTM_DELROUTE)
            && msg.len() >= 12
            && i32::from(msg[0]) == libc::AF_INET
            && msg[4] == RT_TABLE_MAIN
        {
            let dst_len = msg[1];
            let mut dst = Ipv4Addr::UNSPECIFIED;
            let mut attrs = &msg[12..];
            while attrs.len() >= 4 {
                let alen = usize::from(u16_at(attrs, 0));
                if alen < 4 || alen > attrs.len() {
                    break;
                }
                if u16_at(attrs, 2) == RTA_DST && alen == 8 {
                    dst = Ipv4Addr::new(attrs[4], attrs[5], attrs[6], attrs[7]);
                }
                attrs = &attrs[((alen + 3) & !3).min(attrs.len())..];
            }
            out.push((format!("{dst}/{dst_len}"), kind == RTM_NEWROUTE));
        }
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    out
}
