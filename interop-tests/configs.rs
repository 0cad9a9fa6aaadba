//! The FRR configuration under configs/ is checked by FRR itself
//! (`vtysh --dryrun`), so the walkthrough's route server cannot rot.
//! Needs Debian's frr.

#[path = "lab/mod.rs"]
mod lab;

use std::path::Path;
use std::process::Command;

#[test]
fn frr_accepts_the_route_server_config() {
    if !lab::ready() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/kind/frr-route-server.conf");
    let out = Command::new("vtysh")
        .arg("--dryrun")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("vtysh");
    assert!(
        out.status.success(),
        "{}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
