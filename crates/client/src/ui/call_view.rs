use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::call::{Active, CallState, EndReason, Event};
use crate::i18n::{Strings, fill};
use crate::phone::{Phone, SharedStream};
use crate::ui::chat::{self, ChatDock};
use crate::ui::check::DeviceCheckButton;
use crate::ui::devices::DeviceMenu;
use crate::ui::icons::{
    CameraIcon, FullScreenIcon, HangUpIcon, MicIcon, PhoneIcon, PipIcon, ScreenIcon,
};
use crate::ui::quality::{PoorConnectionBanner, QualityIndicator};
use crate::ui::{Avatar, Locale, format_duration};

/// Which pane the call area shows. Connecting and in-call share one, so the video elements
/// survive the moment the media starts flowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pane {
    Idle,
    Outgoing,
    Incoming,
    Active,
    Ended,
}

/// The call area. Its root carries the call's state for tests and styles.
#[component]
pub fn CallView() -> impl IntoView {
    let phone = expect_context::<Phone>();
    let call = phone.call();
    let tag = Memo::new(move |_| call.with(CallState::tag));
    let reason = Memo::new(move |_| {
        call.with(|state| match state {
            CallState::Ended { reason, .. } => Some(reason.tag()),
            _ => None,
        })
    });
    let pane = Memo::new(move |_| {
        call.with(|state| match state {
            CallState::Idle => Pane::Idle,
            CallState::Outgoing { .. } => Pane::Outgoing,
            CallState::Incoming { .. } => Pane::Incoming,
            CallState::Active(_) => Pane::Active,
            CallState::Ended { .. } => Pane::Ended,
        })
    });
    // Every change of the call said in words, in one live region that stays in the page while
    // the panes change around it: screen readers announce a change of a region's text, but not
    // reliably a region that arrives together with its text (as each pane's own status does).
    let locale = Locale::use_context();
    let announcement = move || {
        let t = locale.t();
        call.with(|state| match state {
            CallState::Idle => String::new(),
            CallState::Outgoing { peer, .. } => fill(t.calling_name, peer),
            CallState::Incoming { peer, .. } => fill(t.incoming_name, peer),
            CallState::Active(call) => {
                link_status(t, call.started_at_ms().is_some(), call.is_reconnecting()).to_owned()
            }
            CallState::Ended { peer, reason, .. } => t.end_reason(*reason, peer),
        })
    };
    // A device that went away mid-call, and the one the call goes on with: said apart from the
    // call's state, which has not changed.
    let device_notice = phone.device_notice();
    // Chat and files belong to the call: kept through the ended card, forgotten after it.
    let talk = chat::install(phone);
    let in_call = move || pane.get_untracked() == Pane::Active;
    view! {
        <section
            class="stage card"
            data-testid="call-view"
            data-state=tag
            data-reason=reason
            on:dragover=chat::drag_over
            on:drop=move |event| {
                if in_call() { chat::drop_files(talk, event) } else { event.prevent_default() }
            }
        >
            {move || match pane.get() {
                Pane::Idle => view! { <IdleHint/> }.into_any(),
                Pane::Outgoing => view! { <OutgoingCall/> }.into_any(),
                Pane::Incoming => view! { <IncomingCall/> }.into_any(),
                Pane::Active => ().into_any(),
                Pane::Ended => view! { <CallEnded/> }.into_any(),
            }}
            // Built hidden while the call rings, so that answering it shows a pane that is
            // already there: building it took tens of milliseconds of the main thread right
            // when the first frame was due (docs/benchmarks.md).
            <Show when=move || matches!(pane.get(), Pane::Outgoing | Pane::Incoming | Pane::Active)>
                <InCall shown=Signal::derive(move || pane.get() == Pane::Active)/>
            </Show>
            <Show when=move || pane.get() != Pane::Idle>
                <ChatDock shown=Signal::derive(move || {
                    matches!(pane.get(), Pane::Active | Pane::Ended)
                })/>
            </Show>
            <p class="visually-hidden" role="status" data-testid="call-announcement">
                {announcement}
            </p>
            <p class="device-notice" role="status" data-testid="device-notice">
                {device_notice}
            </p>
        </section>
    }
}

