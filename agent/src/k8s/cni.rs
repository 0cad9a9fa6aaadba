//! The node's CNI network config: what kindnetd writes on a kind node, so
//! pods get addresses on a cluster created with `disableDefaultCNI: true`.
//!
//! A conflist with the reference `ptp` plugin (a veth per pod, a host
//! route to it on the node), `host-local` addresses from this node's pod
//! prefixes, and `portmap` for host ports. Written atomically (a temporary
//! file renamed over the old one), only when it changes; no other file of
//! the directory is touched.

use std::io::Write;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::json;

/// The file podbgp owns in the CNI directory; runtimes take the first
/// conflist by name.
pub const FILE: &str = "10-podbgp.conflist";

/// The conflist for these pod prefixes, with this MTU.
pub fn conflist(pod_prefixes: &[IpNet], mtu: u32) -> String {
    let ranges: Vec<serde_json::Value> = pod_prefixes
        .iter()
        .map(|p| json!([{ "subnet": p.trunc().to_string() }]))
        .collect();
    let mut routes = Vec::new();
    if pod_prefixes.iter().any(|p| matches!(p, IpNet::V4(_))) {
        routes.push(json!({ "dst": "0.0.0.0/0" }));
    }
    if pod_prefixes.iter().any(|p| matches!(p, IpNet::V6(_))) {
        routes.push(json!({ "dst": "::/0" }));
    }
    let config = json!({
        "cniVersion": "0.4.0",
        "name": "podbgp",
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": false,
                "mtu": mtu,
                "ipam": {
                    "type": "host-local",
                    "dataDir": "/run/cni-ipam-state",
                    "ranges": ranges,
                    "routes": routes,
                },
            },
            {
                "type": "portmap",
                "capabilities": { "portMappings": true },
            },
        ],
    });
    let mut text = serde_json::to_string_pretty(&config).unwrap_or_default();
    text.push('\n');
    text
}

/// Write `text` as the config in `dir` unless it is there already.
/// Returns whether the file changed.
pub fn write(dir: &Path, text: &str) -> std::io::Result<bool> {
    let path = dir.join(FILE);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    std::fs::create_dir_all(dir)?;
    let tmp: PathBuf = dir.join(format!(".{FILE}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

/// The MTU of the interface holding `addr`, or of the first interface that
/// is up and not loopback; 1500 when neither can be read.
pub fn mtu_for(addr: Option<std::net::IpAddr>) -> u32 {
    let name = addr
        .and_then(crate::ifaces::interface_of)
        .or_else(crate::ifaces::first_interface);
    name.and_then(|n| crate::ifaces::mtu_of(&n)).unwrap_or(1500)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("prefix")).collect()
    }

    #[test]
    fn single_stack_gets_one_range_and_one_default_route() {
        let text = conflist(&nets(&["10.244.1.0/24"]), 1450);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["plugins"][0]["type"], "ptp");
        assert_eq!(v["plugins"][0]["mtu"], 1450);
        let ipam = &v["plugins"][0]["ipam"];
        assert_eq!(ipam["type"], "host-local");
        assert_eq!(ipam["ranges"], json!([[{ "subnet": "10.244.1.0/24" }]]));
        assert_eq!(ipam["routes"], json!([{ "dst": "0.0.0.0/0" }]));
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(v["plugins"][1]["capabilities"]["portMappings"], true);
    }

    #[test]
    fn dual_stack_gets_a_range_and_a_default_route_per_family() {
        let text = conflist(&nets(&["10.244.1.0/24", "fd00:10:244:1::/64"]), 1500);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let ipam = &v["plugins"][0]["ipam"];
        assert_eq!(
            ipam["ranges"],
            json!([[{ "subnet": "10.244.1.0/24" }], [{ "subnet": "fd00:10:244:1::/64" }]])
        );
        assert_eq!(
            ipam["routes"],
            json!([{ "dst": "0.0.0.0/0" }, { "dst": "::/0" }])
        );
    }

    #[test]
    fn written_once_and_left_alone_when_unchanged() {
        let dir = tempfile::tempdir().expect("dir");
        // Someone else's file stays as it is.
        std::fs::write(dir.path().join("05-other.conf"), "other").expect("write");
        let text = conflist(&nets(&["10.244.1.0/24"]), 1500);
        assert!(write(dir.path(), &text).expect("write"));
        let path = dir.path().join(FILE);
        let before = std::fs::metadata(&path)
            .expect("meta")
            .modified()
            .expect("mtime");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!write(dir.path(), &text).expect("write"));
        let after = std::fs::metadata(&path)
            .expect("meta")
            .modified()
            .expect("mtime");
        assert_eq!(before, after);
        let other = conflist(&nets(&["10.244.2.0/24"]), 1500);
        assert!(write(dir.path(), &other).expect("write"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), other);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["05-other.conf", FILE]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("05-other.conf")).expect("read"),
            "other"
        );
    }
}
