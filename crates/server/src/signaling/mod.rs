//! The signaling relay at `GET /video`.

pub mod hub;
pub mod remote;
pub mod socket;

pub use hub::{Hub, PresenceScope};
pub use socket::Relay;
