//! BIRD as the reflectors, in the place of podbgp on the first R nodes,
//! as Calico runs it: every other node is a client found by address
//! (a dynamic `neighbor range`, as node addresses are not known ahead),
//! the other reflectors plain iBGP peers. A reflector is a node as well:
//! it originates its own pod prefix and installs what it learns.

use std::fmt::Write;

use super::super::{Host, Lab};
use super::{node_addr, pod_cidr, Plan, ASN};

/// The config of reflector `i`.
pub fn config(host: &Host, i: usize, plan: &Plan) -> String {
    let me = node_addr(i);
    let mut c = String::new();
    let _ = writeln!(c, "router id {me};");
    let _ = writeln!(
        c,
        "log \"{}/bird.log\" {{ info, remote, warning, error, fatal, bug }};",
        host.dir.display()
    );
    let _ = writeln!(c, "protocol device {{ }}");
    // The pod prefix, to originate; not for the kernel (a node's own pod
    // range is its CNI's).
    let _ = writeln!(
        c,
        "protocol static {{ ipv4; route {} blackhole; }}",
        pod_cidr(i)
    );
    let _ = writeln!(
        c,
        "protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}"
    );
    // BIRD starts with its clients here, not long before them: its
    // default wait of five seconds before the first connection would be
    // timed instead of its routing.
    let (hold, keepalive) = (plan.hold, (plan.hold / 3).max(1));
    let _ = writeln!(
        c,
        "template bgp node {{\n  local {me} as {ASN};\n  hold time {hold}; keepalive time {keepalive}; connect retry time 1; connect delay time 0;\n  error wait time 1, 5;\n  direct;\n  ipv4 {{ import all; export all; }};\n}}"
    );
    let _ = writeln!(
        c,
        "protocol bgp clients from node {{\n  neighbor range 10.79.0.0/16 as {ASN};\n  rr client;\n}}"
    );
    for other in (0..plan.reflectors).filter(|&r| r != i) {
        let _ = writeln!(
            c,
            "protocol bgp rr{other} from node {{ neighbor {} as {ASN}; }}",
            node_addr(other)
        );
    }
    c
}

/// Write reflector `i`'s config and start BIRD in its namespace; its
/// process id.
pub fn spawn(lab: &mut Lab, host: &Host, i: usize, plan: &Plan) -> u32 {
    let conf = host.dir.join("bird.conf");
    std::fs::write(&conf, config(host, i, plan)).expect("bird.conf");
    let conf = conf.to_string_lossy().into_owned();
    let socket = host.dir.join("bird.ctl").to_string_lossy().into_owned();
    let pid = host.dir.join("bird.pid").to_string_lossy().into_owned();
    lab.spawn_direct(
        host,
        "bird",
        &["-f", "-c", &conf, "-s", &socket, "-P", &pid],
        &[],
        "bird-stdout.log",
    )
}
