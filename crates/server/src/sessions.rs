//! How long a login lasts: it expires after `--session-idle-minutes` without activity, and
//! after `--session-max-days` however active it is. Activity (a request, or an open signaling
//! socket) renews it, at most once per [`SessionPolicy::renew_every`], so a busy user costs one
//! session write now and then, not one per request.

use time::{Duration, OffsetDateTime};
use tower_sessions::Session;
use tower_sessions::session::Expiry;

use crate::accounts::{Accounts, AccountsError};
use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session store: {0}")]
    Store(#[from] tower_sessions::session::Error),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
}

/// The logged-in user's name, in the session's data.
pub const USER: &str = "user";
/// When the user logged in (Unix milliseconds: a password changed in the same second as a
/// login must still tell them apart).
const STARTED: &str = "started_ms";
/// When the session's expiry was last pushed forward (Unix seconds).
const RENEWED: &str = "renewed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub max: Duration,
}

/// What a session's age says should happen to it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid, recently renewed.
    Keep,
    /// Valid, and due for a new expiry (`until`).
    Renew { until: OffsetDateTime },
    /// Past its maximum age: log out.
    Ended,
}

impl SessionPolicy {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            idle: Duration::minutes(settings.session_idle_minutes.max(1)),
            max: Duration::seconds_f64((settings.session_max_days * 86_400.0).max(1.0)),
        }
    }

    /// How often activity writes a new expiry: a sixtieth of the idle time, between a second
    /// and an hour (so a week's idle limit is exact to within an hour).
    pub fn renew_every(&self) -> Duration {
        (self.idle / 60_i32).clamp(Duration::SECOND, Duration::HOUR)
    }

    /// The expiry of a session started at `started` and active at `now`.
    pub fn expiry(&self, started: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
        (now + self.idle).min(started + self.max)
    }

    pub fn verdict(
        &self,
        started: OffsetDateTime,
        renewed: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Verdict {
        if now >= started + self.max {
            Verdict::Ended
        } else if now - renewed >= self.renew_every() {
            Verdict::Renew {
                until: self.expiry(started, now),
            }
        } else {
            Verdict::Keep
        }
    }
}

fn unix(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
}

/// Unix milliseconds.
pub fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Logs `username` in on this session: a new id (against session fixation) and a fresh expiry.
pub async fn start(
    session: &Session,
    username: &str,
    policy: SessionPolicy,
) -> Result<(), tower_sessions::session::Error> {
    start_at(session, username, policy, OffsetDateTime::now_utc()).await
}

/// [`start`], as of `now`: the login counts as started then.
pub async fn start_at(
    session: &Session,
    username: &str,
    policy: SessionPolicy,
    now: OffsetDateTime,
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.insert(USER, username).await?;
    session.insert(STARTED, unix_ms(now)).await?;
    session.insert(RENEWED, unix(now)).await?;
    session.set_expiry(Some(Expiry::AtDateTime(policy.expiry(now, now))));
    Ok(())
}

/// A logged-in session as a request found it.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    /// When the user logged in (Unix milliseconds).
    pub started: i64,
    /// When the session ends unless renewed.
    pub expires: OffsetDateTime,
}

/// The session's user, after renewing it when due; `None` when nobody is logged in, or the
/// login is past its maximum age or older than the user's last password change (then the session
/// is deleted).
pub async fn check(
    session: &Session,
    policy: SessionPolicy,
    accounts: &Accounts,
) -> Result<Option<Login>, SessionError> {
    let Some(username) = session.get::<String>(USER).await? else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    // Sessions from before these keys existed count from the first time they are seen.
    let started = match session.get::<i64>(STARTED).await? {
        Some(ms) => from_unix_ms(ms),
        None => {
            session.insert(STARTED, unix_ms(now)).await?;
            now
        }
    };
    let ended_before = accounts
        .sessions_since(&protocol::username_key(&username))
        .await?;
    if ended_before.is_none_or(|since| unix_ms(started) < since) {
        session.flush().await?;
        return Ok(None);
    }
    let renewed = session
        .get::<i64>(RENEWED)
        .await?
        .map_or(OffsetDateTime::UNIX_EPOCH, from_unix);
    let expires = match policy.verdict(started, renewed, now) {
        Verdict::Ended => {
            session.flush().await?;
            return Ok(None);
        }
        Verdict::Renew { until } => {
            session.insert(RENEWED, unix(now)).await?;
            session.set_expiry(Some(Expiry::AtDateTime(until)));
            until
        }
        // As the last renewal set it (the session's own `expiry_date` is the layer's default).
        Verdict::Keep => policy.expiry(started, renewed),
    };
    Ok(Some(Login {
        username,
        started: unix_ms(started),
        expires,
    }))
}

