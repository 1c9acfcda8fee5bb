//! One signaling connection: authenticate and check `Origin` before the upgrade, then one task
//! that reads the client's frames and writes what the hub queued for it.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use protocol::{
    ErrorCode, MAX_FRAME_BYTES, PeerKind, RelayRequest, ServerEvent, normalize_username,
    username_key,
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_sessions::SessionStore;
use tower_sessions::session::Id as SessionId;

use super::hub::{ConnectionId, Delivery, Hub, Inbox, Kick, LoginTag, Membership, Waiting};
use crate::auth::CurrentUser;
use crate::calls::{CallChange, CallLog, CallStore, EndedCall, Party};
use crate::config::Settings;
use crate::contacts::{Circle, Contacts};
use crate::metrics::Metrics;
use crate::proxy::Client;
use crate::sessions::SessionPolicy;
use crate::state::AppState;
use crate::turn::Turn;

/// Close codes (RFC 6455 §7.4.1).
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;
pub use protocol::CLOSE_SESSION_ENDED;

/// How often the server pings; a connection silent for the heartbeat timeout is closed.
const PING_EVERY: Duration = Duration::from_secs(10);

/// How long a connection being closed may take to accept the close frame.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

pub async fn upgrade(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(CurrentUser {
        username,
        session,
        started,
        expires,
    }) = user
    else {
        return (StatusCode::UNAUTHORIZED, "log in first").into_response();
    };
    if !crate::origin::allowed(
        &headers,
        &uri,
        &state.settings.allowed_origins,
        client.https,
    ) {
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    // Who this user shares presence with and who may reach them. Without it the relay could not
    // keep a block: no connection rather than one that ignores it.
    let seen = state.hub.changes();
    let circle = match state.contacts.circle(&username).await {
        Ok(circle) => circle,
        Err(error) => {
            tracing::error!(%username, %error, "cannot read a user's contacts");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again shortly").into_response();
        }
    };
    upgrade
        // Tight buffers: an idle connection should cost kilobytes, not the default 128 KiB.
        // 512 bytes still reads a typical ICE candidate frame (about 340 bytes) in one call.
        .read_buffer_size(512)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        // Twice our own limit, so a frame just over it still gets a readable error reply.
        .max_message_size(2 * MAX_FRAME_BYTES)
        .max_frame_size(2 * MAX_FRAME_BYTES)
        .on_upgrade({
            let opening = Box::new(Opening {
                username,
                lease: session.map(|id| Lease {
                    id,
                    started,
                    expires,
                }),
                relay: state.relay.clone(),
                circle,
                seen,
            });
            move |socket| serve(socket, *opening)
        })
}

/// What a connection is opened with. Boxed: axum keeps the upgrade callback in the
/// connection's task for the connection's whole life, so it should be one pointer.
struct Opening {
    username: String,
    lease: Option<Lease>,
    relay: Arc<Relay>,
    circle: Circle,
    /// The hub's count of contact changes before `circle` was read.
    seen: u64,
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

/// Why a connection ended, and what the server tells the client about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The client closed, went away or broke the protocol: nothing more to say.
    ClientGone,
    /// The client stopped reading: nothing can be said either.
    Stalled,
    TooLarge,
    RateLimited,
    HeartbeatTimeout,
    /// The hub gave up on this connection: its inbox overflowed.
    TooSlow,
    /// The login it was opened with ended: logged out, expired, or past its maximum age.
    SessionEnded,
    ShuttingDown,
}

impl From<Kick> for Ending {
    fn from(kick: Kick) -> Self {
        match kick {
            Kick::TooSlow => Self::TooSlow,
            Kick::SessionEnded => Self::SessionEnded,
        }
    }
}

impl Ending {
    /// The close frame to send, when the client can still be told.
    fn close_frame(self) -> Option<(u16, &'static str)> {
        match self {
            Self::ClientGone | Self::Stalled => None,
            Self::TooLarge => Some((CLOSE_TOO_BIG, "frame too large")),
            Self::RateLimited => Some((CLOSE_POLICY, "rate limit exceeded")),
            Self::HeartbeatTimeout => Some((CLOSE_POLICY, "heartbeat timeout")),
            Self::TooSlow => Some((CLOSE_POLICY, "too slow to keep up")),
            Self::SessionEnded => Some((CLOSE_SESSION_ENDED, "session ended")),
            Self::ShuttingDown => Some((CLOSE_GOING_AWAY, "server shutting down")),
        }
    }
}

/// One signaling connection's transport: its socket, and the deadline every write must meet.
///
/// One task owns it and does everything: reads the client's frames, writes what others sent to
/// it, pings. There is no writer task and no channel between the two: an idle connection costs
/// one task and its buffers, and a batch of frames is written back to back, flushed once.
struct Connection {
    socket: WebSocket,
    /// A write that cannot finish in this long means the client stopped reading.
    write_deadline: Duration,
}

impl Connection {
    /// Writes one frame now.
    async fn send(&mut self, message: Message) -> Result<(), Ending> {
        written(tokio::time::timeout(self.write_deadline, self.socket.send(message)).await)
    }

    async fn send_event(&mut self, event: &ServerEvent) -> Result<(), Ending> {
        self.send(Message::Text(event.to_json().into())).await
    }

    /// Answers a frame of the client's (an error, counted in the metrics).
    ///
    /// Boxed, and the event moved in: an answer is rare (a refusal or a broken rule), and the
    /// write's state held in place would widen every idle connection's task by its size.
    fn reply<'a>(
        &'a mut self,
        relay: &'a Relay,
        event: ServerEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), Ending>> + Send + 'a>> {
        Box::pin(async move {
            if let ServerEvent::Error { code, .. } = &event {
                relay.metrics.error(*code);
            }
            self.send_event(&event).await
        })
    }

    /// Writes every frame waiting in `inbox`, then flushes once.
    async fn send_waiting(&mut self, inbox: &Inbox, hub: &Hub, key: &str) -> Result<(), Ending> {
        let socket = &mut self.socket;
        let write = async {
            while let Some(item) = inbox.pop() {
                match item {
                    Waiting::Frame(text) => socket.feed(Message::Text(text)).await?,
                    // Boxed: a greeting, or a connection that fell behind, renders the list; the
                    // pages' state need not widen every idle connection's task.
                    Waiting::Presence => {
                        Box::pin(async {
                            for page in hub.presence_frames(key) {
                                socket.feed(Message::Text(page)).await?;
                            }
                            Ok::<(), axum::Error>(())
                        })
                        .await?;
                    }
                }
            }
            socket.flush().await
        };
        // A client that stopped reading blocks the write once the kernel's buffers are full:
        // the hub's kick (its inbox overflowing meanwhile) ends the wait, or the deadline does.
        // Both are armed only once the write has to wait, boxed: nearly every write finishes on
        // its first poll, and their state held in place (a timer and a waiter, ~150 bytes) would
        // widen every idle connection's task, which keeps this future's size for its whole life.
        let mut write = std::pin::pin!(write);
        let mut stall: Option<Pin<Box<dyn Future<Output = Ending> + Send + '_>>> = None;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = write.as_mut().poll(cx) {
                return Poll::Ready(result.map_err(|_| Ending::ClientGone));
            }
            let deadline = self.write_deadline;
            let stall = stall.get_or_insert_with(|| {
                Box::pin(async move {
                    tokio::select! {
                        () = tokio::time::sleep(deadline) => Ending::Stalled,
                        why = inbox.kicked() => why.into(),
                    }
                })
            });
            stall.as_mut().poll(cx).map(Err)
        })
        .await
    }

    /// Says why the connection ends (when the client can still hear it) and finishes the
    /// closing handshake: reading on until the client answers, so the socket is not torn down
    /// with unread data (a TCP reset could swallow the close frame and the error before it).
    async fn close(&mut self, ending: Ending) {
        let Some((code, reason)) = ending.close_frame() else {
            return;
        };
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        // A client that stopped reading cannot hold this task for long.
        self.write_deadline = CLOSE_DEADLINE;
        if self.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.socket.next().await {}
        })
        .await;
    }
}

