//! The recorder: [`NodeEvent`]s written as Events (events.k8s.io/v1) on
//! this node's Node object, in the `default` namespace as the kubelet
//! writes its own (a Node has none).
//!
//! Deduplicated and rate-limited as client-go's recorder does it (its
//! EventCorrelator), by [`Correlator`], which does no I/O:
//! - an event like one written in the last 6 minutes (same reason, same
//!   note) is not written again: the first one's `series` is patched, its
//!   count raised and its last-observed time moved;
//! - more than 10 events of one reason with different notes, each within
//!   10 minutes of the one before, are combined: from the 11th, one event
//!   whose note is "(combined from similar events): " and the latest note;
//! - a token bucket per object (the Node): 25 at once, then one per 5
//!   minutes; an event finding no token is dropped (counted in
//!   `podbgp_node_events_total{outcome="rate_limited"}`; the log has it).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::events::{Message, NodeEvent, Reason};
use crate::metrics::Metrics;

/// Events at once before the rate limit bites.
pub const BURST: u32 = 25;
/// Then one token per this long.
pub const REFILL: Duration = Duration::from_secs(300);
/// A repeat within this long joins the first event's series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Notes of one reason within this long of each other count as similar...
pub const SIMILAR_WINDOW: Duration = Duration::from_secs(10 * 60);
/// ...and past this many different ones they are combined.
pub const SIMILAR_LIMIT: usize = 10;
pub const COMBINED: &str = "(combined from similar events): ";
/// The API server refuses a longer note.
const NOTE_LIMIT: usize = 1024;
/// A write the API server does not answer in this long is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What to do with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Write a new Event of this name.
    Create { name: String, note: String },
    /// Patch Event `name`'s series: seen `count` times now.
    Repeat {
        name: String,
        count: u32,
        note: String,
    },
    /// Over the rate limit: not written.
    Drop,
}

#[derive(Debug)]
struct Series {
    name: String,
    count: u32,
    last: Instant,
}

#[derive(Debug)]
struct Similar {
    notes: HashSet<String>,
    last: Instant,
}

/// Deduplication and rate limiting for one object's events.
#[derive(Debug)]
pub struct Correlator {
    series: HashMap<(Reason, String), Series>,
    similar: HashMap<Reason, Similar>,
    tokens: u32,
    /// When the bucket last gained a token (or was full).
    refilled: Instant,
}

impl Correlator {
    pub fn new(now: Instant) -> Correlator {
        Correlator {
            series: HashMap::new(),
            similar: HashMap::new(),
            tokens: BURST,
            refilled: now,
        }
    }

    /// Decide on `ev`, seen at `now`; `name` makes the name of a new
    /// Event.
    pub fn observe(
        &mut self,
        ev: &NodeEvent,
        now: Instant,
        name: impl FnOnce() -> String,
    ) -> Verdict {
        if !self.take_token(now) {
            return Verdict::Drop;
        }
        self.series
            .retain(|_, s| now.duration_since(s.last) < SERIES_WINDOW);
        self.similar
            .retain(|_, s| now.duration_since(s.last) < SIMILAR_WINDOW);

        // Aggregation: the key the series is kept under, and the note.
        let similar = self.similar.entry(ev.reason).or_insert_with(|| Similar {
            notes: HashSet::new(),
            last: now,
        });
        similar.last = now;
        let combined = if similar.notes.contains(&ev.note) {
            false
        } else if similar.notes.len() >= SIMILAR_LIMIT {
            true
        } else {
            similar.notes.insert(ev.note.clone());
            false
        };
        let (key, note) = if combined {
            (
                (ev.reason, COMBINED.to_string()),
                format!("{COMBINED}{}", ev.note),
            )
        } else {
            ((ev.reason, ev.note.clone()), ev.note.clone())
        };

        match self.series.get_mut(&key) {
            Some(s) => {
                s.count += 1;
                s.last = now;
                Verdict::Repeat {
                    name: s.name.clone(),
                    count: s.count,
                    note,
                }
            }
            None => {
                let name = name();
                self.series.insert(
                    key,
                    Series {
                        name: name.clone(),
                        count: 1,
                        last: now,
                    },
                );
                Verdict::Create { name, note }
            }
        }
    }

    /// Event `name` could not be written, or is gone from the API server:
    /// the next like it starts a new one.
    pub fn forget(&mut self, name: &str) {
        self.series.retain(|_, s| s.name != name);
    }

    fn take_token(&mut self, now: Instant) -> bool {
        let gained = now.duration_since(self.refilled).as_secs() / REFILL.as_secs();
        if gained > 0 {
            let gained = u32::try_from(gained).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(gained).min(BURST);
            self.refilled = if self.tokens == BURST {
                now
            } else {
                self.refilled + REFILL * gained
            };
        }
        if self.tokens == 0 {
            return false;
        }
        if self.tokens == BURST {
            // The refill clock starts with the first token spent.
            self.refilled = now;
        }
        self.tokens -= 1;
        true
    }
}

