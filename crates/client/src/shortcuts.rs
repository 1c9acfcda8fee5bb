//! Keyboard shortcuts: `M` mutes or unmutes, `V` turns the camera off or on and `S` shares the
//! screen or stops sharing it during a call, `Esc` declines a ringing call. Which key does what is decided here, apart from the page, so
//! that it is tested without a browser.

use crate::call::{CallState, Event};

/// What `key` (a `KeyboardEvent.key`) does in `state`, if anything.
pub fn action(key: &str, state: &CallState) -> Option<Event> {
    match (key, state) {
        ("m" | "M", CallState::Active(_)) => Some(Event::ToggleMic),
        ("v" | "V", CallState::Active(_)) => Some(Event::ToggleCamera),
        ("s" | "S", CallState::Active(_)) => Some(Event::ToggleShare),
        ("Escape", CallState::Incoming { .. }) => Some(Event::Decline),
        _ => None,
    }
}

/// Whether a key press belongs to what the user is typing (a field, a text area, a list box,
/// editable text), or to the browser's own shortcuts (a modifier held): shortcuts leave those alone.
pub fn typing(event: &web_sys::KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    let field = event
        .target()
        .and_then(|target| target.dyn_into::<web_sys::HtmlElement>().ok())
        .is_some_and(|element| {
            matches!(element.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                || element.is_content_editable()
        });
    field || event.ctrl_key() || event.meta_key() || event.alt_key() || event.repeat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_act_only_where_they_mean_something() {
        let incoming = CallState::Incoming {
            peer: "bob".into(),
            call_id: "c1".into(),
            video: true,
        };
        assert_eq!(action("Escape", &incoming), Some(Event::Decline));
        assert_eq!(
            action("m", &incoming),
            None,
            "nothing to mute while ringing"
        );
        assert_eq!(action("Escape", &CallState::Idle), None);
        assert_eq!(action("v", &CallState::Idle), None);
        assert_eq!(action("s", &CallState::Idle), None);
        assert_eq!(
            action("s", &incoming),
            None,
            "nothing to share while ringing"
        );
        assert_eq!(action("x", &incoming), None);
    }
}
