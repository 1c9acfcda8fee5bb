//! Several instances as one relay, through Redis pub/sub (`--redis-url`).
//!
//! Each instance subscribes to two channels: `duet:all`, where every instance posts what the
//! others must know ([`Bulletin`]: its users coming and going, contact changes, logins ended,
//! a beat every two seconds), and `duet:instance:<id>`, where others post frames for its users
//! ([`Parcel`]). Each hub keeps the users of other instances as entries without connections
//! ("seats"), so presence, contact circles, blocks and "calls from" work as on one instance, and a
//! frame for a user seated elsewhere is posted to that instance, which queues it as if it came
//! from one of its own sockets.
//!
//! Pub/sub rather than streams or keys: a frame is worth nothing once its call is over, and
//! the state of who is where is rebuilt from the instances themselves (a `sync` makes every
//! instance post its whole roster), so there is nothing in Redis to expire or clean up after an
//! instance that died. An instance not heard from for [`SILENCE`] is taken as gone and its users
//! offline; an instance that loses Redis refuses frames for other instances' users at once
//! (`peer_offline`), keeps serving its own, and on reconnecting asks for every roster again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower_sessions::session::Id as SessionId;

use super::Relay;
use crate::cluster::Redis;
use crate::contacts::{Change, Circle};

/// An instance's name on the channels, random per process.
pub type InstanceId = u64;

/// How often an instance says it is alive.
const BEAT: Duration = Duration::from_secs(2);

/// An instance not heard from for this long is gone (three beats missed).
const SILENCE: Duration = Duration::from_secs(6);

/// Messages waiting to be published; past this, frames for other instances are refused.
const OUTBOX_CAPACITY: usize = 16_384;

/// Messages published per round trip to Redis.
const BATCH: usize = 128;

const ALL: &str = "duet:all";

fn instance_channel(instance: InstanceId) -> String {
    format!("duet:instance:{instance:016x}")
}

/// A user with connections on the instance that posts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatEntry {
    pub key: String,
    pub name: String,
    /// In an answered call on that instance.
    pub in_call: bool,
    /// Contacts, blocks and who may call them, as that instance holds them.
    pub circle: Circle,
}

/// What every instance must know, posted on `duet:all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Bulletin {
    /// Alive.
    Beat,
    /// Just (re)connected: every instance posts its roster.
    Sync,
    /// Every user with connections on the sender, and no others.
    Roster {
        seats: Vec<SeatEntry>,
    },
    /// A user's first connection on the sender, or their call status there changed.
    Seat(SeatEntry),
    /// A user's last connection on the sender closed.
    Unseat {
        key: String,
    },
    Contact {
        key: String,
        change: Change,
    },
    CallsFrom {
        key: String,
        calls_from: protocol::CallsFrom,
    },
    EndSession {
        key: String,
        session: String,
    },
    EndLoginsBefore {
        key: String,
        since: i64,
    },
    EndUser {
        key: String,
    },
    RemoveUser {
        key: String,
    },
}

/// Frames for one user's connections on the instance it is posted to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub to: String,
    pub text: String,
    /// For a frame relayed from a user (noted in that instance's call log), their name; none
    /// for a notice.
    pub from: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    from: InstanceId,
    body: T,
}

struct Outgoing {
    channel: String,
    payload: String,
}

/// Where the hub posts what other instances must know; cheap to use from under its lock (never
/// waits: a message that cannot be queued is refused).
pub struct Outbox {
    instance: InstanceId,
    queue: mpsc::Sender<Outgoing>,
    /// Subscribed to Redis: others can be reached, and can reach us.
    up: Arc<AtomicBool>,
}

impl Outbox {
    fn post<T: Serialize>(&self, channel: String, body: &T) -> bool {
        if !self.up.load(Ordering::Acquire) {
            return false;
        }
        let envelope = Envelope {
            from: self.instance,
            body,
        };
        let Ok(payload) = serde_json::to_string(&envelope) else {
            return false;
        };
        self.queue.try_send(Outgoing { channel, payload }).is_ok()
    }

    /// Posts `bulletin` to every instance; lost while Redis is away (a reconnection resends
    /// the roster, which is what matters).
    pub fn bulletin(&self, bulletin: &Bulletin) {
        self.post(ALL.to_owned(), bulletin);
    }

