//! nftables through the `nft` program: each batch of changes is one
//! `nft -f -` script, which nft commits as one transaction, so traffic sees
//! the set before or after it, never half of it.

use std::collections::BTreeSet;
use std::process::Stdio;

use ipnet::IpNet;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The table's name in both families.
pub const TABLE: &str = "podbgp";
/// Marks our rule; a rule without it, or of another version, is replaced.
pub const RULE_TAG: &str = "podbgp masquerade v1";

/// An nftables family podbgp keeps a table in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ip,
    Ip6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Ip, Family::Ip6];

    pub fn of(prefix: &IpNet) -> Family {
        match prefix {
            IpNet::V4(_) => Family::Ip,
            IpNet::V6(_) => Family::Ip6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
        }
    }

    fn addr_type(self) -> &'static str {
        match self {
            Family::Ip => "ipv4_addr",
            Family::Ip6 => "ipv6_addr",
        }
    }

    /// The masquerade rule, as given to nft.
    pub fn rule(self) -> String {
        let f = self.name();
        format!(
            "{f} saddr @pods {f} daddr != @keep fib daddr type != local masquerade comment \"{RULE_TAG}\""
        )
    }
}

/// Run an nft script as one transaction.
pub async fn apply(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| format!("nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nft: {}", first_line(&out.stderr)))
    }
}

/// Run `nft ARGS` and return what it printed.
async fn output(args: &[&str]) -> Result<String, String> {
    let out = Command::new("nft")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "nft {}: {}",
            args.join(" "),
            first_line(&out.stderr)
        ))
    }
}

fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("failed")
        .to_string()
}

/// Make each family's table, its two sets and its chain exist, keeping
/// whatever they hold, in one transaction.
pub async fn create(families: &[Family]) -> Result<(), String> {
    let mut script = String::new();
    for family in families {
        let f = family.name();
        let t = family.addr_type();
        script.push_str(&format!(
            "add table {f} {TABLE}\n\
             add set {f} {TABLE} pods {{ type {t}; flags interval; }}\n\
             add set {f} {TABLE} keep {{ type {t}; flags interval; }}\n\
             add chain {f} {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n"
        ));
    }
    apply(&script).await
}

/// Make the chain, holding `rules` now, hold exactly our rule, in one
/// transaction if it must change.
pub async fn fix_rule(family: Family, rules: &[(u64, String)]) -> Result<(), String> {
    if rules.len() == 1 && rules[0].1.contains(RULE_TAG) {
        return Ok(());
    }
    let f = family.name();
    let mut script = String::new();
    for (handle, _) in rules {
        script.push_str(&format!(
            "delete rule {f} {TABLE} postrouting handle {handle}\n"
        ));
    }
    script.push_str(&format!(
        "add rule {f} {TABLE} postrouting {}\n",
        family.rule()
    ));
    apply(&script).await
}

/// The rules of our chain: handle and text.
pub async fn rules(family: Family) -> Result<Vec<(u64, String)>, String> {
    let text = output(&["-a", "list", "chain", family.name(), TABLE, "postrouting"]).await?;
    Ok(parse_rules(&text))
}

fn parse_rules(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|l| {
            let (rule, handle) = l.trim().rsplit_once(" # handle ")?;
            if rule.starts_with("type ") || rule.starts_with("chain ") {
                return None;
            }
            Some((handle.trim().parse().ok()?, rule.trim().to_string()))
        })
        .collect()
}

/// The elements of one of our sets; `None` when it holds something that is
/// not a prefix (a range someone added by hand).
pub async fn elements(family: Family, set: &str) -> Result<Option<BTreeSet<IpNet>>, String> {
    let text = output(&["-j", "list", "set", family.name(), TABLE, set]).await?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("nft -j: {e}"))?;
    Ok(parse_elements(&json))
}

fn parse_elements(json: &serde_json::Value) -> Option<BTreeSet<IpNet>> {
    let mut out = BTreeSet::new();
    let items = json.get("nftables")?.as_array()?;
    for item in items {
        let Some(set) = item.get("set") else { continue };
        let Some(elems) = set.get("elem").and_then(|e| e.as_array()) else {
            continue;
        };
        for e in elems {
            out.insert(parse_element(e)?);
        }
    }
    Some(out)
}

fn parse_element(e: &serde_json::Value) -> Option<IpNet> {
    if let Some(addr) = e.as_str() {
        let addr: std::net::IpAddr = addr.parse().ok()?;
        return Some(IpNet::from(addr));
    }
    if let Some(p) = e.get("prefix") {
        let addr: std::net::IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
        let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
        return IpNet::new(addr, len).ok().map(|n| n.trunc());
    }
    // An element with a timeout or comment wraps the value.
    if let Some(inner) = e.get("elem").and_then(|x| x.get("val")) {
        return parse_element(inner);
    }
    None
}

/// `add element` / `delete element` lines for a set.
pub fn element_lines(
    family: Family,
    set: &str,
    verb: &str,
    prefixes: &[IpNet],
    script: &mut String,
) {
    // Lines of a few hundred elements keep nft's parser fast.
    for chunk in prefixes.chunks(256) {
        let list: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        script.push_str(&format!(
            "{verb} element {} {TABLE} {set} {{ {} }}\n",
            family.name(),
            list.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_read_with_their_handles() {
        let text = "table ip podbgp {\n\tchain postrouting { # handle 3\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr @pods ip daddr != @keep fib daddr type != local masquerade comment \"podbgp masquerade v1\" # handle 4\n\t}\n}\n";
        let rules = parse_rules(text);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].0, 4);
        assert!(rules[0].1.contains(RULE_TAG));
    }

    #[test]
    fn set_elements_are_read_as_prefixes() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "ip", "name": "keep", "table": "podbgp", "type": "ipv4_addr", "handle": 2, "flags": ["interval"], "elem": [{"prefix": {"addr": "10.244.0.0", "len": 16}}, "192.0.2.7"]}}]}"#,
        )
        .expect("json");
        let got = parse_elements(&json).expect("prefixes");
        let want: BTreeSet<IpNet> = ["10.244.0.0/16", "192.0.2.7/32"]
            .iter()
            .map(|s| s.parse().expect("prefix"))
            .collect();
        assert_eq!(got, want);
        let range: serde_json::Value = serde_json::from_str(
            r#"{"nftables": [{"set": {"elem": [{"range": ["10.0.0.1", "10.0.0.9"]}]}}]}"#,
        )
        .expect("json");
        assert_eq!(parse_elements(&range), None);
        let empty: serde_json::Value =
            serde_json::from_str(r#"{"nftables": [{"set": {"name": "keep"}}]}"#).expect("json");
        assert_eq!(parse_elements(&empty), Some(BTreeSet::new()));
    }
}
