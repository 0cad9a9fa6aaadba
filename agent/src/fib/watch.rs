//! The kernel's route, address and link notifications, read on a netlink
//! socket of their own. Installing a full table makes the kernel echo
//! every route back: a socket filter drops those echoes before they are
//! queued.

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use rtnetlink::constants::{
    RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_LINK,
};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use std::os::fd::{AsRawFd, RawFd};

use rtnetlink::sys::{AsyncSocket, SocketAddr};
use tracing::warn;

use super::kernel::{parse, KernelRoute};

/// Something changed in the kernel.
#[derive(Debug)]
pub enum KernelEvent {
    Route {
        route: KernelRoute,
        added: bool,
    },
    /// An address or a link came or went; `lost`: an address went, or a
    /// link went or went down, taking the routes through it along with
    /// it, without a notification for each.
    Addresses {
        lost: bool,
    },
    /// A nexthop object of ours was deleted (0: some may have been).
    NexthopGone(u32),
}

type Messages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// A subscription to the notifications; `next` gives `None` when it broke
/// (the socket overflowed, say), and the caller reads the table again.
///
/// A task of its own reads them as they come, so the writer, busy while a
/// full table goes in, never holds the socket up; what it passes on is
/// what the writer must act on.
pub struct Watch {
    events: Option<tokio::sync::mpsc::UnboundedReceiver<KernelEvent>>,
}

impl Watch {
    pub fn open(protocol: u8) -> Watch {
        match subscribe(protocol) {
            Ok(messages) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let objects = tx.clone();
                // Without nexthop objects in the kernel there is nothing to follow.
                let _ = super::nexthop::watch(protocol, move |id| {
                    objects.send(KernelEvent::NexthopGone(id)).is_ok()
                });
                tokio::spawn(filter(messages, protocol, tx));
                Watch { events: Some(rx) }
            }
            Err(e) => {
                warn!(
                    "cannot watch kernel routes: {e}; routes removed by hand will not be put back"
                );
                Watch { events: None }
            }
        }
    }

    pub async fn next(&mut self) -> Option<KernelEvent> {
        match self.events.as_mut() {
            Some(events) => events.recv().await,
            None => std::future::pending().await,
        }
    }
}

async fn filter(
    mut messages: Messages,
    protocol: u8,
    events: tokio::sync::mpsc::UnboundedSender<KernelEvent>,
) {
    while let Some((message, _)) = messages.next().await {
        let NetlinkPayload::InnerMessage(inner) = message.payload else {
            continue;
        };
        let event = match inner {
            RouteNetlinkMessage::NewRoute(m) => parse(&m)
                .filter(|r| r.protocol != protocol)
                .map(|route| KernelEvent::Route { route, added: true }),
            RouteNetlinkMessage::DelRoute(m) => parse(&m).map(|route| KernelEvent::Route {
                route,
                added: false,
            }),
            RouteNetlinkMessage::NewAddress(_) => Some(KernelEvent::Addresses { lost: false }),
            RouteNetlinkMessage::NewLink(m) => Some(KernelEvent::Addresses {
                lost: went_down(m.header.flags.bits(), m.header.change_mask.bits()),
            }),
            RouteNetlinkMessage::DelAddress(_) | RouteNetlinkMessage::DelLink(_) => {
                Some(KernelEvent::Addresses { lost: true })
            }
            _ => None,
        };
        if let Some(e) = event {
            if events.send(e).is_err() {
                return;
            }
        }
    }
}

/// Whether a link notification (its flags, and the mask of those that
/// changed) says the link went down. A link made anew comes with every bit
/// marked changed: down, but with no route through it to lose.
fn went_down(flags: u32, changed: u32) -> bool {
    let up = libc::IFF_UP as u32;
    changed != u32::MAX && changed & up != 0 && flags & up == 0
}

fn subscribe(protocol: u8) -> std::io::Result<Messages> {
    let (mut conn, _handle, messages) = rtnetlink::new_connection()?;
    let groups = RTMGRP_LINK
        | RTMGRP_IPV4_IFADDR
        | RTMGRP_IPV6_IFADDR
        | RTMGRP_IPV4_ROUTE
        | RTMGRP_IPV6_ROUTE;
    let socket = conn.socket_mut().socket_mut();
    socket.set_rx_buf_sz(32 * 1024 * 1024)?;
    drop_own_additions(socket.as_raw_fd(), protocol)?;
    socket.bind(&SocketAddr::new(0, groups))?;
    tokio::spawn(conn);
    Ok(messages)
}

/// Attach a socket filter that drops, in the kernel, the echo of every
/// route of our protocol being added: installing a full table would
/// otherwise queue a million notifications nobody needs, parse each and
/// overflow the socket. Deletions, and everything else, still come.
fn drop_own_additions(fd: RawFd, protocol: u8) -> std::io::Result<()> {
    // Classic BPF over the notification, which starts with its nlmsghdr
    // (type at byte 4, host order) and then the rtmsg (protocol at byte 5
    // of it). Half-word loads read in network order: compare with the
    // host-order bytes of RTM_NEWROUTE read that way.
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const RTM_NEWROUTE: u16 = 24;
    let new_route = u32::from(u16::from_be_bytes(RTM_NEWROUTE.to_ne_bytes()));
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut program = [
        op(LD_H_ABS, 0, 0, 4),
        op(JEQ_K, 0, 3, new_route),
        op(LD_B_ABS, 0, 0, 16 + 5),
        op(JEQ_K, 0, 1, u32::from(protocol)),
        op(RET_K, 0, 0, 0),
        op(RET_K, 0, 0, u32::MAX),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: a valid program for the length given, on our own socket; the
    // kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            std::ptr::addr_of!(fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::went_down;

    #[test]
    fn only_a_link_that_was_up_goes_down() {
        let up = libc::IFF_UP as u32;
        assert!(went_down(0, up));
        assert!(!went_down(up, up), "came up");
        assert!(!went_down(0, 0), "something else changed");
        assert!(!went_down(0, u32::MAX), "made anew, down");
    }
}