/// The state of a call's link in words: connecting until it first connects, then connected or
/// reconnecting.
fn link_status(strings: &'static Strings, connected: bool, reconnecting: bool) -> &'static str {
    match (connected, reconnecting) {
        (false, _) => strings.connecting,
        (true, false) => strings.connected,
        (true, true) => strings.reconnecting,
    }
}

/// A button that takes the keyboard focus when its pane appears, so every state of the call
/// has its main control one key press away.
pub(super) fn focused_when_shown() -> NodeRef<html::Button> {
    focused_when(Signal::stored(true))
}

/// A button that takes the keyboard focus whenever `shown` turns true (for a pane that is built
/// before it is shown).
fn focused_when(shown: Signal<bool>) -> NodeRef<html::Button> {
    let button = NodeRef::<html::Button>::new();
    Effect::new(move |_| {
        if let (true, Some(button)) = (shown.get(), button.get()) {
            let _ = button.focus();
        }
    });
    button
}

/// The peer of the current call ("" when there is none).
fn peer_memo(phone: Phone) -> Memo<String> {
    let call = phone.call();
    Memo::new(move |_| call.with(|s| s.peer().unwrap_or_default().to_owned()))
}

#[component]
fn IdleHint() -> impl IntoView {
    let locale = Locale::use_context();
    view! {
        <div class="call-card idle">
            <div class="idle-art" aria-hidden="true">
                <span></span>
                <span></span>
            </div>
            <h2>{move || locale.t().idle_heading}</h2>
            <p class="muted">{move || locale.t().idle_hint}</p>
            <DeviceCheckButton/>
            <DeviceMenu/>
        </div>
    }
}

#[component]
fn OutgoingCall() -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let call = phone.call();
    let peer = peer_memo(phone);
    let ringing =
        Memo::new(move |_| call.with(|s| matches!(s, CallState::Outgoing { ringing: true, .. })));
    let cancel = focused_when_shown();
    let answered = phone.answered();
    view! {
        <div class="call-card">
            <div class="pulse" class:answered=answered>
                <Avatar name=peer.get_untracked() large=true/>
            </div>
            <h2>{move || fill(locale.t().calling_name, &peer.get())}</h2>
            <p class="muted">
                {move || if ringing.get() { locale.t().ringing } else { locale.t().waiting }}
            </p>
            // The camera opens while it rings (the call connects sooner): show it, so nobody is
            // filmed unawares.
            <Show when=move || phone.local_stream().with(Option::is_some)>
                <div class="ringing-preview">
                    <Video
                        testid="ringing-preview"
                        label=Signal::derive(move || locale.t().you.to_owned())
                        stream=phone.local_stream()
                        local=true
                    />
                </div>
            </Show>
            <div class="call-actions">
                <button
                    type="button"
                    class="btn danger round-label"
                    data-testid="cancel"
                    node_ref=cancel
                    on:click=move |_| phone.act(Event::Cancel)
                >
                    <HangUpIcon/>
                    <span>{move || locale.t().cancel}</span>
                </button>
            </div>
        </div>
    }
}

