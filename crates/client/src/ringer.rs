//! How an incoming call gets the user's attention (a ring tone, the tab title, and a system
//! notification when the tab is in the background), and the ringback tone a caller hears while
//! the other phone rings.

use wasm_bindgen::JsValue;
use web_sys::{
    AudioContext, GainNode, Notification, NotificationOptions, NotificationPermission,
    OscillatorNode,
};

/// A tone's sound: frequencies played together, switched on and off in a repeating cadence.
struct Pattern {
    /// (on, off) seconds within each cycle.
    cadence: &'static [(f64, f64)],
    cycle_s: f64,
    /// Scheduled ahead for this many cycles; the caller gives up well before.
    cycles: u32,
    tones_hz: &'static [f32],
    volume: f32,
}

/// A British-style double ring: two short bursts, then a pause.
const RING: Pattern = Pattern {
    cadence: &[(0.0, 0.4), (0.6, 1.0)],
    cycle_s: 3.0,
    cycles: 40,
    tones_hz: &[400.0, 450.0],
    volume: 0.12,
};

/// The ringback most of Europe and China know (ITU-T E.180): 425 Hz, one second on, four off.
/// Quieter than the ring: it plays into the caller's ear while they wait.
const RINGBACK: Pattern = Pattern {
    cadence: &[(0.0, 1.0)],
    cycle_s: 5.0,
    cycles: 12,
    tones_hz: &[425.0],
    volume: 0.06,
};

/// The pre-call check's test sound: two short rising notes, once.
const TEST_SOUND: Pattern = Pattern {
    cadence: &[(0.0, 0.25), (0.35, 0.6)],
    cycle_s: 1.0,
    cycles: 1,
    tones_hz: &[660.0],
    volume: 0.2,
};

/// Plays the test sound on `audio` (the pre-call check's context, which the chosen speaker
/// plays). Its oscillator runs on silently until the context closes.
pub fn test_sound(audio: &AudioContext) {
    if let Err(error) = play(audio, &TEST_SOUND) {
        web_sys::console::warn_1(&error);
    }
}

#[derive(Default)]
pub struct Ringer {
    audio: Option<AudioContext>,
    tone: Option<Tone>,
    ringback: Option<Tone>,
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
        self.tone = self
            .audio
            .as_ref()
            .and_then(|audio| play(audio, &RING).ok());
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

    /// Starts or stops the caller's ringback tone (the audio was unlocked by the click that
    /// dialled).
    pub fn ringback(&mut self, on: bool) {
        if let Some(tone) = self.ringback.take() {
            tone.stop();
        }
        if on {
            self.ringback = self
                .audio
                .as_ref()
                .and_then(|audio| play(audio, &RINGBACK).ok());
        }
    }

    /// Stops every tone, and puts the title back.
    pub fn stop(&mut self) {
        for tone in [self.tone.take(), self.ringback.take()]
            .into_iter()
            .flatten()
        {
            tone.stop();
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

impl Tone {
    fn stop(self) {
        for oscillator in &self.oscillators {
            let _ = oscillator.stop();
        }
        let _ = self.gain.disconnect();
    }
}

fn play(audio: &AudioContext, pattern: &Pattern) -> Result<Tone, JsValue> {
    let gain = audio.create_gain()?;
    let level = gain.gain();
    let now = audio.current_time();
    level.set_value_at_time(0.0, now)?;
    for cycle in 0..pattern.cycles {
        let start = now + f64::from(cycle) * pattern.cycle_s;
        for (on, off) in pattern.cadence {
            // Short exponential approaches instead of steps, so the bursts do not click.
            level.set_target_at_time(pattern.volume, start + on, 0.01)?;
            level.set_target_at_time(0.0, start + off, 0.01)?;
        }
    }
    gain.connect_with_audio_node(&audio.destination())?;
    let mut oscillators = Vec::new();
    for &hz in pattern.tones_hz {
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
