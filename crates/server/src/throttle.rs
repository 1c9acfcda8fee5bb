//! Sliding-window limits on expensive requests: failed logins per account and per client address,
//! registrations per address. Hand-rolled rather than `governor` because a login must take its
//! slot *before* the (expensive) password check, so that concurrent guesses cannot all pass the
//! check-then-count gap, and give it back when the password was right.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// A valid, case-folded username (an invalid one is refused before it could become a key).
    Account(String),
    /// A client address, grouped by [`address_group`].
    Address(IpAddr),
}

impl ThrottleKey {
    pub fn address(ip: IpAddr) -> Self {
        Self::Address(address_group(ip))
    }
}

/// The unit one client controls: an IPv4 address, or an IPv6 /64 (one home's or one host's
/// prefix, whose 2⁶⁴ addresses would otherwise each get a fresh allowance).
pub fn address_group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::from(u64::MAX));
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// At most `limit` events per key within `window`.
pub struct Throttle<K> {
    limit: usize,
    window: Duration,
    events: Mutex<HashMap<K, VecDeque<Instant>>>,
}

/// Keys kept before expired ones are swept: bounds memory under a spray of keys.
const SWEEP_ABOVE: usize = 100_000;

impl<K: Clone + Eq + Hash> Throttle<K> {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            window,
            events: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, VecDeque<Instant>>> {
        // A panic while holding this lock leaves only counters behind: keep using them.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long until `key` has room again, if it is full now (expired events dropped).
    fn full_for(&self, times: &mut VecDeque<Instant>, now: Instant) -> Option<Duration> {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        (times.len() >= self.limit)
            .then(|| times.front())
            .flatten()
            .map(|oldest| {
                self.window
                    .saturating_sub(now.duration_since(*oldest))
                    .max(Duration::from_secs(1))
            })
    }

    /// How long until every one of `keys` has room, if one is full now; takes nothing.
    pub fn check(&self, keys: &[K]) -> Result<(), Duration> {
        self.check_in(&mut self.lock(), keys, Instant::now())
    }

    fn check_in(
        &self,
        map: &mut HashMap<K, VecDeque<Instant>>,
        keys: &[K],
        now: Instant,
    ) -> Result<(), Duration> {
        let wait = keys
            .iter()
            .filter_map(|key| self.full_for(map.get_mut(key)?, now))
            .max();
        wait.map_or(Ok(()), Err)
    }

    /// Takes one slot in every key's window at once, or, when any key is full, none and says how
    /// long until that key has room again.
    pub fn take(&self, keys: &[K]) -> Result<Slot, Duration> {
        let now = Instant::now();
        let mut map = self.lock();
        self.check_in(&mut map, keys, now)?;
        Ok(record_in(&mut map, keys, now, self.window))
    }

    /// Counts an event for every key, full or not (it happened).
    pub fn record(&self, keys: &[K]) -> Slot {
        record_in(&mut self.lock(), keys, Instant::now(), self.window)
    }

    /// Returns a slot taken by [`take`](Self::take) for these keys: the event did not count.
    pub fn give_back(&self, keys: &[K], slot: Slot) {
        let mut map = self.lock();
        for key in keys {
            if let Some(times) = map.get_mut(key)
                && let Some(at) = times.iter().rposition(|t| *t == slot.0)
            {
                times.remove(at);
            }
        }
    }

    /// Forgets every event of `key` (a correct password wipes that account's failures).
    pub fn clear(&self, key: &K) {
        self.lock().remove(key);
    }
}

fn record_in<K: Clone + Eq + Hash>(
    map: &mut HashMap<K, VecDeque<Instant>>,
    keys: &[K],
    now: Instant,
    window: Duration,
) -> Slot {
    for key in keys {
        map.entry(key.clone()).or_default().push_back(now);
    }
    if map.len() > SWEEP_ABOVE {
        map.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < window)
        });
    }
    Slot(now)
}

/// One event's place in the windows it was counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a slot is kept (the event counts) unless given back"]
pub struct Slot(Instant);

