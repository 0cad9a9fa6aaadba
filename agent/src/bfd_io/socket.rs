//! BFD's UDP sockets. Receiving needs what a plain `recv_from` does not
//! give: the TTL (hop limit) the packet arrived with, which single hop BFD
//! requires to be 255 (RFC 5881 §5, as GTSM), and the local address and
//! interface it arrived on, which identify the session (§3). Those come as
//! control messages of `recvmsg`, asked for with IP_RECVTTL and IP_PKTINFO
//! (IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// A packet as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    /// The address it was sent to: ours.
    pub local: IpAddr,
    pub ifindex: u32,
    /// Its IP TTL or hop limit on arrival.
    pub ttl: u8,
}

/// A socket receiving Control packets on `port` of every address of the
/// family.
pub struct Receiver {
    socket: UdpSocket,
    v6: bool,
}

fn set(fd: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the option value is a live i32 of the length given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Receiver {
    pub fn bind(v6: bool, port: u16) -> io::Result<Receiver> {
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        let any: SocketAddr = if v6 {
            socket.set_only_v6(true)?;
            set(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
            set(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
            (Ipv6Addr::UNSPECIFIED, port).into()
        } else {
            set(&socket, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
            set(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
            (Ipv4Addr::UNSPECIFIED, port).into()
        };
        // No SO_REUSEADDR: with another BFD daemon on the port, only one
        // of the two would get each packet; better to fail loudly.
        socket.set_nonblocking(true)?;
        socket.bind(&any.into())?;
        Ok(Receiver {
            socket: UdpSocket::from_std(socket.into())?,
            v6,
        })
    }

    /// A packet into `buf` if one is waiting; otherwise `cx` is woken
    /// when one arrives.
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<Received>> {
        let fd = self.socket.as_raw_fd();
        loop {
            if let Err(e) = std::task::ready!(self.socket.poll_recv_ready(cx)) {
                return Poll::Ready(Err(e));
            }
            match self
                .socket
                .try_io(Interest::READABLE, || recv_msg(fd, buf, self.v6))
            {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

/// One `recvmsg` with its control messages read.
fn recv_msg(fd: RawFd, buf: &mut [u8], v6: bool) -> io::Result<Received> {
    // SAFETY: every structure handed to recvmsg is zeroed, lives across the
    // call and is described with its true length; the control messages are
    // walked with the CMSG macros within the length the kernel returned,
    // and read with read_unaligned.
    unsafe {
        let mut from: libc::sockaddr_storage = zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 32];
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = (&raw mut from).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 32]>();
        let n = libc::recvmsg(fd, &raw mut msg, 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let from = sockaddr(&from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no source address"))?;
        let mut local = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let (mut ifindex, mut ttl) = (0, 0);
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            match (c.cmsg_level, c.cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_TTL) => {
                    ttl = std::ptr::read_unaligned(data.cast::<i32>()) as u8;
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    local = IpAddr::V4(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)));
                    ifindex = u32::try_from(info.ipi_ifindex).unwrap_or(0);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    ttl = std::ptr::read_unaligned(data.cast::<i32>()) as u8;
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    local = IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                    ifindex = info.ipi6_ifindex;
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
        Ok(Received {
            len: usize::try_from(n).unwrap_or(0),
            from,
            local,
            ifindex,
            ttl,
        })
    }
}

/// The address in a `sockaddr_storage` the kernel filled.
fn sockaddr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(std::ptr::from_ref(s).cast::<libc::sockaddr_in>()) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(std::ptr::from_ref(s).cast::<libc::sockaddr_in6>()) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

/// A socket sending Control packets from `local`: TTL 255, from a source
/// port of 49152-65535 (RFC 5881 §4), `start` if it is free, else the
/// first free one after it; the socket and its port.
pub fn sender(local: IpAddr, start: u16) -> io::Result<(UdpSocket, u16)> {
    let v6 = local.is_ipv6();
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let range = bfd::SOURCE_PORTS;
    let span = u32::from(range.end() - range.start()) + 1;
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free source port");
    for i in 0..64u32 {
        let first = u32::from(start.saturating_sub(*range.start()));
        let offset = (first + i * 7919) % span;
        let port = range.start() + u16::try_from(offset).unwrap_or(0);
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if v6 {
            socket.set_only_v6(true)?;
            socket.set_unicast_hops_v6(u32::from(bfd::TTL))?;
        } else {
            socket.set_ttl(u32::from(bfd::TTL))?;
        }
        socket.set_nonblocking(true)?;
        match socket.bind(&SocketAddr::new(local, port).into()) {
            Ok(()) => return Ok((UdpSocket::from_std(socket.into())?, port)),
            Err(e) => last = e,
        }
    }
    Err(last)
}
