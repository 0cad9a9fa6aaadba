//! The CLI's side of the control API: one HTTP/1.1 request per command,
//! over TCP (`http://HOST:PORT`) or a unix socket (`unix:PATH`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where the API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp { authority: String },
    Unix { path: String },
}

impl Endpoint {
    /// `http://HOST:PORT` or `unix:PATH`.
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("--api unix: needs a path".into());
            }
            return Ok(Endpoint::Unix { path: path.into() });
        }
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| format!("--api {s}: expected http://HOST:PORT or unix:PATH"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("--api {s}: expected http://HOST:PORT or unix:PATH"));
        }
        Ok(Endpoint::Tcp {
            authority: authority.into(),
        })
    }

    fn describe(&self) -> String {
        match self {
            Endpoint::Tcp { authority } => format!("http://{authority}"),
            Endpoint::Unix { path } => format!("unix:{path}"),
        }
    }
}

/// Send one request; the answer's status and body.
pub async fn call(
    api: &Endpoint,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), String> {
    let unreachable =
        |e: std::io::Error| format!("cannot reach the speaker at {}: {e}", api.describe());
    match api {
        Endpoint::Tcp { authority } => {
            let io = tokio::net::TcpStream::connect(authority.as_str())
                .await
                .map_err(unreachable)?;
            exchange(io, authority, method, path, body).await
        }
        Endpoint::Unix { path: socket } => {
            let io = tokio::net::UnixStream::connect(socket)
                .await
                .map_err(unreachable)?;
            exchange(io, "localhost", method, path, body).await
        }
    }
}

async fn exchange<I>(
    io: I,
    host: &str,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), String>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let broken = |e: hyper::Error| format!("the speaker's answer was cut short: {e}");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(broken)?;
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(broken)?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(broken)?
        .to_bytes();
    Ok((status, bytes))
}
