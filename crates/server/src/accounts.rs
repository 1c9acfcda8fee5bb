//! Accounts: creation, password checks and changes. Hashing is argon2id with OWASP's minimum
//! parameters, run on the blocking pool behind a semaphore so a burst of logins can neither
//! stall the async runtime (and with it the signaling relay) nor exhaust memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use protocol::{AccountError, normalize_username, username_key, validate_password};
use sqlx::SqlitePool;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Invalid(#[from] AccountError),
    #[error("this username is taken")]
    Taken,
    #[error("no such user")]
    NoSuchUser,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// Every hashing slot is busy and the queue in front of them is full.
    #[error("the server is busy checking passwords")]
    Busy,
}

#[derive(Clone)]
pub struct Accounts {
    pool: SqlitePool,
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
        pool: SqlitePool,
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
        validate_password(password)?;
        let key = username_key(&username);
        let password = password.to_owned();
        let hash = self.blocking(move || hash_password(&password)).await??;
        let inserted = sqlx::query(
            "INSERT INTO users (username, username_key, password_hash) VALUES (?, ?, ?) \
             ON CONFLICT (username_key) DO NOTHING",
        )
        .bind(&username)
        .bind(&key)
        .bind(&hash)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
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
            Some(key) => {
                sqlx::query_as("SELECT username, password_hash FROM users WHERE username_key = ?")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?
            }
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

    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), AccountsError> {
        validate_password(password)?;
        let key = username_key(&normalize_username(username)?);
        let password = password.to_owned();
        let hash = self.blocking(move || hash_password(&password)).await??;
        let updated = sqlx::query("UPDATE users SET password_hash = ? WHERE username_key = ?")
            .bind(&hash)
            .bind(&key)
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(AccountsError::NoSuchUser);
        }
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<(String, String)>, AccountsError> {
        Ok(
            sqlx::query_as("SELECT username, created_at FROM users ORDER BY username_key")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
