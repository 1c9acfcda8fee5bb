//! One signaling connection: authenticate and check `Origin` before the upgrade, then a reader
//! loop (this task) and a writer task fed by the hub's bounded queue.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use protocol::{
    ErrorCode, MAX_FRAME_BYTES, RelayRequest, ServerEvent, normalize_username, username_key,
};
use tokio::sync::mpsc;

use super::hub::{Delivery, Membership, Outgoing};
use crate::auth::CurrentUser;
use crate::proxy::Client;
use crate::state::AppState;

/// Close codes (RFC 6455 §7.4.1).
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;

/// How often the server pings; a connection silent for the heartbeat timeout is closed.
const PING_EVERY: Duration = Duration::from_secs(10);

pub async fn upgrade(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(CurrentUser(username)) = user else {
        return (StatusCode::UNAUTHORIZED, "log in first").into_response();
    };
    if !origin_allowed(&headers, &state.settings.allowed_origins, client.https) {
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    upgrade
        // Tight buffers: an idle connection should cost kilobytes, not the default 128 KiB.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        // Twice our own limit, so a frame just over it still gets a readable error reply.
        .max_message_size(2 * MAX_FRAME_BYTES)
        .max_frame_size(2 * MAX_FRAME_BYTES)
        .on_upgrade(move |socket| serve(socket, username, state))
}

/// A browser always sends `Origin`; it must be this server's own (same host, and the scheme the
/// browser really used) or explicitly allowed. Non-browser clients (no `Origin`) cannot be
/// hijacked cross-site and are let through.
fn origin_allowed(headers: &HeaderMap, allowed: &[String], https: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.strip_prefix(if https { "https://" } else { "http://" });
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

/// A token bucket: `rate` frames per second sustained, bursts of `2 × rate`.
struct RateLimit {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            tokens: 2.0 * rate,
            last: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(2.0 * self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn serve(socket: WebSocket, username: String, state: AppState) {
    let key = username_key(&username);
    let hello = ServerEvent::Hello {
        username: username.clone(),
        ice_servers: ice_servers(&state, &username),
        ice_transport_policy: state.settings.ice_transport_policy,
    };
    let Membership {
        id,
        key,
        queue,
        kicked,
    } = state.hub.join(key, &username, hello);
    tracing::debug!(%username, connection = id, "signaling connected");

    let (sink, mut stream) = socket.split();
    let (own_tx, own_rx) = mpsc::channel::<Outgoing>(8);
    let writer = tokio::spawn(write_loop(sink, queue, own_rx));

    let reply = |event: ServerEvent| {
        if let ServerEvent::Error { code, .. } = &event {
            state.metrics.error(*code);
        }
        // The own channel is small: a client that floods errors is cut by the rate limit first.
        let _ = own_tx.try_send(Outgoing::Text(event.to_json().into()));
    };
    let close = |code: u16, reason: &'static str| {
        let _ = own_tx.try_send(Outgoing::Close(code, reason));
    };

    let mut limit = RateLimit::new(state.settings.rate_limit_per_sec);
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY.min(state.settings.heartbeat_timeout() / 3));
    let timeout = state.settings.heartbeat_timeout();
    let shutdown = state.shutdown.clone();
    // Fresh TURN credentials at half their lifetime (never, without TURN).
    let refresh_every = state
        .turn
        .as_ref()
        .map_or(Duration::from_secs(365 * 24 * 3600), |turn| {
            turn.refresh_every()
        });
    let mut refresh =
        tokio::time::interval_at(tokio::time::Instant::now() + refresh_every, refresh_every);

    loop {
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else {
                    if let Some(Err(error)) = frame {
                        tracing::debug!(%username, %error, "websocket read error");
                        if is_capacity_error(&error) {
                            reply(ServerEvent::error(ErrorCode::TooLarge, format!("frames are limited to {MAX_FRAME_BYTES} bytes")));
                            close(CLOSE_TOO_BIG, "frame too large");
                        }
                    }
                    break;
                };
                last_heard = Instant::now();
                let text = match frame {
                    Message::Text(text) => text,
                    Message::Binary(_) => {
                        reply(ServerEvent::error(ErrorCode::Malformed, "frames must be JSON text"));
                        continue;
                    }
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if !limit.allow() {
                    reply(ServerEvent::error(ErrorCode::RateLimited, "too many messages; slow down"));
                    close(CLOSE_POLICY, "rate limit exceeded");
                    break;
                }
                if text.len() > MAX_FRAME_BYTES {
                    reply(ServerEvent::error(ErrorCode::TooLarge, format!("frames are limited to {MAX_FRAME_BYTES} bytes")));
                    close(CLOSE_TOO_BIG, "frame too large");
                    break;
                }
                relay(&state, &username, &key, id, text.as_str(), &reply);
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > timeout {
                    tracing::debug!(%username, "heartbeat timeout");
                    close(CLOSE_POLICY, "heartbeat timeout");
                    break;
                }
                let _ = own_tx.try_send(Outgoing::Ping);
            }
            _ = refresh.tick(), if state.turn.is_some() => {
                let ice = ServerEvent::Ice { ice_servers: ice_servers(&state, &username) };
                let _ = own_tx.try_send(Outgoing::Text(ice.to_json().into()));
            }
            _ = kicked.notified() => {
                close(CLOSE_POLICY, "too slow to keep up");
                break;
            }
            _ = shutdown.cancelled() => {
                close(CLOSE_GOING_AWAY, "server shutting down");
                break;
            }
        }
    }

    state.hub.leave(&key, id);
    drop(own_tx);
    // Finish the closing handshake: keep reading until the client answers our close frame, so
    // the socket is not torn down with unread data (a TCP reset could swallow the close frame
    // and the error before it).
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    // The writer ends once it has sent the close frame (or the peer is gone); bound the wait so
    // a peer that stopped reading cannot hold this task.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    tracing::debug!(%username, connection = id, "signaling disconnected");
}

/// `DUET_ICE_SERVERS` plus, with TURN configured, one entry with credentials minted for
/// `username` now.
fn ice_servers(state: &AppState, username: &str) -> serde_json::Value {
    let mut servers = match &state.settings.ice_servers {
        serde_json::Value::Array(servers) => servers.clone(),
        _ => Vec::new(),
    };
    if let Some(turn) = &state.turn {
        servers.push(turn.ice_server(username, std::time::SystemTime::now()));
    }
    serde_json::Value::Array(servers)
}

fn is_capacity_error(error: &axum::Error) -> bool {
    let text = error.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("Capacity")
}

fn relay(
    state: &AppState,
    username: &str,
    own_key: &str,
    own_id: u64,
    text: &str,
    reply: &impl Fn(ServerEvent),
) {
    let request = match RelayRequest::parse(text) {
        Ok(request) => request,
        Err(error) => return reply(ServerEvent::error(error.code(), error.to_string())),
    };
    let call_id = request.call_id_cow();
    let refuse =
        |code, message: String| reply(ServerEvent::call_error(code, message, call_id.as_deref()));
    let Ok(target_key) = normalize_username(request.to()).map(|name| username_key(&name)) else {
        return refuse(
            ErrorCode::PeerOffline,
            format!("{} is not online", request.to()),
        );
    };
    if target_key == own_key {
        return refuse(
            ErrorCode::InvalidTarget,
            "you cannot call yourself".to_owned(),
        );
    }
    let echo = request.kind().is_echoed_to_own_tabs();
    let target = request.to().to_owned();
    let delivered: Utf8Bytes = request.deliver_as(username).into();
    match state.hub.deliver(&target_key, &delivered, None) {
        Delivery::Delivered(_) => {
            state.metrics.messages_relayed.inc();
            if echo {
                state.hub.deliver(own_key, &delivered, Some(own_id));
            }
        }
        Delivery::Offline => refuse(ErrorCode::PeerOffline, format!("{target} is not online")),
    }
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Outgoing>,
    mut own: mpsc::Receiver<Outgoing>,
) {
    loop {
        // Replies to this connection first, so an error precedes the close that follows it.
        let next = tokio::select! {
            biased;
            Some(message) = own.recv() => message,
            Some(message) = queue.recv() => message,
            else => break,
        };
        let result = match next {
            Outgoing::Text(text) => sink.send(Message::Text(text)).await,
            Outgoing::Ping => sink.send(Message::Ping(Default::default())).await,
            Outgoing::Close(code, reason) => {
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                break;
            }
        };
        if result.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
}