#[component]
fn IncomingCall() -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let peer = peer_memo(phone);
    let call = phone.call();
    let video =
        Memo::new(move |_| call.with(|s| matches!(s, CallState::Incoming { video: true, .. })));
    // Answering is one key press away.
    let accept = focused_when_shown();
    let answered = phone.answered();
    view! {
        <div
            class="call-card incoming"
            role="alertdialog"
            aria-labelledby="incoming-title"
            aria-describedby="incoming-kind"
        >
            <div class="pulse ringing" class:answered=answered>
                <Avatar name=peer.get_untracked() large=true/>
            </div>
            <h2 id="incoming-title">{move || fill(locale.t().incoming_name, &peer.get())}</h2>
            <p id="incoming-kind" class="muted" data-testid="incoming-kind">
                {move || if video.get() { locale.t().video_call } else { locale.t().voice_call }}
            </p>
            <div class="call-actions">
                <button
                    type="button"
                    class="btn danger round-label"
                    data-testid="decline"
                    aria-keyshortcuts="Escape"
                    on:click=move |_| phone.act(Event::Decline)
                >
                    <HangUpIcon/>
                    <span>{move || locale.t().decline}</span>
                </button>
                <button
                    type="button"
                    class="btn success round-label"
                    data-testid="accept"
                    node_ref=accept
                    on:click=move |_| phone.act(Event::Accept)
                >
                    <PhoneIcon/>
                    <span>{move || locale.t().accept}</span>
                </button>
                // A video call may be answered without the camera.
                <button
                    type="button"
                    class="btn success round-label"
                    data-testid="accept-voice"
                    hidden=move || !video.get()
                    on:click=move |_| phone.act(Event::AcceptVoice)
                >
                    <PhoneIcon/>
                    <span>{move || locale.t().answer_voice}</span>
                </button>
            </div>
        </div>
    }
}

