//! Masquerade for pod traffic leaving the node, in nftables tables of our
//! own (`ip podbgp`, `ip6 podbgp`): traffic from a local pod prefix (set
//! `pods`) to anything not in the no-masquerade set (`keep`) and not local
//! to the node is masqueraded. `keep` holds every pod prefix of the cluster,
//! every prefix learned over BGP that `fib.accept` lets into the kernel,
//! and `snat.no_masquerade`, so pods elsewhere see a pod's own address.
//!
//! The sets change element by element, each batch one nftables transaction;
//! the table is never flushed. An interval set takes no overlapping
//! elements, so it holds the wanted prefixes with those inside another
//! left out. At start the elements found are kept until BGP has converged,
//! as the FIB keeps its routes, so a restart masquerades nothing it did not.

mod nft;

use std::collections::BTreeSet;
use std::time::Duration;

use bgp::rib::{BestChange, PeerId};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::events::Reason;
use crate::fib::{guard, Feed};
use nft::Family;

/// What the SNAT writer runs with.
#[derive(Debug, Clone)]
pub struct SnatSettings {
    /// This node's pod prefixes (static mode: what it advertises).
    pub local_pods: Vec<IpNet>,
    pub no_masquerade: Vec<IpNet>,
    /// `fib.accept`: learned prefixes inside it keep the source address.
    pub accept: Vec<IpNet>,
    /// Where failures to write the rules are told.
    pub events: crate::events::Events,
}

/// Pod prefixes from Kubernetes.
#[derive(Debug, Clone)]
pub enum Pods {
    /// This node's `spec.podCIDRs`.
    Local(Vec<IpNet>),
    /// Every node's.
    Cluster(Vec<IpNet>),
}

pub enum Query {
    Show(oneshot::Sender<Result<SnatView, String>>),
}

/// What `podbgp snat` shows: what is in force in the kernel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnatView {
    pub families: Vec<FamilyView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FamilyView {
    /// `ip podbgp` or `ip6 podbgp`.
    pub table: String,
    pub rules: Vec<String>,
    /// Sources that are masqueraded.
    pub pods: Vec<String>,
    /// Destinations that keep the source address.
    pub keep: Vec<String>,
}

/// What one family's sets hold in the kernel.
#[derive(Debug, Default)]
struct Applied {
    pods: BTreeSet<IpNet>,
    keep: BTreeSet<IpNet>,
    /// Read again before the next change (a write failed).
    stale: bool,
}

pub struct Snat {
    settings: SnatSettings,
    local_peer: PeerId,
    local_pods: BTreeSet<IpNet>,
    /// Every node's pod prefixes (Kubernetes mode).
    cluster_pods: BTreeSet<IpNet>,
    learned: BTreeSet<IpNet>,
    applied: [Applied; 2],
    converged: bool,
    changed: bool,
}

impl Snat {
    /// Make the tables exist and read what their sets hold.
    pub async fn start(settings: SnatSettings, local_peer: PeerId) -> Result<Snat, String> {
        let mut snat = Snat {
            local_pods: settings.local_pods.iter().map(IpNet::trunc).collect(),
            settings,
            local_peer,
            cluster_pods: BTreeSet::new(),
            learned: BTreeSet::new(),
            applied: Default::default(),
            converged: false,
            changed: true,
        };
        // Every nft run costs a process: the tables in one transaction,
        // then each family's rule and sets at once.
        nft::create(&Family::ALL).await?;
        let each = |family: Family| async move {
            let fix = async { nft::fix_rule(family, &nft::rules(family).await?).await };
            let (_, sets) = futures::future::try_join(fix, read_sets(family)).await?;
            Ok::<_, String>(sets)
        };
        let (v4, v6) =
            futures::future::try_join(each(Family::ALL[0]), each(Family::ALL[1])).await?;
        for (family, (pods, keep)) in [(Family::ALL[0], v4), (Family::ALL[1], v6)] {
            let a = &mut snat.applied[slot(family)];
            (a.pods, a.keep, a.stale) = (pods, keep, false);
        }
        let found: usize = snat.applied.iter().map(|a| a.keep.len()).sum();
        info!(found, "snat: tables ip and ip6 {} ready", nft::TABLE);
        Ok(snat)
    }

