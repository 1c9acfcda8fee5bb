//! The signaling socket (`GET /video`): one WebSocket that reconnects by itself.
//!
//! Frames to send are queued and go out once the server has greeted the connection, so a
//! message written while the socket is down (say, "camera off" during a blip) is delivered
//! after the reconnect instead of being lost. An established call does not depend on this
//! socket: media flows peer to peer, and signaling simply resumes.

use std::cell::Cell;
use std::rc::Rc;

use futures::channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures::stream::Fuse;
use futures::{FutureExt, SinkExt, StreamExt, select};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use protocol::{CLOSE_SESSION_ENDED, ClientFrame, ServerEvent, ServerMessage};

use crate::api::{self, ApiError};

/// First retry delay; doubles per failed attempt up to [`BACKOFF_CAP_MS`].
pub const BACKOFF_BASE_MS: u32 = 500;
pub const BACKOFF_CAP_MS: u32 = 10_000;

/// What the socket tells its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalEvent {
    /// The server greeted us (the next event is that `hello`).
    Up,
    /// The connection dropped or could not be made; retrying.
    Down,
    Message(ServerMessage),
    /// The session is gone (the server answers 401): retrying would never succeed.
    SignedOut,
}

/// A running connection; dropping it stops reconnecting and closes the socket once the frames
/// already queued (a last "hang up") are sent.
pub struct Signaling {
    outbox: UnboundedSender<String>,
    renewals: UnboundedSender<()>,
    stopping: Rc<Cell<bool>>,
}

impl Signaling {
    pub fn connect(on_event: impl Fn(SignalEvent) + 'static) -> Self {
        let (outbox, queued) = mpsc::unbounded();
        let (renewals, renew) = mpsc::unbounded();
        let stopping = Rc::new(Cell::new(false));
        let task = run(
            Inputs {
                queued,
                renew: renew.fuse(),
            },
            stopping.clone(),
            on_event,
        );
        wasm_bindgen_futures::spawn_local(task);
        Self {
            outbox,
            renewals,
            stopping,
        }
    }

    /// Drops the current connection and connects again at once (after a network change: a
    /// socket bound to an address that is gone may never report its death).
    pub fn renew(&self) {
        let _ = self.renewals.unbounded_send(());
    }

    pub fn send(&self, frame: &ClientFrame) {
        // Fails only once the task has ended (signed out), when there is no one to tell anyway.
        let _ = self.outbox.unbounded_send(frame.to_json());
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        self.stopping.set(true);
        self.outbox.close_channel();
        self.renewals.close_channel();
    }
}

/// The delay before reconnect attempt `attempt` (1-based): exponential with "equal jitter",
/// so a server restart is not met by every client at the same instant. `random` is in [0, 1).
pub fn backoff_ms(attempt: u32, random: f64) -> u32 {
    let exponent = attempt.saturating_sub(1).min(16);
    let ceiling = BACKOFF_BASE_MS
        .saturating_mul(1 << exponent)
        .min(BACKOFF_CAP_MS);
    let half = ceiling / 2;
    half + (f64::from(half) * random.clamp(0.0, 1.0)) as u32
}

fn socket_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = match location.protocol().ok()?.as_str() {
        "https:" => "wss",
        _ => "ws",
    };
    Some(format!("{scheme}://{}/video", location.host().ok()?))
}

/// What the connection task listens to besides its socket.
struct Inputs {
    /// Frames to send.
    queued: UnboundedReceiver<String>,
    /// Requests to replace the connection now.
    renew: Fuse<UnboundedReceiver<()>>,
}