/// The object the events are about.
#[derive(Debug, Clone)]
pub struct Subject {
    pub node: String,
    pub uid: Option<String>,
}

impl Subject {
    fn reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(self.node.clone()),
            uid: self.uid.clone(),
            ..ObjectReference::default()
        }
    }
}

/// Names unique to this process: the node's, then the time and a count.
struct Names {
    node: String,
    start: u128,
    next: u64,
}

impl Names {
    fn new(node: &str) -> Names {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Names {
            node: node.to_string(),
            start,
            next: 0,
        }
    }

    fn next(&mut self) -> String {
        self.next += 1;
        format!("{}.{:x}{:04x}", self.node, self.start, self.next)
    }
}

/// The note cut to what the API server takes, on a character boundary.
fn bounded(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_string();
    }
    let mut end = NOTE_LIMIT - 3;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}

/// A new Event about `subject`.
fn event(subject: &Subject, reason: Reason, name: &str, note: &str) -> Event {
    let instance = format!("podbgp-{}", subject.node);
    Event {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(Timestamp::now())),
        action: Some(reason.action().into()),
        reason: Some(reason.as_str().into()),
        note: Some(bounded(note)),
        type_: Some(
            if reason.warning() {
                "Warning"
            } else {
                "Normal"
            }
            .into(),
        ),
        regarding: Some(subject.reference()),
        reporting_controller: Some("podbgp.io/podbgp".into()),
        reporting_instance: Some(instance.chars().take(128).collect()),
        ..Event::default()
    }
}

/// Write the events raised until every handle is gone.
pub async fn record(
    client: Client,
    subject: Subject,
    mut rx: mpsc::Receiver<Message>,
    metrics: Arc<Metrics>,
) {
    let api: Api<Event> = Api::namespaced(client, "default");
    let mut correlator = Correlator::new(Instant::now());
    let mut names = Names::new(&subject.node);
    while let Some(message) = rx.recv().await {
        let ev = match message {
            Message::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Message::Event(ev) => ev,
        };
        let reason = ev.reason.as_str();
        // A repeat of an Event the API server no longer has (expired)
        // is written anew, once.
        for _ in 0..2 {
            match correlator.observe(&ev, Instant::now(), || names.next()) {
                Verdict::Drop => {
                    debug!(reason, note = %ev.note, "kubernetes event over the rate limit; not written");
                    metrics.node_event(reason, "rate_limited");
                }
                Verdict::Create { name, note } => {
                    let new = event(&subject, ev.reason, &name, &note);
                    let wrote = tokio::time::timeout(
                        WRITE_TIMEOUT,
                        api.create(&PostParams::default(), &new),
                    )
                    .await;
                    match wrote {
                        Ok(Ok(_)) => metrics.node_event(reason, "created"),
                        Ok(Err(e)) => failed(&mut correlator, &metrics, &name, reason, &e),
                        Err(_) => failed(&mut correlator, &metrics, &name, reason, &"timed out"),
                    }
                }
                Verdict::Repeat { name, count, note } => {
                    let series = EventSeries {
                        count: i32::try_from(count).unwrap_or(i32::MAX),
                        last_observed_time: MicroTime(Timestamp::now()),
                    };
                    let patch = serde_json::json!({ "series": series, "note": bounded(&note) });
                    let wrote = tokio::time::timeout(
                        WRITE_TIMEOUT,
                        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
                    )
                    .await;
                    match wrote {
                        Ok(Ok(_)) => metrics.node_event(reason, "repeated"),
                        Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
                            correlator.forget(&name);
                            continue;
                        }
                        Ok(Err(e)) => failed(&mut correlator, &metrics, &name, reason, &e),
                        Err(_) => failed(&mut correlator, &metrics, &name, reason, &"timed out"),
                    }
                }
            }
            break;
        }
    }
}

fn failed(
    correlator: &mut Correlator,
    metrics: &Metrics,
    name: &str,
    reason: &str,
    e: &dyn std::fmt::Display,
) {
    warn!(reason, "kubernetes: cannot write event {name}: {e}");
    correlator.forget(name);
    metrics.node_event(reason, "failed");
}

/// Tell once, from a process about to end (its config does not load):
/// when it runs as a Pod (NODE_NAME set, an API server to be found), an
/// Event on its Node. Gives up quietly within a few seconds.
pub async fn tell_once(reason: Reason, note: &str) {
    let Some(node) = std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()) else {
        return;
    };
    let attempt = async {
        let client = Client::try_default().await.ok()?;
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
        let uid = nodes.get(&node).await.ok().and_then(|n| n.metadata.uid);
        let subject = Subject { node, uid };
        let name = Names::new(&subject.node).next();
        let api: Api<Event> = Api::namespaced(client, "default");
        api.create(
            &PostParams::default(),
            &event(&subject, reason, &name, note),
        )
        .await
        .ok()
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), attempt).await;
}

#[cfg(test)]
mod tests;
