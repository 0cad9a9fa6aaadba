//! Prometheus metrics and the health probes, on `metrics.listen`:
//! `GET /metrics`, `/healthz` (the process works) and `/readyz` (peers
//! tried and the first routing pass done).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bgp::session::State as SessionState;
use bgp::speaker::Speaker;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerFamily {
    peer: String,
    family: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectorLabel {
    collector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerKind {
    peer: String,
    kind: String,
}

/// What a peer sent that was not a plain route change, counted since it
/// was configured (what BMP's Statistics Reports carry too).
const ANOMALIES: [&str; 6] = [
    "duplicate_withdraw",
    "treat_as_withdraw_update",
    "treat_as_withdraw_prefix",
    "as_path_loop",
    "originator_id_loop",
    "cluster_list_loop",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    reason: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FamilyLabel {
    pub family: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    peer_state: Family<PeerLabel, Gauge>,
    received: Family<PeerFamily, Gauge>,
    accepted: Family<PeerFamily, Gauge>,
    advertised: Family<PeerFamily, Gauge>,
    updates_received: Family<PeerLabel, Counter>,
    updates_sent: Family<PeerLabel, Counter>,
    pub fib_routes: Family<FamilyLabel, Gauge>,
    pub fib_install_errors: Counter,
    pub fib_nexthop_objects: Gauge,
    /// Tasks alive in the runtime: a leak shows as a count that only grows.
    tokio_tasks: Gauge,
    service_routes: Family<KindLabel, Gauge>,
    bfd_state: Family<PeerLabel, Gauge>,
    bfd_sent: Family<PeerLabel, Counter>,
    bfd_received: Family<PeerLabel, Counter>,
    bfd_state_changes: Family<PeerLabel, Counter>,
    bfd_dropped: Family<ReasonLabel, Counter>,
    bmp_up: Family<CollectorLabel, Gauge>,
    bmp_messages: Family<CollectorLabel, Counter>,
    bmp_resyncs: Family<CollectorLabel, Counter>,
    node_events: Family<EventLabel, Counter>,
    anomalies: Family<PeerKind, Gauge>,
    /// The first routing pass is in the kernel (or there is no kernel FIB).
    pub fib_ready: AtomicBool,
    /// The speaker's first best-path selection is done.
    selected: AtomicBool,
    /// Peers last seen, so a removed peer's series go with it.
    known: Mutex<HashMap<String, ()>>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("podbgp");
        let m = Metrics {
            peer_state: Family::default(),
            received: Family::default(),
            accepted: Family::default(),
            advertised: Family::default(),
            updates_received: Family::default(),
            updates_sent: Family::default(),
            fib_routes: Family::default(),
            fib_install_errors: Counter::default(),
            fib_nexthop_objects: Gauge::default(),
            tokio_tasks: Gauge::default(),
            service_routes: Family::default(),
            bfd_state: Family::default(),
            bfd_sent: Family::default(),
            bfd_received: Family::default(),
            bfd_state_changes: Family::default(),
            bfd_dropped: Family::default(),
            bmp_up: Family::default(),
            bmp_messages: Family::default(),
            bmp_resyncs: Family::default(),
            node_events: Family::default(),
            anomalies: Family::default(),
            fib_ready: AtomicBool::new(true),
            selected: AtomicBool::new(false),
            known: Mutex::new(HashMap::new()),
            registry: Mutex::new(Registry::default()),
        };
        registry.register(
            "peer_state",
            "1 when the session with the peer is Established",
            m.peer_state.clone(),
        );
        registry.register(
            "peer_received_routes",
            "Routes the peer sent that are held, accepted or not",
            m.received.clone(),
        );
        registry.register(
            "peer_accepted_routes",
            "Routes from the peer accepted into the RIB",
            m.accepted.clone(),
        );
        registry.register(
            "peer_advertised_routes",
            "Routes in the peer's Adj-RIB-Out",
            m.advertised.clone(),
        );
        registry.register(
            "updates_received",
            "UPDATE messages received",
            m.updates_received.clone(),
        );
        registry.register(
            "updates_sent",
            "UPDATE messages sent",
            m.updates_sent.clone(),
        );
        registry.register(
            "fib_routes",
            "Routes podbgp has in the kernel",
            m.fib_routes.clone(),
        );
        registry.register(
            "fib_install_errors",
            "Kernel route writes that failed",
            m.fib_install_errors.clone(),
        );
        registry.register(
            "fib_nexthop_objects",
            "Nexthop objects podbgp has in the kernel",
            m.fib_nexthop_objects.clone(),
        );
        registry.register(
            "tokio_tasks",
            "Tasks alive in the daemon's async runtime",
            m.tokio_tasks.clone(),
        );
        registry.register(
            "service_routes",
            "Service routes this node originates, by kind (a prefix of two kinds counts in both)",
            m.service_routes.clone(),
        );
        registry.register(
            "bfd_session_state",
            "1 when the BFD session with the peer is Up",
            m.bfd_state.clone(),
        );
        registry.register(
            "bfd_packets_sent",
            "BFD Control packets sent to the peer",
            m.bfd_sent.clone(),
        );
        registry.register(
            "bfd_packets_received",
            "BFD Control packets from the peer taken by its session",
            m.bfd_received.clone(),
        );
        registry.register(
            "bfd_state_changes",
            "BFD session state changes",
            m.bfd_state_changes.clone(),
        );
        registry.register(
            "bfd_packets_dropped",
            "BFD packets dropped: TTL not 255 on a single hop, malformed, or no session (RFC 5880 §6.8.6)",
            m.bfd_dropped.clone(),
        );
        registry.register(
            "bmp_session_up",
            "1 while the BMP session with the collector is up",
            m.bmp_up.clone(),
        );
        registry.register(
            "bmp_messages",
            "BMP messages written to the collector",
            m.bmp_messages.clone(),
        );
        registry.register(
            "bmp_resyncs",
            "BMP sessions given up because the collector fell behind, each started again with a fresh dump",
            m.bmp_resyncs.clone(),
        );
        registry.register(
            "peer_update_anomalies",
            "Since the peer was configured: withdrawals that found nothing (duplicate_withdraw), UPDATEs and prefixes RFC 7606 treated as withdrawn, UPDATEs turned away for an AS_PATH, ORIGINATOR_ID or CLUSTER_LIST loop",
            m.anomalies.clone(),
        );
        registry.register(
            "node_events",
            "Kubernetes Events about this node, by reason and outcome: created, repeated (a series patched), rate_limited, failed",
            m.node_events.clone(),
        );
        *m.registry.lock().unwrap_or_else(|e| e.into_inner()) = registry;
        m
    }

    /// A BMP session with `collector` came up or ended.
    pub fn bmp_up(&self, collector: &str, up: bool) {
        self.bmp_up
            .get_or_create(&CollectorLabel {
                collector: collector.into(),
            })
            .set(i64::from(up));
    }

    /// `n` BMP messages were written to `collector`.
    pub fn bmp_messages(&self, collector: &str, n: u64) {
        self.bmp_messages
            .get_or_create(&CollectorLabel {
                collector: collector.into(),
            })
            .inc_by(n);
    }

    /// A Kubernetes Event of `reason` was written, or not (`outcome`).
    pub fn node_event(&self, reason: &str, outcome: &str) {
        self.node_events
            .get_or_create(&EventLabel {
                reason: reason.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// A BMP session was given up for falling behind.
    pub fn bmp_resync(&self, collector: &str) {
        self.bmp_resyncs
            .get_or_create(&CollectorLabel {
                collector: collector.into(),
            })
            .inc();
    }

    pub fn update_received(&self, peer: &str) {
        self.updates_received
            .get_or_create(&PeerLabel { peer: peer.into() })
            .inc();
    }

    pub fn update_sent(&self, peer: &str) {
        self.updates_sent
            .get_or_create(&PeerLabel { peer: peer.into() })
            .inc();
    }

    /// How many service routes of each kind this node originates.
    pub fn set_service_routes(&self, counts: impl IntoIterator<Item = (&'static str, usize)>) {
        for (kind, n) in counts {
            self.service_routes
                .get_or_create(&KindLabel { kind: kind.into() })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    pub fn bfd_sent(&self, peer: &str) {
        self.bfd_sent
            .get_or_create(&PeerLabel { peer: peer.into() })
            .inc();
    }

    pub fn bfd_received(&self, peer: &str) {
        self.bfd_received
            .get_or_create(&PeerLabel { peer: peer.into() })
            .inc();
    }

    pub fn bfd_dropped(&self, reason: &str) {
        self.bfd_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// A BFD session changed state; `up`: it is Up now.
    pub fn bfd_state(&self, peer: &str, up: bool) {
        let label = PeerLabel { peer: peer.into() };
        self.bfd_state.get_or_create(&label).set(i64::from(up));
        self.bfd_state_changes.get_or_create(&label).inc();
    }

    /// A BFD session is gone: its series go with it.
    pub fn bfd_forget(&self, peer: &str) {
        let label = PeerLabel { peer: peer.into() };
        self.bfd_state.remove(&label);
        self.bfd_sent.remove(&label);
        self.bfd_received.remove(&label);
        self.bfd_state_changes.remove(&label);
    }

    /// Bring the gauges in line with the speaker.
    pub fn observe(&self, speaker: &Speaker) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let alive = runtime.metrics().num_alive_tasks();
            self.tokio_tasks
                .set(i64::try_from(alive).unwrap_or(i64::MAX));
        }
        let mut seen = HashMap::new();
        for s in speaker.peers() {
            let peer = s.config.address.to_string();
            let up = i64::from(s.state == SessionState::Established);
            self.peer_state
                .get_or_create(&PeerLabel { peer: peer.clone() })
                .set(up);
            for (i, family) in ["ipv4", "ipv6"].iter().enumerate() {
                let label = PeerFamily {
                    peer: peer.clone(),
                    family: (*family).into(),
                };
                self.received
                    .get_or_create(&label)
                    .set(s.received[i] as i64);
                self.accepted
                    .get_or_create(&label)
                    .set(s.accepted[i] as i64);
                self.advertised
                    .get_or_create(&label)
                    .set(s.advertised[i] as i64);
            }
            let c = s.counters;
            let counts = [
                c.duplicate_withdraws,
                c.treat_as_withdraw_updates,
                c.treat_as_withdraw_prefixes,
                c.as_path_loops,
                c.originator_loops,
                c.cluster_loops,
            ];
            for (kind, n) in ANOMALIES.iter().zip(counts) {
                self.anomalies
                    .get_or_create(&PeerKind {
                        peer: peer.clone(),
                        kind: (*kind).into(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            seen.insert(peer, ());
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for gone in known.keys().filter(|k| !seen.contains_key(*k)) {
            let label = PeerLabel { peer: gone.clone() };
            self.peer_state.remove(&label);
            self.updates_received.remove(&label);
            self.updates_sent.remove(&label);
            for family in ["ipv4", "ipv6"] {
                let label = PeerFamily {
                    peer: gone.clone(),
                    family: family.into(),
                };
                self.received.remove(&label);
                self.accepted.remove(&label);
                self.advertised.remove(&label);
            }
            for kind in ANOMALIES {
                self.anomalies.remove(&PeerKind {
                    peer: gone.clone(),
                    kind: kind.into(),
                });
            }
        }
        *known = seen;
        // Every configured peer is tried as soon as it is added; what is
        // left is the first selection (here) and the kernel (the FIB's
        // thread says so itself, at any time: `ready` reads both).
        self.selected
            .store(speaker.selection_done(), Ordering::Relaxed);
    }

    /// Ready: the first selection is done and its routes are in the kernel.
    pub fn ready(&self) -> bool {
        self.selected.load(Ordering::Relaxed) && self.fib_ready.load(Ordering::Relaxed)
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `at`.
pub async fn serve(at: SocketAddr, metrics: Arc<Metrics>) -> Result<(), String> {
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .map_err(|e| format!("metrics.listen = {at}: {e}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}

async fn metrics_text(State(m): State<Arc<Metrics>>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn readyz(State(m): State<Arc<Metrics>>) -> (StatusCode, &'static str) {
    if m.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}