/// A write that met its deadline or not, as the connection's fate.
fn written(
    result: Result<Result<(), axum::Error>, tokio::time::error::Elapsed>,
) -> Result<(), Ending> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Ending::ClientGone),
        Err(_) => Err(Ending::Stalled),
    }
}

/// What a connection needs of the server's state: a few shared handles, not all of `AppState`
/// (whose site options alone are hundreds of bytes). One for the server, shared by every
/// connection's task through an `Arc`.
pub struct Relay {
    pub settings: Arc<Settings>,
    pub hub: Arc<Hub>,
    pub metrics: Metrics,
    pub turn: Option<Arc<Turn>>,
    pub sessions: crate::session_store::Store,
    pub shutdown: CancellationToken,
    /// Every open connection: a server shutting down waits for each to finish its closing
    /// handshake (the HTTP server's own graceful shutdown lets go of a connection once upgraded).
    pub connections: TaskTracker,
    /// Contact books, read again by a connection that raced a change.
    pub contacts: Contacts,
    /// Calls ringing or in progress, for the call history.
    pub calls: CallLog,
    pub call_records: CallStore,
}

impl Relay {
    /// A call ended: its users are out of it (if it was answered), and its records are written,
    /// off the connection's task. Both users' pages are told once they are, to show them.
    pub fn call_ended(&self, call: EndedCall) {
        if call.answered_at.is_some() {
            for party in [&call.caller, &call.callee] {
                self.hub.set_in_call(&party.key, false);
            }
        }
        let store = self.call_records.clone();
        let hub = self.hub.clone();
        tokio::spawn(async move {
            if let Err(error) = store.write(&call).await {
                tracing::warn!(%error, call_id = %call.call_id, "cannot record a call");
                return;
            }
            let notice: Utf8Bytes = ServerEvent::History.to_json().into();
            for party in [&call.caller, &call.callee] {
                hub.deliver(&party.key, &notice, None);
            }
        });
    }

