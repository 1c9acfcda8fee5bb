//! Login throttling: at most N failed logins per account and per client address within a
//! sliding window. Hand-rolled rather than `governor` because it must count *failures* and be
//! consulted before the (expensive) password check without consuming anything.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    Account(String),
    Address(IpAddr),
}

pub struct LoginThrottle {
    limit: usize,
    window: Duration,
    failures: Mutex<HashMap<ThrottleKey, VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ThrottleKey, VecDeque<Instant>>> {
        // A panic while holding this lock leaves only counters behind: keep using them.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long until one of these keys may try again, if any is over the limit now.
    pub fn retry_after(&self, keys: &[ThrottleKey]) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.lock();
        keys.iter()
            .filter_map(|key| {
                let times = map.get_mut(key)?;
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    times.pop_front();
                }
                (times.len() >= self.limit)
                    .then(|| times.front().map(|t| self.window - now.duration_since(*t)))
                    .flatten()
            })
            .max()
    }

    pub fn record_failure(&self, keys: &[ThrottleKey]) {
        let now = Instant::now();
        let mut map = self.lock();
        for key in keys {
            let times = map.entry(key.clone()).or_default();
            times.push_back(now);
            while times.len() > self.limit {
                times.pop_front();
            }
        }
        // Keep memory bounded under a spray of random usernames.
        if map.len() > 100_000 {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
    }

    pub fn clear(&self, key: &ThrottleKey) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_and_forgets_after_the_window() {
        let throttle = LoginThrottle::new(3, Duration::from_millis(200));
        let keys = [ThrottleKey::Account("bob".into())];
        for _ in 0..3 {
            assert_eq!(throttle.retry_after(&keys), None);
            throttle.record_failure(&keys);
        }
        assert!(throttle.retry_after(&keys).is_some());
        assert_eq!(
            throttle.retry_after(&[ThrottleKey::Account("alice".into())]),
            None
        );
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(throttle.retry_after(&keys), None);
    }
}
