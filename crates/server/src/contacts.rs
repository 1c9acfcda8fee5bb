//! The contact book in the database: requests, contacts, blocks, and who may call whom.
//!
//! Every action runs in one transaction (read what is there, then write), and answers with the
//! [`Change`] the signaling hub must apply to users who are online. The SQL stays portable
//! between SQLite and PostgreSQL: `$n` parameters, no engine-specific functions.

use std::collections::{BTreeMap, HashSet};

use crate::db::{BeginWrite, Pool};
use crate::with_pool;
use protocol::{
    AccountError, CallsFrom, Contact, ContactAction, ContactBook, ContactState, normalize_username,
    username_key,
};

use crate::accounts::{AccountsError, is_storage_full};

/// Rows of each kind one user may have: outgoing requests and contacts together, and blocks.
/// A bound, so that no account can grow the database (or a book's answer) without end.
pub const MAX_CONTACTS: i64 = 1000;
pub const MAX_BLOCKS: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    #[error("{0}")]
    Invalid(#[from] AccountError),
    #[error("you cannot add or block yourself")]
    Yourself,
    #[error("there is no request from {0}")]
    NoRequest(String),
    #[error(
        "your contact list is full ({MAX_CONTACTS} contacts and requests, {MAX_BLOCKS} blocks)"
    )]
    Full,
    /// The account this request was made for no longer exists (deleted meanwhile).
    #[error("not logged in")]
    NoSuchUser,
    #[error(transparent)]
    Storage(#[from] AccountsError),
}

impl From<sqlx::Error> for ContactsError {
    fn from(error: sqlx::Error) -> Self {
        Self::Storage(if is_storage_full(&error) {
            AccountsError::StorageFull
        } else {
            AccountsError::Database(error)
        })
    }
}

/// What an action changed for another user, which the hub applies if they are online (and
/// tells other instances of, through Redis).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Nothing the other side may learn of: a request to a name with no account, or to someone
    /// who blocked the sender, or an action that changed nothing.
    Quiet,
    /// The other user's book changed (a request arrived or went away); presence did not.
    Notify {
        other: String,
    },
    /// The two are contacts now.
    Linked {
        other: String,
    },
    /// The two are no longer contacts.
    Unlinked {
        other: String,
    },
    /// One blocked the other (and they are no longer contacts).
    Blocked {
        other: String,
    },
    Unblocked {
        other: String,
    },
}

/// What the hub keeps of an online user: whose presence they share and who may reach them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Circle {
    /// Keys of mutual contacts.
    pub contacts: HashSet<String>,
    /// Keys of everyone this user blocked or was blocked by: neither reaches the other.
    pub blocks: HashSet<String>,
    pub calls_from: CallsFrom,
}

impl Circle {
    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty() && self.blocks.is_empty() && self.calls_from == CallsFrom::Anyone
    }

    /// May `sender` reach this user (call them, or send them any frame)?
    pub fn admits(&self, sender: &str) -> bool {
        !self.blocks.contains(sender)
            && (self.calls_from == CallsFrom::Anyone || self.contacts.contains(sender))
    }
}

/// A signed-in user, as the queries need them.
struct Me {
    id: i64,
    key: String,
}

/// The other side of an action: the name as given, and the account behind it, if any.
struct Other {
    key: String,
    name: String,
    id: Option<i64>,
}

#[derive(Clone)]
pub struct Contacts {
    pool: Pool,
}

fn now_ms() -> i64 {
    crate::sessions::unix_ms(time::OffsetDateTime::now_utc())
}