    /// Notes a frame another instance relayed from `from` to our user `to_key` in the call log.
    pub(super) fn note_relayed(&self, from: &str, to_key: &str, text: &str) {
        let Ok(request) = RelayRequest::parse(text) else {
            return;
        };
        let kind = request.kind();
        if let Some(call_id) = request.call_id()
            && kind.is_call_control()
        {
            self.note_call(
                kind,
                call_id,
                (&username_key(from), from),
                (to_key, request.to()),
            );
        }
    }

    /// Notes a delivered call-control frame in the call log.
    fn note_call(&self, kind: PeerKind, call_id: &str, from: (&str, &str), to: (&str, &str)) {
        let party = |(key, name): (&str, &str)| Party {
            key: key.to_owned(),
            name: name.to_owned(),
        };
        let to = match kind {
            // The callee's name as they registered it, not as the caller typed it.
            PeerKind::Invite => Party {
                name: self
                    .hub
                    .display_name(to.0)
                    .unwrap_or_else(|| to.1.to_owned()),
                key: to.0.to_owned(),
            },
            _ => party(to),
        };
        match self.calls.relayed(kind, call_id, &party(from), &to) {
            Some(CallChange::Answered { caller, callee }) => {
                self.hub.set_in_call(&caller, true);
                self.hub.set_in_call(&callee, true);
            }
            Some(CallChange::Ended(call)) => self.call_ended(call),
            None => {}
        }
    }
}

/// The login session a connection was opened with, and when it must be looked at again.
struct Lease {
    id: SessionId,
    /// When the user logged in (Unix milliseconds).
    started: i64,
    expires: OffsetDateTime,
}

impl Lease {
    /// When to look at the session again: at its expiry, and at least every renewal period (a
    /// logout elsewhere, or an operator's password change, deletes it without telling us).
    fn next_check(&self, policy: SessionPolicy) -> tokio::time::Instant {
        let now = OffsetDateTime::now_utc();
        let wait = (self.expires - now)
            .min(policy.renew_every())
            .max(time::Duration::ZERO);
        tokio::time::Instant::now() + wait.unsigned_abs()
    }

