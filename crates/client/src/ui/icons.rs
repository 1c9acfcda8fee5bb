//! Line icons drawn inline, so they follow `currentColor` and need no extra request.

use leptos::prelude::*;

const HANDSET: &str =
    "M5 4h3l2 5-2.5 1.5a11 11 0 0 0 6 6L15 14l5 2v3a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2";

#[component]
fn Svg(children: Children) -> impl IntoView {
    view! {
        <svg
            class="icon"
            viewBox="0 0 24 24"
            width="24"
            height="24"
            fill="none"
            stroke="currentColor"
            stroke-width="2"
            stroke-linecap="round"
            stroke-linejoin="round"
            aria-hidden="true"
            focusable="false"
        >
            {children()}
        </svg>
    }
}

#[component]
pub fn MicIcon(off: bool) -> impl IntoView {
    view! {
        <Svg>
            <rect x="9" y="3" width="6" height="11" rx="3"></rect>
            <path d="M5 11a7 7 0 0 0 14 0M12 18v3"></path>
            {off.then(|| view! { <path d="M3 3l18 18"></path> })}
        </Svg>
    }
}

#[component]
pub fn CameraIcon(off: bool) -> impl IntoView {
    view! {
        <Svg>
            <rect x="2" y="6" width="14" height="12" rx="2"></rect>
            <path d="M16 10l6-3.5v11L16 14"></path>
            {off.then(|| view! { <path d="M2 3l20 18"></path> })}
        </Svg>
    }
}

#[component]
pub fn PhoneIcon() -> impl IntoView {
    view! {
        <Svg>
            <path d=HANDSET></path>
        </Svg>
    }
}

#[component]
pub fn HangUpIcon() -> impl IntoView {
    view! {
        <Svg>
            <path d=HANDSET transform="rotate(135 12 12)"></path>
        </Svg>
    }
}

/// Four corners: full screen (pointing out) or back from it (pointing in).
#[component]
pub fn FullScreenIcon(exit: bool) -> impl IntoView {
    let corners = if exit {
        "M9 4v5H4M15 4v5h5M9 20v-5H4M15 20v-5h5"
    } else {
        "M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5"
    };
    view! {
        <Svg>
            <path d=corners></path>
        </Svg>
    }
}

/// A screen with an arrow leaving it: share the screen (crossed out: stop sharing).
#[component]
pub fn ScreenIcon(stop: bool) -> impl IntoView {
    view! {
        <Svg>
            <rect x="2" y="4" width="20" height="13" rx="2"></rect>
            <path d="M8 21h8M12 17v4M12 14V8M9 11l3-3 3 3"></path>
            {stop.then(|| view! { <path d="M3 3l18 18"></path> })}
        </Svg>
    }
}

/// A small window inside a large one: picture-in-picture (the small one filled while it floats).
#[component]
pub fn PipIcon(on: bool) -> impl IntoView {
    view! {
        <Svg>
            <rect x="2" y="4" width="20" height="16" rx="2"></rect>
            <rect x="12" y="12" width="7" height="5" fill=on.then_some("currentColor")></rect>
        </Svg>
    }
}
