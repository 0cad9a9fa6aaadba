//! Kernel route writes at the kernel's pace: a netlink socket of our own,
//! requests packed many to a `sendmsg`, a window of them unanswered.
//!
//! The kernel answers a request that fails, always, and one that succeeds
//! only when asked to. Only the last request of each `sendmsg` asks: the
//! kernel carries out a datagram's requests in order, so its answer means
//! the whole batch is done, and the requests of it without an error of
//! their own succeeded. An answer per request costs the kernel a message
//! and a wake-up of our thread each, a fifth of its time in a full table.
//! (rtnetlink's handle sends one request per write, about half as fast.)

use std::io;
use std::os::fd::AsRawFd;

use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST,
};
use rtnetlink::packet_route::route::RouteMessage;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{
    protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket,
};

/// One write.
pub enum Request {
    /// Add, or replace in place.
    Put(RouteMessage),
    Delete(RouteMessage),
    /// A nexthop object made, changed or deleted.
    Nexthop(super::nexthop::Write),
}

/// Requests packed into one `sendmsg`.
const PER_SEND: usize = 64;
/// Requests sent and not yet acknowledged.
const WINDOW: usize = 512;

pub struct Writer {
    socket: TokioSocket,
    /// The sequence number of the next request.
    seq: u32,
    out: Vec<u8>,
    inbuf: Vec<u8>,
}