    /// Looks the session up: still valid (renewed, since an open socket is activity), or ended.
    async fn check(&mut self, relay: &Relay, key: &str, id: ConnectionId) -> Result<(), Ending> {
        let policy = SessionPolicy::from_settings(&relay.settings);
        let record = match relay.sessions.load(&self.id).await {
            Ok(Some(record)) => record,
            // A password change gives this browser a new session (crate::account_api) and moves
            // its connections to it in the hub: follow it.
            Ok(None) => match relay.hub.login_of(key, id) {
                Some(login) if login.session != self.id => {
                    self.id = login.session;
                    return Box::pin(self.check(relay, key, id)).await;
                }
                _ => return Err(Ending::SessionEnded),
            },
            Err(error) => {
                // The store's trouble is not the user's: keep the connection, look again later.
                tracing::warn!(%error, "cannot check a session");
                self.expires = OffsetDateTime::now_utc() + policy.renew_every();
                return Ok(());
            }
        };
        let now = OffsetDateTime::now_utc();
        let started = crate::sessions::started_of(&record).unwrap_or(now);
        if now >= started + policy.max {
            return Err(Ending::SessionEnded);
        }
        let renewed = policy.expiry(started, now);
        if renewed - record.expiry_date >= policy.renew_every() {
            let mut record = record;
            record.expiry_date = renewed;
            if let Err(error) = relay.sessions.save(&record).await {
                tracing::warn!(%error, "cannot renew a session");
            }
            self.expires = renewed;
        } else {
            self.expires = record.expiry_date;
        }
        Ok(())
    }
}

/// Joins the hub, then returns the connection's life as a future.
///
/// Not an `async fn`: one of those keeps its arguments beside the locals they are moved into,
/// and every idle connection's task would carry both copies. The future below holds one `Peer`
/// and uses it in place.
fn serve(socket: WebSocket, opening: Opening) -> impl Future<Output = ()> {
    let Opening {
        username,
        lease,
        relay,
        circle,
        seen,
    } = opening;
    let hello = ServerEvent::Hello {
        username: username.clone(),
        ice_servers: ice_servers(&relay, &username),
        ice_transport_policy: relay.settings.ice_transport_policy,
    };
    let login = lease.as_ref().map(|lease| LoginTag {
        session: lease.id,
        started: lease.started,
    });
    let Membership {
        id,
        key,
        inbox,
        stale,
    } = relay.hub.join(
        username_key(&username),
        &username,
        login,
        hello,
        circle,
        seen,
    );
    tracing::debug!(%username, connection = id, "signaling connected");
    let open = relay.connections.token();
    let mut peer = Peer {
        connection: Connection {
            socket,
            write_deadline: relay.settings.heartbeat_timeout(),
        },
        relay,
        username,
        key,
        id,
        inbox,
        lease,
    };
    async move {
        if stale {
            // Boxed: only the rare connection that raced a contact change runs this.
            Box::pin(refresh_circle(&peer.relay, &peer.username, &peer.key)).await;
        }
        let Err(ending) = peer.run().await;
        if ending == Ending::SessionEnded {
            peer.relay_what_was_sent();
        }
        if peer.relay.hub.leave(&peer.key, peer.id) {
            for call in peer.relay.calls.gone(&peer.key) {
                peer.relay.call_ended(call);
            }
        }
        let Peer {
            mut connection,
            username,
            id,
            ..
        } = peer;
        // Boxed: the closing handshake's state exists only while it runs, not in every idle
        // connection's task.
        Box::pin(connection.close(ending)).await;
        tracing::debug!(%username, connection = id, ?ending, "signaling disconnected");
        drop(open);
    }
}

/// The circle a connection of `username` joined with missed a contact change: read it again
/// until no change slips in between (a few tries; changes are people clicking).
async fn refresh_circle(relay: &Relay, username: &str, key: &str) {
    for _ in 0..5 {
        let seen = relay.hub.changes();
        match relay.contacts.circle(username).await {
            Ok(fresh) => {
                if relay.hub.refresh_circle(key, fresh, seen) {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%username, %error, "cannot read contacts again");
                return;
            }
        }
    }
}

/// A signaling connection of one signed-in user, joined to the hub.
struct Peer {
    connection: Connection,
    relay: Arc<Relay>,
    username: String,
    /// The user's case-folded name, their key in the hub.
    key: String,
    id: ConnectionId,
    inbox: Arc<Inbox>,
    /// The login it was opened with; `None` for a connection without a session store entry.
    lease: Option<Lease>,
}

