//! Kernel route changes as they happen, timed: one rtnetlink socket per
//! namespace, subscribed to IPv4 route notifications and read on a thread
//! of its own, so each change carries the moment it reached user space.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Host;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTA_DST: u16 = 1;
const RT_TABLE_MAIN: u8 = 254;

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
    /// The write end of a pipe every reader polls beside its socket:
    /// closed when the monitor goes, so its threads end with it (a
    /// harness building cluster after cluster must not keep a thousand
    /// readers of gone namespaces).
    _stop: OwnedFd,
}

impl Monitor {
    /// Watch the kernels of `hosts`; returns once every socket is bound,
    /// so no change after this call is missed.
    pub fn new(hosts: &[&Host]) -> Monitor {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut ends = [0; 2];
        // SAFETY: pipe2 fills `ends` with two fresh descriptors.
        let rc = unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "pipe: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are fresh and owned from here on.
        let (stop_rx, stop_tx) =
            unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
        let stop_rx = std::sync::Arc::new(stop_rx);
        for (i, h) in hosts.iter().enumerate() {
            let path = format!("/var/run/netns/{}", h.ns);
            let (tx, ready, stop) = (tx.clone(), ready_tx.clone(), stop_rx.clone());
            std::thread::spawn(move || {
                let socket = subscribe(&path);
                let _ = ready.send(());
                read(i, &socket, &stop, &tx);
            });
        }
        for _ in hosts {
            ready_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("a route monitor did not start");
        }
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

/// A NETLINK_ROUTE socket in the namespace at `path`, in the IPv4 route
/// group. Runs on the calling thread, which stays in that namespace.
fn subscribe(path: &str) -> OwnedFd {
    let ns = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns on this thread only, with a namespace file we hold open.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
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
    let size: libc::c_int = 8 << 20;
    // SAFETY: a c_int option of the right size; a failure only leaves the
    // default buffer.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
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

/// Read notifications until the monitor is gone.
fn read(host: usize, socket: &OwnedFd, stop: &OwnedFd, tx: &mpsc::Sender<Change>) {
    let mut buf = vec![0u8; 1 << 16];
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
        // SAFETY: `buf` is writable for its whole length.
        let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let at = Instant::now();
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // Changes were dropped: the waits that miss them time out
                // and count as missed.
                Some(libc::ENOBUFS) => {
                    eprintln!("route monitor {host}: {e}");
                    continue;
                }
                _ => {
                    eprintln!("route monitor {host}: {e}; stopped");
                    return;
                }
            }
        }
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