impl Contacts {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// The whole book of `username`.
    pub async fn book(&self, username: &str) -> Result<ContactBook, ContactsError> {
        with_pool!(&self.pool, pool => {
            let mut db = pool.acquire().await?;
            let me = db.me(username).await?;
            // What I asked for, named as the account now spells it (or as I typed it).
            let mine: Vec<(String, String)> = sqlx::query_as(
                "SELECT c.contact_key, COALESCE(u.username, c.contact_name) FROM contacts c \
                 LEFT JOIN users u ON u.username_key = c.contact_key WHERE c.user_id = $1 \
                 LIMIT $2",
            )
            .bind(me.id)
            .bind(MAX_CONTACTS)
            .fetch_all(&mut *db)
            .await?;
            // Who asked for me, except those I blocked.
            let theirs: Vec<(String, String)> = sqlx::query_as(
                "SELECT u.username_key, u.username FROM contacts c JOIN users u ON u.id = c.user_id \
                 WHERE c.contact_key = $1 AND NOT EXISTS \
                 (SELECT 1 FROM blocks b WHERE b.user_id = $2 AND b.blocked_key = u.username_key) \
                 LIMIT $3",
            )
            .bind(&me.key)
            .bind(me.id)
            .bind(MAX_CONTACTS)
            .fetch_all(&mut *db)
            .await?;
            let blocked: Vec<String> = sqlx::query_scalar(
                "SELECT blocked_name FROM blocks WHERE user_id = $1 ORDER BY blocked_key LIMIT $2",
            )
            .bind(me.id)
            .bind(MAX_BLOCKS)
            .fetch_all(&mut *db)
            .await?;
            let calls_from: String = sqlx::query_scalar("SELECT calls_from FROM users WHERE id = $1")
                .bind(me.id)
                .fetch_one(&mut *db)
                .await?;

            let mut by_key: BTreeMap<String, Contact> = mine
                .into_iter()
                .map(|(key, username)| {
                    let contact = Contact {
                        username,
                        state: ContactState::Outgoing,
                    };
                    (key, contact)
                })
                .collect();
            for (key, username) in theirs {
                by_key
                    .entry(key)
                    .and_modify(|contact| contact.state = ContactState::Mutual)
                    .or_insert(Contact {
                        username,
                        state: ContactState::Incoming,
                    });
            }
            Ok(ContactBook {
                contacts: by_key.into_values().collect(),
                blocked,
                calls_from: CallsFrom::parse(&calls_from).unwrap_or_default(),
            })
        })
    }

    /// What the hub needs of `username` while they are online.
    pub async fn circle(&self, username: &str) -> Result<Circle, ContactsError> {
        with_pool!(&self.pool, pool => {
            let mut db = pool.acquire().await?;
            let me = db.me(username).await?;
            let contacts: Vec<String> = sqlx::query_scalar(
                "SELECT u.username_key FROM contacts c JOIN users u ON u.username_key = c.contact_key \
                 JOIN contacts back ON back.user_id = u.id AND back.contact_key = $2 \
                 WHERE c.user_id = $1 LIMIT $3",
            )
            .bind(me.id)
            .bind(&me.key)
            .bind(MAX_CONTACTS)
            .fetch_all(&mut *db)
            .await?;
            let blocks: Vec<String> = sqlx::query_scalar(
                "SELECT blocked_key FROM blocks WHERE user_id = $1 \
                 UNION SELECT u.username_key FROM blocks b JOIN users u ON u.id = b.user_id \
                 WHERE b.blocked_key = $2",
            )
            .bind(me.id)
            .bind(&me.key)
            .fetch_all(&mut *db)
            .await?;
            let calls_from: String = sqlx::query_scalar("SELECT calls_from FROM users WHERE id = $1")
                .bind(me.id)
                .fetch_one(&mut *db)
                .await?;
            Ok(Circle {
                contacts: contacts.into_iter().collect(),
                blocks: blocks.into_iter().collect(),
                calls_from: CallsFrom::parse(&calls_from).unwrap_or_default(),
            })
        })
    }

