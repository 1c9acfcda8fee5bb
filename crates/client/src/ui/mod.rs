//! What the user sees. Components are small and named for what they show; they read the
//! [`Phone`](crate::phone::Phone)'s state and send it commands, and never touch WebRTC.

mod call_view;
pub mod chat;
mod check;
mod contacts;
mod devices;
mod header;
mod icons;
mod login;
pub mod quality;
mod recent;

pub use call_view::CallView;
pub use contacts::ContactList;
pub use header::{Header, OfflineBanner};
pub use login::LoginForm;

mod account;
pub use account::AccountMenu;

use leptos::prelude::*;

use crate::i18n::{Lang, Strings};
use crate::phone::Phone;

/// Who is signed in, as far as the page knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    /// Not yet asked (this is what the server renders).
    Checking,
    SignedOut,
    SignedIn(String),
}

impl Session {
    pub fn username(&self) -> Option<&str> {
        match self {
            Self::SignedIn(name) => Some(name),
            _ => None,
        }
    }
}

/// The current language, shared by every component.
#[derive(Clone, Copy)]
pub struct Locale {
    lang: RwSignal<Lang>,
}

impl Locale {
    pub fn new(lang: RwSignal<Lang>) -> Self {
        Self { lang }
    }

    pub fn use_context() -> Self {
        expect_context()
    }

    /// The strings in the current language (tracked: text re-renders on a switch).
    pub fn t(&self) -> &'static Strings {
        self.lang.get().strings()
    }

    pub fn lang(&self) -> RwSignal<Lang> {
        self.lang
    }
}

/// The signed-in page: who is online on one side, the call on the other.
#[component]
pub fn Home() -> impl IntoView {
    let phone = expect_context::<Phone>();
    let call = phone.call();
    // Small screens show one pane at a time; the stylesheet keys off this.
    let mode = Memo::new(move |_| {
        call.with(|state| match state.tag() {
            "idle" => "idle",
            "ended" => "ended",
            _ => "call",
        })
    });
    view! {
        <div class="home" data-mode=mode>
            <ContactList/>
            <CallView/>
        </div>
    }
}

/// A person's initial on a calm colour derived from their name, so faces are easy to tell apart.
#[component]
pub fn Avatar(#[prop(into)] name: String, #[prop(optional)] large: bool) -> impl IntoView {
    let initial = name
        .chars()
        .next()
        .map(|c| crate::text::uppercase(c.encode_utf8(&mut [0; 4])))
        .unwrap_or_default();
    let hue = name
        .chars()
        .fold(0u32, |hash, c| hash.wrapping_mul(31).wrapping_add(c as u32))
        % 360;
    view! {
        <span class="avatar" class:large=large style=format!("--hue: {hue}") aria-hidden="true">
            {initial}
        </span>
    }
}

/// `m:ss`, or `h:mm:ss` for long calls.
pub fn format_duration(ms: f64) -> String {
    let total = (ms.max(0.0) / 1000.0) as u64;
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::format_duration;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(format_duration(-5.0), "0:00");
        assert_eq!(format_duration(61_999.0), "1:01");
        assert_eq!(format_duration(3_600_000.0 + 62_000.0), "1:01:02");
    }
}
