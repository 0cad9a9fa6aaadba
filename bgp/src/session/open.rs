//! Building our OPEN, checking the peer's (RFC 4271 §6.2, RFC 5492,
//! RFC 6286, RFC 6793), and working out what the two agreed on.

use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::{BufMut, BytesMut};

use crate::wire::iana::{OpenSubcode, AS_TRANS};
use crate::wire::{
    AddPathFamilies, AddPathFamily, Capability, Cause, Context, Family, GracefulRestart,
    GracefulRestartFamily, Notification, Open,
};

/// What this side of a session offers and expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// The AS the peer must announce.
    pub peer_as: u32,
    /// Hold time we propose: 0 (no keepalives) or at least 3 seconds.
    pub hold_time: u16,
    pub connect_retry: Duration,
    /// Wait for the peer to connect instead of connecting.
    pub passive: bool,
    pub families: Vec<Family>,
    /// Families we offer ADD-PATH for, and in which direction.
    pub add_path: Vec<AddPathFamily>,
    /// Graceful restart: our restart time, or `None` not to offer it.
    pub graceful_restart: Option<u16>,
    /// With graceful restart, offer it for NOTIFICATIONs too (the N-bit,
    /// RFC 8538): a peer then keeps our routes after any NOTIFICATION but a
    /// Hard Reset, a hold-timer expiry included.
    pub gr_notification: bool,
    /// Set the R-bit: we restarted and kept forwarding state (RFC 4724 §3).
    pub restarting: bool,
    pub extended_message: bool,
    pub hostname: Option<String>,
}

impl SessionConfig {
    /// A session with defaults: hold time 90 s, connect retry 120 s, IPv4
    /// and IPv6 unicast, route refresh, 4-octet AS, extended messages.
    pub fn new(local_as: u32, router_id: Ipv4Addr, peer_as: u32) -> Self {
        SessionConfig {
            local_as,
            router_id,
            peer_as,
            hold_time: 90,
            connect_retry: Duration::from_secs(120),
            passive: false,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            add_path: Vec::new(),
            graceful_restart: None,
            gr_notification: false,
            restarting: false,
            extended_message: true,
            hostname: None,
        }
    }

    pub fn ibgp(&self) -> bool {
        self.local_as == self.peer_as
    }

    /// Our OPEN.
    pub fn open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::EnhancedRouteRefresh);
        if self.extended_message {
            caps.push(Capability::ExtendedMessage);
        }
        if let Some(time) = self.graceful_restart {
            let notification = if self.gr_notification {
                GracefulRestart::NOTIFICATION
            } else {
                0
            };
            let flags = notification
                | if self.restarting {
                    GracefulRestart::RESTART_STATE
                } else {
                    0
                };
            caps.push(Capability::GracefulRestart(GracefulRestart {
                flags,
                time: time.min(0x0fff),
                families: self
                    .families
                    .iter()
                    .map(|f| GracefulRestartFamily {
                        family: *f,
                        flags: if self.restarting {
                            GracefulRestartFamily::FORWARDING_STATE
                        } else {
                            0
                        },
                    })
                    .collect(),
            }));
        }
        caps.push(Capability::FourOctetAs(self.local_as));
        if !self.add_path.is_empty() {
            caps.push(Capability::AddPath(self.add_path.clone()));
        }
        if let Some(host) = &self.hostname {
            caps.push(Capability::Fqdn(crate::wire::Fqdn {
                hostname: host.clone(),
                domain: String::new(),
            }));
        }
        Open::new(self.local_as, self.hold_time, self.router_id, caps)
    }
}

/// The peer's graceful restart parameters (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRestart {
    pub restart_time: u16,
    /// The peer restarted (R-bit).
    pub restarting: bool,
    /// Graceful restart applies to NOTIFICATIONs too (RFC 8538 N-bit).
    pub notification: bool,
    /// Families the peer preserves across a restart, with its F-bit.
    pub families: Vec<(Family, bool)>,
}

/// What the two OPENs agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    /// 0 means no keepalives and no hold timer.
    pub hold_time: u16,
    pub keepalive: u16,
    pub families: Vec<Family>,
    pub four_octet_as: bool,
    pub extended_message: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// Families whose NLRI we receive with path identifiers.
    pub add_path_rx: AddPathFamilies,
    /// Families whose NLRI we send with path identifiers.
    pub add_path_tx: AddPathFamilies,
    pub peer_restart: Option<PeerRestart>,
    pub peer_hostname: Option<String>,
    /// Every capability the peer's OPEN carried, as it came.
    pub peer_capabilities: Vec<Capability>,
    /// The peer's OPEN itself (BMP's Peer Up carries it).
    pub peer_open: Open,
}

impl Negotiated {
    /// The codec context for messages from the peer.
    pub fn rx(&self) -> Context {
        Context {
            four_octet_as: self.four_octet_as,
            extended_message: self.extended_message,
            add_path: self.add_path_rx,
        }
    }

    /// The codec context for messages to the peer.
    pub fn tx(&self) -> Context {
        Context {
            four_octet_as: self.four_octet_as,
            extended_message: self.extended_message,
            add_path: self.add_path_tx,
        }
    }
}

