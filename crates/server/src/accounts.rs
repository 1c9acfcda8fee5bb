//! Accounts: creation, password checks and changes. Hashing is argon2id with OWASP's minimum
//! parameters, run on the blocking pool behind a semaphore so a burst of logins can neither
//! stall the async runtime (and with it the signaling relay) nor exhaust memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::db::{BeginWrite, Pool};
use crate::sessions::SessionRecords;
use crate::with_pool;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use protocol::{
    AccountError, check_new_username, normalize_username, username_key, validate_password,
};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Invalid(#[from] AccountError),
    #[error("this username is taken")]
    Taken,
    #[error("there is no user named {0:?}")]
    NoSuchUser(String),
    /// SQLite found no room to write (SQLITE_FULL): nothing was stored, and nothing stored
    /// before is lost; it works again once the disk has space.
    #[error("the disk holding the database is full")]
    StorageFull,
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// Every hashing slot is busy and the queue in front of them is full.
    #[error("the server is busy checking passwords")]
    Busy,
}

impl From<sqlx::Error> for AccountsError {
    fn from(error: sqlx::Error) -> Self {
        if is_storage_full(&error) {
            Self::StorageFull
        } else {
            Self::Database(error)
        }
    }
}

/// A write found the disk full: SQLITE_FULL (13, in the low byte of SQLite's extended codes) or
/// PostgreSQL's `disk_full` (SQLSTATE 53100).
pub fn is_storage_full(error: &sqlx::Error) -> bool {
    let Some(code) = error.as_database_error().and_then(|e| e.code()) else {
        return false;
    };
    code == "53100" || code.parse::<i32>().is_ok_and(|code| code & 0xff == 13)
}

/// What deleting an account removes before the user row: each statement runs with `$1` bound to
/// the user's `users.id`, in this order, in the one transaction of [`Accounts::delete`].
///
/// EVERY TABLE THAT REFERS TO `users(id)` NEEDS ITS LINE HERE (issue #15: contacts, blocks,
/// per-user settings, call records), for example
/// `"DELETE FROM contacts WHERE owner_id = $1 OR contact_id = $1",`.
/// Portable SQL only (SQLite and PostgreSQL): plain `$1`, no SQLite-only functions.
const OWNED_BY_USER: &[&str] = &[
    // Their contacts and requests, and everyone's requests and contacts naming them (a later
    // account of the same name must not inherit them).
    "DELETE FROM contacts WHERE user_id = $1 \
     OR contact_key = (SELECT username_key FROM users WHERE id = $1)",
    "DELETE FROM blocks WHERE user_id = $1",
    // Their side of each call; the other side keeps theirs.
    "DELETE FROM call_records WHERE user_id = $1",
];

/// An update of user `key` found them, or there is no such user.
fn found(rows_affected: u64, key: &str) -> Result<(), AccountsError> {
    if rows_affected == 0 {
        return Err(AccountsError::NoSuchUser(key.to_owned()));
    }
    Ok(())
}

/// A password that passed the rules, hashed, not yet stored.
pub struct NewPassword(String);

#[derive(Clone)]
pub struct Accounts {
    pool: Pool,
    hashing: Arc<Semaphore>,
    /// Requests waiting for a hashing slot, at most `queue_limit`: beyond that a burst gets an
    /// immediate "busy" rather than a queue (and its memory and latency) without end.
    waiting: Arc<AtomicUsize>,
    queue_limit: usize,
    /// A hash of a random password, checked when the user does not exist so that a login for a
    /// missing account costs as long as one with a wrong password (no enumeration by timing).
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    // OWASP: m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_password(password: &str) -> Result<String, AccountsError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountsError::Hashing(e.to_string()))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A place in the queue for a hashing slot, left when dropped (also when the request is
/// cancelled while it waits).
struct InLine<'a>(&'a AtomicUsize);

