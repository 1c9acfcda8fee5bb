//! How an incoming call gets the user's attention: a ring tone, the tab title, and a system
//! notification when the tab is in the background.

use wasm_bindgen::JsValue;
use web_sys::{
    AudioContext, GainNode, Notification, NotificationOptions, NotificationPermission,
    OscillatorNode,
};

/// A British-style double ring: two short bursts, then a pause.
const CADENCE_S: [(f64, f64); 2] = [(0.0, 0.4), (0.6, 1.0)];
const CYCLE_S: f64 = 3.0;
/// The tone is scheduled ahead for this many cycles; the caller gives up well before.
const CYCLES: u32 = 40;
const TONES_HZ: [f32; 2] = [400.0, 450.0];
const VOLUME: f32 = 0.12;

#[derive(Default)]
pub struct Ringer {
    audio: Option<AudioContext>,
    tone: Option<Tone>,
    notification: Option<Notification>,
    saved_title: Option<String>,
}

struct Tone {
    oscillators: Vec<OscillatorNode>,
    gain: GainNode,
}

impl Ringer {
    /// Browsers only let audio start after a user gesture: call this from one (any click), so
    /// a later incoming call can ring.
    pub fn unlock(&mut self) {
        if self.audio.is_none() {
            self.audio = AudioContext::new().ok();
        }
        if let Some(audio) = &self.audio {
            let _ = audio.resume();
        }
    }

    pub fn start(&mut self, title: &str, body: &str) {
        self.stop();
        // Without an earlier gesture the context may stay suspended (silent), but the title and
        // the notification still work.
        self.unlock();
        self.tone = self.audio.as_ref().and_then(|audio| play(audio).ok());
        if let Some(document) = web_sys::window().and_then(|w| w.document()) {
            self.saved_title = Some(document.title());
            document.set_title(title);
            if document.hidden() && permission() == Some(NotificationPermission::Granted) {
                let options = NotificationOptions::new();
                options.set_body(body);
                options.set_tag("duet-call");
                options.set_require_interaction(true);
                self.notification = Notification::new_with_options(title, &options).ok();
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(tone) = self.tone.take() {
            for oscillator in &tone.oscillators {
                let _ = oscillator.stop();
            }
            let _ = tone.gain.disconnect();
        }
        if let Some(notification) = self.notification.take() {
            notification.close();
        }
        if let Some(title) = self.saved_title.take()
            && let Some(document) = web_sys::window().and_then(|w| w.document())
        {
            document.set_title(&title);
        }
    }
}

impl Drop for Ringer {
    fn drop(&mut self) {
        self.stop();
        if let Some(audio) = self.audio.take() {
            let _ = audio.close();
        }
    }
}

fn play(audio: &AudioContext) -> Result<Tone, JsValue> {
    let gain = audio.create_gain()?;
    let level = gain.gain();
    let now = audio.current_time();
    level.set_value_at_time(0.0, now)?;
    for cycle in 0..CYCLES {
        let start = now + f64::from(cycle) * CYCLE_S;
        for (on, off) in CADENCE_S {
            // Short exponential approaches instead of steps, so the bursts do not click.
            level.set_target_at_time(VOLUME, start + on, 0.01)?;
            level.set_target_at_time(0.0, start + off, 0.01)?;
        }
    }
    gain.connect_with_audio_node(&audio.destination())?;
    let mut oscillators = Vec::new();
    for hz in TONES_HZ {
        let oscillator = audio.create_oscillator()?;
        oscillator.frequency().set_value(hz);
        oscillator.connect_with_audio_node(&gain)?;
        oscillator.start()?;
        oscillators.push(oscillator);
    }
    Ok(Tone { oscillators, gain })
}

/// Asks once for permission to show notifications; never waits for the answer.
pub fn request_notification_permission() {
    if permission() == Some(NotificationPermission::Default) {
        let _ = Notification::request_permission();
    }
}

/// `None` where the Notification API does not exist (it throws rather than answering).
fn permission() -> Option<NotificationPermission> {
    let window = web_sys::window()?;
    js_sys::Reflect::has(&window, &JsValue::from_str("Notification"))
        .ok()?
        .then(Notification::permission)
}
