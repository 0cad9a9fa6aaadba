//! The kernel's route, address and link notifications, read on a netlink
//! socket of their own with a large buffer: installing a full table makes
//! the kernel echo every route back.

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use rtnetlink::constants::{
    RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_LINK,
};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
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
    /// An address or a link came or went.
    Addresses,
}

type Messages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// A subscription to the notifications; `next` gives `None` when it broke
/// (the socket overflowed, say), and the caller reads the table again.
///
/// A task of its own reads them as they come and drops at once the echoes
/// of our own route additions: while a full table goes in, the writer is
/// busy, and a million parsed echoes waiting for it would cost a gigabyte.
pub struct Watch {
    events: Option<tokio::sync::mpsc::UnboundedReceiver<KernelEvent>>,
}

impl Watch {
    pub fn open(protocol: u8) -> Watch {
        match subscribe() {
            Ok(messages) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
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
            RouteNetlinkMessage::NewAddress(_)
            | RouteNetlinkMessage::DelAddress(_)
            | RouteNetlinkMessage::NewLink(_)
            | RouteNetlinkMessage::DelLink(_) => Some(KernelEvent::Addresses),
            _ => None,
        };
        if let Some(e) = event {
            if events.send(e).is_err() {
                return;
            }
        }
    }
}

fn subscribe() -> std::io::Result<Messages> {
    let (mut conn, _handle, messages) = rtnetlink::new_connection()?;
    let groups = RTMGRP_LINK
        | RTMGRP_IPV4_IFADDR
        | RTMGRP_IPV6_IFADDR
        | RTMGRP_IPV4_ROUTE
        | RTMGRP_IPV6_ROUTE;
    let socket = conn.socket_mut().socket_mut();
    socket.set_rx_buf_sz(32 * 1024 * 1024)?;
    socket.bind(&SocketAddr::new(0, groups))?;
    tokio::spawn(conn);
    Ok(messages)
}