/// Connecting and talking: the peer large, ourselves small, and the controls. Built while the
/// call rings and `shown` once it is answered.
#[component]
fn InCall(shown: Signal<bool>) -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let call = phone.call();
    let active = Memo::new(move |_| call.with(|s| s.active().cloned()));
    let started_at =
        Memo::new(move |_| active.with(|a| a.as_ref().and_then(Active::started_at_ms)));
    let reconnecting =
        Memo::new(move |_| active.with(|a| a.as_ref().is_some_and(Active::is_reconnecting)));
    let field = move |read: fn(&Active) -> bool| {
        Memo::new(move |_| active.with(|a| a.as_ref().is_some_and(read)))
    };
    let mic_on = field(|a| a.local.audio);
    let camera_on = field(|a| a.local.video);
    let remote_muted = field(|a| !a.remote.audio);
    let remote_camera_off = field(|a| !a.remote.video);
    // Not hang-up: a stray Enter must not end the call.
    let mic = focused_when(shown);
    let peer = peer_memo(phone);

    let status = move || link_status(locale.t(), started_at.get().is_some(), reconnecting.get());

    // The call timer ticks only while this pane is shown.
    let now = RwSignal::new(0.0);
    Effect::new(move |_| {
        now.set(js_sys::Date::now());
        let tick = set_interval_with_handle(
            move || now.set(js_sys::Date::now()),
            std::time::Duration::from_millis(1000),
        );
        if let Ok(tick) = tick {
            on_cleanup(move || tick.clear());
        }
    });
    let elapsed = move || {
        started_at
            .get()
            .map(|start| format_duration(now.get() - start))
    };

    // The call (both pictures and the controls) fills the screen; the browser's own way out
    // (Esc) is followed too, since the element hears `fullscreenchange` either way.
    let in_call = NodeRef::<html::Div>::new();
    let full_screen = RwSignal::new(false);
    let full_screen_label = move || {
        if full_screen.get() {
            locale.t().exit_full_screen
        } else {
            locale.t().full_screen
        }
    };
    // Where the browser cannot share a screen (phones), the button is not there at all.
    let can_share = crate::rtc::can_share_screen();
    let sharing = phone.sharing();
    let share_label = move || {
        if sharing.get() {
            locale.t().stop_sharing
        } else {
            locale.t().share_screen
        }
    };
    let peer_sharing = phone.peer_sharing();
    // The peer in a floating window of the browser's, over other tabs and apps; only where the
    // browser can, and it says when the window closes (its own "back to tab" button too).
    let can_float = can_float();
    let remote_video = NodeRef::<html::Video>::new();
    let floating = RwSignal::new(false);
    let toggle_full_screen = move |_| {
        let document = document();
        if document.fullscreen_element().is_some() {
            document.exit_fullscreen();
        } else if let Some(in_call) = in_call.get() {
            let _ = in_call.request_fullscreen();
        }
    };
    view! {
        <div
            class="in-call"
            hidden=move || !shown.get()
            node_ref=in_call
            on:fullscreenchange=move |_| full_screen.set(document().fullscreen_element().is_some())
            class:connecting=move || started_at.get().is_none()
            data-phase=move || active.with(|a| a.as_ref().map(|a| a.phase.tag()))
        >
            <div class="remote" class:screen=move || peer_sharing.get()>
                <Video
                    testid="remote-video"
                    label=Signal::derive(move || peer.get())
                    stream=phone.remote_stream()
                    local=false
                    node_ref=remote_video
                    on_float=floating
                    speaker=phone.speaker()
                />
                // A shared screen is shown even with the sharer's camera off.
                <Show when=move || remote_camera_off.get() && !peer_sharing.get()>
                    <div class="camera-off-cover" data-testid="remote-camera-off">
                        <Avatar name=peer.get_untracked() large=true/>
                        <p>{move || fill(locale.t().remote_camera_off, &peer.get())}</p>
                    </div>
                </Show>
                <Show when=move || started_at.get().is_none()>
                    <div class="connecting-cover">
                        <span class="spinner" aria-hidden="true"></span>
                        {move || locale.t().connecting}
                    </div>
                </Show>
            </div>
            <div class="call-info">
                <span class="peer-name">{move || peer.get()}</span>
                <span class="timer" title=move || locale.t().call_duration>
                    {elapsed}
                </span>
                <span class="link-state">{status}</span>
                <QualityIndicator report=phone.quality()/>
                <Show when=move || peer_sharing.get()>
                    <span class="badge sharing" data-testid="remote-sharing">
                        <ScreenIcon stop=false/>
                        {move || fill(locale.t().remote_sharing, &peer.get())}
                    </span>
                </Show>
                <Show when=move || remote_muted.get()>
                    <span class="badge" data-testid="remote-muted">
                        <MicIcon off=true/>
                        {move || fill(locale.t().remote_muted, &peer.get())}
                    </span>
                </Show>
            </div>
            <VerificationCode/>
            <Show when=move || phone.poor_for_a_while().get() && camera_on.get()>
                <PoorConnectionBanner on_camera_off=Callback::new(move |()| {
                    phone.act(Event::ToggleCamera)
                })/>
            </Show>
            <div class="local">
                <Video
                    testid="local-video"
                    label=Signal::derive(move || locale.t().you.to_owned())
                    stream=phone.local_stream()
                    local=true
                />
                <Show when=move || !camera_on.get()>
                    <div class="camera-off-cover small">
                        <CameraIcon off=true/>
                        <span class="visually-hidden">{move || locale.t().your_camera_off}</span>
                    </div>
                </Show>
            </div>
            <div class="controls" role="toolbar" aria-label=move || peer.get()>
                <button
                    type="button"
                    class="btn round"
                    class:off=move || !mic_on.get()
                    data-testid="toggle-mic"
                    node_ref=mic
                    aria-keyshortcuts="M"
                    aria-pressed=move || (!mic_on.get()).to_string()
                    aria-label=move || if mic_on.get() { locale.t().mute } else { locale.t().unmute }
                    title=move || if mic_on.get() { locale.t().mute } else { locale.t().unmute }
                    on:click=move |_| phone.act(Event::ToggleMic)
                >
                    {move || view! { <MicIcon off=!mic_on.get()/> }}
                </button>
                <button
                    type="button"
                    class="btn round"
                    class:off=move || !camera_on.get()
                    data-testid="toggle-camera"
                    aria-keyshortcuts="V"
                    aria-pressed=move || (!camera_on.get()).to_string()
                    aria-label=move || {
                        if camera_on.get() { locale.t().camera_off } else { locale.t().camera_on }
                    }
                    title=move || {
                        if camera_on.get() { locale.t().camera_off } else { locale.t().camera_on }
                    }
                    on:click=move |_| phone.act(Event::ToggleCamera)
                >
                    {move || view! { <CameraIcon off=!camera_on.get()/> }}
                </button>
                <Show when=move || can_share>
                    <button
                        type="button"
                        class="btn round"
                        class:sharing=move || sharing.get()
                        data-testid="toggle-share"
                        aria-keyshortcuts="S"
                        aria-pressed=move || sharing.get().to_string()
                        aria-label=share_label
                        title=share_label
                        on:click=move |_| phone.act(Event::ToggleShare)
                    >
                        {move || view! { <ScreenIcon stop=sharing.get()/> }}
                    </button>
                </Show>
                <button
                    type="button"
                    class="btn round danger"
                    data-testid="hangup"
                    aria-label=move || locale.t().hang_up
                    title=move || locale.t().hang_up
                    on:click=move |_| phone.act(Event::HangUp)
                >
                    <HangUpIcon/>
                </button>
                <button
                    type="button"
                    class="btn round"
                    data-testid="full-screen"
                    aria-pressed=move || full_screen.get().to_string()
                    aria-label=full_screen_label
                    title=full_screen_label
                    on:click=toggle_full_screen
                >
                    {move || view! { <FullScreenIcon exit=full_screen.get()/> }}
                </button>
                <Show when=move || can_float>
                    <button
                        type="button"
                        class="btn round"
                        data-testid="picture-in-picture"
                        aria-pressed=move || floating.get().to_string()
                        // One name; whether it floats is the pressed state.
                        aria-label=move || locale.t().picture_in_picture
                        title=move || locale.t().picture_in_picture
                        on:click=move |_| toggle_float(remote_video.get_untracked())
                    >
                        {move || view! { <PipIcon on=floating.get()/> }}
                    </button>
                </Show>
                <DeviceMenu/>
                <details class="shortcuts" data-testid="shortcuts">
                    <summary>"?"<span class="visually-hidden">{move || locale.t().shortcuts}</span></summary>
                    <p>{move || locale.t().shortcut_keys}</p>
                </details>
            </div>
        </div>
    }
}