impl Peer {
    /// Frames the client sent before its session ended, already here but not yet read (a page
    /// that hangs up and then logs out sends the hangup first; the logout may still win the race
    /// to the server): relayed, so the peer hears of it. Only what can be read without waiting.
    fn relay_what_was_sent(&mut self) {
        use futures::FutureExt;
        const AT_MOST: usize = 64;
        for _ in 0..AT_MOST {
            match self.connection.socket.next().now_or_never() {
                Some(Some(Ok(Message::Text(text)))) if text.len() <= MAX_FRAME_BYTES => {
                    // A refusal has nobody left to hear it.
                    let _ = forward(
                        &self.relay,
                        &self.username,
                        &self.key,
                        self.id,
                        text.as_str(),
                    );
                }
                Some(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_)))) => {}
                _ => break,
            }
        }
    }

    /// The connection's life; it only ever returns why it ended.
    async fn run(&mut self) -> Result<Infallible, Ending> {
        let Self {
            connection,
            relay,
            username,
            key,
            id,
            inbox,
            lease,
        } = self;
        let (relay, username, key, id) = (&*relay, username.as_str(), key.as_str(), *id);
        let mut limit = RateLimit::new(relay.settings.rate_limit_per_sec);
        let mut last_heard = Instant::now();
        let mut duties = Duties::new(relay, lease.as_ref());
        // One timer for the connection's timed duties: a frame relayed wakes the loop, and every
        // timer it waits on is polled again on each wake-up. Made once, not on every turn of the
        // loop, like the shutdown wait below: a frame relayed should not also register a timer
        // and a waiter on the server-wide shutdown token (whose lock every connection shares)
        // only to drop them again.
        let timer = tokio::time::sleep_until(duties.earliest());
        tokio::pin!(timer);
        let shutdown = relay.shutdown.cancelled();
        tokio::pin!(shutdown);
        let too_large = || {
            ServerEvent::error(
                ErrorCode::TooLarge,
                format!("frames are limited to {MAX_FRAME_BYTES} bytes"),
            )
        };
        // What the loop holds across its waits is in every idle connection's task for the
        // connection's whole life: the session policy, the heartbeat timeout and the duties'
        // periods are read from the settings when needed rather than kept here, and the rare
        // branches (an answer to the client, the timed duties) run boxed.

        loop {
            // Every branch is cancel-safe: a frame half read stays in the socket's buffer, and the
            // inbox keeps what was not written yet.
            tokio::select! {
                frame = connection.socket.next() => {
                    last_heard = Instant::now();
                    let frame = match frame {
                        Some(Ok(Message::Close(_))) | None => return Err(Ending::ClientGone),
                        Some(Ok(frame)) => frame,
                        Some(Err(error)) => {
                            tracing::debug!(%username, %error, "websocket read error");
                            if is_capacity_error(&error) {
                                connection.reply(relay, too_large()).await?;
                                return Err(Ending::TooLarge);
                            }
                            return Err(Ending::ClientGone);
                        }
                    };
                    // Every frame counts: a flood of pings or binary frames costs the server as
                    // much as one of text.
                    if !limit.allow() {
                        let error = ServerEvent::error(ErrorCode::RateLimited, "too many messages; slow down");
                        connection.reply(relay, error).await?;
                        return Err(Ending::RateLimited);
                    }
                    match frame {
                        Message::Text(text) => {
                            if text.len() > MAX_FRAME_BYTES {
                                connection.reply(relay, too_large()).await?;
                                return Err(Ending::TooLarge);
                            }
                            if let Some(refusal) = forward(relay, username, key, id, text.as_str()) {
                                connection.reply(relay, refusal).await?;
                            }
                        }
                        Message::Binary(_) => {
                            let error = ServerEvent::error(ErrorCode::Malformed, "frames must be JSON text");
                            connection.reply(relay, error).await?;
                        }
                        // The WebSocket layer answers pings by itself.
                        Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
                    }
                }
                () = inbox.ready() => {
                    if let Some(why) = inbox.kicked_for() {
                        return Err(why.into());
                    }
                    connection.send_waiting(inbox, &relay.hub, key).await?;
                }
                () = &mut timer => {
                    let due = Due { relay, username, key, id, last_heard };
                    Box::pin(due.perform(&mut duties, connection, lease.as_mut())).await?;
                    timer.as_mut().reset(duties.earliest());
                }
                () = &mut shutdown => return Err(Ending::ShuttingDown),
            }
        }
    }
}

/// When a connection's timed duties fall due: the heartbeat (ping, and the check that the
/// client was heard from), fresh TURN credentials at half their lifetime (never without TURN),
/// and a look at the login session (never for a connection without one). Only the instants:
/// the periods come from the settings, the same for every connection.
struct Duties {
    ping: tokio::time::Instant,
    refresh: Option<tokio::time::Instant>,
    session: Option<tokio::time::Instant>,
}

