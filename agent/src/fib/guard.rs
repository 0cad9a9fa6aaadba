//! What may never reach the kernel, whatever BGP says: prefixes outside
//! `fib.accept`, default routes not named there, and prefixes that touch
//! the node's own addresses or connected subnets.

use std::net::IpAddr;

use ipnet::IpNet;

/// Why a prefix was kept out of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not inside any `fib.accept` prefix.
    NotAccepted,
    /// A default route, and `fib.accept` does not name it.
    Default,
    /// It contains one of the node's own addresses.
    OwnAddress,
    /// It overlaps a connected subnet, which must keep winning.
    Connected,
}

impl Refusal {
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::NotAccepted => "outside fib.accept",
            Refusal::Default => "a default route fib.accept does not name",
            Refusal::OwnAddress => "contains an address of this node",
            Refusal::Connected => "overlaps a connected subnet",
        }
    }
}

/// The node's addresses and the subnets they make connected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    pub addresses: Vec<IpAddr>,
    pub subnets: Vec<IpNet>,
}

impl Local {
    /// The connected subnet `addr` is on, if any.
    pub fn on_link(&self, addr: IpAddr) -> bool {
        self.subnets
            .iter()
            .any(|s| s.contains(&addr) && s.prefix_len() < s.max_prefix_len())
    }
}

/// Check a prefix before it goes to the kernel.
pub fn check(prefix: &IpNet, accept: &[IpNet], local: &Local) -> Result<(), Refusal> {
    if prefix.prefix_len() == 0 {
        return if accept.contains(prefix) {
            Ok(())
        } else {
            Err(Refusal::Default)
        };
    }
    if !accept.iter().any(|a| a.contains(prefix)) {
        return Err(Refusal::NotAccepted);
    }
    if local.addresses.iter().any(|a| prefix.contains(a)) {
        return Err(Refusal::OwnAddress);
    }
    // Host routes of the node's own addresses are not subnets.
    let overlaps = local
        .subnets
        .iter()
        .filter(|s| s.prefix_len() < s.max_prefix_len())
        .any(|s| s.contains(prefix) || prefix.contains(s));
    if overlaps {
        return Err(Refusal::Connected);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }

    fn local() -> Local {
        Local {
            addresses: vec![
                "10.77.0.1".parse().expect("ip"),
                "fd77::1".parse().expect("ip"),
            ],
            subnets: vec![net("10.77.0.0/24"), net("fd77::/64")],
        }
    }

    #[test]
    fn only_accepted_prefixes_pass() {
        let accept = [net("10.0.0.0/8"), net("fd00::/8")];
        assert_eq!(check(&net("10.244.1.0/24"), &accept, &local()), Ok(()));
        assert_eq!(check(&net("fd10:244:1::/64"), &accept, &local()), Ok(()));
        assert_eq!(
            check(&net("192.168.1.0/24"), &accept, &local()),
            Err(Refusal::NotAccepted)
        );
        assert_eq!(
            check(&net("8.0.0.0/7"), &accept, &local()),
            Err(Refusal::NotAccepted)
        );
    }

    #[test]
    fn default_routes_need_naming() {
        let accept = [net("0.0.0.0/0")];
        assert_eq!(check(&net("0.0.0.0/0"), &accept, &local()), Ok(()));
        assert_eq!(
            check(&net("::/0"), &accept, &local()),
            Err(Refusal::Default)
        );
        assert_eq!(
            check(&net("0.0.0.0/0"), &[net("10.0.0.0/8")], &local()),
            Err(Refusal::Default)
        );
    }

    #[test]
    fn the_nodes_own_addresses_and_subnets_are_off_limits() {
        let accept = [net("10.0.0.0/8"), net("fd00::/8")];
        assert_eq!(
            check(&net("10.77.0.0/16"), &accept, &local()),
            Err(Refusal::OwnAddress)
        );
        assert_eq!(
            check(&net("10.77.0.1/32"), &accept, &local()),
            Err(Refusal::OwnAddress)
        );
        assert_eq!(
            check(&net("10.77.0.128/25"), &accept, &local()),
            Err(Refusal::Connected)
        );
        assert_eq!(
            check(&net("fd77::8000/113"), &accept, &local()),
            Err(Refusal::Connected)
        );
        assert!(local().on_link("10.77.0.9".parse().expect("ip")));
        assert!(!local().on_link("10.78.0.9".parse().expect("ip")));
    }
}