impl Writer {
    pub fn open() -> io::Result<Writer> {
        let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
        {
            let s = socket.socket_mut();
            s.bind_auto()?;
            s.connect(&SocketAddr::new(0, 0))?;
            // Acknowledgements then carry only the request's header.
            s.set_cap_ack(true)?;
        }
        // Room for a whole window of acknowledgements, or the kernel drops
        // some; root may go past net.core.rmem_max.
        let want = (WINDOW * 2048) as libc::c_int;
        let fd = socket.socket_ref().as_raw_fd();
        // SAFETY: setsockopt on our own socket with a c_int value.
        let forced = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                std::ptr::addr_of!(want).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if forced != 0 {
            socket.socket_ref().set_rx_buf_sz(want)?;
        }
        Ok(Writer {
            socket,
            seq: 1,
            out: Vec::with_capacity(64 * 1024),
            inbuf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Carry out `n` requests, the `i`th made by `make(i)` only when it is
    /// sent (a full table's messages are never all in memory at once); the
    /// outcome of each, in order (an error is the kernel's errno).
    /// `between` runs after each send, while the kernel's answers come.
    pub async fn write(
        &mut self,
        n: usize,
        make: impl Fn(usize) -> Request,
        mut between: impl FnMut(),
    ) -> Vec<Result<(), io::Error>> {
        let mut results: Vec<Option<Result<(), io::Error>>> = (0..n).map(|_| None).collect();
        let base = self.seq;
        self.seq = self.seq.wrapping_add(n as u32);
        let mut next = 0;
        let mut done = 0;
        while done < n {
            let unacked = next - done;
            if next < n && WINDOW - unacked >= PER_SEND.min(n - next) {
                let k = PER_SEND.min(n - next);
                self.out.clear();
                for i in next..next + k {
                    let ask = i + 1 == next + k;
                    encode(make(i), base.wrapping_add(i as u32), ask, &mut self.out);
                }
                if let Err(e) = self.socket.send(&self.out).await {
                    // Nothing of this batch reached the kernel.
                    for slot in results.iter_mut().skip(next).take(k) {
                        *slot = Some(Err(io::Error::new(e.kind(), e.to_string())));
                    }
                    done += k;
                }
                next += k;
                between();
                continue;
            }
            self.inbuf.clear();
            if let Err(e) = self.socket.recv(&mut self.inbuf).await {
                // Acknowledgements lost: report what is unknown as failed,
                // so it is tried again.
                for slot in results.iter_mut().filter(|s| s.is_none()) {
                    *slot = Some(Err(io::Error::new(e.kind(), e.to_string())));
                }
                break;
            }
            done += read_acks(&self.inbuf, base, &mut results, n);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(io::Error::other("no acknowledgement"))))
            .collect()
    }
}

/// Append request `r` with sequence number `seq`; `ask`: for an answer
/// even if it succeeds.
fn encode(r: Request, seq: u32, ask: bool, out: &mut Vec<u8>) {
    let ack = if ask { NLM_F_ACK } else { 0 };
    let (message, flags) = match r {
        Request::Nexthop(w) => {
            super::nexthop::encode(&w, seq, ask, out);
            return;
        }
        Request::Put(m) => (
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_REQUEST | ack | NLM_F_CREATE | NLM_F_REPLACE,
        ),
        Request::Delete(m) => (RouteNetlinkMessage::DelRoute(m), NLM_F_REQUEST | ack),
    };
    let mut req = NetlinkMessage::from(message);
    req.header.flags = flags;
    req.header.sequence_number = seq;
    req.finalize();
    let start = out.len();
    // Messages in one datagram start on 4-byte boundaries.
    out.resize(start + req.buffer_len().next_multiple_of(4), 0);
    req.serialize(&mut out[start..]);
}

/// Record the answers in one datagram: an error for its request, and the
/// answer to a batch's last request for every request of the batch not
/// answered otherwise. How many requests they settled.
fn read_acks(
    datagram: &[u8],
    base: u32,
    results: &mut [Option<Result<(), io::Error>>],
    n: usize,
) -> usize {
    let mut rest = datagram;
    let mut count = 0;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            break;
        }
        if let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len]) {
            if let NetlinkPayload::Error(e) = m.payload {
                let i = m.header.sequence_number.wrapping_sub(base) as usize;
                if let Some(slot) = results.get_mut(i).filter(|s| s.is_none()) {
                    *slot = Some(match e.code {
                        None => Ok(()),
                        Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                    });
                    count += 1;
                }
                let first = i - i % PER_SEND;
                if i < n && i + 1 == (first + PER_SEND).min(n) {
                    // The batch is done: the rest of it succeeded.
                    for slot in results[first..i].iter_mut().filter(|s| s.is_none()) {
                        *slot = Some(Ok(()));
                        count += 1;
                    }
                }
            }
        }
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's answer to request `seq`: `errno` 0 for success.
    fn answer(seq: u32, errno: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&36u32.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&(-errno).to_ne_bytes());
        // The request's header, as the kernel echoes it.
        m.extend_from_slice(&[0; 16]);
        m
    }

    #[test]
    fn the_answer_to_a_batchs_last_request_settles_the_batch() {
        let base = 1000;
        let n = PER_SEND + 3;
        let mut results: Vec<Option<Result<(), io::Error>>> = (0..n).map(|_| None).collect();
        // Request 5 failed; the first batch's last succeeded.
        let mut datagram = answer(base + 5, libc::EEXIST);
        datagram.extend(answer(base + PER_SEND as u32 - 1, 0));
        assert_eq!(read_acks(&datagram, base, &mut results, n), PER_SEND);
        assert!(results[..PER_SEND]
            .iter()
            .enumerate()
            .all(|(i, r)| matches!(r, Some(Ok(()))) != (i == 5)));
        assert_eq!(
            results[5]
                .as_ref()
                .and_then(|r| r.as_ref().err())
                .and_then(io::Error::raw_os_error),
            Some(libc::EEXIST)
        );
        assert!(results[PER_SEND..].iter().all(Option::is_none));
        // The short last batch: its last request failed, the others did not.
        let datagram = answer(base + n as u32 - 1, libc::ENETUNREACH);
        assert_eq!(read_acks(&datagram, base, &mut results, n), 3);
        assert!(matches!(results[n - 2], Some(Ok(()))));
        assert!(matches!(results[n - 1], Some(Err(_))));
        // An answer to no request of ours changes nothing.
        assert_eq!(read_acks(&answer(base + 5000, 0), base, &mut results, n), 0);
    }
}