/// How often a connection is pinged: its heartbeat timeout allows a few missed pongs.
fn ping_every(relay: &Relay) -> Duration {
    PING_EVERY.min(relay.settings.heartbeat_timeout() / 3)
}

impl Duties {
    fn new(relay: &Relay, lease: Option<&Lease>) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            ping: now + ping_every(relay),
            refresh: relay.turn.as_ref().map(|turn| now + turn.refresh_every()),
            session: lease
                .map(|lease| lease.next_check(SessionPolicy::from_settings(&relay.settings))),
        }
    }

    /// The first duty due.
    fn earliest(&self) -> tokio::time::Instant {
        [self.refresh, self.session]
            .into_iter()
            .flatten()
            .fold(self.ping, Ord::min)
    }
}

/// What the timed duties need of the connection's loop, borrowed.
struct Due<'a> {
    relay: &'a Relay,
    username: &'a str,
    key: &'a str,
    id: ConnectionId,
    last_heard: Instant,
}

impl Due<'_> {
    /// Does the duties that are due and moves each one's time on.
    async fn perform(
        self,
        duties: &mut Duties,
        connection: &mut Connection,
        lease: Option<&mut Lease>,
    ) -> Result<(), Ending> {
        let Self {
            relay,
            username,
            key,
            id,
            last_heard,
        } = self;
        let now = tokio::time::Instant::now();
        if now >= duties.ping {
            if last_heard.elapsed() > relay.settings.heartbeat_timeout() {
                tracing::debug!(%username, "heartbeat timeout");
                return Err(Ending::HeartbeatTimeout);
            }
            connection.send(Message::Ping(Default::default())).await?;
            duties.ping = now + ping_every(relay);
        }
        if let (Some(at), Some(turn)) = (duties.refresh, &relay.turn)
            && now >= at
        {
            let ice = ServerEvent::Ice {
                ice_servers: ice_servers(relay, username),
            };
            connection.send_event(&ice).await?;
            duties.refresh = Some(now + turn.refresh_every());
        }
        if let Some(lease) = lease
            && duties.session.is_some_and(|at| now >= at)
        {
            lease.check(relay, key, id).await?;
            duties.session = Some(lease.next_check(SessionPolicy::from_settings(&relay.settings)));
        }
        Ok(())
    }
}

/// `DUET_ICE_SERVERS` plus, with TURN configured, one entry with credentials minted for
/// `username` now.
fn ice_servers(relay: &Relay, username: &str) -> serde_json::Value {
    let mut servers = match &relay.settings.ice_servers {
        serde_json::Value::Array(servers) => servers.clone(),
        _ => Vec::new(),
    };
    if let Some(turn) = &relay.turn {
        servers.push(turn.ice_server(username, std::time::SystemTime::now()));
    }
    serde_json::Value::Array(servers)
}

fn is_capacity_error(error: &axum::Error) -> bool {
    let text = error.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("Capacity")
}

/// Relays one frame; the refusal to send back, if it cannot be.
fn forward(
    relay: &Relay,
    username: &str,
    own_key: &str,
    own_id: ConnectionId,
    text: &str,
) -> Option<ServerEvent> {
    let request = match RelayRequest::parse(text) {
        Ok(request) => request,
        Err(error) => return Some(ServerEvent::error(error.code(), error.to_string())),
    };
    let call_id = request.call_id_cow();
    let refuse =
        |code, message: String| Some(ServerEvent::call_error(code, message, call_id.as_deref()));
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
    let kind = request.kind();
    let echo = kind.is_echoed_to_own_tabs();
    let target = request.to().to_owned();
    let delivered: Utf8Bytes = request.deliver_as(username).into();
    match relay.hub.relay(own_key, username, &target_key, &delivered) {
        Delivery::Delivered(_) => {
            relay.metrics.messages_relayed.inc();
            if kind.is_call_control()
                && let Some(call_id) = call_id.as_deref()
            {
                relay.note_call(kind, call_id, (own_key, username), (&target_key, &target));
            }
            if echo {
                relay.hub.deliver(own_key, &delivered, Some(own_id));
            }
            None
        }
        Delivery::Offline => refuse(ErrorCode::PeerOffline, format!("{target} is not online")),
        Delivery::Unreachable => refuse(
            ErrorCode::PeerOffline,
            format!("{target} cannot be reached right now"),
        ),
    }
}