impl<'a> InLine<'a> {
    fn join(waiting: &'a AtomicUsize, limit: usize) -> Result<Self, AccountsError> {
        waiting
            .try_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .map(|_| Self(waiting))
            .map_err(|_| AccountsError::Busy)
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Accounts {
    /// `hash_concurrency` hashes run at once; `queue_limit` more may wait for a turn.
    pub fn new(
        pool: Pool,
        hash_concurrency: usize,
        queue_limit: usize,
    ) -> Result<Self, AccountsError> {
        let dummy_hash = hash_password("no account has this password")?;
        Ok(Self {
            pool,
            hashing: Arc::new(Semaphore::new(hash_concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue_limit,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// The database the accounts live in (other stores share it).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountsError> {
        let _permit = match self.hashing.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _in_line = InLine::join(&self.waiting, self.queue_limit)?;
                self.hashing
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| AccountsError::Hashing(e.to_string()))?
            }
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AccountsError::Hashing(e.to_string()))
    }

    /// Creates an account and returns the normalised username.
    pub async fn register(&self, username: &str, password: &str) -> Result<String, AccountsError> {
        let username = normalize_username(username)?;
        check_new_username(&username)?;
        validate_password(password)?;
        let key = username_key(&username);
        let password = password.to_owned();
        let hash = self.blocking(move || hash_password(&password)).await??;
        let inserted = with_pool!(&self.pool, pool => sqlx::query(
            "INSERT INTO users (username, username_key, password_hash) VALUES ($1, $2, $3) \
             ON CONFLICT (username_key) DO NOTHING",
        )
        .bind(&username)
        .bind(&key)
        .bind(&hash)
        .execute(pool)
        .await?
        .rows_affected());
        if inserted == 0 {
            return Err(AccountsError::Taken);
        }
        Ok(username)
    }

    /// Checks a password; returns the stored username on success, `None` on any mismatch
    /// (unknown user or wrong password alike, in the same time).
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, AccountsError> {
        let key = normalize_username(username)
            .map(|name| username_key(&name))
            .ok();
        let row: Option<(String, String)> = match &key {
            Some(key) => with_pool!(&self.pool, pool => {
                sqlx::query_as("SELECT username, password_hash FROM users WHERE username_key = $1")
                    .bind(key)
                    .fetch_optional(pool)
                    .await?
            }),
            None => None,
        };
        let (stored_name, hash) = match row {
            Some((name, hash)) => (Some(name), hash),
            None => (None, self.dummy_hash.to_string()),
        };
        let password = password.to_owned();
        let matches = self
            .blocking(move || verify_password(&password, &hash))
            .await?;
        Ok(stored_name.filter(|_| matches))
    }

    /// Checks `password` against the rules and hashes it (on the hashing slots, like a login);
    /// nothing is stored yet.
    pub async fn hash_new_password(&self, password: &str) -> Result<NewPassword, AccountsError> {
        validate_password(password)?;
        let password = password.to_owned();
        let hash = self.blocking(move || hash_password(&password)).await??;
        Ok(NewPassword(hash))
    }

    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), AccountsError> {
        let key = username_key(&normalize_username(username)?);
        let hash = self.hash_new_password(password).await?;
        let now = crate::sessions::unix_ms(time::OffsetDateTime::now_utc());
        self.store_password(&key, &hash, now).await
    }

    /// Makes `hash` the password of user `key`. Every login that started before `since` (Unix
    /// milliseconds) ends (crate::sessions): here and in any server process sharing this database.
    pub async fn store_password(
        &self,
        key: &str,
        hash: &NewPassword,
        since: i64,
    ) -> Result<(), AccountsError> {
        let updated = with_pool!(&self.pool, pool => sqlx::query(
            "UPDATE users SET password_hash = $1, sessions_since = $2 WHERE username_key = $3",
        )
        .bind(&hash.0)
        .bind(since)
        .bind(key)
        .execute(pool)
        .await?
        .rows_affected());
        found(updated, key)
    }

    /// Ends every login of user `key` that started before `since` (Unix milliseconds), as a
    /// password change does, and keeps the password.
    pub async fn end_sessions(&self, key: &str, since: i64) -> Result<(), AccountsError> {
        let updated = with_pool!(&self.pool, pool => {
            sqlx::query("UPDATE users SET sessions_since = $1 WHERE username_key = $2")
                .bind(since)
                .bind(key)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found(updated, key)
    }

    /// Deletes the account `username` and everything of theirs in one transaction, nothing left
    /// half deleted; returns the key the name had. Their open sockets are the caller's to close
    /// (this process's hub); requests with their sessions are refused from the commit on.
    pub async fn delete(&self, username: &str) -> Result<String, AccountsError> {
        let key = username_key(&normalize_username(username)?);
        with_pool!(&self.pool, pool => {
            let mut tx = pool.begin_write().await?;
            // Finds the row; ending its logins is moot once the row is gone.
            let id: Option<i64> = sqlx::query_scalar(
                "UPDATE users SET sessions_since = $1 WHERE username_key = $2 RETURNING id",
            )
            .bind(crate::sessions::unix_ms(time::OffsetDateTime::now_utc()))
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else {
                return Err(AccountsError::NoSuchUser(username.to_owned()));
            };
            for statement in OWNED_BY_USER {
                sqlx::query(statement).bind(id).execute(&mut *tx).await?;
            }
            tx.delete_records_of(&key).await?;
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(key)
    }

    /// Logins of user `key` that started before this (Unix milliseconds) are over; `None` when
    /// there is no such user (any login of theirs is over too).
    pub async fn sessions_since(&self, key: &str) -> Result<Option<i64>, AccountsError> {
        Ok(with_pool!(&self.pool, pool => {
            sqlx::query_scalar("SELECT sessions_since FROM users WHERE username_key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Users whose sessions were ended after `after` (Unix milliseconds), with that time.
    pub async fn sessions_ended_after(
        &self,
        after: i64,
    ) -> Result<Vec<(String, i64)>, AccountsError> {
        Ok(with_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT username_key, sessions_since FROM users WHERE sessions_since > $1 \
             ORDER BY sessions_since LIMIT 1000",
        )
        .bind(after)
        .fetch_all(pool)
        .await?))
    }

    /// Brings stored names and keys in line with today's [`normalize_username`] (names registered
    /// before fullwidth forms were mapped): each user keeps their account and logs in as before,
    /// under the key their name now has. A name whose new key is taken keeps its old one (and
    /// is logged): nobody loses an account to this.
    pub async fn rekey(&self) -> Result<usize, AccountsError> {
        let users: Vec<(i64, String, String)> = with_pool!(&self.pool, pool => {
            sqlx::query_as("SELECT id, username, username_key FROM users")
                .fetch_all(pool)
                .await?
        });
        let mut changed = 0;
        for (id, name, key) in users {
            if name.is_ascii() {
                continue;
            }
            let Ok(new_name) = normalize_username(&name) else {
                continue;
            };
            let new_key = username_key(&new_name);
            if new_key == key && new_name == name {
                continue;
            }
            let updated = with_pool!(&self.pool, pool => sqlx::query(
                "UPDATE users SET username = $1, username_key = $2 WHERE id = $3 AND NOT EXISTS \
                 (SELECT 1 FROM users WHERE username_key = $2 AND id <> $3)",
            )
            .bind(&new_name)
            .bind(&new_key)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
            if updated == 1 {
                changed += 1;
            } else {
                tracing::warn!(%name, %new_key, "cannot re-key a username: the new key is taken");
            }
        }
        Ok(changed)
    }

    pub async fn list(&self) -> Result<Vec<(String, String)>, AccountsError> {
        Ok(with_pool!(&self.pool, pool => {
            sqlx::query_as("SELECT username, created_at FROM users ORDER BY username_key")
                .fetch_all(pool)
                .await?
        }))
    }
}
