//! The signaling relay at `GET /video`.

pub mod hub;
pub mod socket;

pub use hub::Hub;
pub use socket::Relay;
