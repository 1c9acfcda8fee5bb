//! Who is online and how to reach them: every open connection's outgoing queue, by user.
//!
//! One `std::sync::Mutex` guards the map; it is only held to look up or change entries and to
//! `try_send` into bounded queues, never across an `.await`. A queue that is full means the
//! reader on the other end is too slow: that connection is kicked rather than letting memory grow.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use protocol::ServerEvent;
use tokio::sync::{Notify, mpsc};

use crate::metrics::Metrics;

/// Frames queued per connection before it counts as too slow.
pub const QUEUE_CAPACITY: usize = 256;

pub type ConnectionId = u64;

/// What a connection's writer task sends.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Text(Utf8Bytes),
    /// A WebSocket ping (heartbeat).
    Ping,
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
}

struct Connection {
    id: ConnectionId,
    queue: mpsc::Sender<Outgoing>,
    kick: Arc<Notify>,
}

struct OnlineUser {
    /// The name as the user registered it (the map key is its case-folded form).
    display_name: String,
    connections: Vec<Connection>,
}

/// A connection's handle on the hub, returned by [`Hub::join`].
pub struct Membership {
    pub id: ConnectionId,
    pub key: String,
    pub queue: mpsc::Receiver<Outgoing>,
    /// Notified when the hub disconnects this connection (its queue overflowed).
    pub kicked: Arc<Notify>,
}

/// The outcome of [`Hub::deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered(usize),
    Offline,
}

pub struct Hub {
    users: Mutex<HashMap<String, OnlineUser>>,
    next_id: AtomicU64,
    metrics: Metrics,
}

impl Hub {
    pub fn new(metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            users: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, OnlineUser>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection for `display_name`. Queues the presence snapshot for it and,
    /// if this is the user's first connection, announces them to everyone else.
    pub fn join(&self, key: String, display_name: &str, hello: ServerEvent) -> Membership {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let kick = Arc::new(Notify::new());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut users = self.lock();
        let first = !users.contains_key(&key);
        let mut online: Vec<String> = users.values().map(|u| u.display_name.clone()).collect();
        if first {
            online.push(display_name.to_owned());
        }
        online.sort();
        // A fresh queue has room for these two.
        let _ = tx.try_send(Outgoing::Text(hello.to_json().into()));
        let _ = tx.try_send(Outgoing::Text(
            ServerEvent::Presence { online }.to_json().into(),
        ));
        if first {
            let announcement: Utf8Bytes = ServerEvent::Online {
                username: display_name.to_owned(),
            }
            .to_json()
            .into();
            self.broadcast_locked(&users, &announcement);
            self.metrics.users_online.inc();
        }
        users
            .entry(key.clone())
            .or_insert_with(|| OnlineUser {
                display_name: display_name.to_owned(),
                connections: Vec::new(),
            })
            .connections
            .push(Connection {
                id,
                queue: tx,
                kick: kick.clone(),
            });
        self.metrics.connections.inc();
        Membership {
            id,
            key,
            queue: rx,
            kicked: kick,
        }
    }

    /// Removes a connection; if it was the user's last, tells everyone they went offline.
    pub fn leave(&self, key: &str, id: ConnectionId) {
        let mut users = self.lock();
        let Some(user) = users.get_mut(key) else {
            return;
        };
        let before = user.connections.len();
        user.connections.retain(|c| c.id != id);
        if user.connections.len() == before {
            return;
        }
        self.metrics.connections.dec();
        if user.connections.is_empty()
            && let Some(user) = users.remove(key)
        {
            self.metrics.users_online.dec();
            let announcement: Utf8Bytes = ServerEvent::Offline {
                username: user.display_name,
            }
            .to_json()
            .into();
            self.broadcast_locked(&users, &announcement);
        }
    }

    /// Queues `text` on every connection of user `key`, except `skip`.
    pub fn deliver(&self, key: &str, text: &Utf8Bytes, skip: Option<ConnectionId>) -> Delivery {
        let users = self.lock();
        let Some(user) = users.get(key) else {
            return Delivery::Offline;
        };
        let mut delivered = 0;
        for connection in user.connections.iter().filter(|c| Some(c.id) != skip) {
            if self.offer(connection, text) {
                delivered += 1;
            }
        }
        Delivery::Delivered(delivered)
    }

    /// Everyone online now, sorted.
    pub fn online(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .lock()
            .values()
            .map(|u| u.display_name.clone())
            .collect();
        names.sort();
        names
    }

    fn broadcast_locked(&self, users: &HashMap<String, OnlineUser>, text: &Utf8Bytes) {
        for connection in users.values().flat_map(|u| &u.connections) {
            self.offer(connection, text);
        }
    }

    /// Queues without waiting; a full queue gets its connection kicked.
    fn offer(&self, connection: &Connection, text: &Utf8Bytes) -> bool {
        match connection.queue.try_send(Outgoing::Text(text.clone())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(connection = connection.id, "slow consumer disconnected");
                connection.kick.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
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
        let hub = Hub::new(Metrics::new());
        let slow = hub.join("slow".into(), "slow", hello("slow"));
        let text: Utf8Bytes = "{}".into();
        // Two frames (hello, presence) are already queued.
        for _ in 0..QUEUE_CAPACITY - 2 {
            assert_eq!(hub.deliver("slow", &text, None), Delivery::Delivered(1));
        }
        assert_eq!(hub.deliver("slow", &text, None), Delivery::Delivered(0));
        tokio::time::timeout(std::time::Duration::from_secs(1), slow.kicked.notified())
            .await
            .expect("kicked");
    }

    #[tokio::test]
    async fn presence_counts_users_not_tabs() {
        let hub = Hub::new(Metrics::new());
        let mut watcher = hub.join("w".into(), "w", hello("w"));
        let tab1 = hub.join("bob".into(), "Bob", hello("Bob"));
        let tab2 = hub.join("bob".into(), "Bob", hello("Bob"));
        assert_eq!(hub.online(), vec!["Bob".to_owned(), "w".to_owned()]);
        hub.leave("bob", tab1.id);
        assert_eq!(hub.online().len(), 2);
        hub.leave("bob", tab2.id);
        assert_eq!(hub.online(), vec!["w".to_owned()]);
        let mut seen = Vec::new();
        while let Ok(Outgoing::Text(text)) = watcher.queue.try_recv() {
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
}
