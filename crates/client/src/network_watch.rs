//! Tells the phone when the device's network changes, so a call restarts ICE at once instead of
//! waiting for the old path to time out.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::EventTarget;

/// Listens while it lives: the window's `online` event and, where the browser has it,
/// `navigator.connection`'s `change` (Wi-Fi to cellular and the like).
pub struct NetworkWatch {
    listening: Vec<EventTarget>,
    handler: Closure<dyn FnMut(JsValue)>,
}

impl NetworkWatch {
    pub fn new(on_change: impl Fn() + 'static) -> Self {
        let handler = Closure::<dyn FnMut(JsValue)>::new(move |_| on_change());
        let mut watch = Self {
            listening: Vec::new(),
            handler,
        };
        if let Some(window) = web_sys::window() {
            let connection = js_sys::Reflect::get(&window.navigator(), &"connection".into())
                .ok()
                .and_then(|c| c.dyn_into::<EventTarget>().ok());
            watch.listen(window.into(), "online");
            if let Some(connection) = connection {
                watch.listen(connection, "change");
            }
        }
        watch
    }

    fn listen(&mut self, target: EventTarget, event: &'static str) {
        let added = target
            .add_event_listener_with_callback(event, self.handler.as_ref().unchecked_ref())
            .is_ok();
        if added {
            self.listening.push(target);
        }
    }
}

impl Drop for NetworkWatch {
    fn drop(&mut self) {
        for target in &self.listening {
            for event in ["online", "change"] {
                let _ = target.remove_event_listener_with_callback(
                    event,
                    self.handler.as_ref().unchecked_ref(),
                );
            }
        }
    }
}
