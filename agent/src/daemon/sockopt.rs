//! Socket options BGP needs that std and socket2 do not offer: TCP MD5
//! signatures (RFC 2385) and the minimum TTL of GTSM (RFC 5082).

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// The kernel's `struct tcp_md5sig` (include/uapi/linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; libc::TCP_MD5SIG_MAXKEYLEN],
}

/// Sign (or, with an empty key, stop signing) the segments to and from
/// `peer` on this socket. On a listening socket the key applies to the
/// connections it accepts from `peer`.
pub fn set_md5(socket: &impl AsRawFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > libc::TCP_MD5SIG_MAXKEYLEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP MD5 keys are at most 80 bytes",
        ));
    }
    // SAFETY: an all-zero sockaddr_storage and key are valid values.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let sockaddr = socket2::SockAddr::from(std::net::SocketAddr::new(peer, 0));
    // SAFETY: `sockaddr.len()` bytes fit in a sockaddr_storage by construction.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sockaddr.as_ptr().cast::<u8>(),
            (&mut sig.addr as *mut libc::sockaddr_storage).cast::<u8>(),
            sockaddr.len() as usize,
        );
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    setsockopt(socket, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

/// Drop packets that arrive with a TTL (hop limit) below `min` (RFC 5082).
pub fn set_min_ttl(socket: &impl AsRawFd, v6: bool, min: u8) -> io::Result<()> {
    let value = libc::c_int::from(min);
    if v6 {
        setsockopt(socket, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &value)
    } else {
        setsockopt(socket, libc::IPPROTO_IP, libc::IP_MINTTL, &value)
    }
}

/// The TTL (hop limit) of what we send.
pub fn set_ttl(socket: &impl AsRawFd, v6: bool, ttl: u8) -> io::Result<()> {
    let value = libc::c_int::from(ttl);
    if v6 {
        setsockopt(socket, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &value)
    } else {
        setsockopt(socket, libc::IPPROTO_IP, libc::IP_TTL, &value)
    }
}

fn setsockopt<T>(
    socket: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live reference to a `T` of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
