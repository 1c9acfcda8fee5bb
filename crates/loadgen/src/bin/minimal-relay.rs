//! The smallest useful signaling relay, as a reference point for Duet's: a WebSocket at
//! `ws://ADDR/?name=ID` registers the connection under `ID`; every text frame is parsed as a JSON
//! object, stamped with `"from": ID` (as Duet's relay stamps the sender) and forwarded to the
//! connection registered under its `name`. No accounts, no validation, no presence, no limits;
//! one task per connection. Loopback addresses only.
//!
//! Usage: `minimal-relay 127.0.0.1:PORT`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Routes = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Utf8Bytes>>>>;

fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into())
        .parse()
        .expect("usage: minimal-relay 127.0.0.1:PORT");
    assert!(addr.ip().is_loopback(), "loopback addresses only");
    // Same file limit headroom as the load generator.
    // SAFETY: setrlimit only reads the struct we pass.
    unsafe {
        let limit = libc::rlimit {
            rlim_cur: 1 << 20,
            rlim_max: 1 << 20,
        };
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await.expect("bind");
        eprintln!("minimal-relay listening on {addr}");
        let routes: Routes = Arc::default();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve(stream, routes.clone()));
        }
    });
}

// The handshake callback's error type is tungstenite's, not ours to shrink.
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, routes: Routes) {
    let _ = stream.set_nodelay(true);
    let mut name = None;
    let callback = |request: &Request, response: Response| {
        name = request.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("name="))
                .map(str::to_owned)
        });
        Ok(response)
    };
    // The same tight buffers as Duet's server, so memory figures compare.
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024);
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let Some(name) = name else { return };
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.clone(), tx);
    // One task per connection, as lean as it gets: it reads the socket and writes what others
    // sent to it, everything waiting fed back to back and flushed once.
    loop {
        tokio::select! {
            message = ws.next() => {
                let Some(Ok(message)) = message else { break };
                let Message::Text(text) = message else {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                    continue;
                };
                let Ok(mut fields) = serde_json::from_str::<Map<String, Value>>(text.as_str()) else {
                    continue;
                };
                let Some(Value::String(target)) = fields.get("name") else {
                    continue;
                };
                let peer = routes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(target.as_str())
                    .cloned();
                if let Some(peer) = peer {
                    fields.insert("from".to_owned(), Value::String(name.clone()));
                    let _ = peer.send(Value::Object(fields).to_string().into());
                }
            }
            Some(text) = rx.recv() => {
                let mut written = ws.feed(Message::Text(text)).await;
                while written.is_ok() {
                    let Ok(text) = rx.try_recv() else { break };
                    written = ws.feed(Message::Text(text)).await;
                }
                if written.is_err() || ws.flush().await.is_err() {
                    break;
                }
            }
        }
    }
    routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
}
