//! The control API: HTTP and JSON on loopback or a unix socket. Handlers
//! turn a request into an [`ApiCall`] for the owner and wait for its answer;
//! nothing here touches the speaker's state directly.

pub mod model;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bgp::wire::Family;
use bytes::Bytes;
use ipnet::IpNet;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::settings::ApiListen;

/// What the API asks of the owner.
#[derive(Debug)]
pub enum Request {
    Global,
    Neighbors,
    Neighbor(IpAddr),
    AdjIn(IpAddr, Option<Family>),
    AdjOut(IpAddr, Option<Family>),
    Op(IpAddr, Op),
    /// The destination of one prefix (or the longest one covering it).
    RibLookup(IpNet),
    /// The Loc-RIB's prefixes, sorted: a JSON array of strings. The first
    /// step of a listing, which then asks for the destinations a page at a
    /// time (`RibPage`): the owner never renders a whole table at once,
    /// and answers other calls between pages.
    RibPrefixes(Option<Family>),
    /// The destinations of these prefixes (those the RIB still has), as a
    /// JSON array.
    RibPage(Vec<IpNet>),
    /// The MRT peer index table (RFC 6396 TABLE_DUMP_V2), the first record
    /// of a RIB dump, as bytes.
    MrtPeers,
    /// The MRT RIB records of these prefixes, numbered from the sequence
    /// number given: a four-octet count of records, then the records.
    MrtPage(Vec<IpNet>, u32),
    RibSummary(Option<Family>),
    RibAdd(model::RibAdd),
    RibDel(IpNet),
    /// Leave for good (`podbgp shutdown`).
    Retire,
}

/// What an operator can do to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Reset,
    SoftReset,
    SoftResetIn,
    SoftResetOut,
    Shutdown,
    Enable,
}

/// An answer: a JSON document, serialized, or a status and one line of
/// error.
pub type Answer = Result<Bytes, (StatusCode, String)>;

pub struct ApiCall {
    pub request: Request,
    pub reply: oneshot::Sender<Answer>,
}

/// Where calls go: the owner, through the daemon.
type Owner = mpsc::UnboundedSender<ApiCall>;

/// The writers the API asks, those that run.
#[derive(Clone, Default)]
pub struct Writers {
    pub fib: Option<mpsc::Sender<crate::fib::Query>>,
    pub snat: Option<mpsc::Sender<crate::snat::Query>>,
    pub bfd: Option<mpsc::UnboundedSender<crate::bfd_io::Request>>,
}

/// What the handlers reach: the owner, and the writers.
#[derive(Clone)]
struct Api {
    owner: Owner,
    writers: Writers,
}

async fn ask(owner: &Owner, request: Request) -> Response {
    match call(owner, request).await {
        Ok(json) => ([(CONTENT_TYPE, "application/json")], json).into_response(),
        Err(r) => r,
    }
}

/// The owner's answer to `request`, or the response its failure makes.
async fn call(owner: &Owner, request: Request) -> Result<Bytes, Response> {
    const GONE: &str = "the speaker is shutting down";
    let (reply, answer) = oneshot::channel();
    if owner.send(ApiCall { request, reply }).is_err() {
        return Err(failure(StatusCode::SERVICE_UNAVAILABLE, GONE));
    }
    match answer.await {
        Ok(Ok(json)) => Ok(json),
        Ok(Err((status, e))) => Err(failure(status, &e)),
        Err(_) => Err(failure(StatusCode::SERVICE_UNAVAILABLE, GONE)),
    }
}

fn failure(status: StatusCode, e: &str) -> Response {
    (
        status,
        Json(model::ApiError {
            error: e.to_string(),
        }),
    )
        .into_response()
}

/// A request the API cannot take, answered with 400.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        failure(StatusCode::BAD_REQUEST, &self.0)
    }
}

#[derive(Deserialize)]
struct FamilyQuery {
    family: Option<String>,
    prefix: Option<String>,
}

fn family(q: &FamilyQuery) -> Result<Option<Family>, BadRequest> {
    match q.family.as_deref() {
        None | Some("") => Ok(None),
        Some("ipv4") => Ok(Some(Family::IPV4_UNICAST)),
        Some("ipv6") => Ok(Some(Family::IPV6_UNICAST)),
        Some(other) => Err(BadRequest(format!("family {other}: expected ipv4 or ipv6"))),
    }
}

