//! The owner's side of BMP: what it offers the collectors' tasks as it
//! happens, and what it answers when a task dumps the tables.

use std::sync::Arc;
use std::time::SystemTime;

use bgp::rib::{BestChange, PeerId};
use bgp::session::{Down, State};
use bgp::wire::{AttrValue, Context, Family, Message, Update};
use bmp::{DownReason, Monitoring};

use super::Owner;
use crate::bmp_io::{Event, Peer, PeerStats, PeerUp, RejectedKey, Request, Route, Snapshot};

impl Owner {
    /// Whether some collector has a table `wants` picks.
    pub(super) fn bmp_wants(&self, wants: impl Fn(&Monitoring) -> bool) -> bool {
        self.bmp.iter().any(|l| wants(&l.monitoring))
    }

    fn bmp_offer(&self, wants: impl Fn(&Monitoring) -> bool, event: impl Fn() -> Event) {
        for l in self.bmp.iter().filter(|l| wants(&l.monitoring)) {
            l.offer(event());
        }
    }

    /// The peer as a per-peer header names it, if its session is up.
    fn bmp_peer(&self, peer: PeerId) -> Option<Peer> {
        let s = self.speaker.status(peer)?;
        let n = s.negotiated?;
        Some(Peer {
            address: s.config.address,
            asn: n.peer_as,
            bgp_id: n.peer_id,
            at: SystemTime::now(),
        })
    }

    fn bmp_peer_up(&self, peer: PeerId) -> Option<PeerUp> {
        let s = self.speaker.status(peer)?;
        let n = s.negotiated?;
        let (local, remote) = self
            .conns
            .values()
            .filter(|(p, _)| *p == peer)
            .find_map(|(_, h)| h.ends)?;
        Some(PeerUp {
            peer: self.bmp_peer(peer)?,
            local,
            remote_port: remote.port(),
            sent_open: s.config.session.open(),
            received_open: n.peer_open.clone(),
            ctx: n.rx(),
        })
    }

    /// A session came up.
    pub(super) fn bmp_session_up(&self, peer: PeerId) {
        if self.bmp.is_empty() {
            return;
        }
        if let Some(up) = self.bmp_peer_up(peer) {
            self.bmp_offer(|_| true, || Event::PeerUp(Box::new(up.clone())));
        }
    }

    /// A session ended (an attempt that failed, or a rival connection
    /// that lost a collision, is not a session that ended).
    pub(super) fn bmp_session_down(&self, peer: PeerId, reason: &Down) {
        if self.bmp.is_empty() {
            return;
        }
        let Some(s) = self.speaker.status(peer) else {
            return;
        };
        if s.state == State::Established {
            return;
        }
        let whole = |n: &bgp::wire::Notification| {
            Message::Notification(n.clone())
                .to_bytes(&Context::modern())
                .unwrap_or_default()
        };
        let reason = match reason {
            Down::Sent(n) => DownReason::LocalNotification(whole(n)),
            Down::Received(n) => DownReason::RemoteNotification(whole(n)),
            Down::Closed => DownReason::RemoteNoData,
            Down::ConnectFailed => return,
        };
        // The session is gone with what it agreed on: the task names the
        // peer as its Peer Up did.
        let peer = Peer {
            address: s.config.address,
            asn: s.config.session.peer_as,
            bgp_id: std::net::Ipv4Addr::UNSPECIFIED,
            at: SystemTime::now(),
        };
        self.bmp_offer(
            |_| true,
            || Event::PeerDown {
                peer: peer.clone(),
                reason: reason.clone(),
            },
        );
    }

    /// An UPDATE the peer sent, handled already: as it came, and without
    /// the prefixes import checks turned away.
    pub(super) fn bmp_update(&self, peer: PeerId, update: Update) {
        let (pre, post) = (
            self.bmp_wants(|m| m.pre_policy),
            self.bmp_wants(|m| m.post_policy),
        );
        let (Some(p), Some(ctx)) = (
            self.bmp_peer(peer),
            self.speaker
                .status(peer)
                .and_then(|s| s.negotiated.map(|n| n.rx())),
        ) else {
            return;
        };
        let accepted = if post {
            self.accepted_part(peer, &update)
        } else {
            None
        };
        for l in &self.bmp {
            let m = l.monitoring;
            if !(m.pre_policy || m.post_policy) {
                continue;
            }
            l.offer(Event::Update {
                peer: p.clone(),
                ctx,
                pre: (pre && m.pre_policy).then(|| update.clone()),
                post: if m.post_policy {
                    accepted.clone()
                } else {
                    None
                },
            });
        }
    }

