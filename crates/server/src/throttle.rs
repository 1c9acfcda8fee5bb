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
