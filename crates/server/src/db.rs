//! The database: one SQLite file by default, created on first start, schema migrated at start-up.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Sqlite, SqlitePool, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL {url:?}: {source}")]
    Url { url: String, source: sqlx::Error },
    /// Said without the rest of the URL, which may hold a password.
    #[error(
        "the database URL's scheme {scheme:?} is not one Duet can use: this build runs on SQLite \
         (sqlite://<path to file>, created if missing; or leave --database-url unset)"
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

/// Refuses a URL that is not SQLite's before sqlx sees it: sqlx takes any string without its
/// `sqlite:` prefix for a file name, so `postgres://db/duet` would quietly start on a new SQLite
/// file of that name in the working directory.
pub fn check_url(url: &str) -> Result<(), DbError> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    if scheme.eq_ignore_ascii_case("sqlite") {
        return Ok(());
    }
    Err(DbError::UnsupportedScheme {
        scheme: if scheme.contains('/') || scheme.is_empty() {
            "(none)".to_owned()
        } else {
            scheme.to_owned()
        },
    })
}

pub async fn connect(url: &str) -> Result<SqlitePool, DbError> {
    check_url(url)?;
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
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// Begins a transaction that will write. SQLite's default (deferred) transaction starts as a
/// reader and takes the write lock at its first write; if another connection committed in
/// between, that upgrade fails at once with "database is locked" (the busy timeout cannot help:
/// the reader's snapshot is already stale). Two people adding contacts at the same moment got a
/// 500 that way. `BEGIN IMMEDIATE` takes the write lock first, waiting (busy timeout) for it.
pub async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_urls_are_taken() {
        for url in [
            "sqlite://data/duet.db",
            "sqlite::memory:",
            "SQLite:///tmp/x.db",
        ] {
            assert!(check_url(url).is_ok(), "{url}");
        }
        for (url, scheme) in [
            ("postgres://duet:secret@db/duet", "postgres"),
            ("postgresql://db/duet", "postgresql"),
            ("mysql://db/duet", "mysql"),
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
}
