//! The daemon as a process: what it does when a part of it cannot start.
//! Needs no root (no FIB; the SNAT writer fails before it needs any).

#[path = "support/ports.rs"]
mod ports;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ports::free_port;

// SNAT is made while the sessions come up; when it cannot be (no `nft`
// here), the daemon still stops, with one line naming it and a way out.
#[test]
fn a_snat_that_cannot_start_stops_the_daemon_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("podbgp.toml");
    let text = format!(
        "[global]\nasn = 64512\nrouter_id = \"10.255.0.1\"\nlisten_addresses = [\"127.0.0.1\"]\nlisten_port = {}\n\
         [api]\nlisten = \"127.0.0.1:{}\"\n[fib]\nenabled = false\n[snat]\nenabled = true\n",
        free_port(),
        free_port()
    );
    std::fs::write(&config, text).expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_podbgp"))
        .args(["run", "--config"])
        .arg(&config)
        // No nft to be found.
        .env("PATH", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podbgp runs");
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the daemon kept running without its SNAT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("podbgp: snat:") && last.contains("snat.enabled = false turns it off"),
        "{err}"
    );
}