    pub async fn set_calls_from(
        &self,
        username: &str,
        calls_from: CallsFrom,
    ) -> Result<(), ContactsError> {
        let updated = with_pool!(&self.pool, pool => {
            sqlx::query("UPDATE users SET calls_from = $1 WHERE username_key = $2")
                .bind(calls_from.as_str())
                .bind(username_key(username))
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(ContactsError::NoSuchUser);
        }
        Ok(())
    }

    /// Does `action` on `name` for `username`, in one transaction.
    pub async fn act(
        &self,
        username: &str,
        action: ContactAction,
        name: &str,
    ) -> Result<Change, ContactsError> {
        with_pool!(&self.pool, pool => {
            let mut tx = pool.begin_write().await?;
            let me = tx.me(username).await?;
            let other = tx.other(&me, name).await?;
            let change = match action {
                ContactAction::Request => tx.request(&me, &other).await?,
                ContactAction::Accept => {
                    if !tx.wants(other.id, &me.key).await? {
                        return Err(ContactsError::NoRequest(other.name));
                    }
                    tx.request(&me, &other).await?
                }
                ContactAction::Decline => {
                    let removed = tx.forget(other.id, &me.key).await?;
                    if removed {
                        Change::Notify { other: other.key }
                    } else {
                        Change::Quiet
                    }
                }
                ContactAction::Remove => tx.remove(&me, &other).await?,
                ContactAction::Block => {
                    let count: i64 =
                        sqlx::query_scalar("SELECT COUNT(*) FROM blocks WHERE user_id = $1")
                            .bind(me.id)
                            .fetch_one(&mut *tx)
                            .await?;
                    if count >= MAX_BLOCKS {
                        return Err(ContactsError::Full);
                    }
                    tx.remove(&me, &other).await?;
                    // Nothing of theirs waits for me either: their request is gone too.
                    sqlx::query(
                        "INSERT INTO blocks (user_id, blocked_key, blocked_name, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, blocked_key) DO NOTHING",
                    )
                    .bind(me.id)
                    .bind(&other.key)
                    .bind(&other.name)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
                    Change::Blocked { other: other.key }
                }
                ContactAction::Unblock => {
                    let removed =
                        sqlx::query("DELETE FROM blocks WHERE user_id = $1 AND blocked_key = $2")
                            .bind(me.id)
                            .bind(&other.key)
                            .execute(&mut *tx)
                            .await?;
                    if removed.rows_affected() == 0 {
                        Change::Quiet
                    } else {
                        Change::Unblocked { other: other.key }
                    }
                }
            };
            tx.commit().await?;
            Ok(change)
        })
    }
}

/// The statements the book's actions are made of, on one connection (or transaction) of either
/// backend: the ones that query have one body per backend (`contact_statements!`), the rest are
/// written once in terms of those.
trait ContactStatements: Send {
    fn me(&mut self, username: &str) -> impl Future<Output = Result<Me, ContactsError>> + Send;

    fn other(
        &mut self,
        me: &Me,
        name: &str,
    ) -> impl Future<Output = Result<Other, ContactsError>> + Send;

    /// Does `query` (`SELECT 1 … WHERE user_id = $1 AND <key column> = $2`) find a row?
    fn row_exists(
        &mut self,
        query: &'static str,
        id: i64,
        key: &str,
    ) -> impl Future<Output = Result<bool, ContactsError>> + Send;

    /// Removes "user `id` wants `key`"; whether there was such a row.
    fn forget(
        &mut self,
        id: Option<i64>,
        key: &str,
    ) -> impl Future<Output = Result<bool, ContactsError>> + Send;

    fn request(
        &mut self,
        me: &Me,
        other: &Other,
    ) -> impl Future<Output = Result<Change, ContactsError>> + Send;

    /// Does user `id` (if there is one) want `key` as a contact?
    fn wants(
        &mut self,
        id: Option<i64>,
        key: &str,
    ) -> impl Future<Output = Result<bool, ContactsError>> + Send {
        async move {
            let Some(id) = id else {
                return Ok(false);
            };
            self.row_exists(
                "SELECT 1 FROM contacts WHERE user_id = $1 AND contact_key = $2",
                id,
                key,
            )
            .await
        }
    }

    /// Does user `id` block `key`?
    fn blocks(
        &mut self,
        id: i64,
        key: &str,
    ) -> impl Future<Output = Result<bool, ContactsError>> + Send {
        self.row_exists(
            "SELECT 1 FROM blocks WHERE user_id = $1 AND blocked_key = $2",
            id,
            key,
        )
    }

