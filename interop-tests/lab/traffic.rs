//! Test traffic: a TCP listener that logs who connected, connections made
//! from inside a namespace, and a listener bound inside one for a server
//! of the test's own process.

use std::net::SocketAddr;
use std::time::Duration;

use super::{apiserver, eventually, Host, Lab};

/// Serve `server` (the API server of the tests) at `at` inside `host`'s
/// namespace, on `runtime`; where a client's kubeconfig for it is (in the
/// host's directory).
pub fn serve_api(
    runtime: &tokio::runtime::Runtime,
    host: &Host,
    at: SocketAddr,
    server: &apiserver::Server,
) -> std::path::PathBuf {
    let listener = listen_in(host, at);
    let app = server.router();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        let _ = axum::serve(listener, app).await;
    });
    kubeconfig_for(host, at)
}

/// A kubeconfig for the API server at `at`, written in `host`'s directory.
pub fn kubeconfig_for(host: &Host, at: SocketAddr) -> std::path::PathBuf {
    let path = host.dir.join("kubeconfig");
    std::fs::write(&path, apiserver::kubeconfig(&format!("http://{at}"))).expect("kubeconfig");
    path
}

/// A TCP server on port 8080 that logs each client's address ("from ADDR").
pub const LISTENER: &str = "import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 8080))
s.listen()
s.settimeout(600)
while True:
    c, a = s.accept()
    print('from', a[0], flush=True)
    c.close()
";

/// Run [`LISTENER`] on `host`, logging to its listen.log.
pub fn listen(lab: &mut Lab, host: &Host) {
    lab.spawn(host, &["python3", "-c", LISTENER], "listen.log");
}

/// Connect from `from` to `to`:8080 (retrying, bounded) and return the
/// source address the listener on `at` logged for it.
pub fn seen_from(from: &Host, at: &Host, to: impl std::fmt::Display) -> Option<String> {
    let log = at.dir.join("listen.log");
    let before = std::fs::read_to_string(&log).unwrap_or_default();
    let connect =
        format!("import socket\nsocket.create_connection(('{to}', 8080), timeout=3).close()");
    let ok = eventually(Duration::from_secs(15), || {
        from.exec(&["python3", "-c", &connect]).status.success()
    });
    if !ok {
        return None;
    }
    let mut line = None;
    eventually(Duration::from_secs(5), || {
        let now = std::fs::read_to_string(&log).unwrap_or_default();
        line = now[before.len().min(now.len())..]
            .lines()
            .find_map(|l| l.strip_prefix("from ").map(str::to_string));
        line.is_some()
    });
    line
}

/// A TCP listener bound to `addr` inside `host`'s namespace, for a server
/// of the test's own process (the namespace's only way in is its own
/// addresses).
pub fn listen_in(host: &Host, addr: std::net::SocketAddr) -> std::net::TcpListener {
    let path = format!("/var/run/netns/{}", host.ns);
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on this thread only, with a namespace file we hold open.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        let l = std::net::TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        l.set_nonblocking(true).expect("nonblocking");
        l
    })
    .join()
    .expect("the binding thread")
}

/// A UDP socket bound to `addr` inside `host`'s namespace.
pub fn udp_in(host: &Host, addr: std::net::SocketAddr) -> std::net::UdpSocket {
    let path = format!("/var/run/netns/{}", host.ns);
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on this thread only, with a namespace file we hold open.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        std::net::UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
    })
    .join()
    .expect("the binding thread")
}

/// A TCP connection to `addr` made from the host's namespace.
pub fn connect_in(host: &Host, addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let path = format!("/var/run/netns/{}", host.ns);
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path)?;
        // SAFETY: setns on this thread only, with a namespace file we hold open.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
    })
    .join()
    .expect("the connecting thread")
}