    /// Posts `parcel` to `instance`; false if it cannot be sent now.
    pub fn parcel(&self, instance: InstanceId, parcel: &Parcel) -> bool {
        self.post(instance_channel(instance), parcel)
    }
}

/// Links this instance's hub to the others through `redis`, until `shutdown`.
pub fn start(redis: &Redis, relay: Arc<Relay>, shutdown: CancellationToken) {
    let instance = instance_id();
    let (queue, outgoing) = mpsc::channel(OUTBOX_CAPACITY);
    let up = Arc::new(AtomicBool::new(false));
    relay.hub.link(Outbox {
        instance,
        queue,
        up: up.clone(),
    });
    let link = Arc::new(Link {
        instance,
        relay,
        up,
        lost: AtomicBool::new(false),
        heard: Mutex::new(HashMap::new()),
    });
    tokio::spawn(publish(redis.clone(), outgoing, link.clone()));
    tokio::spawn(link.clone().listen(redis.client(), shutdown.clone()));
    tokio::spawn(link.beat(shutdown));
    tracing::info!(instance = %format!("{instance:016x}"), "linked to other instances through Redis");
}

/// A random id: each process's hasher keys are drawn from the system's randomness.
fn instance_id() -> InstanceId {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Publishes what the hub posted, in order, a batch per round trip.
async fn publish(redis: Redis, mut outgoing: mpsc::Receiver<Outgoing>, link: Arc<Link>) {
    let mut batch = Vec::with_capacity(BATCH);
    while outgoing.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for message in &batch {
            pipe.cmd("PUBLISH")
                .arg(&message.channel)
                .arg(&message.payload)
                .ignore();
        }
        let mut connection = redis.connection();
        if let Err(error) = pipe.query_async::<()>(&mut connection).await {
            tracing::warn!(%error, lost = batch.len(), "cannot publish to Redis");
            // What was lost may be who is online: everyone's roster again, once Redis answers.
            link.lost.store(true, Ordering::Release);
        }
        batch.clear();
    }
}

struct Link {
    instance: InstanceId,
    relay: Arc<Relay>,
    up: Arc<AtomicBool>,
    /// A publication failed: rosters are exchanged again at the next beat.
    lost: AtomicBool,
    /// When each other instance was last heard from.
    heard: Mutex<HashMap<InstanceId, Instant>>,
}

impl Link {
    fn outbox(&self) -> Option<&Outbox> {
        self.relay.hub.outbox()
    }

