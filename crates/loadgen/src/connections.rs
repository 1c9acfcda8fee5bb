//! WebSocket connections: a socket from a chosen loopback source address, each flavour's URL,
//! and the handshake up to the server's greeting.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures_util::StreamExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::accounts::user_name;
use crate::cli::{Args, Flavour};

pub type Ws = WebSocketStream<TcpStream>;

/// Raises RLIMIT_NOFILE (soft, and hard when permitted) to at least `want`.
pub fn raise_nofile(want: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur >= want {
            return limit.rlim_cur;
        }
        let raised = libc::rlimit {
            rlim_cur: want.max(limit.rlim_cur),
            rlim_max: want.max(limit.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
        let soft = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
        limit.rlim_max
    }
}

pub fn peer_id(prefix: &str, index: usize) -> String {
    user_name(prefix, index)
}

pub async fn connect(
    args: &Args,
    source: Ipv4Addr,
    identity: usize,
    conn: usize,
    cookie: Option<HeaderValue>,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(source), 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket
        .connect(args.target)
        .await
        .map_err(|e| format!("connect from {source}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let id = peer_id(&args.prefix, identity);
    let url = match args.flavour {
        Flavour::Duet => format!("ws://{}/video", args.target),
        Flavour::Minimal => format!("ws://{}/?name={id}", args.target),
        Flavour::Peerjs => format!(
            "ws://{}/peerjs?key=peerjs&id={id}&token=t{conn}",
            args.target
        ),
    };
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert(tokio_tungstenite::tungstenite::http::header::COOKIE, cookie);
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(16 << 20));
    let (mut ws, _) = client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("handshake from {source}: {e}"))?;
    // Wait for the greeting, so a connection counts only once the server has taken it in.
    let greeting = match args.flavour {
        Flavour::Duet => Some("hello"),
        Flavour::Peerjs => Some("OPEN"),
        Flavour::Minimal => None,
    };
    if let Some(expected) = greeting {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if text.contains(expected) {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("before {expected}: {e}")),
                None => return Err(format!("closed before {expected}")),
            }
        }
    }
    Ok(ws)
}
