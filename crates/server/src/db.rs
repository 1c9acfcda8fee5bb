//! The database: one SQLite file by default, created on first start, or PostgreSQL for several
//! instances that share one; the schema migrated at start-up either way.
//!
//! Each backend keeps its own typed pool, and code that queries runs once per backend (see
//! [`with_pool!`]): every query is compiled against each backend's own parameter and row types,
//! and SQLite keeps the tuning that only it needs (WAL, page cache, `BEGIN IMMEDIATE`).

use std::path::Path;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// A pool of connections to the one database Duet runs on.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    /// Does the database answer a query within `limit`?
    pub async fn check(&self, limit: std::time::Duration) -> Result<(), DbError> {
        let ask = async {
            crate::with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))
        };
        match tokio::time::timeout(limit, ask).await {
            Ok(answer) => answer.map_err(DbError::Connect),
            Err(_) => Err(DbError::Unanswered(limit)),
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// Runs `$body` with `$pool` bound to the backend's own pool (`&SqlitePool` or `&PgPool`): the
/// body is compiled once for each, so one piece of portable SQL serves both with their own types.
#[macro_export]
macro_rules! with_pool {
    ($pool:expr, $name:ident => $body:expr) => {
        match $pool {
            $crate::db::Pool::Sqlite($name) => $body,
            $crate::db::Pool::Postgres($name) => $body,
        }
    };
}

/// Which backend a database URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL {url:?}: {source}")]
    Url { url: String, source: sqlx::Error },
    /// Said without the rest of the URL, which may hold a password.
    #[error(
        "the database URL's scheme {scheme:?} is not one Duet can use: sqlite://<path to file> \
         (created if missing; the default when --database-url is unset) or \
         postgres://<user>@<host>/<database>"
    )]
    UnsupportedScheme { scheme: String },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create the database file {path}: {source}")]
    DataFile {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Connect(sqlx::Error),
    #[error("the database did not answer within {0:?}")]
    Unanswered(std::time::Duration),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Creates a directory (and its missing parents) that only Duet's user can enter: it holds the
/// accounts' password hashes, the sessions and the TLS key. An existing directory is left as the
/// operator made it, with a warning when others can read it.
pub fn private_dir(path: &Path) -> Result<(), DbError> {
    let error = |source| DbError::DataDir {
        path: path.display().to_string(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the data directory is open to other users; chmod 700 it"
            );
        }
    }
    builder.create(path).map_err(error)
}

/// Creates the database file readable by Duet's user only, before SQLite creates it with the
/// umask's mode (SQLite gives its `-wal` and `-shm` files the database file's mode).
fn private_file(path: &Path) -> Result<(), DbError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(DbError::DataFile {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Tells which backend a URL is for, and refuses any other before sqlx sees it: sqlx takes any
/// string without its `sqlite:` prefix for a file name, so `mysql://db/duet` would quietly start
/// on a new SQLite file of that name in the working directory.
pub fn check_url(url: &str) -> Result<Backend, DbError> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    if scheme.eq_ignore_ascii_case("sqlite") {
        return Ok(Backend::Sqlite);
    }
    if scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql") {
        return Ok(Backend::Postgres);
    }
    Err(DbError::UnsupportedScheme {
        scheme: if scheme.contains('/') || scheme.is_empty() {
            "(none)".to_owned()
        } else {
            scheme.to_owned()
        },
    })
}

/// Opens the database `url` names and brings its schema up to date.
pub async fn connect(url: &str) -> Result<Pool, DbError> {
    Ok(match check_url(url)? {
        Backend::Sqlite => Pool::Sqlite(connect_sqlite(url).await?),
        Backend::Postgres => Pool::Postgres(connect_postgres(url).await?),
    })
}

async fn connect_postgres(url: &str) -> Result<PgPool, DbError> {
    // Parsed here so that a malformed URL is said as such, without its password.
    let options = PgConnectOptions::from_str(url).map_err(|source| DbError::Url {
        url: redact_password(url),
        source,
    })?;
    let pool = PgPoolOptions::new()
        // A server process per connection on the database's side: a few per instance is what
        // look-ups of microseconds need, and leaves room for several instances.
        .max_connections(8)
        // A database starting beside Duet gets this long to answer (refused connections are
        // tried again until then); so does every later request waiting for a connection.
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(DbError::Connect)?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}