    /// Subscribes, and keeps subscribing again after Redis goes away, until `shutdown`.
    async fn listen(self: Arc<Self>, client: redis::Client, shutdown: CancellationToken) {
        let own = instance_channel(self.instance);
        while !shutdown.is_cancelled() {
            match tokio::time::timeout(SILENCE, subscribe(&client, &own)).await {
                Ok(Ok(pubsub)) => {
                    self.up.store(true, Ordering::Release);
                    tracing::info!("subscribed to the other instances");
                    self.resync();
                    let mut messages = pubsub.into_on_message();
                    loop {
                        // Every instance beats, this one too: silence means the link is broken.
                        let next = tokio::select! {
                            () = shutdown.cancelled() => return,
                            next = tokio::time::timeout(SILENCE, messages.next()) => next,
                        };
                        match next {
                            Ok(Some(message)) => self.receive(&message),
                            _ => break,
                        }
                    }
                    self.up.store(false, Ordering::Release);
                    tracing::warn!("lost the subscription to Redis: other instances unreachable");
                }
                Ok(Err(error)) => tracing::warn!(%error, "cannot subscribe to Redis"),
                Err(_) => tracing::warn!("Redis did not answer a subscription"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Asks every instance for its roster, and posts ours.
    fn resync(&self) {
        if let Some(outbox) = self.outbox() {
            outbox.bulletin(&Bulletin::Sync);
        }
        self.relay.hub.publish_roster();
    }

    fn receive(&self, message: &redis::Msg) {
        let payload = message.get_payload_bytes();
        if message.get_channel_name() == ALL {
            match serde_json::from_slice::<Envelope<Bulletin>>(payload) {
                Ok(envelope) if envelope.from != self.instance => {
                    self.heard(envelope.from);
                    self.on_bulletin(envelope.from, envelope.body);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "unreadable bulletin from Redis"),
            }
        } else {
            match serde_json::from_slice::<Envelope<Parcel>>(payload) {
                Ok(envelope) => {
                    self.heard(envelope.from);
                    self.on_parcel(envelope.body);
                }
                Err(error) => tracing::warn!(%error, "unreadable parcel from Redis"),
            }
        }
    }

    fn heard(&self, instance: InstanceId) {
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        heard.insert(instance, Instant::now());
    }

    fn on_bulletin(&self, from: InstanceId, bulletin: Bulletin) {
        let hub = &self.relay.hub;
        match bulletin {
            Bulletin::Beat => {}
            Bulletin::Sync => hub.publish_roster(),
            Bulletin::Roster { seats } => self.gone(hub.reseat(from, seats)),
            Bulletin::Seat(entry) => hub.seat(from, entry),
            Bulletin::Unseat { key } => {
                if hub.unseat(from, &key) {
                    self.gone(vec![key]);
                }
            }
            Bulletin::Contact { key, change } => hub.apply_here(&key, &change),
            Bulletin::CallsFrom { key, calls_from } => hub.set_calls_from_here(&key, calls_from),
            Bulletin::EndSession { key, session } => {
                if let Ok(session) = session.parse::<SessionId>() {
                    hub.end_session_here(&key, session);
                }
            }
            Bulletin::EndLoginsBefore { key, since } => {
                hub.end_logins_before_here(&key, since);
            }
            Bulletin::EndUser { key } => {
                hub.end_user_here(&key);
            }
            Bulletin::RemoveUser { key } => {
                hub.remove_user_here(&key);
            }
        }
    }

    /// A frame another instance relayed to one of our users: queued, and noted in the call
    /// log as if it had been relayed here (both instances of a call keep its log; the records'
    /// unique key keeps one copy of each).
    fn on_parcel(&self, parcel: Parcel) {
        let text = Utf8Bytes::from(parcel.text);
        if self.relay.hub.deliver_here(&parcel.to, &text) > 0
            && let Some(from) = parcel.from
        {
            self.relay.note_relayed(&from, &parcel.to, text.as_str());
        }
    }

    /// Users now online nowhere: their calls end.
    fn gone(&self, keys: Vec<String>) {
        for key in keys {
            for call in self.relay.calls.gone(&key) {
                self.relay.call_ended(call);
            }
        }
    }

    /// Beats, and takes instances that fell silent as gone, until `shutdown`.
    async fn beat(self: Arc<Self>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(BEAT);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Some(outbox) = self.outbox() {
                outbox.bulletin(&Bulletin::Beat);
            }
            if self.up.load(Ordering::Acquire) && self.lost.swap(false, Ordering::AcqRel) {
                self.resync();
            }
            let silent: Vec<InstanceId> = {
                let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
                let silent = heard
                    .iter()
                    .filter(|(_, at)| at.elapsed() > SILENCE)
                    .map(|(instance, _)| *instance)
                    .collect::<Vec<_>>();
                for instance in &silent {
                    heard.remove(instance);
                }
                silent
            };
            for instance in silent {
                tracing::warn!(instance = %format!("{instance:016x}"), "instance silent: its users are offline");
                self.gone(self.relay.hub.instance_gone(instance));
            }
        }
    }
}

async fn subscribe(client: &redis::Client, own: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(ALL).await?;
    pubsub.subscribe(own).await?;
    Ok(pubsub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulletins_read_as_they_are_written() {
        let bulletins = [
            Bulletin::Beat,
            Bulletin::Sync,
            Bulletin::Seat(SeatEntry {
                key: "ann".into(),
                name: "Ann".into(),
                in_call: true,
                circle: Circle {
                    contacts: ["bob".to_owned()].into(),
                    blocks: ["eve".to_owned()].into(),
                    calls_from: protocol::CallsFrom::Contacts,
                },
            }),
            Bulletin::Contact {
                key: "ann".into(),
                change: Change::Linked {
                    other: "bob".into(),
                },
            },
            Bulletin::EndLoginsBefore {
                key: "ann".into(),
                since: 1_700_000_000_000,
            },
        ];
        for bulletin in bulletins {
            let text = serde_json::to_string(&Envelope {
                from: 7,
                body: &bulletin,
            })
            .expect("serialises");
            let back: Envelope<Bulletin> = serde_json::from_str(&text).expect(&text);
            assert_eq!(back.from, 7);
            assert_eq!(back.body, bulletin);
        }
    }
}
