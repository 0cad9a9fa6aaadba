//! The kernel side of the FIB: route and address dumps, route writes and
//! next-hop lookups over rtnetlink, and the notifications to watch.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteNextHop, RouteProtocol, RouteType,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, RouteMessageBuilder};

use super::guard::Local;
use super::nexthop::RTA_NH_ID;
use rtnetlink::packet_core::{DefaultNla, Nla};

/// Where a route sends traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gateway {
    pub addr: IpAddr,
    pub oif: Option<u32>,
}

/// A route as read from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub prefix: IpNet,
    pub table: u32,
    pub protocol: u8,
    pub unicast: bool,
    /// As the kernel states them (for a route naming a nexthop object too).
    pub gateways: Vec<Gateway>,
    /// The nexthop object the route names.
    pub nexthop: Option<u32>,
}

/// What the kernel says of the way to an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    /// The gateway, or `None` when the address is on the link itself.
    pub gateway: Option<IpAddr>,
    pub oif: u32,
    pub protocol: u8,
    pub metric: u32,
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Read a route message; `None` for what is not an IPv4 or IPv6 route.
pub fn parse(m: &RouteMessage) -> Option<KernelRoute> {
    let h = &m.header;
    let mut table = u32::from(h.table);
    let mut dest = None;
    let mut gateway = None;
    let mut oif = None;
    let mut multipath = Vec::new();
    let mut nexthop = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Other(nla) if nla.kind() == RTA_NH_ID && nla.value_len() == 4 => {
                let mut id = [0u8; 4];
                nla.emit_value(&mut id);
                nexthop = Some(u32::from_ne_bytes(id));
            }
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => dest = ip_of(d),
            RouteAttribute::Gateway(g) => gateway = ip_of(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::MultiPath(hops) => {
                for hop in hops {
                    let addr = hop.attributes.iter().find_map(|x| match x {
                        RouteAttribute::Gateway(g) => ip_of(g),
                        _ => None,
                    });
                    if let Some(addr) = addr {
                        multipath.push(Gateway {
                            addr,
                            oif: Some(hop.interface_index),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    let dest = match (h.address_family, dest) {
        (_, Some(d)) => d,
        (AddressFamily::Inet, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (AddressFamily::Inet6, None) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let prefix = IpNet::new(dest, h.destination_prefix_length).ok()?;
    let mut gateways = multipath;
    if let Some(addr) = gateway {
        gateways.push(Gateway { addr, oif });
    }
    gateways.sort();
    Some(KernelRoute {
        prefix,
        table,
        protocol: u8::from(h.protocol),
        unicast: h.kind == RouteType::Unicast,
        gateways,
        nexthop,
    })
}

/// The kernel, as the FIB writer uses it: one table, one protocol number.
#[derive(Clone)]
pub struct Kernel {
    pub handle: Handle,
    pub table: u32,
    pub protocol: u8,
}

impl Kernel {
    fn builder(&self, prefix: &IpNet) -> RouteMessageBuilder<IpAddr> {
        RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(prefix.addr(), prefix.prefix_len())
            .unwrap_or_else(|_| RouteMessageBuilder::<IpAddr>::new())
            .table_id(self.table)
            .protocol(RouteProtocol::from(self.protocol))
    }

    /// Every IPv4 or IPv6 route of every table.
    pub async fn dump(&self, v6: bool) -> Result<Vec<KernelRoute>, String> {
        let query = if v6 {
            RouteMessageBuilder::<Ipv6Addr>::new().build()
        } else {
            RouteMessageBuilder::<Ipv4Addr>::new().build()
        };
        let messages: Vec<RouteMessage> = self
            .handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(|e| format!("route dump: {e}"))?;
        Ok(messages.iter().filter_map(parse).collect())
    }

    /// The node's addresses and connected subnets.
    pub async fn local(&self) -> Result<Local, String> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| format!("address dump: {e}"))?;
        let mut local = Local::default();
        for m in &messages {
            let addr = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(a) => Some(*a),
                _ => None,
            });
            if let Some(addr) = addr {
                if addr.is_loopback() {
                    continue;
                }
                local.addresses.push(addr);
                if let Ok(net) = IpNet::new(addr, m.header.prefix_len) {
                    local.subnets.push(net.trunc());
                }
            }
        }
        local.addresses.sort();
        local.addresses.dedup();
        local.subnets.sort();
        local.subnets.dedup();
        Ok(local)
    }

    /// Our route to `prefix` via `gateways`, as a message; `None` without gateways.
    pub fn route(&self, prefix: &IpNet, gateways: &[Gateway]) -> Option<RouteMessage> {
        let mut b = self.builder(prefix);
        match gateways {
            [] => return None,
            [one] => {
                b = b.gateway(one.addr).ok()?;
                if let Some(oif) = one.oif {
                    b = b.output_interface(oif);
                }
            }
            many => {
                let hops: Vec<RouteNextHop> = many
                    .iter()
                    .map(|g| {
                        let mut hop = RouteNextHop::default();
                        hop.interface_index = g.oif.unwrap_or(0);
                        hop.attributes.push(RouteAttribute::Gateway(g.addr.into()));
                        hop
                    })
                    .collect();
                b = b.multipath(hops);
            }
        }
        Some(b.build())
    }

    /// Our route to `prefix` through nexthop object `id`.
    pub fn route_via(&self, prefix: &IpNet, id: u32) -> RouteMessage {
        let mut m = self.builder(prefix).build();
        m.attributes.push(RouteAttribute::Other(DefaultNla::new(
            RTA_NH_ID,
            id.to_ne_bytes().to_vec(),
        )));
        m
    }

    /// Our route to `prefix`, naming it only (for deletion).
    pub fn bare(&self, prefix: &IpNet) -> RouteMessage {
        self.builder(prefix).build()
    }

    /// Ask the kernel how it reaches `addr`.
    pub async fn lookup(&self, addr: IpAddr) -> Option<Lookup> {
        let query = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(addr, if addr.is_ipv4() { 32 } else { 128 })
            .ok()?
            .build();
        let mut replies = self.handle.route().get(query).execute();
        let m = replies.try_next().await.ok()??;
        if m.header.kind != RouteType::Unicast {
            return None;
        }
        let mut found = Lookup {
            gateway: None,
            oif: 0,
            protocol: u8::from(m.header.protocol),
            metric: 0,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Gateway(g) => found.gateway = ip_of(g),
                RouteAttribute::Oif(i) => found.oif = *i,
                RouteAttribute::Priority(p) => found.metric = *p,
                _ => {}
            }
        }
        (found.oif != 0).then_some(found)
    }
}