    /// Ends the contact or request between `me` and `other`, both ways.
    fn remove(
        &mut self,
        me: &Me,
        other: &Other,
    ) -> impl Future<Output = Result<Change, ContactsError>> + Send {
        async move {
            let mine = self.forget(Some(me.id), &other.key).await?;
            let theirs = self.forget(other.id, &me.key).await?;
            Ok(match (mine, theirs) {
                (true, true) => Change::Unlinked {
                    other: other.key.clone(),
                },
                (false, false) => Change::Quiet,
                _ if other.id.is_some() => Change::Notify {
                    other: other.key.clone(),
                },
                _ => Change::Quiet,
            })
        }
    }
}

macro_rules! contact_statements {
    ($connection:ty) => {
        impl ContactStatements for $connection {
            async fn me(&mut self, username: &str) -> Result<Me, ContactsError> {
                let key = username_key(username);
                let id: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM users WHERE username_key = $1")
                        .bind(&key)
                        .fetch_optional(&mut *self)
                        .await?;
                Ok(Me {
                    id: id.ok_or(ContactsError::NoSuchUser)?,
                    key,
                })
            }

            async fn other(&mut self, me: &Me, name: &str) -> Result<Other, ContactsError> {
                let name = normalize_username(name)?;
                let key = username_key(&name);
                if key == me.key {
                    return Err(ContactsError::Yourself);
                }
                let found: Option<(i64, String)> =
                    sqlx::query_as("SELECT id, username FROM users WHERE username_key = $1")
                        .bind(&key)
                        .fetch_optional(&mut *self)
                        .await?;
                Ok(match found {
                    Some((id, name)) => Other {
                        key,
                        name,
                        id: Some(id),
                    },
                    None => Other {
                        key,
                        name,
                        id: None,
                    },
                })
            }

            async fn row_exists(
                &mut self,
                query: &'static str,
                id: i64,
                key: &str,
            ) -> Result<bool, ContactsError> {
                let found: Option<i32> = sqlx::query_scalar(query)
                    .bind(id)
                    .bind(key)
                    .fetch_optional(&mut *self)
                    .await?;
                Ok(found.is_some())
            }

            async fn forget(&mut self, id: Option<i64>, key: &str) -> Result<bool, ContactsError> {
                let Some(id) = id else {
                    return Ok(false);
                };
                let removed =
                    sqlx::query("DELETE FROM contacts WHERE user_id = $1 AND contact_key = $2")
                        .bind(id)
                        .bind(key)
                        .execute(&mut *self)
                        .await?;
                Ok(removed.rows_affected() > 0)
            }

            async fn request(&mut self, me: &Me, other: &Other) -> Result<Change, ContactsError> {
                let count: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE user_id = $1")
                        .bind(me.id)
                        .fetch_one(&mut *self)
                        .await?;
                if count >= MAX_CONTACTS {
                    return Err(ContactsError::Full);
                }
                // Asking for someone is wanting them: a block of mine on them ends.
                sqlx::query("DELETE FROM blocks WHERE user_id = $1 AND blocked_key = $2")
                    .bind(me.id)
                    .bind(&other.key)
                    .execute(&mut *self)
                    .await?;
                let inserted = sqlx::query(
                    "INSERT INTO contacts (user_id, contact_key, contact_name, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, contact_key) DO NOTHING",
                )
                .bind(me.id)
                .bind(&other.key)
                .bind(&other.name)
                .bind(now_ms())
                .execute(&mut *self)
                .await?;
                let Some(their_id) = other.id else {
                    return Ok(Change::Quiet);
                };
                // They blocked me: my request waits where they never see it, and I am not told.
                if self.blocks(their_id, &me.key).await? {
                    return Ok(Change::Quiet);
                }
                if self.wants(other.id, &me.key).await? {
                    return Ok(Change::Linked {
                        other: other.key.clone(),
                    });
                }
                Ok(if inserted.rows_affected() > 0 {
                    Change::Notify {
                        other: other.key.clone(),
                    }
                } else {
                    Change::Quiet
                })
            }
        }
    };
}

contact_statements!(sqlx::SqliteConnection);
contact_statements!(sqlx::PgConnection);
