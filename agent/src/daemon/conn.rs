//! One TCP connection to a peer: a reader task that frames and decodes
//! what arrives, and a writer task that encodes what the owner sends. The
//! two halves run apart so a peer that stops reading can never stop us
//! reading it.

use bgp::rib::PeerId;
use bgp::speaker::ConnId;
use bgp::wire::{message_len, Context, Message};
use bytes::BytesMut;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
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
    /// Events the reader has decoded and the owner not yet taken.
    backlog: Arc<AtomicUsize>,
    /// The socket, to ask the kernel what waits unread in it; a duplicate
    /// descriptor, so it stays this socket for as long as the handle lives.
    probe: Option<OwnedFd>,
    /// The connection's two ends: ours, the peer's (BMP's Peer Up).
    pub ends: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
}

impl ConnHandle {
    /// The owner took one of this connection's events.
    pub fn taken(&self) {
        let _ = self
            .backlog
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// The peer's bytes wait on our side: in the socket, unread, or read
    /// and decoded but not yet taken by the owner. A hold timer that runs
    /// out meanwhile is ours to blame, not the peer's.
    pub fn input_waiting(&self) -> bool {
        self.backlog.load(Ordering::Acquire) > 0
            || self
                .probe
                .as_ref()
                .is_some_and(|fd| super::sockopt::unread(fd).is_ok_and(|n| n > 0))
    }

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
    (peer, conn): (PeerId, ConnId),
    owner: mpsc::Sender<Command>,
    budget: Arc<Semaphore>,
) -> ConnHandle {
    let _ = stream.set_nodelay(true);
    let probe = stream.as_fd().try_clone_to_owned().ok();
    let ends = stream.local_addr().ok().zip(stream.peer_addr().ok());
    let (read, write) = stream.into_split();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (dec_tx, dec_rx) = watch::channel(Decoding::Open);
    let backlog = Arc::new(AtomicUsize::new(0));
    let to_owner = ToOwner {
        owner,
        peer,
        conn,
        backlog: Arc::clone(&backlog),
        budget,
    };
    tokio::spawn(reader(read, to_owner, dec_rx));
    let writer = tokio::spawn(writer(write, out_rx));
    ConnHandle {
        out: out_tx,
        decoding: dec_tx,
        writer,
        backlog,
        probe,
        ends,
    }
}

/// A connection's buffers start at a page: a reflector holds a thousand
/// connections, most of them carrying a keepalive now and then.
const BUF_FIRST: usize = 4 * 1024;
/// A write buffer grown past this (a table sent) is let go after the write.
const WRITE_KEEP: usize = 64 * 1024;
/// The most a read asks for at once, while a table arrives.
const READ_MAX: usize = 64 * 1024;

async fn writer(mut write: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Out>) {
    let mut buf = BytesMut::with_capacity(BUF_FIRST);
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
            if buf.capacity() > WRITE_KEEP {
                buf = BytesMut::with_capacity(BUF_FIRST);
            }
        }
        if closing {
            let _ = write.shutdown().await;
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// What the reader has read and not yet framed: a page while the peer
/// sends little, growing while reads fill it (a table arriving), and let
/// go once empty after it shrank again.
struct Inbox {
    buf: BytesMut,
    /// How much the next read asks for.
    want: usize,
}

impl Inbox {
    fn new() -> Self {
        Inbox {
            buf: BytesMut::with_capacity(BUF_FIRST),
            want: BUF_FIRST,
        }
    }

    /// Room for the next read; returns how much there is.
    fn make_room(&mut self) -> usize {
        if self.buf.is_empty() && self.buf.capacity() > 2 * self.want {
            self.buf = BytesMut::with_capacity(self.want);
        }
        if self.buf.capacity() - self.buf.len() < self.want / 2 {
            self.buf.reserve(self.want);
        }
        self.buf.capacity() - self.buf.len()
    }

    /// A read of `n` bytes into `room`: ask for more next time if it
    /// filled it, for less if it came nowhere near.
    fn read(&mut self, n: usize, room: usize) {
        if n >= room {
            self.want = (self.want * 2).min(READ_MAX);
        } else if n < self.want / 8 {
            self.want = (self.want / 2).max(BUF_FIRST);
        }
    }
}

/// Messages framed from one read go to the owner together, up to this
/// many bytes of them (or `BATCH_MAX` messages): a table arriving in 4 KB
/// UPDATEs costs the owner a wake-up of a reader per eight, not per one.
const BATCH_BYTES: usize = 32 * 1024;
const BATCH_MAX: usize = 64;

/// The bytes of messages every reader together may hold decoded and not
/// yet taken by the owner: a bound on memory in flight however many
/// connections send at once (a table decoded takes several times its
/// size on the wire).
pub const IN_FLIGHT: usize = 256 * 1024;

async fn reader(mut read: OwnedReadHalf, owner: ToOwner, mut decoding: watch::Receiver<Decoding>) {
    let mut inbox = Inbox::new();
    let mut batch = Batch::default();
    let error = loop {
        let buf = &mut inbox.buf;
        // Frame and decode what is in; after an OPEN, wait for the owner
        // to say how the session decodes from here.
        loop {
            let state = *decoding.borrow();
            let ctx = match state {
                Decoding::Stop => return drain(read).await,
                Decoding::Open => Context::modern(),
                Decoding::Agreed(ctx) => ctx,
            };
            let need = match message_len(buf, &ctx) {
                Ok(n) => n,
                Err(error) => {
                    owner.flush(&mut batch).await;
                    owner.send(ConnEvent::DecodeError(error)).await;
                    return;
                }
            };
            if buf.len() < need {
                break;
            }
            let frame = buf.split_to(need);
            let message = match Message::decode(&frame, &ctx) {
                Ok(m) => m,
                Err(error) => {
                    owner.flush(&mut batch).await;
                    owner.send(ConnEvent::DecodeError(error)).await;
                    return;
                }
            };
            let was_open = matches!(message, Message::Open(_));
            batch.messages.push(message);
            batch.bytes += need;
            let waits = was_open && state == Decoding::Open;
            let full = batch.bytes >= BATCH_BYTES || batch.messages.len() >= BATCH_MAX;
            if (waits || full) && !owner.flush(&mut batch).await {
                return;
            }
            if waits {
                let stop = decoding
                    .wait_for(|d| *d != Decoding::Open)
                    .await
                    .map_or(true, |d| *d == Decoding::Stop);
                if stop {
                    return drain(read).await;
                }
            }
        }
        // What the buffer held goes before the next read waits.
        if !owner.flush(&mut batch).await {
            return;
        }
        let room = inbox.make_room();
        tokio::select! {
            r = read.read_buf(&mut inbox.buf) => match r {
                Ok(0) => break None,
                Ok(n) => inbox.read(n, room),
                Err(e) => break Some(e),
            },
            changed = decoding.changed() => {
                if changed.is_err() || *decoding.borrow() == Decoding::Stop {
                    return drain(read).await;
                }
            }
        }
    };
    owner.send(ConnEvent::Closed(error)).await;
}

/// How long a closed connection waits for the peer to close its side.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The owner closed the connection: read and drop what the peer still
/// sends until it closes its side too (it does on our NOTIFICATION and
/// FIN), or `DRAIN` passes. A socket closed with unread data ends with a
/// reset, which may discard our last message in flight: a NOTIFICATION
/// lost so looks to the peer like a crash, and a peer helping with
/// graceful restart then keeps our routes for the restart time.
async fn drain(mut read: OwnedReadHalf) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(DRAIN, async {
        while let Ok(n) = read.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Messages framed and not yet handed to the owner, and their bytes.
#[derive(Default)]
struct Batch {
    messages: Vec<Message>,
    bytes: usize,
}

/// The reader's way to the owner, counting what it hands over.
struct ToOwner {
    owner: mpsc::Sender<Command>,
    peer: PeerId,
    conn: ConnId,
    backlog: Arc<AtomicUsize>,
    /// Shared by every reader: see `IN_FLIGHT`.
    budget: Arc<Semaphore>,
}

impl ToOwner {
    /// Hand an event to the owner; `false` once the owner is gone. Counted
    /// from before the wait for room in the owner's queue until the owner
    /// takes it ([`ConnHandle::taken`]).
    async fn send(&self, event: ConnEvent) -> bool {
        self.backlog.fetch_add(1, Ordering::AcqRel);
        self.deliver(event).await
    }

    /// Hand over an event already counted in the backlog.
    async fn deliver(&self, event: ConnEvent) -> bool {
        let (peer, conn) = (self.peer, self.conn);
        let sent = self.owner.send(Command::Conn { peer, conn, event }).await;
        if sent.is_err() {
            self.backlog.fetch_sub(1, Ordering::AcqRel);
        }
        sent.is_ok()
    }

    /// Hand over the messages framed so far, if any, once the readers
    /// hold few enough; `false` once the owner is gone.
    async fn flush(&self, batch: &mut Batch) -> bool {
        if batch.messages.is_empty() {
            return true;
        }
        // Counted as waiting from before the wait for the budget: a
        // keepalive held here must not let a hold timer run out on us.
        self.backlog.fetch_add(1, Ordering::AcqRel);
        let share = batch.bytes.clamp(1, IN_FLIGHT) as u32;
        let Ok(permit) = Arc::clone(&self.budget).acquire_many_owned(share).await else {
            self.backlog.fetch_sub(1, Ordering::AcqRel);
            return false;
        };
        batch.bytes = 0;
        let messages = std::mem::take(&mut batch.messages);
        self.deliver(ConnEvent::Messages(messages, permit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp::wire::iana::CeaseSubcode;
    use bgp::wire::Notification;

    /// Both ends of a loopback TCP connection: the peer's, then ours.
    async fn connected() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let at = listener.local_addr().expect("address");
        let peer = TcpStream::connect(at).await.expect("connect");
        let (ours, _) = listener.accept().await.expect("accept");
        (peer, ours)
    }

    /// A peer that keeps sending while we close still gets our
    /// NOTIFICATION and then an orderly end, not a reset: a socket closed
    /// with unread data resets the connection, and a peer that sees a
    /// reset instead of a NOTIFICATION takes us for crashed (and, helping
    /// a graceful restart, keeps our routes).
    #[tokio::test]
    async fn closing_while_the_peer_sends_ends_with_our_notification_not_a_reset() {
        let (peer, ours) = connected().await;
        let (owner, mut owner_rx) = mpsc::channel(16);
        tokio::spawn(async move { while owner_rx.recv().await.is_some() {} });
        let handle = spawn(ours, (1, 1), owner, Arc::new(Semaphore::new(IN_FLIGHT)));
        let (mut peer_read, mut peer_write) = peer.into_split();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let talking = done.clone();
        // The peer sends keepalives without pause until it has read our end.
        let talker = tokio::spawn(async move {
            let keepalive = keepalives(1);
            while !talking.load(std::sync::atomic::Ordering::SeqCst) {
                peer_write.write_all(&keepalive).await?;
                tokio::task::yield_now().await;
            }
            Ok::<_, std::io::Error>(peer_write)
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let cease = Notification::shutdown(CeaseSubcode::AdministrativeShutdown, "bye");
        handle.send(Message::Notification(cease), Context::modern());
        handle.close();
        let mut got = Vec::new();
        let end = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let mut buf = [0u8; 4096];
            loop {
                match peer_read.read(&mut buf).await {
                    Ok(0) => return Ok(()),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .expect("the connection ends");
        end.expect("an orderly end, not a reset");
        // Half closed: what the peer still sends is read, not answered
        // with a reset, until it closes too.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let talked = talker.await.expect("the peer's task");
        talked.expect("the peer could still send after our end");
        let message = Message::decode(&got, &Context::modern()).expect("a message");
        assert!(matches!(message, Message::Notification(_)), "{message:?}");
        handle.finished().await;
    }

    fn keepalives(n: usize) -> BytesMut {
        let mut bytes = BytesMut::new();
        for _ in 0..n {
            Message::Keepalive
                .encode(&Context::modern(), &mut bytes)
                .expect("encode");
        }
        bytes
    }

    /// What the peer sent counts as waiting until the owner has taken it,
    /// whether queued for the owner or held by a reader waiting for room
    /// (bytes still unread in the socket: `sockopt`'s test).
    #[tokio::test]
    async fn input_waits_until_the_owner_has_taken_it() {
        let (mut peer, ours) = connected().await;
        // Room for one event: a second leaves the reader waiting.
        let (owner, mut owner_rx) = mpsc::channel(1);
        let handle = spawn(ours, (1, 1), owner, Arc::new(Semaphore::new(IN_FLIGHT)));
        let settle = || tokio::time::sleep(std::time::Duration::from_millis(50));
        settle().await;
        assert!(!handle.input_waiting(), "nothing sent yet");

        peer.write_all(&keepalives(1)).await.expect("write");
        settle().await;
        assert!(handle.input_waiting(), "queued for the owner");
        owner_rx.recv().await.expect("an event");
        handle.taken();
        assert!(!handle.input_waiting(), "taken");

        // One at a time, each read alone: one event each.
        for _ in 0..3 {
            peer.write_all(&keepalives(1)).await.expect("write");
            settle().await;
        }
        for left in (0..3).rev() {
            assert!(handle.input_waiting(), "{} not taken", left + 1);
            owner_rx.recv().await.expect("an event");
            handle.taken();
            settle().await;
        }
        assert!(!handle.input_waiting(), "all taken");
        handle.close();
        handle.finished().await;
    }

    /// Messages a reader holds while the readers' budget is spent count as
    /// waiting too, and go once the owner gives budget back.
    #[tokio::test]
    async fn input_held_for_budget_counts_as_waiting() {
        let (mut peer, ours) = connected().await;
        let (owner, mut owner_rx) = mpsc::channel(16);
        let budget = Arc::new(Semaphore::new(0));
        let handle = spawn(ours, (1, 1), owner, Arc::clone(&budget));
        peer.write_all(&keepalives(1)).await.expect("write");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(owner_rx.try_recv().is_err(), "held for budget");
        assert!(handle.input_waiting(), "held counts as waiting");
        budget.add_permits(IN_FLIGHT);
        owner_rx.recv().await.expect("an event once budget is back");
        handle.taken();
        assert!(!handle.input_waiting(), "taken");
        handle.close();
        handle.finished().await;
    }

    /// Messages that arrive together reach the owner as one event, in
    /// order; an OPEN ends its batch, as what follows it waits for the
    /// OPENs to be agreed.
    #[tokio::test]
    async fn messages_read_together_reach_the_owner_together() {
        let (mut peer, ours) = connected().await;
        let (owner, mut owner_rx) = mpsc::channel(16);
        let handle = spawn(ours, (1, 1), owner, Arc::new(Semaphore::new(IN_FLIGHT)));
        let mut burst = keepalives(5);
        let cease = Notification::shutdown(CeaseSubcode::AdministrativeShutdown, "bye");
        Message::Notification(cease)
            .encode(&Context::modern(), &mut burst)
            .expect("encode");
        peer.write_all(&burst).await.expect("write");
        let Some(Command::Conn { event, .. }) = owner_rx.recv().await else {
            panic!("no event");
        };
        let ConnEvent::Messages(messages, _) = event else {
            panic!("not messages");
        };
        assert_eq!(messages.len(), 6);
        assert!(messages[..5]
            .iter()
            .all(|m| matches!(m, Message::Keepalive)));
        assert!(matches!(messages[5], Message::Notification(_)));
        handle.close();
        handle.finished().await;
    }

    /// Reads that fill the inbox make it grow to `READ_MAX`; once the
    /// peer goes back to a keepalive now and then it shrinks to a page
    /// and the big buffer is let go.
    #[test]
    fn the_inbox_grows_with_a_table_and_shrinks_after_it() {
        let mut inbox = Inbox::new();
        assert!(inbox.make_room() <= 2 * BUF_FIRST);
        let mut largest = 0;
        for _ in 0..20 {
            let room = inbox.make_room();
            largest = largest.max(room);
            inbox.buf.resize(inbox.buf.len() + room, 0);
            inbox.read(room, room);
            let _frames = inbox.buf.split();
        }
        assert_eq!(inbox.want, READ_MAX);
        assert!(largest >= READ_MAX / 2, "{largest}");
        for _ in 0..20 {
            let room = inbox.make_room();
            inbox.buf.resize(inbox.buf.len() + 19, 0);
            inbox.read(19, room);
            let _keepalive = inbox.buf.split();
        }
        assert_eq!(inbox.want, BUF_FIRST);
        inbox.make_room();
        assert!(
            inbox.buf.capacity() <= 2 * BUF_FIRST,
            "{}",
            inbox.buf.capacity()
        );
    }
}