/// The code both users read aloud; different codes mean someone sits in the middle.
#[component]
fn VerificationCode() -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let peer = peer_memo(phone);
    let code = phone.verification();
    view! {
        <Show when=move || code.with(Option::is_some)>
            <div class="verification" data-testid="verification">
                <span class="verification-label" aria-hidden="true">
                    {move || locale.t().verification_code}
                </span>
                <output
                    class="verification-code"
                    data-testid="verification-code"
                    aria-label=move || locale.t().verification_code
                >
                    {move || code.get().unwrap_or_default()}
                </output>
                <p class="muted verification-hint">
                    {move || fill(locale.t().verification_hint, &peer.get())}
                </p>
            </div>
        </Show>
    }
}

/// A `<video>` showing a stream from the phone. Our own preview is muted (no echo) and
/// mirrored, as people expect of a mirror.
#[component]
pub(super) fn Video(
    testid: &'static str,
    label: Signal<String>,
    stream: ReadSignal<Option<SharedStream>>,
    local: bool,
    /// For a parent that acts on the element (picture-in-picture).
    #[prop(optional)]
    node_ref: Option<NodeRef<html::Video>>,
    /// Told whether the video floats in picture-in-picture (it enters or leaves).
    #[prop(optional)]
    on_float: Option<RwSignal<bool>>,
    /// The speaker to play through (the peer's video; our own preview is silent).
    #[prop(optional)]
    speaker: Option<ReadSignal<Option<String>>>,
) -> impl IntoView {
    let float = move |on: bool| {
        if let Some(signal) = on_float {
            signal.set(on);
        }
    };
    let video = node_ref.unwrap_or_default();
    Effect::new(move |_| {
        if let (Some(video), Some(id)) = (video.get(), speaker.and_then(|s| s.get())) {
            crate::devices::play_through(&video, &id);
        }
    });
    Effect::new(move |_| {
        let stream = stream.get();
        if let Some(video) = video.get() {
            video.set_src_object(stream.as_deref());
            if stream.is_some() {
                // Autoplay can be refused; the user's click on call/accept normally allows it.
                let _ = video.play();
            }
        }
    });
    view! {
        <video
            node_ref=video
            data-testid=testid
            aria-label=label
            class:mirrored=local
            autoplay=true
            playsinline=true
            muted=local
            prop:muted=local
            on:enterpictureinpicture=move |_: web_sys::Event| float(true)
            on:leavepictureinpicture=move |_: web_sys::Event| float(false)
        ></video>
    }
}

