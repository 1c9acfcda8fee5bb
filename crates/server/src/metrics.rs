//! Prometheus metrics, served at `GET /metrics` on `--metrics-addr` only.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use protocol::ErrorCode;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    pub connections: Gauge,
    pub users_online: Gauge,
    pub messages_relayed: Counter,
    pub errors: Family<CodeLabel, Counter>,
    pub logins: Family<OutcomeLabel, Counter>,
    registry: Arc<Registry>,
}

impl Metrics {
    pub fn new() -> Self {
        let connections = Gauge::default();
        let users_online = Gauge::default();
        let messages_relayed = Counter::default();
        let errors = Family::<CodeLabel, Counter>::default();
        let logins = Family::<OutcomeLabel, Counter>::default();
        let mut registry = Registry::with_prefix("duet");
        registry.register(
            "websocket_connections",
            "Open signaling WebSocket connections",
            connections.clone(),
        );
        registry.register(
            "users_online",
            "Users with at least one open connection",
            users_online.clone(),
        );
        registry.register(
            "messages_relayed",
            "Signaling messages delivered to a peer",
            messages_relayed.clone(),
        );
        registry.register(
            "signaling_errors",
            "Error replies sent, by code",
            errors.clone(),
        );
        registry.register("logins", "Login attempts, by outcome", logins.clone());
        // Show every error code from the start, so a dashboard sees zeros rather than gaps.
        for code in ErrorCode::ALL {
            let _ = errors.get_or_create(&CodeLabel {
                code: code.as_str(),
            });
        }
        for outcome in ["succeeded", "failed", "throttled"] {
            let _ = logins.get_or_create(&OutcomeLabel { outcome });
        }
        Self {
            connections,
            users_online,
            messages_relayed,
            errors,
            logins,
            registry: Arc::new(registry),
        }
    }

    pub fn error(&self, code: ErrorCode) {
        self.errors
            .get_or_create(&CodeLabel {
                code: code.as_str(),
            })
            .inc();
    }

    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
