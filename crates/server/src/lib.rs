//! Duet's server: accounts and sessions over SQLite or PostgreSQL, the signaling relay, and the
//! app's pages.

pub mod account_api;
pub mod accounts;
pub mod auth;
pub mod calls;
pub mod calls_api;
pub mod cluster;
pub mod config;
pub mod contacts;
pub mod contacts_api;
pub mod db;
pub mod headers;
pub mod listen;
pub mod metrics;
pub mod operator;
pub mod origin;
pub mod proxy;
pub mod session_store;
pub mod sessions;
pub mod signaling;
pub mod site;
pub mod startup;
pub mod state;
pub mod throttle;
pub mod tls;
pub mod turn;
