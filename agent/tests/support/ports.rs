//! Loopback ports for the daemons the tests start.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// Calls so far in this process: each starts its search elsewhere.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// A loopback port free now, from below the kernel's ephemeral range. A
/// port the kernel hands out for `bind(0)` comes from that range, and so
/// do the ports of the daemon's own outgoing connections (to the API
/// server, to its peers): one of those could take the port between the
/// test picking it and the daemon listening on it.
pub fn free_port() -> u16 {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let floor = 10_000.min(ephemeral.saturating_sub(1_000)).max(1_024);
    let span = ephemeral.saturating_sub(floor).max(1);
    // Tests running at once, in this process or others, start apart.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let start = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(nanos)
        .wrapping_add(call.wrapping_mul(7_919));
    (0..span)
        .map(|i| floor + start.wrapping_add(i) % span)
        .filter_map(|p| u16::try_from(p).ok())
        .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port below the ephemeral range")
}
