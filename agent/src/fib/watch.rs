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
pub struct Watch {
    messages: Option<Messages>,
}

impl Watch {
    pub fn open() -> Watch {
        match subscribe() {
            Ok(messages) => Watch {
                messages: Some(messages),
            },
            Err(e) => {
                warn!(
                    "cannot watch kernel routes: {e}; routes removed by hand will not be put back"
                );
                Watch { messages: None }
            }
        }
    }

    pub async fn next(&mut self) -> Option<KernelEvent> {
        let Some(messages) = self.messages.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            let (message, _) = messages.next().await?;
            let NetlinkPayload::InnerMessage(inner) = message.payload else {
                continue;
            };
            let event = match inner {
                RouteNetlinkMessage::NewRoute(m) => {
                    parse(&m).map(|route| KernelEvent::Route { route, added: true })
                }
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
            if event.is_some() {
                return event;
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
