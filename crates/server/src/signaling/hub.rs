//! Who is online and how to reach them: every open connection's inbox, by user.
//!
//! One `std::sync::Mutex` guards the map; it is only held to look up or change entries and to
//! push into inboxes, never across an `.await`. An inbox that is full means the reader on the
//! other end is too slow: that connection is kicked rather than letting memory grow.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use protocol::ServerEvent;
use serde::Serialize;
use tokio::sync::Notify;
use tower_sessions::session::Id as SessionId;

use super::remote::{Bulletin, InstanceId, Outbox, Parcel, SeatEntry};
use crate::contacts::{Change, Circle};
use crate::metrics::Metrics;

/// Keys in the first set and not the second, and the change that puts them there.
type Difference<'a> = (
    &'a HashSet<String>,
    &'a HashSet<String>,
    fn(String) -> Change,
);

/// Whose presence a user sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PresenceScope {
    /// Their mutual contacts only (the default: on a public server nobody is shown to strangers).
    #[default]
    Contacts,
    /// Everyone online on this server (a small team that all know each other), except people
    /// they blocked or who blocked them.
    Everyone,
}

/// Frames waiting per connection before it counts as too slow.
pub const QUEUE_CAPACITY: usize = 256;

/// Names per `presence` frame: a snapshot of thousands of users goes out in pages, so no frame
/// grows a connection's write buffer (which keeps its largest size for the connection's life)
/// past a few hundred bytes.
pub const PRESENCE_PAGE_BYTES: usize = 200;

pub type ConnectionId = u64;

/// Presence updates an inbox holds before it trades them for one fresh list: during a crowd's
/// arrival every connection would otherwise queue one `online` frame per newcomer.
pub const PRESENCE_BACKLOG: usize = 32;

/// Why the hub gave up on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kick {
    /// Its inbox overflowed: the client does not read fast enough.
    TooSlow = 1,
    /// Its login session ended (logout): the socket must not outlive it.
    SessionEnded = 2,
}

/// What waits in an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    Frame(Utf8Bytes),
    /// The whole presence list, as it is when this is written: it stands for the presence
    /// updates that were dropped after it.
    Presence,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// A [`Waiting::Presence`] is queued: later presence updates are covered by it.
    presence_queued: bool,
}

/// Room in an inbox for a crowd's arrival: the presence updates it holds one by one, the list
/// that stands for the rest, and a greeting's `hello`.
const PRESENCE_ROOM: usize = PRESENCE_BACKLOG + 2;

impl Queue {
    /// Queues `item`. Up to [`PRESENCE_ROOM`] the buffer grows by doubling but no further: a
    /// crowd arriving fills every inbox to just past [`PRESENCE_BACKLOG`], and plain doubling
    /// would give each twice that room (64 items of 32 bytes). Those buffers are freed once
    /// written, but they were allocated among the connections' lasting state, so the holes
    /// they leave stay in the process's memory.
    fn push(&mut self, item: Waiting) {
        let capacity = self.waiting.capacity();
        if self.waiting.len() == capacity && capacity < PRESENCE_ROOM {
            let grown = (capacity * 2).clamp(4, PRESENCE_ROOM);
            self.waiting.reserve_exact(grown - self.waiting.len());
        }
        self.waiting.push_back(item);
    }
}

/// Frames addressed to one connection, waiting for its task to write them.
///
/// A `VecDeque` behind a mutex rather than a channel: an idle connection's inbox holds no
/// allocation at all (a bounded channel allocates a block of 32 slots up front), and the
/// connection's own task both reads its socket and writes these, so no second task is needed.
#[derive(Default)]
pub struct Inbox {
    queue: Mutex<Queue>,
    /// Wakes the connection's task: frames arrived, or it was kicked.
    ready: Notify,
    /// 0, or the [`Kick`] that ended this connection (the first one wins).
    kicked: AtomicU8,
    /// Interrupts a write the client is not reading: it was kicked.
    kick: Notify,
}

impl Inbox {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues without waiting; a full inbox gets its connection kicked.
    fn offer(&self, text: &Utf8Bytes) -> bool {
        let mut queue = self.queue();
        if queue.waiting.len() >= QUEUE_CAPACITY {
            drop(queue);
            if self.kick(Kick::TooSlow) {
                tracing::warn!("slow consumer disconnected");
            }
            return false;
        }
        queue.push(Waiting::Frame(text.clone()));
        drop(queue);
        self.ready.notify_one();
        true
    }

    /// Queues a presence update, or lets a fresh list stand for it when this inbox is behind.
    fn offer_presence(&self, text: &Utf8Bytes) {
        let mut queue = self.queue();
        if queue.presence_queued {
            return;
        }
        if queue.waiting.len() < PRESENCE_BACKLOG {
            queue.push(Waiting::Frame(text.clone()));
        } else {
            queue.push(Waiting::Presence);
            queue.presence_queued = true;
        }
        drop(queue);
        self.ready.notify_one();
    }

    /// Queues a new connection's greeting past the limit: `hello`, then the presence list as it
    /// is when written (rendered then, not now: a crowd arriving at once would otherwise build
    /// thousands of lists that are stale before they are sent, and the burst of short-lived
    /// allocations fragments the heap that idle connections live in).
    fn push_greeting(&self, hello: Utf8Bytes) {
        let mut queue = self.queue();
        queue.push(Waiting::Frame(hello));
        queue.push(Waiting::Presence);
        queue.presence_queued = true;
        drop(queue);
        self.ready.notify_one();
    }

    /// Resolves when frames may be waiting or the connection was kicked (cancel-safe).
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// The next waiting item, oldest first.
    pub fn pop(&self) -> Option<Waiting> {
        let mut queue = self.queue();
        let next = queue.waiting.pop_front();
        match next {
            Some(Waiting::Presence) => queue.presence_queued = false,
            Some(Waiting::Frame(_)) => {}
            // Idle connections are the many: an empty inbox holds no allocation.
            None => queue.waiting = VecDeque::new(),
        }
        next
    }

    /// Ends the connection for `why`; false if it was already kicked.
    fn kick(&self, why: Kick) -> bool {
        let first = self
            .kicked
            .compare_exchange(0, why as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            self.kick.notify_one();
            self.ready.notify_one();
        }
        first
    }

    /// Resolves once the hub has given up on this connection (cancel-safe).
    pub async fn kicked(&self) -> Kick {
        loop {
            if let Some(why) = self.kicked_for() {
                return why;
            }
            self.kick.notified().await;
        }
    }

    /// Why the hub gave up on this connection, if it did.
    pub fn kicked_for(&self) -> Option<Kick> {
        match self.kicked.load(Ordering::Acquire) {
            1 => Some(Kick::TooSlow),
            2 => Some(Kick::SessionEnded),
            _ => None,
        }
    }
}

struct Connection {
    id: ConnectionId,
    inbox: Arc<Inbox>,
    /// The login it was opened with.
    login: Option<LoginTag>,
}

