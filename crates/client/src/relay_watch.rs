//! Relay-only mode: notices when the TURN server will not relay for us.
//!
//! With wrong or expired credentials the browser gathers no candidate at all and the connection
//! stays `new` for ever — the user would see "Connecting…" until the connect timeout. This watch
//! turns that into a clear end of the call: a TURN error (`icecandidateerror` with a 4xx code)
//! not followed by a relay candidate within a short grace, or no relay candidate at all within
//! [`RELAY_DEADLINE_MS`] of the start of gathering, or gathering complete without one.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::RtcPeerConnection;

/// How long gathering may run without producing a relay candidate.
pub const RELAY_DEADLINE_MS: u32 = 10_000;
/// After a TURN refusal, how long another server in the list may still produce a candidate.
const AFTER_ERROR_MS: u32 = 1_500;

#[derive(Default)]
struct Watch {
    relay_seen: Cell<bool>,
    deadline_started: Cell<bool>,
    reported: Cell<bool>,
    closed: Cell<bool>,
}

impl Watch {
    fn fail(&self, on_refused: &dyn Fn(String), why: String) {
        if !self.relay_seen.get() && !self.reported.get() && !self.closed.get() {
            self.reported.set(true);
            on_refused(why);
        }
    }
}

type Listener = Closure<dyn FnMut(JsValue)>;

pub struct RelayWatch {
    pc: RtcPeerConnection,
    watch: Rc<Watch>,
    listeners: Vec<(&'static str, Listener)>,
}

fn field(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn later(watch: &Rc<Watch>, on_refused: &Rc<dyn Fn(String)>, ms: u32, why: String) {
    let (watch, on_refused) = (watch.clone(), on_refused.clone());
    wasm_bindgen_futures::spawn_local(async move {
        gloo_timers::future::TimeoutFuture::new(ms).await;
        watch.fail(&*on_refused, why);
    });
}

impl RelayWatch {
    /// Watches `pc` (configured with `iceTransportPolicy: "relay"`); `on_refused` is called at
    /// most once, with what went wrong.
    pub fn new(pc: &RtcPeerConnection, on_refused: impl Fn(String) + 'static) -> Self {
        let on_refused: Rc<dyn Fn(String)> = Rc::new(on_refused);
        let watch = Rc::new(Watch::default());
        let mut listeners: Vec<(&'static str, Listener)> = Vec::new();

        let on_candidate = {
            let watch = watch.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                let candidate = field(&event, "candidate");
                if field(&candidate, "type").as_string().as_deref() == Some("relay") {
                    watch.relay_seen.set(true);
                }
            })
        };
        listeners.push(("icecandidate", on_candidate));

        let on_error = {
            let (watch, on_refused) = (watch.clone(), on_refused.clone());
            Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                // An unsigned short: read as a whole number, so no float formatting is needed.
                let code = field(&event, "errorCode").as_f64().unwrap_or(0.0) as u32;
                let text = field(&event, "errorText").as_string().unwrap_or_default();
                let url = field(&event, "url").as_string().unwrap_or_default();
                web_sys::console::warn_1(&format!("TURN {url}: {code} {text}").into());
                if (400..500).contains(&code) {
                    let why = format!("the TURN server refused us: {code} {text}");
                    later(&watch, &on_refused, AFTER_ERROR_MS, why);
                }
            })
        };
        listeners.push(("icecandidateerror", on_error));

        let on_gathering = {
            let (watch, on_refused, pc) = (watch.clone(), on_refused.clone(), pc.clone());
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                match field(&pc, "iceGatheringState").as_string().as_deref() {
                    Some("gathering") if !watch.deadline_started.get() => {
                        watch.deadline_started.set(true);
                        let why = "no relay candidate in time".to_owned();
                        later(&watch, &on_refused, RELAY_DEADLINE_MS, why);
                    }
                    Some("complete") => {
                        watch.fail(&*on_refused, "gathering ended without a relay".into())
                    }
                    _ => {}
                }
            })
        };
        listeners.push(("icegatheringstatechange", on_gathering));

        for (name, listener) in &listeners {
            let _ = pc.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        }
        Self {
            pc: pc.clone(),
            watch,
            listeners,
        }
    }
}

impl Drop for RelayWatch {
    fn drop(&mut self) {
        self.watch.closed.set(true);
        for (name, listener) in &self.listeners {
            let _ = self
                .pc
                .remove_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        }
    }
}
