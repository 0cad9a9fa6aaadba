//! Text output in the layout gobgp users know.

use std::fmt::Write;

use crate::api::model::{AdjIn, Destination, Global, Neighbor, RibSummary, Route};

/// `Up/Down` as gobgp prints it: HH:MM:SS, with days in front past one.
pub fn duration(seconds: Option<u64>) -> String {
    let Some(s) = seconds else {
        return "never".into();
    };
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The State column: gobgp's short names.
pub fn state(n: &Neighbor) -> &'static str {
    if n.admin_down {
        return "Idle(Admin)";
    }
    match n.state.as_str() {
        "Connect" => "Connect",
        "Active" => "Active",
        "OpenSent" => "Sent",
        "OpenConfirm" => "Confirm",
        "Established" => "Establ",
        _ => "Idle",
    }
}

pub fn neighbors(list: &[Neighbor], family: Option<&str>) -> String {
    let pick = |c: &crate::api::model::FamilyCounts| match family {
        Some("ipv4") => c.ipv4,
        Some("ipv6") => c.ipv6,
        _ => c.ipv4 + c.ipv6,
    };
    let addr_w = list
        .iter()
        .map(|n| n.address.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let as_w = list
        .iter()
        .map(|n| n.asn.to_string().len())
        .max()
        .unwrap_or(0)
        .max(2);
    let times: Vec<String> = list.iter().map(|n| duration(n.uptime_seconds)).collect();
    let time_w = times.iter().map(String::len).max().unwrap_or(0).max(7);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<addr_w$} {:>as_w$} {:>time_w$} {:<11} |{:>10} {:>9}",
        "Peer", "AS", "Up/Down", "State", "#Received", "Accepted"
    );
    for (n, t) in list.iter().zip(&times) {
        let _ = writeln!(
            out,
            "{:<addr_w$} {:>as_w$} {:>time_w$} {:<11} |{:>10} {:>9}",
            n.address,
            n.asn,
            t,
            state(n),
            pick(&n.received),
            pick(&n.accepted)
        );
    }
    out
}

pub fn neighbor(n: &Neighbor) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "BGP neighbor is {}, remote AS {}", n.address, n.asn);
    if let Some(d) = &n.description {
        let _ = writeln!(o, "  Description: {d}");
    }
    let _ = writeln!(
        o,
        "  BGP version 4, remote router ID {}",
        n.router_id.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        o,
        "  BGP state = {}, up for {}",
        state(n),
        duration(n.uptime_seconds)
    );
    if let Some(local) = &n.local_address {
        let _ = writeln!(o, "  Local address: {local}");
    }
    let _ = writeln!(
        o,
        "  Hold time is {}, keepalive interval is {} seconds (configured hold time {})",
        n.hold_time.map_or("-".into(), |h| h.to_string()),
        n.keepalive.map_or("-".into(), |k| k.to_string()),
        n.configured_hold_time
    );
    let _ = writeln!(o, "  Neighbor capabilities:");
    for c in &n.capabilities_sent {
        let both = n.capabilities_received.contains(c);
        let _ = writeln!(
            o,
            "    {c}: advertised{}",
            if both { " and received" } else { "" }
        );
    }
    for c in n
        .capabilities_received
        .iter()
        .filter(|c| !n.capabilities_sent.contains(c))
    {
        let _ = writeln!(o, "    {c}: received");
    }
    if !n.families.is_empty() {
        let _ = writeln!(o, "  Negotiated families: {}", n.families.join(", "));
    }
    let _ = writeln!(o, "  Message statistics:");
    let m = &n.messages;
    let _ = writeln!(o, "                         Sent       Rcvd");
    let _ = writeln!(
        o,
        "    Update:       {:>14} {:>10}",
        m.updates_sent, m.updates_received
    );
    let _ = writeln!(o, "    Update errors:{:>14} {:>10}", "-", m.update_errors);
    let _ = writeln!(
        o,
        "    Established transitions: {}",
        m.established_transitions
    );
    let _ = writeln!(o, "  Route statistics:");
    let _ = writeln!(o, "                   ipv4       ipv6");
    for (name, c) in [
        ("Advertised:", &n.advertised),
        ("Received:", &n.received),
        ("Accepted:", &n.accepted),
    ] {
        let _ = writeln!(o, "    {name:<12}{:>8} {:>10}", c.ipv4, c.ipv6);
    }
    if !n.stale.is_empty() {
        let _ = writeln!(o, "  Stale while the peer restarts: {}", n.stale.join(", "));
    }
    if let Some(e) = &n.last_error {
        let _ = writeln!(o, "  Last error: {e}");
    }
    if let Some(b) = &n.bfd {
        let since = b
            .since_seconds
            .map(|s| format!(" for {}", duration(Some(s))))
            .unwrap_or_default();
        let why = b
            .diagnostic
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  BFD: {}{why}{since}; min rx {} ms, min tx {} ms, multiplier {}",
            b.state, b.min_rx_ms, b.min_tx_ms, b.multiplier
        );
    }
    o
}

/// `podbgp bfd`: every BFD session.
pub fn bfd(list: &[crate::bfd_io::SessionView]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<22} {:<9} {:<23} {:>9} {:>9} {:>9} {:<9} Diagnostic",
        "Peer", "State", "Discriminators (L/R)", "TX ms", "RX ms", "Detect ms", "Up/Down"
    );
    for s in list {
        let ms = |v: f64| format!("{v:.0}");
        let line = format!(
            "{:<22} {:<9} {:<23} {:>9} {:>9} {:>9} {:<9} {}",
            s.peer,
            s.state,
            format!("{}/{}", s.local_discriminator, s.remote_discriminator),
            ms(s.transmit_interval_ms),
            ms(s.required_min_rx_ms.max(s.remote_desired_min_tx_ms)),
            ms(s.detection_time_ms),
            duration(Some(s.uptime_seconds)),
            s.last_diagnostic
        );
        let _ = writeln!(o, "{}", line.trim_end());
    }
    o
}

