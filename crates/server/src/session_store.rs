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
use tower_sessions_sqlx_store::SqliteStore;

use crate::auth::AuthError;

tokio::task_local! {
    /// Set when a session write of the current request found the disk full.
    static STORAGE_FULL: Cell<bool>;
}

#[derive(Debug, Clone)]
pub struct Store(pub SqliteStore);

/// The session store flattens sqlx's error into text: SQLITE_FULL reads "(code: 13) database or
/// disk is full".
fn note_storage_full<T>(result: session_store::Result<T>) -> session_store::Result<T> {
    if let Err(error) = &result
        && error.to_string().contains("(code: 13)")
    {
        let _ = STORAGE_FULL.try_with(|full| full.set(true));
    }
    result
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        note_storage_full(self.0.create(record).await)
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        note_storage_full(self.0.save(record).await)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.0.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        note_storage_full(self.0.delete(id).await)
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
