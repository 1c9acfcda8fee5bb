//! What several Duet instances share through Redis (`--redis-url`): the login and
//! registration throttles ([`crate::throttle::Limiter`]), and the relay and presence
//! ([`crate::signaling::remote`]). Without Redis each instance keeps its
//! own state, and nothing here runs.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Said without the rest of the URL, which may hold a password.
    #[error("invalid Redis URL (redis://[:password@]host:port/[db]): {0}")]
    Url(String),
    #[error("cannot reach Redis at {at}: {source}")]
    Connect {
        at: String,
        source: redis::RedisError,
    },
    #[error("Redis did not answer within {0:?}")]
    Unanswered(Duration),
    #[error("Redis: {0}")]
    Command(#[from] redis::RedisError),
}

/// A connection to Redis that reconnects by itself; cheap to clone (one multiplexed connection).
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    connection: ConnectionManager,
}

impl Redis {
    /// Connects to `url`, or says why not: an instance configured to share its state must not
    /// start on its own without saying so.
    pub async fn connect(url: &str) -> Result<Self, ClusterError> {
        let client = redis::Client::open(url).map_err(|error| {
            // The client's own detail may quote the URL (and its password): only its kind.
            ClusterError::Url(format!("{:?}", error.kind()))
        })?;
        let info = client.get_connection_info();
        let at = format!("{}", info.addr());
        let config = ConnectionManagerConfig::new()
            // Every call waits at most this long while Redis is away: throttles then fall back
            // to this instance's own count rather than holding a login up.
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|source| ClusterError::Connect { at, source })?;
        Ok(Self { client, connection })
    }

    /// The client, for a connection of its own (a subscription).
    pub fn client(&self) -> redis::Client {
        self.client.clone()
    }

    /// The connection, for one command or script (clones share the one connection).
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Does Redis answer within `limit`?
    pub async fn check(&self, limit: Duration) -> Result<(), ClusterError> {
        let mut connection = self.connection();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        match tokio::time::timeout(limit, ping).await {
            Ok(answer) => answer.map(drop).map_err(ClusterError::from),
            Err(_) => Err(ClusterError::Unanswered(limit)),
        }
    }
}