pub fn global(g: &Global) -> String {
    format!(
        "AS:        {}\nRouter-ID: {}\nListening Port: {}, Addresses: {}\nCluster-ID: {}\nGraceful restart: {}\n",
        g.asn,
        g.router_id,
        g.listen_port,
        g.listen_addresses.join(", "),
        g.cluster_id,
        if g.graceful_restart { "enabled" } else { "disabled" }
    )
}

fn attrs(r: &Route) -> String {
    let mut parts = vec![format!("{{Origin: {}}}", r.origin)];
    if let Some(m) = r.med {
        parts.push(format!("{{Med: {m}}}"));
    }
    if let Some(l) = r.local_pref {
        parts.push(format!("{{LocalPref: {l}}}"));
    }
    if !r.communities.is_empty() {
        parts.push(format!("{{Communities: {}}}", r.communities.join(", ")));
    }
    if !r.large_communities.is_empty() {
        parts.push(format!(
            "{{LargeCommunity: [ {}]}}",
            r.large_communities.join(", ")
        ));
    }
    if !r.extended_communities.is_empty() {
        parts.push(format!(
            "{{Extcomms: [{}]}}",
            r.extended_communities.join("], [")
        ));
    }
    if let Some(o) = &r.originator_id {
        parts.push(format!("{{Originator: {o}}}"));
    }
    if !r.cluster_list.is_empty() {
        parts.push(format!("{{ClusterList: [{}]}}", r.cluster_list.join(", ")));
    }
    if r.stale {
        parts.push("{Stale}".into());
    }
    if !r.originated_for.is_empty() {
        parts.push(format!("{{For: {}}}", r.originated_for.join("; ")));
    }
    format!("[{}]", parts.join(" "))
}

/// The Loc-RIB, or a peer's Adj-RIB-In with `reasons`.
pub fn rib(dests: &[Destination], reasons: bool) -> String {
    let net_w = dests
        .iter()
        .map(|d| d.prefix.len())
        .max()
        .unwrap_or(0)
        .max(20);
    let nh_w = dests
        .iter()
        .flat_map(|d| d.paths.iter().map(|p| p.next_hop.len()))
        .max()
        .unwrap_or(0)
        .max(20);
    let path_w = dests
        .iter()
        .flat_map(|d| d.paths.iter().map(|p| p.as_path.len()))
        .max()
        .unwrap_or(0)
        .max(20);
    let mut o = String::new();
    let _ = write!(
        o,
        "   {:<net_w$} {:<nh_w$} {:<path_w$} {:<10} Attrs",
        "Network", "Next Hop", "AS_PATH", "Age"
    );
    o.push_str(if reasons { "  Reason\n" } else { "\n" });
    for d in dests {
        for p in &d.paths {
            let mark = if p.best { "*>" } else { "*" };
            let _ = write!(
                o,
                "{mark:<3}{:<net_w$} {:<nh_w$} {:<path_w$} {:<10} {}",
                d.prefix,
                p.next_hop,
                p.as_path,
                duration(Some(p.age_seconds)),
                attrs(p)
            );
            if reasons {
                let _ = write!(o, "  {}", p.reason.as_deref().unwrap_or("best"));
            }
            o.push('\n');
        }
    }
    o
}

pub fn adj_in(a: &AdjIn) -> String {
    let mut o = rib(&a.accepted, true);
    if !a.rejected.is_empty() {
        let _ = writeln!(o, "\nNot accepted:");
        for r in &a.rejected {
            let _ = writeln!(o, "   {:<20} {}", r.prefix, r.reason);
        }
    }
    o
}

pub fn summary(list: &[RibSummary]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<8} {:>12} {:>10} {:>15}",
        "Family", "Destinations", "Paths", "Attribute sets"
    );
    for s in list {
        let _ = writeln!(
            o,
            "{:<8} {:>12} {:>10} {:>15}",
            s.family, s.destinations, s.paths, s.attribute_sets
        );
    }
    o
}

/// `podbgp fib`: every prefix the FIB writer knows, with its state.
pub fn fib(list: &[crate::fib::FibEntry]) -> String {
    let net_w = list
        .iter()
        .map(|e| e.prefix.len())
        .max()
        .unwrap_or(0)
        .max(20);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<net_w$} {:<12} {:<30} Detail",
        "Network", "State", "Via"
    );
    for e in list {
        let via = if e.gateways.is_empty() {
            e.next_hops.join(", ")
        } else {
            e.gateways.join(", ")
        };
        let line = format!(
            "{:<net_w$} {:<12} {:<30} {}",
            e.prefix,
            e.state,
            via,
            e.detail.as_deref().unwrap_or("")
        );
        let _ = writeln!(o, "{}", line.trim_end());
    }
    o
}

/// `podbgp snat`: per table, its rules, the masqueraded sources and the
/// destinations that keep the source address.
pub fn snat(view: &crate::snat::SnatView) -> String {
    let mut o = String::new();
    for (i, f) in view.families.iter().enumerate() {
        if i > 0 {
            o.push('\n');
        }
        let _ = writeln!(o, "table {}", f.table);
        for r in &f.rules {
            let _ = writeln!(o, "  rule: {r}");
        }
        let list = |l: &[String]| {
            if l.is_empty() {
                "(none)".to_string()
            } else {
                l.join(", ")
            }
        };
        let _ = writeln!(o, "  masquerade from ({}): {}", f.pods.len(), list(&f.pods));
        let _ = writeln!(o, "  keep source to ({}): {}", f.keep.len(), list(&f.keep));
    }
    o
}