    async fn read(&mut self, family: Family) -> Result<(), String> {
        let (pods, keep) = read_sets(family).await?;
        let a = &mut self.applied[slot(family)];
        (a.pods, a.keep, a.stale) = (pods, keep, false);
        Ok(())
    }

    /// Follow the feed and Kubernetes' pod prefixes; answer queries.
    pub async fn run(
        mut self,
        mut feed: mpsc::UnboundedReceiver<Feed>,
        mut queries: mpsc::Receiver<Query>,
        mut pods: mpsc::Receiver<Pods>,
    ) {
        let mut retry = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                biased;
                f = feed.recv() => match f {
                    Some(f) => {
                        self.fed(f);
                        while let Ok(f) = feed.try_recv() {
                            self.fed(f);
                        }
                    }
                    None => return,
                },
                Some(p) = pods.recv() => self.pods(p),
                Some(q) = queries.recv() => match q {
                    Query::Show(reply) => { let _ = reply.send(show().await); }
                },
                _ = retry.tick() => {
                    if self.applied.iter().any(|a| a.stale) {
                        self.changed = true;
                    }
                }
            }
            if self.changed {
                self.sync().await;
            }
        }
    }

    fn fed(&mut self, f: Feed) {
        match f {
            Feed::Changes(batch) => self.take(&batch),
            Feed::Converged => {
                self.converged = true;
                self.changed = true;
            }
        }
    }

    /// Learned prefixes come and go with their best paths.
    fn take(&mut self, batch: &[BestChange]) {
        for c in batch {
            let learned = c.best.as_ref().is_some_and(|b| b.peer != self.local_peer)
                && accepted(&c.prefix, &self.settings.accept);
            let had = if learned {
                !self.learned.insert(c.prefix)
            } else {
                self.learned.remove(&c.prefix)
            };
            self.changed |= had != learned;
        }
    }

    fn pods(&mut self, p: Pods) {
        let (target, list) = match p {
            Pods::Local(list) => (&mut self.local_pods, list),
            Pods::Cluster(list) => (&mut self.cluster_pods, list),
        };
        let new: BTreeSet<IpNet> = list.iter().map(IpNet::trunc).collect();
        if *target != new {
            *target = new;
            self.changed = true;
        }
    }

    /// What `keep` and `pods` should hold, for one family.
    fn wanted(&self, family: Family) -> (BTreeSet<IpNet>, BTreeSet<IpNet>) {
        let of = |p: &&IpNet| Family::of(p) == family;
        let keep: BTreeSet<IpNet> = self
            .local_pods
            .iter()
            .chain(&self.cluster_pods)
            .chain(&self.learned)
            .chain(&self.settings.no_masquerade)
            .filter(of)
            .map(IpNet::trunc)
            .collect();
        let pods: BTreeSet<IpNet> = self.local_pods.iter().filter(of).copied().collect();
        (outermost(&pods), outermost(&keep))
    }

    /// Bring the sets in line, one transaction for all of it.
    async fn sync(&mut self) {
        self.changed = false;
        for family in Family::ALL {
            if self.applied[slot(family)].stale {
                if let Err(e) = self.read(family).await {
                    warn!("snat: {e}");
                    self.settings
                        .events
                        .raise(Reason::SnatFailed, format!("reading the SNAT sets: {e}"));
                    return;
                }
            }
        }
        let mut script = String::new();
        let mut next: Vec<(Family, BTreeSet<IpNet>, BTreeSet<IpNet>)> = Vec::new();
        for family in Family::ALL {
            let (want_pods, want_keep) = self.wanted(family);
            let a = &self.applied[slot(family)];
            // Sources: no adoption, a pod prefix is known from the start.
            let (del_pods, add_pods) = plan(&a.pods, &want_pods, true);
            let (del_keep, add_keep) = plan(&a.keep, &want_keep, self.converged);
            if del_pods.is_empty()
                && add_pods.is_empty()
                && del_keep.is_empty()
                && add_keep.is_empty()
            {
                continue;
            }
            // Deletions first: an added prefix may cover a deleted one.
            nft::element_lines(family, "keep", "delete", &del_keep, &mut script);
            nft::element_lines(family, "pods", "delete", &del_pods, &mut script);
            nft::element_lines(family, "keep", "add", &add_keep, &mut script);
            nft::element_lines(family, "pods", "add", &add_pods, &mut script);
            let mut keep = a.keep.clone();
            del_keep.iter().for_each(|p| {
                keep.remove(p);
            });
            keep.extend(add_keep);
            let mut pods = a.pods.clone();
            del_pods.iter().for_each(|p| {
                pods.remove(p);
            });
            pods.extend(add_pods);
            next.push((family, pods, keep));
        }
        if script.is_empty() {
            return;
        }
        match nft::apply(&script).await {
            Ok(()) => {
                for (family, pods, keep) in next {
                    let a = &mut self.applied[slot(family)];
                    a.pods = pods;
                    a.keep = keep;
                }
            }
            Err(e) => {
                warn!("snat: {e}; reading the sets again and retrying");
                self.settings.events.raise(
                    Reason::SnatFailed,
                    format!("writing the SNAT sets: {e}; retrying"),
                );
                for a in &mut self.applied {
                    a.stale = true;
                }
            }
        }
    }
}

