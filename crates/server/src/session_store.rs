//! The session store, and a full disk answered as such.
//!
//! tower-sessions saves a login's session after the handler has answered; when that write fails
//! it replaces the answer with an empty 500. The store here notes a write that failed for lack of
//! space (SQLITE_FULL) in the request it served, and [`storage_full_answer`] turns that request's
//! 500 into the documented 503 `storage_full`.

use std::cell::Cell;

use async_trait::async_trait;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::auth::AuthError;

tokio::task_local! {
    /// Set when a session write of the current request found the disk full.
    static STORAGE_FULL: Cell<bool>;
}

/// The sessions, in the same database as the accounts.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// Runs `$call` on whichever store this is.
macro_rules! on_store {
    ($store:expr, $inner:ident => $call:expr) => {
        match $store {
            Store::Sqlite($inner) => $call,
            Store::Postgres($inner) => $call,
        }
    };
}

impl Store {
    /// The store for `pool`, its table made if missing.
    pub async fn open(pool: &crate::db::Pool) -> Result<Self, sqlx::Error> {
        Ok(match pool {
            crate::db::Pool::Sqlite(pool) => {
                let store = SqliteStore::new(pool.clone());
                store.migrate().await?;
                Self::Sqlite(store)
            }
            crate::db::Pool::Postgres(pool) => {
                let store = PostgresStore::new(pool.clone());
                store.migrate().await?;
                Self::Postgres(store)
            }
        })
    }

    /// Deletes the sessions whose expiry has passed.
    pub async fn delete_expired(&self) -> session_store::Result<()> {
        use tower_sessions::ExpiredDeletion;
        on_store!(self, store => store.delete_expired().await)
    }
}

/// The session store flattens sqlx's error into text: SQLITE_FULL reads "(code: 13) database or
/// disk is full", PostgreSQL's `disk_full` "could not extend file …: No space left on device".
fn note_storage_full<T>(result: session_store::Result<T>) -> session_store::Result<T> {
    if let Err(error) = &result
        && let text = error.to_string()
        && (text.contains("(code: 13)") || text.contains("No space left on device"))
    {
        let _ = STORAGE_FULL.try_with(|full| full.set(true));
    }
    result
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        note_storage_full(on_store!(self, store => store.create(record).await))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        note_storage_full(on_store!(self, store => store.save(record).await))
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        on_store!(self, store => store.load(id).await)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        note_storage_full(on_store!(self, store => store.delete(id).await))
    }
}

/// Outside the session layer: a 500 caused by a full disk becomes 503 `storage_full`.
pub async fn storage_full_answer(request: Request, next: Next) -> Response {
    STORAGE_FULL
        .scope(Cell::new(false), async move {
            let response = next.run(request).await;
            if response.status().is_server_error() && STORAGE_FULL.with(Cell::get) {
                AuthError::StorageFull.into_response()
            } else {
                response
            }
        })
        .await
}