/// The session record's own view, for a connection that outlives its request: the user and
/// when the login started, read from the stored record's data.
pub fn started_of(record: &tower_sessions::session::Record) -> Option<OffsetDateTime> {
    record
        .data
        .get(STARTED)
        .and_then(serde_json::Value::as_i64)
        .map(from_unix_ms)
}

/// Deletes every stored session of user `key` (an account being deleted), inside the caller's
/// transaction; how many. The store keeps each record as one MessagePack blob, so the user is
/// found by reading the records, a page at a time.
pub trait SessionRecords {
    fn delete_records_of(
        &mut self,
        key: &str,
    ) -> impl Future<Output = Result<usize, sqlx::Error>> + Send;
}

/// One body per backend: the store's table is named differently in each (tower-sessions-sqlx-store's
/// defaults, as `startup` makes them).
macro_rules! session_records {
    ($connection:ty, $table:literal) => {
        impl SessionRecords for $connection {
            async fn delete_records_of(&mut self, key: &str) -> Result<usize, sqlx::Error> {
                const PAGE: i64 = 500;
                let mut after = String::new();
                let mut theirs = Vec::new();
                loop {
                    let page: Vec<(String, Vec<u8>)> = sqlx::query_as(concat!(
                        "SELECT id, data FROM ",
                        $table,
                        " WHERE id > $1 ORDER BY id LIMIT $2"
                    ))
                    .bind(&after)
                    .bind(PAGE)
                    .fetch_all(&mut *self)
                    .await?;
                    let Some((last, _)) = page.last() else {
                        break;
                    };
                    after = last.clone();
                    theirs.extend(
                        page.into_iter()
                            .filter(|(_, data)| {
                                user_of(data)
                                    .is_some_and(|user| protocol::username_key(&user) == key)
                            })
                            .map(|(id, _)| id),
                    );
                }
                for id in &theirs {
                    sqlx::query(concat!("DELETE FROM ", $table, " WHERE id = $1"))
                        .bind(id)
                        .execute(&mut *self)
                        .await?;
                }
                Ok(theirs.len())
            }
        }
    };
}

session_records!(sqlx::SqliteConnection, "tower_sessions");
session_records!(sqlx::PgConnection, "tower_sessions.session");

/// The user a stored session record is logged in as (`None` for an anonymous or unreadable one).
fn user_of(data: &[u8]) -> Option<String> {
    let record: tower_sessions::session::Record = rmp_serde::from_slice(data).ok()?;
    match record.data.get(USER)? {
        serde_json::Value::String(user) => Some(user.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SessionPolicy {
        SessionPolicy {
            idle: Duration::days(7),
            max: Duration::days(30),
        }
    }

    #[test]
    fn activity_renews_at_most_hourly_and_never_past_the_maximum() {
        let p = policy();
        let start = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        assert_eq!(
            p.verdict(start, start, start + Duration::minutes(59)),
            Verdict::Keep
        );
        assert_eq!(
            p.verdict(start, start, start + Duration::hours(2)),
            Verdict::Renew {
                until: start + Duration::hours(2) + Duration::days(7)
            }
        );
        let late = start + Duration::days(28);
        assert_eq!(
            p.verdict(start, start, late),
            Verdict::Renew {
                until: start + Duration::days(30)
            },
            "capped by the maximum"
        );
        assert_eq!(
            p.verdict(start, late, start + Duration::days(30)),
            Verdict::Ended
        );
    }

    #[test]
    fn renewal_cadence_follows_the_idle_limit() {
        let short = SessionPolicy {
            idle: Duration::minutes(1),
            max: Duration::days(1),
        };
        assert_eq!(short.renew_every(), Duration::SECOND);
        assert_eq!(policy().renew_every(), Duration::HOUR);
    }
}