/// What the family's `pods` and `keep` sets hold, read at once. A set
/// holding something we cannot read as prefixes is started afresh.
async fn read_sets(family: Family) -> Result<(BTreeSet<IpNet>, BTreeSet<IpNet>), String> {
    let one = |name: &'static str| async move {
        match nft::elements(family, name).await? {
            Some(found) => Ok(found),
            None => {
                warn!(
                    "snat: {} {} {name} holds more than prefixes; replacing it",
                    family.name(),
                    nft::TABLE
                );
                nft::apply(&format!(
                    "flush set {} {} {name}\n",
                    family.name(),
                    nft::TABLE
                ))
                .await?;
                Ok::<_, String>(BTreeSet::new())
            }
        }
    };
    futures::future::try_join(one("pods"), one("keep")).await
}

fn slot(family: Family) -> usize {
    usize::from(family == Family::Ip6)
}

/// A learned prefix keeps the source address when `fib.accept` lets it into
/// the kernel (a default route only when named).
fn accepted(prefix: &IpNet, accept: &[IpNet]) -> bool {
    !matches!(
        guard::check(prefix, accept, &guard::Local::default()),
        Err(guard::Refusal::NotAccepted | guard::Refusal::Default)
    )
}

/// The prefixes of `set` not inside another one of it.
fn outermost(set: &BTreeSet<IpNet>) -> BTreeSet<IpNet> {
    // In address order a prefix comes before everything inside it, and
    // what is inside it comes right after it.
    let mut out = BTreeSet::new();
    let mut last: Option<IpNet> = None;
    for p in set {
        if last.is_some_and(|l| l.contains(p)) {
            continue;
        }
        out.insert(*p);
        last = Some(*p);
    }
    out
}

/// What to delete from and add to `applied` to reach `want` (both without
/// overlaps). Before convergence an element found at start stays unless a
/// wanted one covers it; a wanted one inside such an element waits.
fn plan(
    applied: &BTreeSet<IpNet>,
    want: &BTreeSet<IpNet>,
    converged: bool,
) -> (Vec<IpNet>, Vec<IpNet>) {
    let (del, kept): (Vec<IpNet>, Vec<IpNet>) = applied
        .difference(want)
        .partition(|d| converged || want.iter().any(|w| w.contains(*d)));
    let add = want
        .difference(applied)
        .filter(|a| !kept.iter().any(|k| k.contains(*a) || a.contains(k)))
        .copied()
        .collect();
    (del, add)
}