#[component]
fn CallEnded() -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let call = phone.call();
    let ended = Memo::new(move |_| {
        call.with(|s| match s {
            CallState::Ended {
                peer,
                reason,
                video,
                ..
            } => Some((peer.clone(), *reason, *video)),
            _ => None,
        })
    });
    let peer = move || ended.with(|e| e.as_ref().map(|(p, ..)| p.clone()).unwrap_or_default());
    let video = move || ended.with(|e| e.as_ref().is_some_and(|(_, _, v)| *v));
    let media_denied = move || ended.with(|e| matches!(e, Some((_, EndReason::MediaDenied, true))));
    let sentence = move || {
        ended.with(|e| {
            e.as_ref()
                .map(|(peer, reason, _)| locale.t().end_reason(*reason, peer))
                .unwrap_or_default()
        })
    };
    let again = focused_when_shown();
    view! {
        <div class="call-card ended">
            <Avatar name=peer() large=true/>
            <h2>{move || locale.t().call_ended}</h2>
            <p class="reason">{sentence}</p>
            <div class="call-actions wrap">
                <button
                    type="button"
                    class="btn primary"
                    data-testid="call-again"
                    node_ref=again
                    on:click=move |_| phone.dial(peer(), video())
                >
                    {move || locale.t().call_again}
                </button>
                <Show when=media_denied>
                    <button
                        type="button"
                        class="btn secondary"
                        data-testid="call-audio-only"
                        on:click=move |_| phone.dial(peer(), false)
                    >
                        {move || locale.t().audio_only}
                    </button>
                </Show>
                <button
                    type="button"
                    class="btn ghost"
                    data-testid="back"
                    on:click=move |_| phone.act(Event::Dismiss)
                >
                    {move || locale.t().back}
                </button>
            </div>
        </div>
    }
}

#[wasm_bindgen]
extern "C" {
    /// The Picture-in-Picture API, which web-sys binds only behind `web_sys_unstable_apis`.
    #[wasm_bindgen(extends = web_sys::Document, js_name = Document)]
    type PipDocument;
    /// `undefined` in browsers without the API (Firefox), hence the `Option`.
    #[wasm_bindgen(method, getter, js_name = pictureInPictureEnabled)]
    fn picture_in_picture_enabled(this: &PipDocument) -> Option<bool>;
    #[wasm_bindgen(method, getter, js_name = pictureInPictureElement)]
    fn picture_in_picture_element(this: &PipDocument) -> Option<web_sys::Element>;
    #[wasm_bindgen(method, js_name = exitPictureInPicture)]
    fn exit_picture_in_picture(this: &PipDocument) -> js_sys::Promise;
    #[wasm_bindgen(extends = web_sys::HtmlVideoElement, js_name = HTMLVideoElement)]
    type PipVideo;
    #[wasm_bindgen(method, js_name = requestPictureInPicture)]
    fn request_picture_in_picture(this: &PipVideo) -> js_sys::Promise;
}

fn pip_document() -> PipDocument {
    document().unchecked_into()
}

/// Whether the browser can float a video in a window of its own (not Firefox, not most phones).
fn can_float() -> bool {
    pip_document().picture_in_picture_enabled() == Some(true)
}

/// Floats `video` in picture-in-picture, or brings back whatever floats. The video's
/// `enterpictureinpicture`/`leavepictureinpicture` events say what happened, the browser's own
/// "back to tab" included, so the button's state follows them rather than this call.
fn toggle_float(video: Option<web_sys::HtmlVideoElement>) {
    let document = pip_document();
    let promise = if document.picture_in_picture_element().is_some() {
        document.exit_picture_in_picture()
    } else if let Some(video) = video {
        video
            .unchecked_into::<PipVideo>()
            .request_picture_in_picture()
    } else {
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        // Refused without a user gesture, or before the video has a frame.
        if let Err(error) = wasm_bindgen_futures::JsFuture::from(promise).await {
            web_sys::console::warn_1(&error);
        }
    });
}