/// The login a connection was opened with: which session, started when (Unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginTag {
    pub session: SessionId,
    pub started: i64,
}

/// Another instance holding connections of a user (learnt through Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seat {
    instance: InstanceId,
    /// In an answered call there.
    in_call: bool,
}

struct OnlineUser {
    /// The name as the user registered it (the map key is its case-folded form).
    display_name: String,
    /// This instance's connections of the user.
    connections: Vec<Connection>,
    /// Other instances with connections of the user: none without Redis, and for nearly
    /// everyone with it (a user's tabs usually share one instance), so boxed: one pointer.
    #[allow(clippy::box_collection)]
    // 8 bytes per user rather than 24: one per connection matters
    seats: Option<Box<Vec<Seat>>>,
    /// Contacts, blocks, who may call; `None` for the many who have none of these (no
    /// allocation for them).
    circle: Option<Box<Circle>>,
    /// Answered calls in progress (one, nearly always): above zero, they are "in a call".
    calls: u8,
}

impl OnlineUser {
    fn new(name: &str, connections: Vec<Connection>, seat: Option<Seat>, circle: Circle) -> Self {
        Self {
            display_name: name.to_owned(),
            connections,
            seats: seat.map(|seat| Box::new(vec![seat])),
            // The many with no contacts, blocks or rule hold no allocation for it.
            circle: (!circle.is_empty()).then(|| Box::new(circle)),
            calls: 0,
        }
    }

    fn admits(&self, sender: &str) -> bool {
        self.circle
            .as_ref()
            .is_none_or(|circle| circle.admits(sender))
    }

    fn has_contact(&self, key: &str) -> bool {
        self.circle
            .as_ref()
            .is_some_and(|circle| circle.contacts.contains(key))
    }

    fn blocks(&self, key: &str) -> bool {
        self.circle
            .as_ref()
            .is_some_and(|circle| circle.blocks.contains(key))
    }

    /// In at least one answered call, here or on another instance.
    fn in_call(&self) -> bool {
        self.calls > 0 || self.seats().iter().any(|seat| seat.in_call)
    }

    /// Has connections here or on another instance.
    fn present(&self) -> bool {
        !self.connections.is_empty() || !self.seats().is_empty()
    }

    fn seats(&self) -> &[Seat] {
        self.seats.as_deref().map_or(&[], Vec::as_slice)
    }

    fn seated_on(&self, instance: InstanceId) -> bool {
        self.seats().iter().any(|seat| seat.instance == instance)
    }

    /// Seats `seat`, or updates the seat on its instance.
    fn take_seat(&mut self, seat: Seat) {
        let seats = self.seats.get_or_insert_default();
        match seats.iter_mut().find(|s| s.instance == seat.instance) {
            Some(known) => *known = seat,
            None => seats.push(seat),
        }
    }

    fn leave_seat(&mut self, instance: InstanceId) {
        if let Some(seats) = &mut self.seats {
            seats.retain(|seat| seat.instance != instance);
            if seats.is_empty() {
                self.seats = None;
            }
        }
    }

    /// How other instances are told about this user's connections here.
    fn seat_entry(&self, key: &str) -> SeatEntry {
        SeatEntry {
            key: key.to_owned(),
            name: self.display_name.clone(),
            in_call: self.calls > 0,
            circle: self.circle.as_deref().cloned().unwrap_or_default(),
        }
    }

    fn seat_bulletin(&self, key: &str) -> Bulletin {
        Bulletin::Seat(self.seat_entry(key))
    }

    fn circle_mut(&mut self) -> &mut Circle {
        self.circle.get_or_insert_default()
    }

    /// Queues a presence update on every connection.
    fn offer_presence(&self, text: &Utf8Bytes) {
        for connection in &self.connections {
            connection.inbox.offer_presence(text);
        }
    }

    /// Queues a frame on every connection (a full inbox kicks its connection).
    fn offer(&self, text: &Utf8Bytes) {
        for connection in &self.connections {
            connection.inbox.offer(text);
        }
    }
}

/// A connection's handle on the hub, returned by [`Hub::join`].
pub struct Membership {
    pub id: ConnectionId,
    pub key: String,
    pub inbox: Arc<Inbox>,
    /// The circle it joined with was read before a contact change the hub applied since: read
    /// it again and [`Hub::refresh_circle`].
    pub stale: bool,
}

/// The outcome of [`Hub::deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered(usize),
    Offline,
    /// Online only on other instances, which cannot be reached now (Redis is away).
    Unreachable,
}

pub struct Hub {
    users: Mutex<HashMap<String, OnlineUser>>,
    next_id: AtomicU64,
    /// Contact changes applied so far (see [`Hub::changes`]).
    changes: AtomicU64,
    metrics: Metrics,
    scope: PresenceScope,
    /// Other instances, through Redis, when configured ([`super::remote`]).
    outbox: std::sync::OnceLock<Outbox>,
}

impl Hub {
    pub fn new(metrics: Metrics, scope: PresenceScope) -> Arc<Self> {
        Arc::new(Self {
            users: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            changes: AtomicU64::new(0),
            metrics,
            scope,
            outbox: std::sync::OnceLock::new(),
        })
    }

