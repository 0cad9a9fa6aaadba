//! The node's interfaces and addresses, from getifaddrs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address of an interface that is up.
struct IfAddr {
    name: String,
    addr: IpAddr,
    loopback: bool,
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
        // SAFETY: a non-null ifa_addr points to a sockaddr of its family.
        let addr = match i32::from(unsafe { (*ifa.ifa_addr).sa_family }) {
            libc::AF_INET => {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
            }
            libc::AF_INET6 => {
                // SAFETY: an AF_INET6 address is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
            }
            _ => continue,
        };
        // SAFETY: ifa_name is a NUL-terminated string while the list lives.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        out.push(IfAddr {
            name,
            addr,
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

/// The first interface that is up and not loopback, with an address.
pub fn first_interface() -> Option<String> {
    addresses()
        .into_iter()
        .find(|a| !a.loopback)
        .map(|a| a.name)
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
}