    /// `update` without the announced prefixes import turned away;
    /// nothing when that leaves it announcing and withdrawing nothing.
    fn accepted_part(&self, peer: PeerId, update: &Update) -> Option<Update> {
        let kept = |n: &bgp::wire::Nlri| {
            !self
                .speaker
                .is_rejected(peer, n.prefix, n.path_id.unwrap_or(0))
        };
        let mut u = update.clone();
        let mut dropped = false;
        let before = u.nlri.len();
        u.nlri.retain(kept);
        dropped |= u.nlri.len() != before;
        for a in &mut u.attributes {
            if let AttrValue::MpReach(r) = &mut a.value {
                let before = r.nlri.len();
                r.nlri.retain(kept);
                dropped |= r.nlri.len() != before;
            }
        }
        let announces = !u.nlri.is_empty()
            || u.attributes.iter().any(|a| match &a.value {
                AttrValue::MpReach(r) => !r.nlri.is_empty(),
                AttrValue::MpUnreach(r) => !r.withdrawn.is_empty(),
                _ => false,
            });
        (!dropped || announces || !u.withdrawn.is_empty()).then_some(u)
    }

    /// Changes of best path, for the Loc-RIB.
    pub(super) fn bmp_loc_rib(&self, batch: &Arc<Vec<BestChange>>) {
        self.bmp_offer(|m| m.loc_rib, || Event::LocRib(Arc::clone(batch)));
    }

    /// A task's question.
    pub(super) fn bmp_request(&self, request: Request) {
        match request {
            Request::Sessions(reply) => {
                let c = self.speaker.config();
                let sessions = self
                    .speaker
                    .peers()
                    .filter(|s| s.state == State::Established)
                    .filter_map(|s| self.bmp_peer_up(s.id))
                    .collect();
                let _ = reply.send(Snapshot {
                    asn: c.local_as,
                    router_id: c.router_id,
                    families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
                    sessions,
                });
            }
            Request::Prefixes(reply) => {
                let mut prefixes: Vec<ipnet::IpNet> =
                    self.speaker.rib().loc_rib().map(|(p, _)| p).collect();
                prefixes.sort_unstable();
                let _ = reply.send(prefixes);
            }
            Request::Routes(prefixes, reply) => {
                let rib = self.speaker.rib();
                let local = self.speaker.local_peer();
                let routes = prefixes
                    .into_iter()
                    .map(|p| {
                        let paths = rib
                            .paths(&p)
                            .into_iter()
                            .map(|path| Route {
                                from: (path.peer != local)
                                    .then(|| self.speaker.status(path.peer))
                                    .flatten()
                                    .map(|s| s.config.address),
                                path_id: path.path_id,
                                attrs: Arc::clone(&path.attrs),
                                best: path.is_best(),
                            })
                            .collect();
                        (p, paths)
                    })
                    .collect();
                let _ = reply.send(routes);
            }
            Request::Rejected(reply) => {
                let mut keys: Vec<RejectedKey> = self
                    .speaker
                    .peers()
                    .filter(|s| s.state == State::Established)
                    .flat_map(|s| {
                        let address = s.config.address;
                        self.speaker
                            .rejected(s.id)
                            .map(move |(p, id, _)| (address, *p, id))
                    })
                    .collect();
                keys.sort_unstable();
                let _ = reply.send(keys);
            }
            Request::RejectedRoutes(keys, reply) => {
                let routes = keys
                    .into_iter()
                    .filter_map(|(address, prefix, id)| {
                        let peer = self.speaker.peer_by_address(address)?;
                        let attrs = self.speaker.rejected_attrs(peer, prefix, id)?;
                        Some(((address, prefix, id), Arc::clone(attrs)))
                    })
                    .collect();
                let _ = reply.send(routes);
            }
            Request::Stats(reply) => {
                // Best paths by peer: one walk of the Loc-RIB.
                let mut best: std::collections::HashMap<PeerId, [u64; 2]> =
                    std::collections::HashMap::new();
                for (prefix, path) in self.speaker.rib().loc_rib() {
                    best.entry(path.peer).or_default()[usize::from(prefix.addr().is_ipv6())] += 1;
                }
                let stats = self
                    .speaker
                    .peers()
                    .filter(|s| s.state == State::Established)
                    .filter_map(|s| {
                        let peer = self.bmp_peer(s.id)?;
                        let rejected = s
                            .received
                            .iter()
                            .sum::<usize>()
                            .saturating_sub(s.accepted.iter().sum());
                        Some((
                            peer,
                            PeerStats {
                                rejected: rejected as u64,
                                adj_rib_in: s.received.map(|n| n as u64),
                                loc_rib: best.get(&s.id).copied().unwrap_or_default(),
                                duplicate_withdraws: s.counters.duplicate_withdraws,
                                treat_as_withdraw_updates: s.counters.treat_as_withdraw_updates,
                                treat_as_withdraw_prefixes: s.counters.treat_as_withdraw_prefixes,
                                as_path_loops: s.counters.as_path_loops,
                                originator_loops: s.counters.originator_loops,
                                cluster_loops: s.counters.cluster_loops,
                            },
                        ))
                    })
                    .collect();
                let _ = reply.send(stats);
            }
        }
    }
}
