//! Tells the phone when the device's network changes, so a call restarts ICE at once instead of
//! waiting for the old path to time out.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::EventTarget;

use crate::js_fields::text;

/// Listens while it lives: the window's `online` event and, where the browser reports a
/// connection type, a change of `navigator.connection.type` (Wi-Fi to cellular and the like).
///
/// Why not every `change` of `navigator.connection`: it also fires whenever the browser's
/// estimates of bandwidth and round-trip time move, which would restart a healthy call's ICE for
/// nothing. Desktop Chromium reports no `type` at all; there `online` is the signal.
pub struct NetworkWatch {
    window: Option<EventTarget>,
    connection: Option<EventTarget>,
    on_online: Closure<dyn FnMut(JsValue)>,
    on_connection: Closure<dyn FnMut(JsValue)>,
}

impl NetworkWatch {
    pub fn new(on_change: impl Fn() + 'static) -> Self {
        let on_change = Rc::new(on_change);
        let window = web_sys::window();
        let connection = window.as_ref().and_then(|window| {
            js_sys::Reflect::get(&window.navigator(), &"connection".into())
                .ok()
                .and_then(|c| c.dyn_into::<EventTarget>().ok())
        });
        let on_online = {
            let on_change = on_change.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| on_change())
        };
        let on_connection = {
            let last_type = RefCell::new(connection.as_ref().and_then(|c| text(c, "type")));
            let watched = connection.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                let now = watched.as_ref().and_then(|c| text(c, "type"));
                if now.is_some() && *last_type.borrow() != now {
                    *last_type.borrow_mut() = now;
                    on_change();
                }
            })
        };
        let window: Option<EventTarget> = window.map(Into::into);
        if let Some(window) = &window {
            let _ = window
                .add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
        }
        if let Some(connection) = &connection {
            let _ = connection
                .add_event_listener_with_callback("change", on_connection.as_ref().unchecked_ref());
        }
        Self {
            window,
            connection,
            on_online,
            on_connection,
        }
    }
}

impl Drop for NetworkWatch {
    fn drop(&mut self) {
        if let Some(window) = &self.window {
            let _ = window.remove_event_listener_with_callback(
                "online",
                self.on_online.as_ref().unchecked_ref(),
            );
        }
        if let Some(connection) = &self.connection {
            let _ = connection.remove_event_listener_with_callback(
                "change",
                self.on_connection.as_ref().unchecked_ref(),
            );
        }
    }
}