impl std::fmt::Display for ThrottleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Account(key) => write!(f, "account:{key}"),
            Self::Address(ip) => write!(f, "address:{ip}"),
        }
    }
}

/// One of the throttles of [`crate::state::AppState`]: shared by every instance through Redis
/// when one is configured, otherwise this instance's own [`Throttle`].
///
/// The local count is kept either way, so that while Redis cannot be reached the limits still
/// hold (per instance) and nothing waits on it for longer than its response timeout.
pub struct Limiter {
    local: Throttle<ThrottleKey>,
    shared: Option<SharedWindow>,
}

/// The same sliding window kept in Redis: a sorted set per key, scored by Redis's own clock
/// (instances' clocks may differ), members unique per event so one can be given back.
struct SharedWindow {
    redis: crate::cluster::Redis,
    /// [`WINDOW_SCRIPT`], hashed once (Redis runs it by its SHA-1).
    script: redis::Script,
    /// `duet:throttle:<name>:`, before each key.
    prefix: String,
    limit: usize,
    window: Duration,
}

/// A slot taken or recorded: here, and in Redis under `member`.
#[derive(Debug, Clone, Copy)]
#[must_use = "a slot is kept (the event counts) unless given back"]
pub struct Ticket {
    local: Slot,
    member: u64,
}

/// What one call to the window script does with the keys it is given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Is any key full? Counts nothing.
    Check,
    /// Counts one event on every key unless one is full.
    Take,
    /// Counts one event on every key, full or not.
    Record,
}

/// KEYS: the sets; ARGV: limit, window (ms), mode, member. Returns 0 (counted, or nothing to
/// count) or the milliseconds until the fullest key has room. One script, so that checking and
/// counting are one step for every instance.
const WINDOW_SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local mode = ARGV[3]
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if mode ~= 'record' and redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if wait > 0 then
  return wait
end
if mode ~= 'check' then
  for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[4])
    redis.call('PEXPIRE', key, window)
  end
end
return 0
";

impl SharedWindow {
    fn key(&self, key: &ThrottleKey) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs the window script; `None` when Redis could not answer (said in the log).
    async fn run(&self, keys: &[ThrottleKey], mode: Mode, member: u64) -> Option<Duration> {
        let mode_name = match mode {
            Mode::Check => "check",
            Mode::Take => "take",
            Mode::Record => "record",
        };
        let mut invocation = self.script.prepare_invoke();
        for key in keys {
            invocation.key(self.key(key));
        }
        invocation
            .arg(self.limit)
            .arg(u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX))
            .arg(mode_name)
            .arg(member);
        match invocation
            .invoke_async::<u64>(&mut self.redis.connection())
            .await
        {
            Ok(wait_ms) => Some(Duration::from_millis(wait_ms)),
            Err(error) => {
                tracing::warn!(%error, "throttle: Redis does not answer; counting here only");
                None
            }
        }
    }

    async fn forget(&self, keys: &[ThrottleKey], member: Option<u64>) {
        let mut pipe = redis::pipe();
        for key in keys {
            match member {
                Some(member) => pipe.zrem(self.key(key), member).ignore(),
                None => pipe.del(self.key(key)).ignore(),
            };
        }
        if let Err(error) = pipe.query_async::<()>(&mut self.redis.connection()).await {
            tracing::warn!(%error, "throttle: Redis does not answer; counting here only");
        }
    }
}

impl Limiter {
    /// At most `limit` events per key within `window`; `name` tells this throttle's keys apart
    /// from the others' in Redis.
    pub fn new(
        name: &str,
        limit: u32,
        window: Duration,
        redis: Option<crate::cluster::Redis>,
    ) -> Self {
        let local = Throttle::new(limit, window);
        let shared = redis.map(|redis| SharedWindow {
            redis,
            script: redis::Script::new(WINDOW_SCRIPT),
            prefix: format!("duet:throttle:{name}:"),
            limit: local.limit,
            window,
        });
        Self { local, shared }
    }

    /// Shared verdict when Redis answered, else the local one.
    fn verdict(shared: Option<Duration>, local: Result<(), Duration>) -> Result<(), Duration> {
        match shared {
            Some(wait) if wait.is_zero() => Ok(()),
            Some(wait) => Err(wait.max(Duration::from_secs(1))),
            None => local,
        }
    }