fn address(s: &str) -> Result<IpAddr, BadRequest> {
    s.parse()
        .map_err(|_| BadRequest(format!("{s}: not an IP address")))
}

fn prefix(s: &str) -> Result<IpNet, BadRequest> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| BadRequest(format!("{s}: not a prefix")))
}

async fn global(State(Api { owner: o, .. }): State<Api>) -> Response {
    ask(&o, Request::Global).await
}

async fn neighbors(State(Api { owner: o, .. }): State<Api>) -> Response {
    ask(&o, Request::Neighbors).await
}

async fn neighbor(State(Api { owner: o, .. }): State<Api>, Path(addr): Path<String>) -> Response {
    match address(&addr) {
        Ok(a) => ask(&o, Request::Neighbor(a)).await,
        Err(r) => r.into_response(),
    }
}

async fn adj(
    State(Api { owner: o, .. }): State<Api>,
    Path((addr, which)): Path<(String, String)>,
    Query(q): Query<FamilyQuery>,
) -> Response {
    let (a, f) = match (address(&addr), family(&q)) {
        (Ok(a), Ok(f)) => (a, f),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    match which.as_str() {
        "adj-in" => ask(&o, Request::AdjIn(a, f)).await,
        "adj-out" => ask(&o, Request::AdjOut(a, f)).await,
        _ => failure(StatusCode::NOT_FOUND, "expected adj-in or adj-out"),
    }
}

async fn op(
    State(Api { owner: o, .. }): State<Api>,
    Path((addr, op)): Path<(String, String)>,
) -> Response {
    let a = match address(&addr) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let op = match op.as_str() {
        "reset" => Op::Reset,
        "softreset" => Op::SoftReset,
        "softresetin" => Op::SoftResetIn,
        "softresetout" => Op::SoftResetOut,
        "shutdown" => Op::Shutdown,
        "enable" => Op::Enable,
        other => {
            return failure(
                StatusCode::NOT_FOUND,
                &format!("{other}: expected reset, softreset, shutdown or enable"),
            )
        }
    };
    ask(&o, Request::Op(a, op)).await
}

async fn rib(State(Api { owner: o, .. }): State<Api>, Query(q): Query<FamilyQuery>) -> Response {
    let f = match family(&q) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    match q.prefix.as_deref().filter(|p| !p.is_empty()).map(prefix) {
        Some(Ok(p)) => ask(&o, Request::RibLookup(p)).await,
        Some(Err(r)) => r.into_response(),
        None => rib_listing(o, f).await,
    }
}

/// Destinations a page of the RIB listing holds.
const PAGE: usize = 1000;

/// The RIB's prefixes (of a family), sorted: the first step of a listing
/// or a dump.
async fn sorted_prefixes(owner: &Owner, family: Option<Family>) -> Result<Vec<IpNet>, Response> {
    let listed = call(owner, Request::RibPrefixes(family)).await?;
    serde_json::from_slice(&listed)
        .map_err(|e| failure(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// The whole Loc-RIB (of a family), streamed: the sorted prefixes first,
/// then their destinations a page at a time, each page rendered by the
/// owner between its other work. A table of a million routes costs the
/// daemon its prefix list and one page, not the whole document.
async fn rib_listing(owner: Owner, family: Option<Family>) -> Response {
    let prefixes = match sorted_prefixes(&owner, family).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    // The array's opening bracket, the pages' contents joined by commas,
    // the closing bracket. A page whose prefixes have all gone meanwhile
    // adds nothing.
    struct Listing {
        owner: Owner,
        prefixes: Vec<IpNet>,
        next: usize,
        opened: bool,
        written: bool,
        closed: bool,
    }
    let start = Listing {
        owner,
        prefixes,
        next: 0,
        opened: false,
        written: false,
        closed: false,
    };
    let pages = futures::stream::unfold(start, |mut l| async move {
        if !l.opened {
            l.opened = true;
            return Some((Ok(Bytes::from_static(b"[")), l));
        }
        while l.next < l.prefixes.len() {
            let end = (l.next + PAGE).min(l.prefixes.len());
            let page = l.prefixes[l.next..end].to_vec();
            l.next = end;
            let json = match call(&l.owner, Request::RibPage(page)).await {
                Ok(json) => json,
                // The owner is gone: the answer is cut short.
                Err(_) => return Some((Err(std::io::Error::other(GONE_MIDWAY)), l)),
            };
            // A JSON array: what is between its brackets.
            let inner = json
                .get(1..json.len().saturating_sub(1))
                .unwrap_or_default();
            if inner.is_empty() {
                continue;
            }
            let mut chunk = Vec::with_capacity(inner.len() + 1);
            if l.written {
                chunk.push(b',');
            }
            chunk.extend_from_slice(inner);
            l.written = true;
            return Some((Ok(Bytes::from(chunk)), l));
        }
        if l.closed {
            return None;
        }
        l.closed = true;
        Some((Ok(Bytes::from_static(b"]")), l))
    });
    (
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(pages),
    )
        .into_response()
}

const GONE_MIDWAY: &str = "the speaker stopped during the listing";

/// The RIB as an MRT TABLE_DUMP_V2 file (RFC 6396): the peer index
/// table, then one record per prefix with every path to it, streamed a
/// page of prefixes at a time as the RIB listing is.
async fn mrt_rib(State(Api { owner: o, .. }): State<Api>) -> Response {
    let peers = match call(&o, Request::MrtPeers).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let prefixes = match sorted_prefixes(&o, None).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    struct Dump {
        owner: Owner,
        prefixes: Vec<IpNet>,
        next: usize,
        sequence: u32,
        peers: Option<Bytes>,
    }
    let start = Dump {
        owner: o,
        prefixes,
        next: 0,
        sequence: 0,
        peers: Some(peers),
    };
    let records = futures::stream::unfold(start, |mut d| async move {
        if let Some(peers) = d.peers.take() {
            return Some((Ok(peers), d));
        }
        while d.next < d.prefixes.len() {
            let end = (d.next + PAGE).min(d.prefixes.len());
            let page = d.prefixes[d.next..end].to_vec();
            d.next = end;
            let bytes = match call(&d.owner, Request::MrtPage(page, d.sequence)).await {
                Ok(b) => b,
                Err(_) => return Some((Err(std::io::Error::other(GONE_MIDWAY)), d)),
            };
            let count = bytes
                .get(..4)
                .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            d.sequence = d.sequence.wrapping_add(count);
            if count > 0 {
                return Some((Ok(bytes.slice(4..)), d));
            }
        }
        None
    });
    (
        [(CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(records),
    )
        .into_response()
}

async fn rib_summary(
    State(Api { owner: o, .. }): State<Api>,
    Query(q): Query<FamilyQuery>,
) -> Response {
    match family(&q) {
        Ok(f) => ask(&o, Request::RibSummary(f)).await,
        Err(r) => r.into_response(),
    }
}

async fn rib_add(
    State(Api { owner: o, .. }): State<Api>,
    body: Result<Json<model::RibAdd>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(add)) => ask(&o, Request::RibAdd(add)).await,
        Err(e) => failure(StatusCode::BAD_REQUEST, &e.body_text()),
    }
}

/// Leave for good: every session ends with a Cease and stays down, so
/// every peer drops our routes at once. The answer comes once the Ceases
/// are handed to the connections; the process runs on until SIGTERM.
async fn shutdown(State(Api { owner: o, .. }): State<Api>) -> Response {
    ask(&o, Request::Retire).await
}

async fn rib_del(
    State(Api { owner: o, .. }): State<Api>,
    Query(q): Query<FamilyQuery>,
) -> Response {
    match q.prefix.as_deref().map(prefix) {
        Some(Ok(p)) => ask(&o, Request::RibDel(p)).await,
        Some(Err(r)) => r.into_response(),
        None => failure(StatusCode::BAD_REQUEST, "prefix= is required"),
    }
}

async fn fib(State(api): State<Api>) -> Response {
    let Some(fib) = api.writers.fib else {
        return failure(
            StatusCode::NOT_FOUND,
            "the kernel FIB is off (fib.enabled = false)",
        );
    };
    let (reply, answer) = oneshot::channel();
    if fib.send(crate::fib::Query::List(reply)).await.is_err() {
        return failure(StatusCode::SERVICE_UNAVAILABLE, "the FIB writer is gone");
    }
    match answer.await {
        Ok(list) => Json(list).into_response(),
        Err(_) => failure(StatusCode::SERVICE_UNAVAILABLE, "the FIB writer is gone"),
    }
}

async fn snat(State(api): State<Api>) -> Response {
    let Some(snat) = api.writers.snat else {
        return failure(StatusCode::NOT_FOUND, "SNAT is off (snat.enabled = false)");
    };
    let (reply, answer) = oneshot::channel();
    if snat.send(crate::snat::Query::Show(reply)).await.is_err() {
        return failure(StatusCode::SERVICE_UNAVAILABLE, "the SNAT writer is gone");
    }
    match answer.await {
        Ok(Ok(view)) => Json(view).into_response(),
        Ok(Err(e)) => failure(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(_) => failure(StatusCode::SERVICE_UNAVAILABLE, "the SNAT writer is gone"),
    }
}

async fn bfd(State(api): State<Api>) -> Response {
    let Some(bfd) = api.writers.bfd else {
        return failure(
            StatusCode::NOT_FOUND,
            "BFD is off: no neighbor has bfd.enabled, nor kubernetes.bfd the mesh",
        );
    };
    let (reply, answer) = oneshot::channel();
    if bfd.send(crate::bfd_io::Request::Query { reply }).is_err() {
        return failure(StatusCode::SERVICE_UNAVAILABLE, "the BFD task is gone");
    }
    match answer.await {
        Ok(list) => Json(list).into_response(),
        Err(_) => failure(StatusCode::SERVICE_UNAVAILABLE, "the BFD task is gone"),
    }
}

fn router(owner: Owner, writers: Writers) -> Router {
    Router::new()
        .route("/v1/bfd", get(bfd))
        .route("/v1/fib", get(fib))
        .route("/v1/snat", get(snat))
        .route("/v1/global", get(global))
        .route("/v1/neighbors", get(neighbors))
        .route("/v1/neighbors/:addr", get(neighbor))
        .route("/v1/neighbors/:addr/:which", get(adj).post(op))
        .route("/v1/rib", get(rib).post(rib_add).delete(rib_del))
        .route("/v1/rib/summary", get(rib_summary))
        .route("/v1/mrt/rib", get(mrt_rib))
        .route("/v1/shutdown", axum::routing::post(shutdown))
        .fallback(|| async { failure(StatusCode::NOT_FOUND, "no such API path") })
        .with_state(Api { owner, writers })
}

/// At most this many API connections at once: more are closed as they
/// come, so clients that never finish cannot take the daemon's files.
const CONNECTIONS: usize = 64;
/// A request's head must have come in this long, and a connection
/// lasts no longer than `CONNECTION_LIFE`: a client trickling bytes holds
/// its place for seconds, not for ever.
const HEAD_WITHIN: Duration = Duration::from_secs(10);
const CONNECTION_LIFE: Duration = Duration::from_secs(60);

/// Start serving the API on `at`.
pub async fn serve(at: ApiListen, owner: Owner, writers: Writers) -> Result<(), String> {
    let app = router(owner, writers);
    match at {
        ApiListen::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("api.listen = {addr}: {e}"))?;
            let listener = Arc::new(listener);
            tokio::spawn(serve_on(
                move || {
                    let l = Arc::clone(&listener);
                    async move { l.accept().await.map(|(s, _)| s) }
                },
                app,
            ));
        }
        ApiListen::Unix(path) => {
            // A socket left by an earlier run is ours to replace.
            if std::fs::metadata(&path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                let _ = std::fs::remove_file(&path);
            }
            let listener = tokio::net::UnixListener::bind(&path)
                .map_err(|e| format!("api.listen = unix:{}: {e}", path.display()))?;
            let listener = Arc::new(listener);
            tokio::spawn(serve_on(
                move || {
                    let l = Arc::clone(&listener);
                    async move { l.accept().await.map(|(s, _)| s) }
                },
                app,
            ));
        }
    }
    Ok(())
}

/// Serve the connections `accept` takes, HTTP/1.1, within the limits above.
async fn serve_on<S, F, Fut>(mut accept: F, app: Router)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<S>>,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    loop {
        let stream = match accept().await {
            Ok(stream) => stream,
            Err(e) => {
                // Out of files, most likely: wait rather than spin.
                debug!("api: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!("api: {CONNECTIONS} connections open, one more refused");
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_WITHIN)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFE, conn).await;
            drop(slot);
        });
    }
}

/// For a POST or DELETE that has nothing else to say.
pub fn done(what: impl Into<String>) -> Answer {
    json(model::Done { done: what.into() })
}

/// An answer of `v`, serialized.
pub fn json(v: impl serde::Serialize) -> Answer {
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
