//! Socket calls BGP needs that std and socket2 do not offer: TCP MD5
//! signatures (RFC 2385), the minimum TTL of GTSM (RFC 5082), and how much
//! waits unread in a socket.

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

/// How many bytes wait unread in the socket's receive queue (FIONREAD).
pub fn unread(socket: &impl AsRawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at
    // `n`; the descriptor is borrowed for the call.
    let r = unsafe {
        libc::ioctl(
            socket.as_raw_fd(),
            libc::FIONREAD,
            &mut n as *mut libc::c_int,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn unread_counts_the_bytes_waiting_in_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut sender =
            TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        let (receiver, _) = listener.accept().expect("accept");
        assert_eq!(unread(&receiver).expect("ioctl"), 0);
        sender.write_all(&[0xff; 19]).expect("write");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while unread(&receiver).expect("ioctl") < 19 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(unread(&receiver).expect("ioctl"), 19);
    }
}