/// `url` with its password (if any) replaced, fit for an error message or a log line.
fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(unreadable URL)".to_owned(),
    }
}

async fn connect_sqlite(url: &str) -> Result<SqlitePool, DbError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| DbError::Url {
            url: url.to_owned(),
            source,
        })?
        .create_if_missing(true)
        // WAL lets readers (session look-ups) proceed while a login writes.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(std::time::Duration::from_secs(5))
        // Each pooled connection keeps its own page cache, 2 MiB by default: private copies of
        // pages the kernel already caches for the file. 128 KiB each still holds the upper
        // levels of the B-trees that look-ups walk; a leaf read is one `pread` of a cached page.
        .pragma("cache_size", "-128")
        .foreign_keys(true);
    let file = options.get_filename();
    if let Some(parent) = file.parent()
        && !parent.as_os_str().is_empty()
    {
        private_dir(parent)?;
    }
    if file != Path::new(":memory:") {
        private_file(file)?;
    }
    let pool = SqlitePoolOptions::new()
        // Look-ups take microseconds and SQLite runs one writer at a time: four connections
        // keep two cores busy, and each holds its own page cache.
        .max_connections(4)
        // A COMMIT that fails for a full disk is rolled back by SQLite itself; sqlx's ROLLBACK
        // then fails and its count of open transactions stays at one. Reused, such a connection
        // opens its next transaction as a savepoint, whose failure leaves a transaction open
        // for good: every later write on it is never committed, and every other connection is
        // locked out. Closed instead.
        .after_release(|connection, _| {
            Box::pin(async move {
                if !connection.is_in_transaction() {
                    return Ok(true);
                }
                // A dropped transaction's rollback is queued: let it run, then look again.
                connection.ping().await?;
                Ok(!connection.is_in_transaction())
            })
        })
        .connect_with(options)
        .await
        .map_err(DbError::Connect)?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    Ok(pool)
}

/// Begins a transaction that will write. SQLite's default (deferred) transaction starts as a
/// reader and takes the write lock at its first write; if another connection committed in
/// between, that upgrade fails at once with "database is locked" (the busy timeout cannot help:
/// the reader's snapshot is already stale). Two people adding contacts at the same moment got a
/// 500 that way. `BEGIN IMMEDIATE` takes the write lock first, waiting (busy timeout) for it.
/// PostgreSQL's transactions need no such care: rows are locked as they are written.
pub trait BeginWrite {
    type Database: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Database>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Database = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Database = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_and_postgres_urls_are_taken_and_nothing_else() {
        for url in [
            "sqlite://data/duet.db",
            "sqlite::memory:",
            "SQLite:///tmp/x.db",
        ] {
            assert_eq!(check_url(url).expect(url), Backend::Sqlite, "{url}");
        }
        for url in ["postgres://duet:secret@db/duet", "postgresql://db/duet"] {
            assert_eq!(check_url(url).expect(url), Backend::Postgres, "{url}");
        }
        for (url, scheme) in [
            ("mysql://duet:secret@db/duet", "mysql"),
            ("data/duet.db", "(none)"),
            ("", "(none)"),
        ] {
            let error = check_url(url).expect_err(url).to_string();
            assert!(error.contains(&format!("{scheme:?}")), "{url}: {error}");
            assert!(
                !error.contains("secret"),
                "the password is not repeated: {error}"
            );
        }
    }

    #[test]
    fn a_password_is_never_said() {
        assert_eq!(
            redact_password("postgres://duet:secret@db:5432/duet"),
            "postgres://duet:****@db:5432/duet"
        );
        assert_eq!(redact_password("postgres://db/duet"), "postgres://db/duet");
        assert!(!redact_password("postgres://duet:secret@[::1/duet").contains("secret"));
    }

    /// The two sets of migrations move in step: each change exists for both backends.
    #[test]
    fn each_migration_exists_for_both_backends() {
        let names = |dir: &str| {
            let mut names: Vec<String> =
                std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
                    .expect(dir)
                    .map(|entry| entry.expect(dir).file_name().to_string_lossy().into_owned())
                    .collect();
            names.sort();
            names
        };
        let sqlite = names("migrations/sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, names("migrations/postgres"));
    }
}