    /// Is any of `keys` at its limit? `Err` carries how long until it is not.
    pub async fn check(&self, keys: &[ThrottleKey]) -> Result<(), Duration> {
        let local = self.local.check(keys);
        let Some(shared) = &self.shared else {
            return local;
        };
        Self::verdict(shared.run(keys, Mode::Check, 0).await, local)
    }

    /// Counts one event against every key, unless one of them is at its limit.
    pub async fn take(&self, keys: &[ThrottleKey]) -> Result<Ticket, Duration> {
        let Some(shared) = &self.shared else {
            let local = self.local.take(keys)?;
            return Ok(Ticket { local, member: 0 });
        };
        let member = fresh_member();
        let verdict = shared.run(keys, Mode::Take, member).await;
        match Self::verdict(verdict, self.local.check(keys)) {
            Ok(()) => Ok(Ticket {
                local: self.local.record(keys),
                member,
            }),
            Err(wait) => Err(wait),
        }
    }

    /// Counts one event against every key, whatever their count.
    pub async fn record(&self, keys: &[ThrottleKey]) -> Ticket {
        let member = fresh_member();
        if let Some(shared) = &self.shared {
            let _ = shared.run(keys, Mode::Record, member).await;
        }
        Ticket {
            local: self.local.record(keys),
            member,
        }
    }

    /// Uncounts an event taken with [`Limiter::take`].
    pub async fn give_back(&self, keys: &[ThrottleKey], ticket: Ticket) {
        self.local.give_back(keys, ticket.local);
        if let Some(shared) = &self.shared {
            shared.forget(keys, Some(ticket.member)).await;
        }
    }

    /// Forgets every event of `key` (a correct password ends the count of failures).
    pub async fn clear(&self, key: &ThrottleKey) {
        self.local.clear(key);
        if let Some(shared) = &self.shared {
            shared.forget(std::slice::from_ref(key), None).await;
        }
    }
}

/// A member no other instance will pick for its own event.
fn fresh_member() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    // A random per-process seed (std's hasher keys) mixed with a count: unique here, and
    // across instances short of a 64-bit collision.
    RandomState::new().hash_one(COUNT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_and_forgets_after_the_window() {
        let throttle = Throttle::new(3, Duration::from_millis(200));
        let keys = [ThrottleKey::Account("bob".into())];
        for _ in 0..3 {
            assert!(throttle.take(&keys).is_ok());
        }
        assert!(throttle.take(&keys).is_err());
        assert!(
            throttle
                .take(&[ThrottleKey::Account("alice".into())])
                .is_ok()
        );
        std::thread::sleep(Duration::from_millis(250));
        assert!(throttle.take(&keys).is_ok());
    }

    #[test]
    fn a_full_key_takes_nothing_from_the_others() {
        let throttle = Throttle::new(1, Duration::from_secs(60));
        let bob = ThrottleKey::Account("bob".into());
        let address = ThrottleKey::address("192.0.2.1".parse().unwrap());
        let _ = throttle.take(std::slice::from_ref(&bob));
        assert!(throttle.take(&[bob, address.clone()]).is_err());
        assert!(throttle.take(&[address]).is_ok(), "no slot was taken");
    }

    #[test]
    fn a_slot_given_back_does_not_count() {
        let throttle = Throttle::new(1, Duration::from_secs(60));
        let keys = [ThrottleKey::Account("bob".into())];
        let slot = throttle.take(&keys).unwrap();
        throttle.give_back(&keys, slot);
        assert!(throttle.take(&keys).is_ok());
        assert!(throttle.take(&keys).is_err());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix_and_mapped_ipv4_as_ipv4() {
        let a = ThrottleKey::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ThrottleKey::address("2001:db8:1:2:bbbb::2".parse().unwrap());
        let other = ThrottleKey::address("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(
            ThrottleKey::address("::ffff:192.0.2.7".parse().unwrap()),
            ThrottleKey::address("192.0.2.7".parse().unwrap())
        );
    }
}