    /// Where what other instances must know is posted, once linked.
    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.get()
    }

    /// From now on, what other instances must know is posted to `outbox`.
    pub fn link(&self, outbox: Outbox) {
        let _ = self.outbox.set(outbox);
    }

    /// Tells every other instance (nothing without Redis).
    fn publish(&self, bulletin: Bulletin) {
        if let Some(outbox) = self.outbox.get() {
            outbox.bulletin(&bulletin);
        }
    }

    /// Queues `text` for user `key`'s connections on every instance that holds some; how many
    /// instances it was posted to (none while Redis is away).
    fn post_to_seats(
        &self,
        key: &str,
        user: &OnlineUser,
        text: &Utf8Bytes,
        from: Option<&str>,
    ) -> usize {
        let Some(outbox) = self.outbox.get() else {
            return 0;
        };
        user.seats()
            .iter()
            .filter(|seat| {
                let parcel = Parcel {
                    to: key.to_owned(),
                    text: text.as_str().to_owned(),
                    from: from.map(str::to_owned),
                };
                outbox.parcel(seat.instance, &parcel)
            })
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, OnlineUser>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection for `display_name`, whose contacts and blocks are `circle`
    /// (as the database had them when the connection opened; kept current by [`Hub::apply`]
    /// while the user is online). Queues `hello` and the presence snapshot for it and, if this
    /// is the user's first connection, announces them to those who may see them.
    pub fn join(
        &self,
        key: String,
        display_name: &str,
        login: Option<LoginTag>,
        hello: ServerEvent,
        circle: Circle,
        seen: u64,
    ) -> Membership {
        let inbox = Arc::new(Inbox::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        inbox.push_greeting(hello.to_json().into());
        let mut users = self.lock();
        let first = !users.contains_key(&key);
        let first_here = users
            .get(&key)
            .is_none_or(|user| user.connections.is_empty());
        // A user already online here has the hub's own, current circle.
        let stale = first_here && self.changes() != seen;
        if first_here && let Some(user) = users.get_mut(&key) {
            // Online elsewhere: the circle just read replaces the one the other instance sent.
            user.circle = (!circle.is_empty()).then(|| Box::new(circle.clone()));
        }
        if first {
            // Most users have one tab open: room for exactly one, not the default four.
            let user = OnlineUser::new(display_name, Vec::with_capacity(1), None, circle);
            self.arrive_locked(&mut users, &key, user);
        }
        if let Some(user) = users.get_mut(&key) {
            user.connections.push(Connection {
                id,
                inbox: inbox.clone(),
                login,
            });
            if first_here {
                self.metrics.users_online.inc();
                self.publish(user.seat_bulletin(&key));
            }
        }
        self.metrics.connections.inc();
        Membership {
            id,
            key,
            inbox,
            stale,
        }
    }

    /// Removes a connection; if it was the user's last here, returns true, and tells those who
    /// see them that they went offline unless they are still online on another instance.
    pub fn leave(&self, key: &str, id: ConnectionId) -> bool {
        let mut users = self.lock();
        let Some(user) = users.get_mut(key) else {
            return false;
        };
        let before = user.connections.len();
        user.connections.retain(|c| c.id != id);
        if user.connections.len() == before {
            return false;
        }
        self.metrics.connections.dec();
        if !user.connections.is_empty() {
            return false;
        }
        self.metrics.users_online.dec();
        self.publish(Bulletin::Unseat {
            key: key.to_owned(),
        });
        if user.present() {
            // Still online on another instance; in a call here no more.
            let before = user.in_call();
            user.calls = 0;
            if let Some(user) = users.get(key)
                && user.in_call() != before
            {
                self.announce_locked(&users, key, user, &status_frame(user));
            }
        } else {
            self.forget_locked(&mut users, key);
        }
        true
    }

    /// Adds `user`, online nowhere before, and tells those who may see them (and, if they
    /// arrive in a call, that too).
    fn arrive_locked(&self, users: &mut HashMap<String, OnlineUser>, key: &str, user: OnlineUser) {
        let announcement: Utf8Bytes = ServerEvent::Online {
            username: user.display_name.clone(),
        }
        .to_json()
        .into();
        self.announce_locked(users, key, &user, &announcement);
        if user.in_call() {
            self.announce_locked(users, key, &user, &status_frame(&user));
        }
        users.insert(key.to_owned(), user);
    }

    /// Removes user `key`, online nowhere any more, and tells those who saw them.
    fn forget_locked(&self, users: &mut HashMap<String, OnlineUser>, key: &str) {
        if let Some(user) = users.remove(key) {
            let announcement: Utf8Bytes = ServerEvent::Offline {
                username: user.display_name.clone(),
            }
            .to_json()
            .into();
            self.announce_locked(users, key, &user, &announcement);
        }
    }

    /// User `key` no longer exists (the account was deleted): those who saw them are told they
    /// went offline, every connection of theirs closes, and nobody online keeps them as a
    /// contact or a block (an account registered later under the name is nobody's contact).
    /// Returns how many connections it closed.
    pub fn remove_user(&self, key: &str) -> usize {
        self.publish(Bulletin::RemoveUser {
            key: key.to_owned(),
        });
        self.remove_user_here(key)
    }

    /// [`Hub::remove_user`] on this instance only.
    pub fn remove_user_here(&self, key: &str) -> usize {
        let mut users = self.lock();
        let mut closed = 0;
        if let Some(user) = users.remove(key) {
            let announcement: Utf8Bytes = ServerEvent::Offline {
                username: user.display_name.clone(),
            }
            .to_json()
            .into();
            self.announce_locked(&users, key, &user, &announcement);
            if !user.connections.is_empty() {
                self.metrics.users_online.dec();
            }
            for connection in &user.connections {
                // Gone from the map: its task's `leave` finds nothing more to do.
                self.metrics.connections.dec();
                if connection.inbox.kick(Kick::SessionEnded) {
                    closed += 1;
                }
            }
        }
        for user in users.values_mut() {
            if let Some(circle) = &mut user.circle {
                circle.contacts.remove(key);
                circle.blocks.remove(key);
                if circle.is_empty() {
                    user.circle = None;
                }
            }
        }
        closed
    }

    /// The name user `key` is shown by, while they are online.
    pub fn display_name(&self, key: &str) -> Option<String> {
        self.lock().get(key).map(|user| user.display_name.clone())
    }

    /// Closes every connection of user `key` opened with `session` (logged out), on every
    /// instance; how many here.
    pub fn end_session(&self, key: &str, session: SessionId) -> usize {
        self.publish(Bulletin::EndSession {
            key: key.to_owned(),
            session: session.to_string(),
        });
        self.end_session_here(key, session)
    }

    /// [`Hub::end_session`] on this instance only.
    pub fn end_session_here(&self, key: &str, session: SessionId) -> usize {
        self.end_logins(key, |login| login.session == session)
    }

    /// Closes every connection of user `key` whose login started before `since` (Unix milliseconds:
    /// the password changed), on every instance; how many here.
    pub fn end_logins_before(&self, key: &str, since: i64) -> usize {
        self.publish(Bulletin::EndLoginsBefore {
            key: key.to_owned(),
            since,
        });
        self.end_logins_before_here(key, since)
    }

    /// [`Hub::end_logins_before`] on this instance only.
    pub fn end_logins_before_here(&self, key: &str, since: i64) -> usize {
        self.end_logins(key, |login| login.started < since)
    }

    /// Closes every connection of user `key` (the account was deleted), on every instance; how
    /// many here.
    pub fn end_user(&self, key: &str) -> usize {
        self.publish(Bulletin::EndUser {
            key: key.to_owned(),
        });
        self.end_user_here(key)
    }

    /// [`Hub::end_user`] on this instance only.
    pub fn end_user_here(&self, key: &str) -> usize {
        self.kick_where(key, |_| true)
    }

    fn end_logins(&self, key: &str, ended: impl Fn(&LoginTag) -> bool) -> usize {
        self.kick_where(key, |c| c.login.as_ref().is_some_and(&ended))
    }

    fn kick_where(&self, key: &str, ended: impl Fn(&Connection) -> bool) -> usize {
        let users = self.lock();
        users.get(key).map_or(0, |user| {
            user.connections
                .iter()
                .filter(|c| ended(c))
                .filter(|c| c.inbox.kick(Kick::SessionEnded))
                .count()
        })
    }

    /// Queues `text` from user `sender` on every connection of user `key`, here and on the other
    /// instances that hold some. A user who does not take frames from `sender` (blocked, or calls
    /// from contacts only) is `Offline` to them: the sender cannot tell the two apart.
    /// (`sender` is the key; `sender_name` the name, for other instances' call logs.)
    pub fn relay(&self, sender: &str, sender_name: &str, key: &str, text: &Utf8Bytes) -> Delivery {
        let users = self.lock();
        match users.get(key) {
            Some(user) if user.admits(sender) => {
                let here = user
                    .connections
                    .iter()
                    .filter(|c| c.inbox.offer(text))
                    .count();
                if user.seats.is_none() {
                    return Delivery::Delivered(here);
                }
                match self.post_to_seats(key, user, text, Some(sender_name)) {
                    0 if user.connections.is_empty() => Delivery::Unreachable,
                    elsewhere => Delivery::Delivered(here + elsewhere),
                }
            }
            _ => Delivery::Offline,
        }
    }

    /// The connections of user `key` opened with session `from` now belong to login `to` (the
    /// password changed and this browser stays logged in under a new session); how many.
    pub fn move_login(&self, key: &str, from: SessionId, to: LoginTag) -> usize {
        let mut users = self.lock();
        let mut moved = 0;
        if let Some(user) = users.get_mut(key) {
            for connection in &mut user.connections {
                if connection.login.is_some_and(|login| login.session == from) {
                    connection.login = Some(to);
                    moved += 1;
                }
            }
        }
        moved
    }

    /// The login connection `id` of user `key` belongs to now.
    pub fn login_of(&self, key: &str, id: ConnectionId) -> Option<LoginTag> {
        let users = self.lock();
        users
            .get(key)?
            .connections
            .iter()
            .find(|c| c.id == id)?
            .login
    }

    /// Queues `text` on every connection of user `key` (here and on other instances), except
    /// `skip` (one of this instance's).
    pub fn deliver(&self, key: &str, text: &Utf8Bytes, skip: Option<ConnectionId>) -> Delivery {
        let users = self.lock();
        let Some(user) = users.get(key) else {
            return Delivery::Offline;
        };
        let delivered = user
            .connections
            .iter()
            .filter(|c| Some(c.id) != skip && c.inbox.offer(text))
            .count();
        let elsewhere = if user.seats.is_none() {
            0
        } else {
            self.post_to_seats(key, user, text, None)
        };
        Delivery::Delivered(delivered + elsewhere)
    }

    /// Queues `text` on this instance's connections of user `key` (a parcel from another
    /// instance); how many.
    pub fn deliver_here(&self, key: &str, text: &Utf8Bytes) -> usize {
        let users = self.lock();
        users.get(key).map_or(0, |user| {
            user.connections
                .iter()
                .filter(|c| c.inbox.offer(text))
                .count()
        })
    }

    /// Everyone online now, sorted.
    #[cfg(test)]
    pub fn online(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .lock()
            .values()
            .map(|u| u.display_name.clone())
            .collect();
        names.sort();
        names
    }

    /// Tells those who may see `user` (key `key`, not in `users`) about them: their online
    /// contacts, or with [`PresenceScope::Everyone`] everyone but blocks either way.
    fn announce_locked(
        &self,
        users: &HashMap<String, OnlineUser>,
        key: &str,
        user: &OnlineUser,
        text: &Utf8Bytes,
    ) {
        match self.scope {
            PresenceScope::Contacts => {
                let Some(circle) = &user.circle else {
                    return;
                };
                for contact in &circle.contacts {
                    if let Some(other) = users.get(contact)
                        && other.has_contact(key)
                    {
                        other.offer_presence(text);
                    }
                }
            }
            PresenceScope::Everyone => {
                for (other_key, other) in users.iter() {
                    if !user.blocks(other_key) && !other.blocks(key) {
                        other.offer_presence(text);
                    }
                }
            }
        }
    }

    /// May `viewer` see `other`'s presence? (`viewer` may be `other`: one sees oneself.)
    fn sees(&self, viewer_key: &str, viewer: &OnlineUser, other_key: &str) -> bool {
        viewer_key == other_key
            || match self.scope {
                PresenceScope::Contacts => viewer.has_contact(other_key),
                PresenceScope::Everyone => !viewer.blocks(other_key),
            }
    }

    /// The presence list of user `key` as frames: a new connection's greeting, or what a
    /// connection that fell behind receives. Rendered under the lock from borrowed names: no
    /// name is copied.
    pub fn presence_frames(&self, key: &str) -> Vec<Utf8Bytes> {
        let users = self.lock();
        let Some(viewer) = users.get(key) else {
            return presence_pages(Vec::new());
        };
        let names: Vec<(&str, bool)> = match (self.scope, &viewer.circle) {
            (PresenceScope::Contacts, None) => vec![listed(viewer)],
            (PresenceScope::Contacts, Some(circle)) => std::iter::once(key)
                .chain(circle.contacts.iter().map(String::as_str))
                .filter_map(|k| users.get(k))
                .map(listed)
                .collect(),
            (PresenceScope::Everyone, _) => users
                .iter()
                .filter(|(k, _)| self.sees(key, viewer, k))
                .map(|(_, u)| listed(u))
                .collect(),
        };
        presence_pages(names)
    }

    /// Applies a change of user `key`'s contact book to those online, on every instance: their
    /// circles, their presence to each other, and a `contacts` notice to each side whose book
    /// changed.
    pub fn apply(&self, key: &str, change: &Change) {
        self.publish(Bulletin::Contact {
            key: key.to_owned(),
            change: change.clone(),
        });
        self.apply_here(key, change);
    }

    /// [`Hub::apply`] on this instance only.
    pub fn apply_here(&self, key: &str, change: &Change) {
        let notice: Utf8Bytes = ServerEvent::Contacts.to_json().into();
        let mut users = self.lock();
        self.changes.fetch_add(1, Ordering::Relaxed);
        // My other tabs show my book too.
        if let Some(me) = users.get(key) {
            me.offer(&notice);
        }
        let other = match change {
            Change::Quiet => return,
            Change::Notify { other } => {
                if let Some(them) = users.get(other) {
                    them.offer(&notice);
                }
                return;
            }
            Change::Linked { other }
            | Change::Unlinked { other }
            | Change::Blocked { other }
            | Change::Unblocked { other } => other.as_str(),
        };
        if let Some(them) = users.get(other) {
            them.offer(&notice);
        }
        self.link_locked(&mut users, key, other, change);
    }

    /// How many contact changes the hub has applied: a connection that read its circle from the
    /// database before the count moved may have missed one (see [`Hub::refresh_circle`]).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Replaces the circle user `key` joined with by `fresh`, read from the database after the
    /// change count was `seen`, as if each difference had been applied then (presence both
    /// ways). False, changing nothing, if more changes came meanwhile: read again.
    pub fn refresh_circle(&self, key: &str, fresh: Circle, seen: u64) -> bool {
        let mut users = self.lock();
        if self.changes() != seen {
            return false;
        }
        let Some(user) = users.get_mut(key) else {
            return true;
        };
        let old = user.circle.as_deref().cloned().unwrap_or_default();
        // Each difference between the circle it joined with and the fresh one, as the change
        // that would have made it.
        let differences: [Difference<'_>; 4] = [
            (&fresh.contacts, &old.contacts, |other| Change::Linked {
                other,
            }),
            (&old.contacts, &fresh.contacts, |other| Change::Unlinked {
                other,
            }),
            (&fresh.blocks, &old.blocks, |other| Change::Blocked {
                other,
            }),
            (&old.blocks, &fresh.blocks, |other| Change::Unblocked {
                other,
            }),
        ];
        let changes: Vec<Change> = differences
            .into_iter()
            .flat_map(|(now, before, change)| now.difference(before).cloned().map(change))
            .collect();
        for change in &changes {
            if let Change::Linked { other }
            | Change::Unlinked { other }
            | Change::Blocked { other }
            | Change::Unblocked { other } = change
            {
                self.link_locked(&mut users, key, other, change);
            }
        }
        if let Some(user) = users.get_mut(key) {
            user.circle_mut().calls_from = fresh.calls_from;
            if user.circle.as_ref().is_some_and(|c| c.is_empty()) {
                user.circle = None;
            }
        }
        true
    }

    /// Applies `change` between `key` and `other` to the circles of those online, and tells
    /// each of the other when they start or stop seeing each other.
    fn link_locked(
        &self,
        users: &mut HashMap<String, OnlineUser>,
        key: &str,
        other: &str,
        change: &Change,
    ) {
        let before = self.mutually_visible(users, key, other);
        for (this, that) in [(key, other), (other, key)] {
            if let Some(user) = users.get_mut(this) {
                let circle = user.circle_mut();
                match change {
                    Change::Linked { .. } => {
                        circle.contacts.insert(that.to_owned());
                    }
                    Change::Unlinked { .. } => {
                        circle.contacts.remove(that);
                    }
                    Change::Blocked { .. } => {
                        circle.contacts.remove(that);
                        circle.blocks.insert(that.to_owned());
                    }
                    Change::Unblocked { .. } => {
                        circle.blocks.remove(that);
                    }
                    Change::Quiet | Change::Notify { .. } => {}
                }
                if circle.is_empty() {
                    user.circle = None;
                }
            }
        }
        let after = self.mutually_visible(users, key, other);
        if before == after {
            return;
        }
        // Both are online (or neither sees anything): each learns of the other.
        if let (Some(a), Some(b)) = (users.get(key), users.get(other)) {
            let event = |name: &str| -> Utf8Bytes {
                let event = if after {
                    ServerEvent::Online {
                        username: name.to_owned(),
                    }
                } else {
                    ServerEvent::Offline {
                        username: name.to_owned(),
                    }
                };
                event.to_json().into()
            };
            a.offer_presence(&event(&b.display_name));
            b.offer_presence(&event(&a.display_name));
            // Someone who appears while in a call appears in a call.
            for (viewer, seen) in [(a, b), (b, a)] {
                if after && seen.in_call() {
                    viewer.offer_presence(&status_frame(seen));
                }
            }
        }
    }

    /// User `key`, connected here, went into an answered call (`in_call`) or came out of one.
    /// Those who see them hear of it when they go from no call to one, or from their last call
    /// to none. (A user connected only elsewhere: that instance counts their calls.)
    pub fn set_in_call(&self, key: &str, in_call: bool) {
        let mut users = self.lock();
        let Some(user) = users.get_mut(key) else {
            return;
        };
        if user.connections.is_empty() {
            return;
        }
        let before = user.in_call();
        let before_here = user.calls > 0;
        user.calls = if in_call {
            user.calls.saturating_add(1)
        } else {
            user.calls.saturating_sub(1)
        };
        if (user.calls > 0) != before_here {
            self.publish(user.seat_bulletin(key));
        }
        if user.in_call() == before {
            return;
        }
        if let Some(user) = users.get(key) {
            self.announce_locked(&users, key, user, &status_frame(user));
        }
    }

    /// Do `a` and `b` see each other's presence now? (Visibility is symmetric.)
    fn mutually_visible(&self, users: &HashMap<String, OnlineUser>, a: &str, b: &str) -> bool {
        users
            .get(a)
            .is_some_and(|viewer| users.contains_key(b) && self.sees(a, viewer, b))
    }

    /// User `key` changed who may call them (on every instance).
    pub fn set_calls_from(&self, key: &str, calls_from: protocol::CallsFrom) {
        self.publish(Bulletin::CallsFrom {
            key: key.to_owned(),
            calls_from,
        });
        self.set_calls_from_here(key, calls_from);
    }

    /// [`Hub::set_calls_from`] on this instance only.
    pub fn set_calls_from_here(&self, key: &str, calls_from: protocol::CallsFrom) {
        let mut users = self.lock();
        self.changes.fetch_add(1, Ordering::Relaxed);
        if let Some(user) = users.get_mut(key) {
            user.circle_mut().calls_from = calls_from;
            if user.circle.as_ref().is_some_and(|c| c.is_empty()) {
                user.circle = None;
            }
        }
    }
}

/// Other instances' users, as [`super::remote`] learns of them.
impl Hub {
    /// Instance `instance` holds connections of user `key` (`in_call` there), whose circle is
    /// `circle`. Those who may see them hear of it if they were not online before, or of their
    /// call status if it changed.
    pub fn seat(&self, instance: InstanceId, entry: SeatEntry) {
        let mut users = self.lock();
        self.seat_locked(&mut users, instance, entry);
    }

    fn seat_locked(
        &self,
        users: &mut HashMap<String, OnlineUser>,
        instance: InstanceId,
        entry: SeatEntry,
    ) {
        let SeatEntry {
            key,
            name,
            in_call,
            circle,
        } = entry;
        let key = key.as_str();
        let seat = Seat { instance, in_call };
        let Some(user) = users.get_mut(key) else {
            let user = OnlineUser::new(&name, Vec::new(), Some(seat), circle);
            self.arrive_locked(users, key, user);
            return;
        };
        let before = user.in_call();
        user.take_seat(seat);
        if user.connections.is_empty() {
            // The instance holding them knows their circle best; one of ours knows it here.
            user.circle = (!circle.is_empty()).then(|| Box::new(circle));
        }
        if let Some(user) = users.get(key)
            && user.in_call() != before
        {
            self.announce_locked(users, key, user, &status_frame(user));
        }
    }

    /// Instance `instance` holds exactly the users of `roster` (all it had, after a gap): each
    /// is seated, and its other users unseated. Returns those now online nowhere.
    pub fn reseat(&self, instance: InstanceId, roster: Vec<SeatEntry>) -> Vec<String> {
        let mut users = self.lock();
        let listed: HashSet<String> = roster.iter().map(|entry| entry.key.clone()).collect();
        for entry in roster {
            self.seat_locked(&mut users, instance, entry);
        }
        let dropped: Vec<String> = users
            .iter()
            .filter(|(key, user)| !listed.contains(*key) && user.seated_on(instance))
            .map(|(key, _)| key.clone())
            .collect();
        dropped
            .into_iter()
            .filter(|key| self.unseat_locked(&mut users, instance, key))
            .collect()
    }

    /// Instance `instance` holds no connection of user `key` any more. True if the user is now
    /// online nowhere (those who saw them were told).
    pub fn unseat(&self, instance: InstanceId, key: &str) -> bool {
        let mut users = self.lock();
        self.unseat_locked(&mut users, instance, key)
    }

    fn unseat_locked(
        &self,
        users: &mut HashMap<String, OnlineUser>,
        instance: InstanceId,
        key: &str,
    ) -> bool {
        let Some(user) = users.get_mut(key) else {
            return false;
        };
        let before = user.in_call();
        user.leave_seat(instance);
        if !user.present() {
            self.forget_locked(users, key);
            return true;
        }
        if let Some(user) = users.get(key)
            && user.in_call() != before
        {
            self.announce_locked(users, key, user, &status_frame(user));
        }
        false
    }

    /// Instance `instance` is gone (stopped, or unreachable): its users are unseated; those now
    /// online nowhere are returned.
    pub fn instance_gone(&self, instance: InstanceId) -> Vec<String> {
        let mut users = self.lock();
        let seated: Vec<String> = users
            .iter()
            .filter(|(_, user)| user.seated_on(instance))
            .map(|(key, _)| key.clone())
            .collect();
        seated
            .into_iter()
            .filter(|key| self.unseat_locked(&mut users, instance, key))
            .collect()
    }

    /// What other instances must know of this one's users: one entry each.
    #[cfg(test)]
    pub fn roster(&self) -> Vec<SeatEntry> {
        roster_locked(&self.lock())
    }

    /// Posts this instance's roster to every other. Under the lock, like every seat and unseat:
    /// a user leaving just after the list was made cannot have their `unseat` overtaken by it.
    pub fn publish_roster(&self) {
        let users = self.lock();
        self.publish(Bulletin::Roster {
            seats: roster_locked(&users),
        });
    }
}

fn roster_locked(users: &HashMap<String, OnlineUser>) -> Vec<SeatEntry> {
    users
        .iter()
        .filter(|(_, user)| !user.connections.is_empty())
        .map(|(key, user)| user.seat_entry(key))
        .collect()
}

/// `user`'s `status` frame: in a call or not.
fn status_frame(user: &OnlineUser) -> Utf8Bytes {
    ServerEvent::Status {
        username: user.display_name.clone(),
        in_call: user.in_call(),
    }
    .to_json()
    .into()
}

/// How a user is listed in a presence frame: their name, and whether they are in a call.
fn listed(user: &OnlineUser) -> (&str, bool) {
    (user.display_name.as_str(), user.in_call())
}

/// One `presence` frame as [`ServerEvent::Presence`] writes it, but of borrowed names.
#[derive(Serialize)]
#[serde(tag = "type", rename = "presence")]
struct PresencePage<'a> {
    online: Vec<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    more: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    in_call: Vec<&'a str>,
}

