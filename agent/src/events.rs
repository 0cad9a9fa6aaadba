//! What the agent tells Kubernetes users about their node, in the place
//! they look: Events on the Node object (`kubectl get events`, `kubectl
//! describe node`). The parts that see something worth telling (the
//! owner, the FIB, SNAT, the Kubernetes watcher) raise a [`NodeEvent`]
//! through an [`Events`] handle; the recorder in `k8s::events`
//! deduplicates, rate-limits and writes them. Outside Kubernetes mode the
//! handle leads nowhere and raising costs nothing.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// The reasons podbgp's Events carry (`reason`, PascalCase as Kubernetes
/// has them), with the action each reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A BGP session reached Established.
    BgpSessionUp,
    /// An Established BGP session ended.
    BgpSessionDown,
    /// Learned prefixes kept out of the kernel: the route guard refused
    /// them (`fib.accept`, an address of this node, a connected subnet),
    /// or a route of another owner holds the prefix.
    RouteRefused,
    /// The SNAT rules could not be written.
    SnatFailed,
    /// The config file, or a podbgp.io annotation of this Node, cannot
    /// be read.
    InvalidConfig,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BgpSessionUp => "BGPSessionUp",
            Reason::BgpSessionDown => "BGPSessionDown",
            Reason::RouteRefused => "RouteRefused",
            Reason::SnatFailed => "SNATFailed",
            Reason::InvalidConfig => "InvalidConfig",
        }
    }

    /// What was being done (the Event's `action`).
    pub fn action(self) -> &'static str {
        match self {
            Reason::BgpSessionUp | Reason::BgpSessionDown => "PeerSession",
            Reason::RouteRefused => "InstallRoutes",
            Reason::SnatFailed => "WriteSNATRules",
            Reason::InvalidConfig => "ReadConfig",
        }
    }

    /// Only a session coming up is news that nothing is wrong.
    pub fn warning(self) -> bool {
        self != Reason::BgpSessionUp
    }
}

/// One thing to tell, about this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    pub reason: Reason,
    /// For a person: what happened, naming the peer, prefix or key.
    pub note: String,
}

/// What the recorder is sent.
#[derive(Debug)]
pub enum Message {
    Event(NodeEvent),
    /// Answer once everything sent before is written (or given up).
    Flush(oneshot::Sender<()>),
}

/// How many events may wait for the recorder; past that they are dropped
/// (and counted): the API server is not keeping up, and the log has them.
pub const QUEUE: usize = 1024;

/// Where events go: the recorder's queue, or nowhere.
#[derive(Debug, Clone, Default)]
pub struct Events {
    tx: Option<mpsc::Sender<Message>>,
}

impl Events {
    /// A handle and the recorder's end of its queue.
    pub fn channel() -> (Events, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Events { tx: Some(tx) }, rx)
    }

    /// A handle that drops everything: not in Kubernetes mode.
    pub fn none() -> Events {
        Events { tx: None }
    }

    /// Raise an event; never waits. False when it was dropped (no
    /// recorder, or its queue full).
    pub fn raise(&self, reason: Reason, note: impl Into<String>) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        tx.try_send(Message::Event(NodeEvent {
            reason,
            note: note.into(),
        }))
        .is_ok()
    }

    /// Wait (at most `limit`) until what was raised so far is written: a
    /// process about to end says why first.
    pub async fn flush(&self, limit: Duration) {
        let Some(tx) = &self.tx else {
            return;
        };
        let (done, wait) = oneshot::channel();
        let flushed = async {
            if tx.send(Message::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        };
        let _ = tokio::time::timeout(limit, flushed).await;
    }
}