/// Read what is in force.
async fn show() -> Result<SnatView, String> {
    let mut families = Vec::new();
    for family in Family::ALL {
        let list = |s: Option<BTreeSet<IpNet>>| -> Vec<String> {
            s.unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        families.push(FamilyView {
            table: format!("{} {}", family.name(), nft::TABLE),
            rules: nft::rules(family)
                .await?
                .into_iter()
                .map(|(_, r)| r)
                .collect(),
            pods: list(nft::elements(family, "pods").await?),
            keep: list(nft::elements(family, "keep").await?),
        });
    }
    Ok(SnatView { families })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &[&str]) -> BTreeSet<IpNet> {
        list.iter().map(|s| s.parse().expect("prefix")).collect()
    }

    #[test]
    fn prefixes_inside_others_are_left_out() {
        let s = set(&[
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "11.0.0.0/24",
            "11.0.1.0/24",
            "11.0.0.0/23",
        ]);
        assert_eq!(outermost(&s), set(&["10.0.0.0/8", "11.0.0.0/23"]));
    }

    #[test]
    fn found_elements_wait_for_convergence() {
        let applied = set(&["10.244.0.0/24", "10.9.0.0/16"]);
        let want = set(&["10.244.0.0/24", "10.244.1.0/24", "10.9.1.0/24"]);
        // Before: 10.9.0.0/16 stays, and 10.9.1.0/24 inside it waits.
        let (del, add) = plan(&applied, &want, false);
        assert!(del.is_empty());
        assert_eq!(add, ["10.244.1.0/24".parse::<IpNet>().expect("prefix")]);
        // After: it goes, and what it covered comes.
        let (del, add) = plan(&applied, &want, true);
        assert_eq!(del, ["10.9.0.0/16".parse::<IpNet>().expect("prefix")]);
        assert_eq!(add.len(), 2);
        // A wanted cover replaces what it covers at once.
        let (del, add) = plan(&set(&["10.1.0.0/24"]), &set(&["10.0.0.0/8"]), false);
        assert_eq!(del.len(), 1);
        assert_eq!(add.len(), 1);
    }

    #[test]
    fn every_source_of_pod_prefixes_reaches_the_sets() {
        let mut snat = Snat {
            settings: SnatSettings {
                local_pods: Vec::new(),
                no_masquerade: vec!["192.0.2.0/24".parse().expect("prefix")],
                accept: vec!["10.0.0.0/8".parse().expect("prefix")],
                events: crate::events::Events::none(),
            },
            local_peer: 0,
            local_pods: BTreeSet::new(),
            cluster_pods: BTreeSet::new(),
            learned: BTreeSet::new(),
            applied: Default::default(),
            converged: false,
            changed: false,
        };
        snat.pods(Pods::Local(vec!["10.244.1.0/24".parse().expect("prefix")]));
        snat.pods(Pods::Cluster(vec![
            "10.244.0.0/24".parse().expect("prefix"),
            "10.244.1.0/24".parse().expect("prefix"),
            "fd00:10:244::/64".parse().expect("prefix"),
        ]));
        assert!(snat.changed);
        let (pods, keep) = snat.wanted(Family::Ip);
        assert_eq!(pods, set(&["10.244.1.0/24"]));
        assert_eq!(
            keep,
            set(&["10.244.0.0/24", "10.244.1.0/24", "192.0.2.0/24"])
        );
        let (pods, keep) = snat.wanted(Family::Ip6);
        assert!(pods.is_empty());
        assert_eq!(keep, set(&["fd00:10:244::/64"]));
        // The same again changes nothing.
        snat.changed = false;
        snat.pods(Pods::Local(vec!["10.244.1.0/24".parse().expect("prefix")]));
        assert!(!snat.changed);
    }

    #[test]
    fn learned_prefixes_follow_fib_accept() {
        let accept = vec!["10.0.0.0/8".parse().expect("prefix")];
        assert!(accepted(&"10.5.0.0/16".parse().expect("prefix"), &accept));
        assert!(!accepted(&"192.0.2.0/24".parse().expect("prefix"), &accept));
        assert!(!accepted(&"0.0.0.0/0".parse().expect("prefix"), &accept));
    }
}