#[cfg(test)]
impl PresencePage<'_> {
    fn to_frame(&self) -> Utf8Bytes {
        // Serialising strings and a bool cannot fail.
        serde_json::to_string(self).unwrap_or_default().into()
    }
}

/// `names` (each with whether they are in a call), sorted, split into `presence` frames of about
/// [`PRESENCE_PAGE_BYTES`] of names each, every one but the last marked `more` (one frame,
/// possibly empty, when few are online).
///
/// The pages are written one after another into a single buffer and handed out as slices of it:
/// one allocation per list, not several per page. A crowd arriving makes every connection render
/// a list of thousands, and those short-lived buffers are allocated among the connections'
/// lasting state.
fn presence_pages(mut names: Vec<(&str, bool)>) -> Vec<Utf8Bytes> {
    names.sort_unstable();
    let mut breaks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, (name, in_call)) in names.iter().enumerate() {
        // The name, its quotes and a comma (twice for someone in a call: listed in `in_call` too).
        let size = (name.len() + 3) * (1 + usize::from(*in_call));
        if index > start && bytes + size > PRESENCE_PAGE_BYTES {
            breaks.push(index);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    breaks.push(names.len());
    // The names, their quotes and commas, and each page's envelope.
    let estimate = names.iter().map(|(name, _)| name.len() + 3).sum::<usize>() + 64 * breaks.len();
    let mut text = Vec::with_capacity(estimate);
    let mut ends = Vec::with_capacity(breaks.len());
    let mut start = 0;
    for (page, &end) in breaks.iter().enumerate() {
        let entries = &names[start..end];
        let page = PresencePage {
            online: entries.iter().map(|(name, _)| *name).collect(),
            more: page + 1 < breaks.len(),
            in_call: entries
                .iter()
                .filter(|(_, in_call)| *in_call)
                .map(|(name, _)| *name)
                .collect(),
        };
        // Serialising strings and a bool into memory cannot fail.
        let _ = serde_json::to_writer(&mut text, &page);
        ends.push(text.len());
        start = end;
    }
    let text = axum::body::Bytes::from(text);
    let mut from = 0;
    ends.into_iter()
        .map(|end| {
            let page = text.slice(from..end);
            from = end;
            // Each slice is one whole JSON text, so it is UTF-8.
            Utf8Bytes::try_from(page).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(name: &str) -> ServerEvent {
        ServerEvent::Hello {
            username: name.to_owned(),
            ice_servers: serde_json::json!([]),
            ice_transport_policy: protocol::IceTransportPolicy::All,
        }
    }

    #[tokio::test]
    async fn a_reader_too_slow_to_drain_its_queue_is_kicked() {
        let hub = Hub::new(Metrics::new(), PresenceScope::Everyone);
        let slow = hub.join(
            "slow".into(),
            "slow",
            None,
            hello("slow"),
            Circle::default(),
            0,
        );
        let text: Utf8Bytes = "{}".into();
        // Two frames (hello, presence) are already queued.
        for _ in 0..QUEUE_CAPACITY - 2 {
            assert_eq!(hub.deliver("slow", &text, None), Delivery::Delivered(1));
        }
        assert_eq!(slow.inbox.kicked_for(), None);
        assert_eq!(hub.deliver("slow", &text, None), Delivery::Delivered(0));
        assert_eq!(slow.inbox.kicked_for(), Some(Kick::TooSlow));
        tokio::time::timeout(std::time::Duration::from_secs(1), slow.inbox.ready())
            .await
            .expect("woken");
    }

    #[test]
    fn a_crowd_is_listed_in_pages_of_about_a_kilobyte() {
        let hub = Hub::new(Metrics::new(), PresenceScope::Everyone);
        let names: Vec<String> = (0..2000).map(|i| format!("user{i:05}")).collect();
        for name in &names {
            hub.join(name.clone(), name, None, hello(name), Circle::default(), 0);
        }
        let newcomer = hub.join(
            "zed".into(),
            "zed",
            None,
            hello("zed"),
            Circle::default(),
            0,
        );
        assert!(matches!(newcomer.inbox.pop(), Some(Waiting::Frame(t)) if t.contains("\"hello\"")));
        assert_eq!(newcomer.inbox.pop(), Some(Waiting::Presence));
        assert!(newcomer.inbox.pop().is_none(), "nothing after the list");
        let mut listed = Vec::new();
        let mut pages = 0;
        for text in hub.presence_frames("zed") {
            assert!(
                text.len() <= PRESENCE_PAGE_BYTES + 64,
                "{} bytes",
                text.len()
            );
            let Ok(ServerEvent::Presence { online, more, .. }) = serde_json::from_str(&text) else {
                panic!("not a presence page: {text}");
            };
            pages += 1;
            listed.extend(online);
            assert_eq!(
                more,
                listed.len() < names.len() + 1,
                "only the last page ends the list"
            );
        }
        assert!(pages > 10, "{pages} pages");
        let mut expected = names.clone();
        expected.push("zed".into());
        expected.sort();
        assert_eq!(listed, expected);
    }

    #[test]
    fn a_connection_behind_on_presence_gets_one_fresh_list_in_order() {
        let hub = Hub::new(Metrics::new(), PresenceScope::Everyone);
        let behind = hub.join(
            "behind".into(),
            "behind",
            None,
            hello("behind"),
            Circle::default(),
            0,
        );
        while behind.inbox.pop().is_some() {}
        for i in 0..PRESENCE_BACKLOG {
            let name = format!("early{i}");
            hub.join(
                name.clone(),
                &name,
                None,
                hello(&name),
                Circle::default(),
                0,
            );
        }
        let frame: Utf8Bytes = r#"{"type":"ringing","from":"early0"}"#.into();
        hub.deliver("behind", &frame, None);
        for i in 0..500 {
            let name = format!("late{i}");
            hub.join(
                name.clone(),
                &name,
                None,
                hello(&name),
                Circle::default(),
                0,
            );
        }
        let mut waiting = Vec::new();
        while let Some(item) = behind.inbox.pop() {
            waiting.push(item);
        }
        // The first updates one by one, then the relayed frame, then one list for the rest.
        assert_eq!(waiting.len(), PRESENCE_BACKLOG + 2, "{waiting:?}");
        assert!(
            waiting[..PRESENCE_BACKLOG]
                .iter()
                .all(|item| matches!(item, Waiting::Frame(t) if t.contains("\"online\"")))
        );
        assert_eq!(waiting[PRESENCE_BACKLOG], Waiting::Frame(frame));
        assert_eq!(waiting[PRESENCE_BACKLOG + 1], Waiting::Presence);
        // Once that list is taken, updates queue one by one again.
        hub.join(
            "next".into(),
            "next",
            None,
            hello("next"),
            Circle::default(),
            0,
        );
        assert!(matches!(behind.inbox.pop(), Some(Waiting::Frame(t)) if t.contains("next")));
        let listed: Vec<String> = hub
            .presence_frames("behind")
            .iter()
            .flat_map(|text| match serde_json::from_str(text) {
                Ok(ServerEvent::Presence { online, .. }) => online,
                _ => panic!("not a presence page: {text}"),
            })
            .collect();
        assert_eq!(listed.len(), 1 + PRESENCE_BACKLOG + 500 + 1);
    }

    #[tokio::test]
    async fn presence_counts_users_not_tabs() {
        let hub = Hub::new(Metrics::new(), PresenceScope::Everyone);
        let watcher = hub.join("w".into(), "w", None, hello("w"), Circle::default(), 0);
        // Its greeting written: from here on it hears of every change.
        while watcher.inbox.pop().is_some() {}
        let tab1 = hub.join(
            "bob".into(),
            "Bob",
            None,
            hello("Bob"),
            Circle::default(),
            0,
        );
        let tab2 = hub.join(
            "bob".into(),
            "Bob",
            None,
            hello("Bob"),
            Circle::default(),
            0,
        );
        assert_eq!(hub.online(), vec!["Bob".to_owned(), "w".to_owned()]);
        hub.leave("bob", tab1.id);
        assert_eq!(hub.online().len(), 2);
        hub.leave("bob", tab2.id);
        assert_eq!(hub.online(), vec!["w".to_owned()]);
        let mut seen = Vec::new();
        while let Some(Waiting::Frame(text)) = watcher.inbox.pop() {
            seen.push(text.to_string());
        }
        let events: Vec<&str> = seen
            .iter()
            .filter(|t| !t.contains("\"presence\"") && !t.contains("\"hello\""))
            .map(String::as_str)
            .collect();
        assert_eq!(
            events,
            [
                r#"{"type":"online","username":"Bob"}"#,
                r#"{"type":"offline","username":"Bob"}"#
            ]
        );
    }

    #[test]
    fn a_greeting_lists_who_is_online_when_it_is_written() {
        let hub = Hub::new(Metrics::new(), PresenceScope::Everyone);
        let newcomer = hub.join(
            "ann".into(),
            "ann",
            None,
            hello("ann"),
            Circle::default(),
            0,
        );
        // Arrivals and departures before the greeting is written are in the list it writes,
        // not queued beside it.
        let bob = hub.join(
            "bob".into(),
            "Bob",
            None,
            hello("Bob"),
            Circle::default(),
            0,
        );
        hub.join("cy".into(), "cy", None, hello("cy"), Circle::default(), 0);
        hub.leave("bob", bob.id);
        assert!(matches!(newcomer.inbox.pop(), Some(Waiting::Frame(t)) if t.contains("\"hello\"")));
        assert_eq!(newcomer.inbox.pop(), Some(Waiting::Presence));
        assert_eq!(newcomer.inbox.pop(), None);
        assert_eq!(
            hub.presence_frames("ann"),
            [Utf8Bytes::from(
                r#"{"type":"presence","online":["ann","cy"]}"#
            )]
        );
        // Once written, changes come one by one.
        hub.join(
            "dee".into(),
            "dee",
            None,
            hello("dee"),
            Circle::default(),
            0,
        );
        assert!(matches!(newcomer.inbox.pop(), Some(Waiting::Frame(t)) if t.contains("dee")));
    }

    fn seat_of(key: &str, in_call: bool) -> SeatEntry {
        SeatEntry {
            key: key.to_owned(),
            name: key.to_owned(),
            in_call,
            circle: Circle::default(),
        }
    }

    /// Every frame waiting in `inbox`, as text.
    fn drained(inbox: &Inbox) -> Vec<String> {
        std::iter::from_fn(|| inbox.pop())
            .filter_map(|item| match item {
                Waiting::Frame(text) => Some(text.to_string()),
                Waiting::Presence => None,
            })
            .collect()
    }

    #[test]
    fn users_of_other_instances_come_and_go_as_their_instances_say() {
        let hub = Hub::new(Metrics::new(), PresenceScope::Everyone);
        let watcher = hub.join("w".into(), "w", None, hello("w"), Circle::default(), 0);
        drained(&watcher.inbox);
        hub.seat(7, seat_of("ann", false));
        hub.seat(7, seat_of("bob", false));
        // Bob also has a tab on instance 8, in a call there.
        hub.seat(8, seat_of("bob", true));
        assert_eq!(
            drained(&watcher.inbox),
            [
                r#"{"type":"online","username":"ann"}"#,
                r#"{"type":"online","username":"bob"}"#,
                r#"{"type":"status","username":"bob","in_call":true}"#,
            ]
        );
        // Instance 7 says it holds only bob now: ann is gone; bob stays.
        assert_eq!(hub.reseat(7, vec![seat_of("bob", false)]), ["ann"]);
        // Instance 8 falls silent: bob is online through 7 still, out of his call.
        assert!(hub.instance_gone(8).is_empty());
        assert!(hub.unseat(7, "bob"), "online nowhere now");
        assert_eq!(
            drained(&watcher.inbox),
            [
                r#"{"type":"offline","username":"ann"}"#,
                r#"{"type":"status","username":"bob","in_call":false}"#,
                r#"{"type":"offline","username":"bob"}"#,
            ]
        );
        assert_eq!(hub.online(), ["w"]);
        assert_eq!(
            hub.roster(),
            [seat_of("w", false)],
            "only this instance's own"
        );
    }

    #[test]
    fn presence_pages_read_as_the_protocol_writes_them() {
        let names = ["b\"q", "a", "ü"];
        for (more, in_call) in [(false, vec![]), (true, vec!["a"])] {
            let page = PresencePage {
                online: names.to_vec(),
                more,
                in_call: in_call.clone(),
            };
            let event = ServerEvent::Presence {
                online: names.iter().map(|n| (*n).to_owned()).collect(),
                more,
                in_call: in_call.iter().map(|n| (*n).to_owned()).collect(),
            };
            assert_eq!(page.to_frame().as_str(), event.to_json());
        }
    }

    #[test]
    fn logging_out_closes_that_sessions_connections_only() {
        let hub = Hub::new(Metrics::new(), PresenceScope::Everyone);
        let laptop = Some(LoginTag {
            session: SessionId(1),
            started: 100,
        });
        let phone = Some(LoginTag {
            session: SessionId(2),
            started: 200,
        });
        let first = hub.join(
            "eve".into(),
            "eve",
            laptop,
            hello("eve"),
            Circle::default(),
            0,
        );
        let second = hub.join(
            "eve".into(),
            "eve",
            laptop,
            hello("eve"),
            Circle::default(),
            0,
        );
        let other = hub.join(
            "eve".into(),
            "eve",
            phone,
            hello("eve"),
            Circle::default(),
            0,
        );
        let stranger = hub.join(
            "sam".into(),
            "sam",
            laptop,
            hello("sam"),
            Circle::default(),
            0,
        );
        assert_eq!(hub.end_session("eve", SessionId(1)), 2);
        assert_eq!(first.inbox.kicked_for(), Some(Kick::SessionEnded));
        assert_eq!(second.inbox.kicked_for(), Some(Kick::SessionEnded));
        assert_eq!(other.inbox.kicked_for(), None);
        assert_eq!(stranger.inbox.kicked_for(), None, "another user's key");
        // A password change at 300 ends the phone's login (started at 200) too.
        assert_eq!(hub.end_logins_before("eve", 150), 0);
        assert_eq!(hub.end_logins_before("eve", 300), 1);
        assert_eq!(other.inbox.kicked_for(), Some(Kick::SessionEnded));
    }

    #[test]
    fn a_login_moved_to_a_new_session_outlives_the_old_ones() {
        let hub = Hub::new(Metrics::new(), PresenceScope::Everyone);
        let tag = |session, started| {
            Some(LoginTag {
                session: SessionId(session),
                started,
            })
        };
        let here = hub.join(
            "eve".into(),
            "eve",
            tag(1, 100),
            hello("eve"),
            Circle::default(),
            0,
        );
        let elsewhere = hub.join(
            "eve".into(),
            "eve",
            tag(2, 200),
            hello("eve"),
            Circle::default(),
            0,
        );
        let moved = LoginTag {
            session: SessionId(3),
            started: 300,
        };
        assert_eq!(hub.move_login("eve", SessionId(1), moved), 1);
        assert_eq!(hub.login_of("eve", here.id), Some(moved));
        assert_eq!(hub.end_logins_before("eve", 300), 1);
        assert_eq!(elsewhere.inbox.kicked_for(), Some(Kick::SessionEnded));
        assert_eq!(here.inbox.kicked_for(), None);
        // Deleting the account closes everything, whatever its login.
        let bare = hub.join(
            "eve".into(),
            "eve",
            None,
            hello("eve"),
            Circle::default(),
            0,
        );
        assert_eq!(hub.end_user("eve"), 2);
        assert_eq!(bare.inbox.kicked_for(), Some(Kick::SessionEnded));
    }

    #[test]
    fn a_connection_that_raced_a_contact_change_catches_up() {
        let hub = Hub::new(Metrics::new(), PresenceScope::Contacts);
        let bob = hub.join(
            "bob".into(),
            "bob",
            None,
            hello("bob"),
            Circle::default(),
            0,
        );
        while bob.inbox.pop().is_some() {}
        // Ann's circle is read (no contacts yet), then bob accepts her before she joins.
        let seen = hub.changes();
        hub.apply(
            "bob",
            &Change::Linked {
                other: "ann".into(),
            },
        );
        let ann = hub.join(
            "ann".into(),
            "ann",
            None,
            hello("ann"),
            Circle::default(),
            seen,
        );
        assert!(ann.stale, "joined with a circle older than a change");
        while bob.inbox.pop().is_some() {}
        while ann.inbox.pop().is_some() {}
        // Read again: both learn of each other.
        let fresh = Circle {
            contacts: ["bob".to_owned()].into(),
            ..Circle::default()
        };
        assert!(
            !hub.refresh_circle("ann", fresh.clone(), seen),
            "a change came meanwhile"
        );
        assert!(hub.refresh_circle("ann", fresh, hub.changes()));
        let heard = |inbox: &Inbox| match inbox.pop() {
            Some(Waiting::Frame(text)) => text.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(heard(&bob.inbox), r#"{"type":"online","username":"ann"}"#);
        assert_eq!(heard(&ann.inbox), r#"{"type":"online","username":"bob"}"#);
        assert_eq!(
            hub.presence_frames("ann"),
            [Utf8Bytes::from(
                r#"{"type":"presence","online":["ann","bob"]}"#
            )]
        );
    }
}
