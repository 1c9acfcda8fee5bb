//! Duet's browser app. The modules split by what they know about:
//! `call` (the rules of a call, pure), `rtc` (WebRTC), `signaling` (the socket), `api` (HTTP),
//! `ringer` (attention), `phone` (runs them together), `i18n` (words), `ui` (what users see).

pub mod api;
pub mod app;
pub mod call;
pub mod check;
pub mod devices;
pub mod i18n;
pub mod js_fields;
pub mod network_watch;
pub mod phone;
pub mod quality;
pub mod relay_watch;
pub mod ringer;
pub mod rtc;
pub mod sha256;
pub mod shortcuts;
pub mod signaling;
pub mod talk;
pub mod text;
pub mod transfer;
pub mod ui;
pub mod verify;

pub use app::{App, shell};

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Panic messages in the console for development builds; the release bundle leaves out the
    // formatting they need (a panic there still stops with a wasm `unreachable` error).
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}

/// Trunk's entry point: the page is rendered in the browser from scratch.
#[cfg(feature = "csr")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
