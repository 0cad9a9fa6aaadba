//! One TCP connection to a peer: a reader task that frames and decodes
//! what arrives, and a writer task that encodes what the owner sends. The
//! two halves run apart so a peer that stops reading can never stop us
//! reading it.

use bgp::rib::PeerId;
use bgp::speaker::ConnId;
use bgp::wire::{message_len, Context, Message};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::owner::{Command, ConnEvent};

/// How the reader may decode: not yet past the peer's OPEN, with what the
/// OPENs agreed, or not at all any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoding {
    Open,
    Agreed(Context),
    Stop,
}

enum Out {
    Send(Message, Context),
    Close,
}

/// The owner's handle on a connection.
pub struct ConnHandle {
    out: mpsc::UnboundedSender<Out>,
    decoding: watch::Sender<Decoding>,
    writer: JoinHandle<()>,
}

impl ConnHandle {
    pub fn send(&self, message: Message, ctx: Context) {
        let _ = self.out.send(Out::Send(message, ctx));
    }

    /// Flush what is queued, then close; stop reading at once.
    pub fn close(&self) {
        let _ = self.out.send(Out::Close);
        let _ = self.decoding.send(Decoding::Stop);
    }

    /// From the peer's OPEN on, decode with `rx`.
    pub fn negotiated(&self, rx: Context) {
        let _ = self.decoding.send(Decoding::Agreed(rx));
    }

    /// Wait for the writer to have flushed and closed.
    pub async fn finished(self) {
        let _ = self.writer.await;
    }
}

pub fn spawn(
    stream: TcpStream,
    peer: PeerId,
    conn: ConnId,
    owner: mpsc::Sender<Command>,
) -> ConnHandle {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (dec_tx, dec_rx) = watch::channel(Decoding::Open);
    tokio::spawn(reader(read, peer, conn, owner, dec_rx));
    let writer = tokio::spawn(writer(write, out_rx));
    ConnHandle {
        out: out_tx,
        decoding: dec_tx,
        writer,
    }
}

async fn writer(mut write: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Out>) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        let mut closing = false;
        let mut next = Some(first);
        // Encode everything queued into one write.
        while let Some(out) = next.take() {
            match out {
                Out::Send(m, ctx) => {
                    if let Err(e) = m.encode(&ctx, &mut buf) {
                        tracing::error!("could not encode a {:?}: {e}", m.kind());
                    }
                }
                Out::Close => {
                    closing = true;
                    break;
                }
            }
            if buf.len() < 1 << 20 {
                next = rx.try_recv().ok();
            }
        }
        if !buf.is_empty() {
            if write.write_all(&buf).await.is_err() {
                return;
            }
            buf.clear();
        }
        if closing {
            let _ = write.shutdown().await;
            return;
        }
    }
    let _ = write.shutdown().await;
}

async fn reader(
    mut read: OwnedReadHalf,
    peer: PeerId,
    conn: ConnId,
    owner: mpsc::Sender<Command>,
    mut decoding: watch::Receiver<Decoding>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let error = loop {
        // Frame and decode what is in; after an OPEN, wait for the owner
        // to say how the session decodes from here.
        loop {
            let state = *decoding.borrow();
            let ctx = match state {
                Decoding::Stop => return,
                Decoding::Open => Context::modern(),
                Decoding::Agreed(ctx) => ctx,
            };
            let need = match message_len(&buf, &ctx) {
                Ok(n) => n,
                Err(error) => {
                    send(&owner, peer, conn, ConnEvent::DecodeError(error)).await;
                    return;
                }
            };
            if buf.len() < need {
                break;
            }
            let frame = buf.split_to(need);
            let event = match Message::decode(&frame, &ctx) {
                Ok(m) => ConnEvent::Message(m),
                Err(error) => {
                    send(&owner, peer, conn, ConnEvent::DecodeError(error)).await;
                    return;
                }
            };
            let was_open = matches!(event, ConnEvent::Message(Message::Open(_)));
            if !send(&owner, peer, conn, event).await {
                return;
            }
            if was_open && state == Decoding::Open {
                let agreed = decoding.wait_for(|d| *d != Decoding::Open).await;
                if agreed.map_or(true, |d| *d == Decoding::Stop) {
                    return;
                }
            }
        }
        tokio::select! {
            r = read.read_buf(&mut buf) => match r {
                Ok(0) => break None,
                Ok(_) => {}
                Err(e) => break Some(e),
            },
            changed = decoding.changed() => {
                if changed.is_err() || *decoding.borrow() == Decoding::Stop {
                    return;
                }
            }
        }
    };
    send(&owner, peer, conn, ConnEvent::Closed(error)).await;
}

async fn send(owner: &mpsc::Sender<Command>, peer: PeerId, conn: ConnId, event: ConnEvent) -> bool {
    owner
        .send(Command::Conn { peer, conn, event })
        .await
        .is_ok()
}