async fn run(mut inputs: Inputs, stopping: Rc<Cell<bool>>, on_event: impl Fn(SignalEvent)) {
    let Some(url) = socket_url() else {
        return;
    };
    let mut failures: u32 = 0;
    let mut shown_down = false;
    while !stopping.get() {
        if let Ok(socket) = WebSocket::open(&url) {
            let greeted = serve(socket, &mut inputs, &on_event).await;
            match greeted {
                Serve::Stopped => return,
                Serve::Greeted => {
                    failures = 0;
                    shown_down = false;
                }
                Serve::Renew => {
                    // `online` and a connection change often come together: one renewal is enough.
                    while inputs.renew.get_mut().try_recv().is_ok() {}
                    on_event(SignalEvent::Down);
                    failures = 0;
                    shown_down = true;
                    continue;
                }
                Serve::Refused => {}
                // Reconnecting could only fail: say so now, not after a "reconnecting" banner.
                Serve::SessionEnded => {
                    on_event(SignalEvent::SignedOut);
                    return;
                }
            }
        }
        failures += 1;
        if stopping.get() {
            return;
        }
        if !shown_down {
            shown_down = true;
            on_event(SignalEvent::Down);
        }
        // A socket refused before any greeting may mean the session expired (the handshake
        // answers 401, which browsers do not reveal); ask the account endpoint.
        if failures >= 2 && matches!(api::me().await, Err(ApiError::Unauthorized)) {
            on_event(SignalEvent::SignedOut);
            return;
        }
        // A renewal (the network came back) cuts the wait short.
        let mut wait = TimeoutFuture::new(backoff_ms(failures, js_sys::Math::random())).fuse();
        select! {
            () = wait => {}
            renewal = inputs.renew.next() => if renewal.is_some() { failures = 0 },
        }
    }
}

enum Serve {
    /// The server greeted us; the connection later ended.
    Greeted,
    /// The connection ended before the greeting.
    Refused,
    /// Our owner asked for a new connection.
    Renew,
    /// Our owner is gone.
    Stopped,
    /// The server closed with [`CLOSE_SESSION_ENDED`]: this login is over.
    SessionEnded,
}

fn session_ended(error: &WebSocketError) -> bool {
    matches!(error, WebSocketError::ConnectionClose(close) if close.code == CLOSE_SESSION_ENDED)
}

async fn serve(socket: WebSocket, inputs: &mut Inputs, on_event: &impl Fn(SignalEvent)) -> Serve {
    let (mut sink, stream) = socket.split();
    let mut stream = stream.fuse();
    // Nothing is sent before `hello`: until then the socket may still be failing to open.
    loop {
        // `None` from the renewals: our owner is gone; the queued frames still go out.
        let incoming = select! {
            incoming = stream.next() => Some(incoming),
            renewal = inputs.renew.next() => match renewal {
                Some(()) => return Serve::Renew,
                None => None,
            },
        };
        let Some(incoming) = incoming else {
            continue;
        };
        match incoming {
            Some(Ok(Message::Text(text))) => {
                let Some(message) = decode(&text) else {
                    continue;
                };
                let hello = matches!(message, ServerMessage::Event(ServerEvent::Hello { .. }));
                if hello {
                    on_event(SignalEvent::Up);
                }
                on_event(SignalEvent::Message(message));
                if hello {
                    break;
                }
            }
            Some(Ok(Message::Bytes(_))) => {}
            Some(Err(error)) if session_ended(&error) => return Serve::SessionEnded,
            Some(Err(_)) | None => return Serve::Refused,
        }
    }
    loop {
        select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Some(message) = decode(&text) {
                        on_event(SignalEvent::Message(message));
                    }
                }
                Some(Ok(Message::Bytes(_))) => {}
                Some(Err(error)) if session_ended(&error) => return Serve::SessionEnded,
                Some(Err(_)) | None => return Serve::Greeted,
            },
            renewal = inputs.renew.next() => if renewal.is_some() {
                return Serve::Renew;
            },
            frame = inputs.queued.next() => match frame {
                Some(text) => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        return Serve::Greeted;
                    }
                }
                None => return Serve::Stopped,
            },
        }
    }
}

/// A frame from the server, parsed by the browser (see [`crate::js_fields::parse_json`]).
fn decode(text: &str) -> Option<ServerMessage> {
    ServerMessage::from_value(crate::js_fields::parse_json(text)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter_below_it() {
        assert_eq!(backoff_ms(1, 0.0), 250);
        assert_eq!(backoff_ms(1, 0.999), 499);
        assert_eq!(backoff_ms(2, 0.0), 500);
        assert_eq!(backoff_ms(5, 0.0), 4_000);
        for attempt in 6..100 {
            assert!(backoff_ms(attempt, 0.0) >= BACKOFF_CAP_MS / 2);
            assert!(backoff_ms(attempt, 0.999) < BACKOFF_CAP_MS);
        }
    }
}