fn open_error(subcode: OpenSubcode, data: impl Into<bytes::Bytes>) -> Notification {
    Notification::new(Cause::Open(subcode), data)
}

/// Check the peer's OPEN against our configuration and work out the
/// session; an unacceptable OPEN gives the NOTIFICATION to send.
pub fn negotiate(config: &SessionConfig, open: &Open) -> Result<Negotiated, Notification> {
    let caps: Vec<&Capability> = open.capabilities().collect();
    let four_octet = caps.iter().find_map(|c| match c {
        Capability::FourOctetAs(asn) => Some(*asn),
        _ => None,
    });

    // RFC 6793 §4.1: the 4-octet AS capability carries the real AS; without
    // it, My Autonomous System is the AS and AS_TRANS is no AS at all.
    let peer_as = four_octet.unwrap_or(u32::from(open.my_as));
    if peer_as != config.peer_as || (four_octet.is_none() && open.my_as == AS_TRANS) {
        let mut data = BytesMut::new();
        data.put_u16(open.my_as);
        return Err(open_error(OpenSubcode::BadPeerAs, data.freeze()));
    }

    // RFC 6286 §2.2: identifiers must differ within an AS.
    if config.ibgp() && open.bgp_id == config.router_id {
        return Err(open_error(
            OpenSubcode::BadBgpIdentifier,
            bytes::Bytes::new(),
        ));
    }

    // Families: with no Multiprotocol capability the peer speaks IPv4 unicast only.
    let offered: Vec<Family> = caps
        .iter()
        .filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
        .collect();
    let peer_families = if offered.is_empty() {
        vec![Family::IPV4_UNICAST]
    } else {
        offered
    };
    let families: Vec<Family> = config
        .families
        .iter()
        .copied()
        .filter(|f| peer_families.contains(f))
        .collect();
    if families.is_empty() {
        // RFC 5492 §3: tell the peer which capability we needed.
        let mut data = BytesMut::new();
        for f in &config.families {
            let mut one = BytesMut::new();
            if Capability::Multiprotocol(*f).encode(&mut one).is_ok() {
                data.extend_from_slice(&one);
            }
        }
        return Err(open_error(
            OpenSubcode::UnsupportedCapability,
            data.freeze(),
        ));
    }

    let hold_time = config.hold_time.min(open.hold_time);
    let has = |want: fn(&Capability) -> bool| caps.iter().any(|c| want(c));

    let mut add_path_rx = AddPathFamilies::default();
    let mut add_path_tx = AddPathFamilies::default();
    for c in &caps {
        if let Capability::AddPath(entries) = c {
            for theirs in entries {
                let Some(ours) = config.add_path.iter().find(|a| a.family == theirs.family) else {
                    continue;
                };
                if ours.mode.receives() && theirs.mode.sends() {
                    add_path_rx.set(theirs.family, true);
                }
                if ours.mode.sends() && theirs.mode.receives() {
                    add_path_tx.set(theirs.family, true);
                }
            }
        }
    }

    let peer_restart = caps.iter().find_map(|c| match c {
        Capability::GracefulRestart(gr) => Some(PeerRestart {
            restart_time: gr.time,
            restarting: gr.restart_state(),
            notification: gr.notification(),
            families: gr
                .families
                .iter()
                .map(|f| (f.family, f.forwarding_preserved()))
                .collect(),
        }),
        _ => None,
    });

    Ok(Negotiated {
        peer_as,
        peer_id: open.bgp_id,
        hold_time,
        keepalive: hold_time / 3,
        families,
        four_octet_as: four_octet.is_some(),
        extended_message: config.extended_message
            && has(|c| matches!(c, Capability::ExtendedMessage)),
        route_refresh: has(|c| matches!(c, Capability::RouteRefresh)),
        enhanced_route_refresh: has(|c| matches!(c, Capability::EnhancedRouteRefresh)),
        add_path_rx,
        add_path_tx,
        peer_restart,
        peer_capabilities: caps.iter().map(|c| (*c).clone()).collect(),
        peer_hostname: caps.iter().find_map(|c| match c {
            Capability::Fqdn(f) => Some(f.hostname.clone()),
            _ => None,
        }),
        peer_open: open.clone(),
    })
}

/// Which of two connections to one peer survives a collision (RFC 4271 §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Keep the connection we opened; close the one the peer opened.
    Ours,
    /// Keep the connection the peer opened; close ours.
    Theirs,
}

/// Resolve a connection collision: the connection opened by the side with
/// the higher BGP identifier survives. With equal identifiers (possible
/// between ASes, RFC 6286 §2.3) the higher AS number decides.
pub fn resolve_collision(
    local_id: Ipv4Addr,
    local_as: u32,
    peer_id: Ipv4Addr,
    peer_as: u32,
) -> Keep {
    match local_id.cmp(&peer_id).then(local_as.cmp(&peer_as)) {
        std::cmp::Ordering::Greater => Keep::Ours,
        _ => Keep::Theirs,
    }
}
