//! The node's interfaces and addresses, from getifaddrs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::RwLock;

use ipnet::IpNet;

/// An address of an interface that is up.
struct IfAddr {
    name: String,
    addr: IpAddr,
    /// The prefix length its netmask gives.
    prefix_len: u8,
    loopback: bool,
}

/// The IP address in a sockaddr of family AF_INET or AF_INET6.
///
/// # Safety
/// `sa` must be null or point to a sockaddr of the family it names.
unsafe fn ip_of(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller vouches for `sa`.
    match i32::from(unsafe { (*sa).sa_family }) {
        libc::AF_INET => {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: an AF_INET6 address is a sockaddr_in6.
            let sin6 = unsafe { &*(sa as *const libc::sockaddr_in6) };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

fn addresses() -> Vec<IfAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, which we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` walks the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        let up = ifa.ifa_flags & (libc::IFF_UP as u32) != 0;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() || !up {
            continue;
        }
        // SAFETY: getifaddrs gives null or a sockaddr of its family.
        let Some(addr) = (unsafe { ip_of(ifa.ifa_addr) }) else {
            continue;
        };
        // SAFETY: as above; the mask has the address's family.
        let mask = unsafe { ip_of(ifa.ifa_netmask) };
        let prefix_len = match mask {
            Some(IpAddr::V4(m)) => u32::from(m).leading_ones() as u8,
            Some(IpAddr::V6(m)) => u128::from(m).leading_ones() as u8,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        // SAFETY: ifa_name is a NUL-terminated string while the list lives.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        out.push(IfAddr {
            name,
            addr,
            prefix_len,
            loopback: ifa.ifa_flags & (libc::IFF_LOOPBACK as u32) != 0,
        });
    }
    // SAFETY: `list` came from getifaddrs.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// The first IPv4 address of an interface that is up and not loopback.
pub fn first_ipv4() -> Option<Ipv4Addr> {
    addresses().into_iter().find_map(|a| match a.addr {
        IpAddr::V4(v4) if !a.loopback => Some(v4),
        _ => None,
    })
}

/// The interface holding `addr`.
pub fn interface_of(addr: IpAddr) -> Option<String> {
    addresses()
        .into_iter()
        .find(|a| a.addr == addr)
        .map(|a| a.name)
}

fn prefix_in(list: impl Iterator<Item = (IpAddr, u8)>, addr: IpAddr) -> IpNet {
    list.filter(|(a, _)| *a == addr)
        .map(|(_, len)| len)
        .min()
        .and_then(|len| IpNet::new(addr, len).ok())
        .unwrap_or_else(|| IpNet::from(addr))
}

/// The node's addresses as [`refresh`] last read them, with their prefix
/// lengths, for lookups on threads that must not wait: reading them
/// (getifaddrs, a netlink dump) waits for the kernel's RTNL lock, one
/// lock for the whole machine, which a busy node can hold for seconds.
static KNOWN: RwLock<Vec<(IpAddr, u8)>> = RwLock::new(Vec::new());

/// Read the node's addresses again for [`known_prefix`]. Blocks.
pub fn refresh() {
    let list = addresses()
        .into_iter()
        .map(|a| (a.addr, a.prefix_len))
        .collect();
    *KNOWN.write().unwrap_or_else(|e| e.into_inner()) = list;
}

/// `addr` with the prefix length of the interface holding it (the widest,
/// when several hold it: a /32 copy on a dummy interface says nothing of
/// the network); a host prefix when no interface that was up holds it.
/// From the addresses [`refresh`] last read: it never waits for the kernel.
pub fn known_prefix(addr: IpAddr) -> IpNet {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    prefix_in(known.iter().copied(), addr)
}

/// The MTU of interface `name`, asked of the kernel in this network
/// namespace (a `/sys` mounted for another namespace would answer for it).
pub fn mtu_of(name: &str) -> Option<u32> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: a zeroed ifreq is valid; the name fits with its NUL.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: a plain datagram socket, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: SIOCGIFMTU reads the name from and writes the MTU into `req`.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut req) };
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    // SAFETY: on success the kernel filled in the MTU member.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    (rc == 0).then_some(mtu).and_then(|m| u32::try_from(m).ok())
}

/// The first interface that is up and not loopback, with an address.
pub fn first_interface() -> Option<String> {
    addresses()
        .into_iter()
        .find(|a| !a.loopback)
        .map(|a| a.name)
}

/// The source address the kernel would pick for traffic to `peer` (a UDP
/// socket connected there sends nothing; it only asks for a route).
pub fn source_for(peer: IpAddr) -> Option<IpAddr> {
    let any: IpAddr = match peer {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = std::net::UdpSocket::bind((any, 0)).ok()?;
    socket.connect((peer, 9)).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// The name of the interface with index `index`.
pub fn name_of(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as the call requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    name.to_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_by_its_address() {
        assert_eq!(
            interface_of(IpAddr::V4(Ipv4Addr::LOCALHOST)).as_deref(),
            Some("lo")
        );
    }

    #[test]
    fn the_loopback_mtu_is_read_and_a_missing_interface_has_none() {
        assert!(mtu_of("lo").is_some_and(|m| m >= 1280));
        assert_eq!(mtu_of("no-such-if0"), None);
        assert_eq!(mtu_of(""), None);
    }

    #[test]
    fn an_address_comes_with_its_interface_prefix_length() {
        refresh();
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(
            known_prefix(lo),
            "127.0.0.1/8".parse::<IpNet>().expect("net")
        );
        let nowhere = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77));
        assert_eq!(
            known_prefix(nowhere),
            "192.0.2.77/32".parse::<IpNet>().expect("net")
        );
    }
}
