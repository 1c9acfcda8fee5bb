//! All WebRTC glue: the camera and microphone, the peer connection, perfect negotiation.
//!
//! Nothing else in the app touches `RTCPeerConnection` or `getUserMedia`. Both resources are
//! released by `Drop`, so ending a call is dropping its [`LocalMedia`] and [`PeerLink`] — there is
//! no path that forgets to stop a track.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures::StreamExt;
use futures::channel::mpsc::{self, UnboundedSender};
use futures::future::{AbortHandle, abortable};
use js_sys::{JSON, Reflect};
use protocol::{IceTransportPolicy, PeerMessage};
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaDevices, MediaStream, MediaStreamConstraints, MediaStreamTrack, RtcConfiguration,
    RtcDataChannel, RtcDataChannelInit, RtcDataChannelType, RtcIceCandidateInit,
    RtcIceConnectionState, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState,
    RtcRtpTransceiver, RtcRtpTransceiverDirection, RtcRtpTransceiverInit,
    RtcSessionDescriptionInit, RtcSignalingState, RtcTrackEvent,
};

use crate::call::{LinkReport, MediaFlags};
use crate::relay_watch::RelayWatch;

/// How long an offer may go unanswered before we take it for lost (an answer takes one trip
/// through the server; even a poor link gives it well within this).
const LOST_OFFER_MS: f64 = 1_000.0;

/// Where end-to-end tests find the live objects (they read `getStats()` and track states).
const PC_HOOK: &str = "__duetPc";
const STREAM_HOOK: &str = "__duetLocalStream";

#[wasm_bindgen]
extern "C" {
    /// `RTCPeerConnection` methods web-sys does not bind (yet).
    #[wasm_bindgen(extends = RtcPeerConnection, js_name = RTCPeerConnection)]
    type PcExt;
    // The argument-less form lets the browser pick offer or answer, which perfect negotiation
    // relies on.
    #[wasm_bindgen(method, js_name = setLocalDescription)]
    fn set_local_description(this: &PcExt) -> js_sys::Promise;
    #[wasm_bindgen(method, js_name = restartIce)]
    fn restart_ice(this: &PcExt);
}

fn set_local_description(pc: &RtcPeerConnection) -> JsFuture {
    JsFuture::from(pc.unchecked_ref::<PcExt>().set_local_description())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("permission to use the camera or microphone was denied")]
    Denied,
    #[error("no camera or microphone was found")]
    Missing,
    #[error("the camera or microphone could not be started: {0}")]
    Failed(String),
    #[error("this page cannot use media devices (it needs HTTPS or localhost)")]
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcError {
    #[error("the peer connection could not be created: {0}")]
    PeerConnection(String),
}

fn describe(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

fn set_hook(name: &str, value: &JsValue) {
    if let Some(window) = web_sys::window() {
        let _ = Reflect::set(&window, &JsValue::from_str(name), value);
    }
}

fn clear_hook(name: &str) {
    if let Some(window) = web_sys::window() {
        let _ = Reflect::delete_property(&window, &JsValue::from_str(name));
    }
}

fn to_js(value: &Value) -> Option<JsValue> {
    JSON::parse(&value.to_string()).ok()
}

fn to_json(value: &JsValue) -> Option<Value> {
    crate::js_fields::to_json(value)
}

/// Another handle on `stream`: the same JavaScript object, the same tracks.
///
/// Why not `stream.clone()`: web-sys gives `MediaStream` (and `MediaStreamTrack`) an inherent
/// `clone()` bound to the JavaScript `clone()`, and an inherent method wins over `Clone::clone`
/// in Rust's method resolution. That call makes *new device tracks* that nothing stops, so the
/// camera light stays on after the call. `clippy.toml` forbids the inherent methods.
pub fn same_stream(stream: &MediaStream) -> MediaStream {
    <MediaStream as Clone>::clone(stream)
}

fn tracks(stream: &MediaStream) -> impl Iterator<Item = MediaStreamTrack> {
    stream
        .get_tracks()
        .into_iter()
        .filter_map(|track| track.dyn_into::<MediaStreamTrack>().ok())
}

/// Our camera and microphone for one call. Dropping it stops every track (the camera light
/// goes off).
pub struct LocalMedia {
    stream: MediaStream,
    /// Told when a device track ends by itself (unplugged, or taken by the system); every track
    /// of the stream carries it, those put in later too.
    on_ended: Option<Closure<dyn FnMut(web_sys::Event)>>,
}

/// The devices the user chose (`crate::devices`), which a call opens if they are there.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub camera: Option<String>,
    pub microphone: Option<String>,
}

/// Which device of a kind `getUserMedia` is asked for.
#[derive(Debug, Clone, Copy)]
enum Want<'a> {
    Nothing,
    /// This one if it is there, else any: a remembered device unplugged since does not fail the
    /// call. Asked for exactly, then for any: `deviceId: {ideal}` alone is not enough, since
    /// Chromium's permission prompt may pick its default device over an ideal one.
    Preferably(Option<&'a str>),
    /// This one or none (`deviceId: {exact}`): the user just picked it, or it is the fallback.
    Exactly(&'a str),
}

impl Want<'_> {
    fn constraint(self) -> JsValue {
        let id = match self {
            Self::Nothing => return JsValue::FALSE,
            Self::Preferably(None) => return JsValue::TRUE,
            Self::Preferably(Some(id)) | Self::Exactly(id) => id,
        };
        let device = js_sys::Object::new();
        let _ = Reflect::set(&device, &"exact".into(), &id.into());
        let track = js_sys::Object::new();
        let _ = Reflect::set(&track, &"deviceId".into(), &device);
        track.into()
    }

    /// The same, with "any" in place of a preferred device.
    fn any(self) -> Self {
        match self {
            Self::Preferably(_) => Self::Preferably(None),
            other => other,
        }
    }
}

impl LocalMedia {
    /// Opens the microphone and, if `video`, the camera, the chosen ones where they are there. A
    /// missing or broken camera falls back to audio only rather than failing the call; a refused
    /// permission does not.
    pub async fn open(video: bool, choice: &Choice) -> Result<Self, MediaError> {
        let microphone = Want::Preferably(choice.microphone.as_deref());
        let camera = if video {
            Want::Preferably(choice.camera.as_deref())
        } else {
            Want::Nothing
        };
        let stream = match get_user_media(microphone, camera).await {
            Err(MediaError::Missing | MediaError::Failed(_)) if video => {
                get_user_media(microphone, Want::Nothing).await?
            }
            other => other?,
        };
        set_hook(STREAM_HOOK, &stream);
        Ok(Self {
            stream,
            on_ended: None,
        })
    }

    /// Runs `on_ended` with the kind ("audio", "video") and device id of a track that ends by
    /// itself: the device was unplugged or taken away. Stopping a track ourselves does not.
    pub fn watch(&mut self, mut on_ended: impl FnMut(String, String) + 'static) {
        let handler = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            if let Some(track) = event
                .target()
                .and_then(|t| t.dyn_into::<MediaStreamTrack>().ok())
            {
                on_ended(track.kind(), device_id(&track));
            }
        });
        for track in tracks(&self.stream) {
            track.set_onended(Some(handler.as_ref().unchecked_ref()));
        }
        self.on_ended = Some(handler);
    }

    /// Whether the camera is not open now: turning it on opens it (anew, or for the first time
    /// in a voice call).
    pub fn camera_closed(&self) -> bool {
        !self.has_video()
    }

    /// Stops the camera (its light goes out) and takes its track out of the stream; the
    /// microphone stays as it is.
    pub fn close_camera(&self) {
        if let Some(track) = self.camera_track() {
            self.remove(&track);
        }
    }

    fn remove(&self, track: &MediaStreamTrack) {
        track.set_onended(None);
        track.stop();
        self.stream.remove_track(track);
    }

    /// The camera's track, while it is open.
    pub fn camera_track(&self) -> Option<MediaStreamTrack> {
        self.track("video")
    }

    /// The microphone's track.
    pub fn microphone_track(&self) -> Option<MediaStreamTrack> {
        self.track("audio")
    }

    fn track(&self, kind: &str) -> Option<MediaStreamTrack> {
        tracks(&self.stream).find(|track| track.kind() == kind)
    }

    /// Takes a camera track opened again (by [`open_camera`]) into the stream, which the preview
    /// shows.
    pub fn add_camera(&self, track: &MediaStreamTrack) {
        self.add(track);
    }

    fn add(&self, track: &MediaStreamTrack) {
        if let Some(handler) = &self.on_ended {
            track.set_onended(Some(handler.as_ref().unchecked_ref()));
        }
        self.stream.add_track(track);
    }

    /// Puts `track` (another camera or microphone) in place of the one of its kind, which stops:
    /// only one device of a kind is ever open. A muted microphone stays muted.
    pub fn swap(&self, track: &MediaStreamTrack) {
        if let Some(old) = self.track(&track.kind()) {
            track.set_enabled(old.enabled());
            self.remove(&old);
        }
        self.add(track);
    }

    pub fn has_video(&self) -> bool {
        self.stream.get_video_tracks().length() > 0
    }

    pub fn stream(&self) -> &MediaStream {
        &self.stream
    }

    /// A second handle on the same stream (for the preview), never a copy of its tracks.
    pub fn share_stream(&self) -> MediaStream {
        same_stream(&self.stream)
    }

    /// Mutes by disabling tracks (they keep running, so unmuting is instant and needs no
    /// renegotiation).
    pub fn set_enabled(&self, flags: MediaFlags) {
        for track in tracks(&self.stream) {
            let on = if track.kind() == "video" {
                flags.video
            } else {
                flags.audio
            };
            track.set_enabled(on);
        }
    }
}

impl Drop for LocalMedia {
    fn drop(&mut self) {
        for track in tracks(&self.stream) {
            track.set_onended(None);
            track.stop();
        }
        clear_hook(STREAM_HOOK);
    }
}

/// The id of the device a track captures from (`getSettings().deviceId`).
pub fn device_id(track: &MediaStreamTrack) -> String {
    crate::js_fields::text(&track.get_settings(), "deviceId").unwrap_or_default()
}

/// Opens the camera alone, for a call whose camera was turned off and on again: the chosen one
/// if it is there.
pub async fn open_camera(chosen: Option<&str>) -> Result<MediaStreamTrack, MediaError> {
    let stream = get_user_media(Want::Nothing, Want::Preferably(chosen)).await?;
    tracks(&stream).next().ok_or(MediaError::Missing)
}

/// Opens exactly the device `id` of a track `kind` ("audio" or "video"), to put in place of the
/// one in use ([`LocalMedia::swap`]).
pub async fn open_device(kind: &str, id: &str) -> Result<MediaStreamTrack, MediaError> {
    let (audio, video) = if kind == "video" {
        (Want::Nothing, Want::Exactly(id))
    } else {
        (Want::Exactly(id), Want::Nothing)
    };
    let stream = get_user_media(audio, video).await?;
    tracks(&stream).next().ok_or(MediaError::Missing)
}

/// The connection's transceiver for `kind` ("audio" or "video"), if the call has one.
fn transceiver(pc: &RtcPeerConnection, kind: &str) -> Option<RtcRtpTransceiver> {
    pc.get_transceivers()
        .iter()
        .filter_map(|transceiver| transceiver.dyn_into::<RtcRtpTransceiver>().ok())
        .find(|transceiver| transceiver.receiver().track().kind() == kind)
}

/// Whether the call can carry video (something to put a camera or a shared screen on).
pub fn has_video_sender(pc: &RtcPeerConnection) -> bool {
    transceiver(pc, "video").is_some()
}

/// [`replace_track`] on the video sender, in the background: the caller's state moves on at
/// once, and the peer sees the new track from its next frame. `stream` is the one our sound goes
/// out in, for the peer to play the picture with it.
pub fn send_video(
    pc: &RtcPeerConnection,
    track: Option<MediaStreamTrack>,
    stream: Option<MediaStream>,
) {
    send(pc, "video", track, stream);
}

/// [`send_video`]'s twin for the audio sender (the microphone, or it mixed with a shared tab).
pub fn send_audio(pc: &RtcPeerConnection, track: Option<MediaStreamTrack>) {
    send(pc, "audio", track, None);
}

fn send(
    pc: &RtcPeerConnection,
    kind: &'static str,
    track: Option<MediaStreamTrack>,
    stream: Option<MediaStream>,
) {
    let pc = pc.clone();
    wasm_bindgen_futures::spawn_local(async move {
        replace_track(&pc, kind, track.as_ref(), stream.as_ref()).await;
    });
}

/// Puts `track` (or nothing, while the camera is off) on the connection's sender of its `kind`
/// ("audio" or "video"), in place of what it sent: no renegotiation, the peer sees the next frame
/// or none. The one exception is the first picture of a call placed as a voice call on a side
/// whose video transceiver only receives (it answered an offer without a camera): that side
/// starts sending, in `stream`, which renegotiates once (perfect negotiation).
pub async fn replace_track(
    pc: &RtcPeerConnection,
    kind: &str,
    track: Option<&MediaStreamTrack>,
    stream: Option<&MediaStream>,
) {
    let Some(transceiver) = transceiver(pc, kind) else {
        return;
    };
    let sender = transceiver.sender();
    if let Err(error) = JsFuture::from(sender.replace_track(track)).await {
        web_sys::console::warn_1(&error);
        return;
    }
    let receives_only = matches!(
        transceiver.direction(),
        RtcRtpTransceiverDirection::Recvonly | RtcRtpTransceiverDirection::Inactive
    );
    if let (Some(_), Some(stream), true) = (track, stream, receives_only) {
        // Without a stream the peer would see the picture apart from our sound.
        if let Ok(set_streams) = Reflect::get(&sender, &"setStreams".into())
            .and_then(|f| f.dyn_into::<js_sys::Function>())
        {
            let _ = set_streams.call1(&sender, stream);
        }
        transceiver.set_direction(RtcRtpTransceiverDirection::Sendrecv);
    }
}

/// Puts the tracks of `media`, opened after the connection was made with
/// [`Senders::Later`], on the senders waiting for them.
pub async fn attach(pc: &RtcPeerConnection, media: &MediaStream) {
    for track in tracks(media) {
        replace_track(pc, &track.kind(), Some(&track), Some(media)).await;
    }
}

pub(crate) fn media_devices() -> Result<MediaDevices, MediaError> {
    let devices = web_sys::window()
        .ok_or(MediaError::Unsupported)?
        .navigator()
        .media_devices()
        .map_err(|_| MediaError::Unsupported)?;
    // `mediaDevices` is undefined on insecure origins, which web-sys does not check.
    if JsValue::from(devices.clone()).is_undefined() {
        return Err(MediaError::Unsupported);
    }
    Ok(devices)
}

async fn get_user_media(audio: Want<'_>, video: Want<'_>) -> Result<MediaStream, MediaError> {
    let preferred = |want| matches!(want, Want::Preferably(Some(_)));
    match request_media(audio, video).await {
        // A preferred device that is gone (`OverconstrainedError`): any other of its kind.
        Err(MediaError::Missing) if preferred(audio) || preferred(video) => {
            request_media(audio.any(), video.any()).await
        }
        other => other,
    }
}

async fn request_media(audio: Want<'_>, video: Want<'_>) -> Result<MediaStream, MediaError> {
    let devices = media_devices()?;
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&audio.constraint());
    constraints.set_video(&video.constraint());
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|_| MediaError::Unsupported)?;
    media_stream(promise).await
}

/// The stream a `getUserMedia` or `getDisplayMedia` promise gives.
async fn media_stream(promise: js_sys::Promise) -> Result<MediaStream, MediaError> {
    match JsFuture::from(promise).await {
        Ok(stream) => stream
            .dyn_into::<MediaStream>()
            .map_err(|_| MediaError::Failed("not a media stream".into())),
        Err(error) => Err(classify(&error)),
    }
}

/// Whether this browser can share a screen at all (phones have no `getDisplayMedia`).
pub fn can_share_screen() -> bool {
    media_devices().is_ok_and(|devices| {
        Reflect::has(&devices, &JsValue::from_str("getDisplayMedia")).unwrap_or(false)
    })
}

/// A shared screen (or window, or tab) while the call sends it. Dropping it stops the capture:
/// the browser's "sharing" bar goes away, as the camera light does with [`LocalMedia`].
pub struct ScreenShare {
    track: MediaStreamTrack,
    /// The shared tab's sound, when the browser offers it (Chromium does for a tab, and for a
    /// whole screen on some systems).
    audio: Option<TabAudio>,
    _on_ended: Closure<dyn FnMut()>,
}

/// A shared tab's sound mixed with the microphone into one track, which takes the microphone's
/// place on the audio sender. A sender of its own would add a transceiver, and so a
/// renegotiation; the mix keeps the call's senders as they were, and the peer hears both.
struct TabAudio {
    tab: MediaStreamTrack,
    context: web_sys::AudioContext,
    mix: web_sys::MediaStreamAudioDestinationNode,
    /// The microphone's way into the mix (none while the call has no microphone).
    mic: Option<web_sys::MediaStreamAudioSourceNode>,
}

impl TabAudio {
    fn new(tab: MediaStreamTrack) -> Result<Self, JsValue> {
        let context = web_sys::AudioContext::new()?;
        let mix = context.create_media_stream_destination()?;
        let source = context.create_media_stream_source(&stream_of(&tab)?)?;
        source.connect_with_audio_node(&mix)?;
        // Started by the click that shared, normally; resumed in case the picker took long.
        let _ = context.resume();
        Ok(Self {
            tab,
            context,
            mix,
            mic: None,
        })
    }

    /// Puts `mic` into the mix in place of the microphone it had. A muted microphone (its track
    /// disabled) gives silence, so mute still holds while the tab's sound goes on.
    fn set_mic(&mut self, mic: Option<&MediaStreamTrack>) -> Result<(), JsValue> {
        if let Some(old) = self.mic.take() {
            old.disconnect()?;
        }
        if let Some(mic) = mic {
            let source = self.context.create_media_stream_source(&stream_of(mic)?)?;
            source.connect_with_audio_node(&self.mix)?;
            self.mic = Some(source);
        }
        Ok(())
    }

    fn track(&self) -> Option<MediaStreamTrack> {
        tracks(&self.mix.stream()).next()
    }
}

impl Drop for TabAudio {
    fn drop(&mut self) {
        self.tab.stop();
        let _ = self.context.close();
    }
}

/// A stream holding `track` itself (not a copy of it), for Web Audio, which takes streams.
fn stream_of(track: &MediaStreamTrack) -> Result<MediaStream, JsValue> {
    MediaStream::new_with_tracks(&js_sys::Array::of1(track))
}

impl ScreenShare {
    /// Asks the browser for a screen to share (it shows its picker), with its sound where the
    /// browser offers that. `on_ended` runs when the capture ends by itself: the browser's own
    /// "Stop sharing", or the shared window closing.
    pub async fn open(on_ended: impl FnMut() + 'static) -> Result<Self, MediaError> {
        let constraints = web_sys::DisplayMediaStreamConstraints::new();
        constraints.set_video_bool(true);
        constraints.set_audio_bool(true);
        let promise = media_devices()?
            .get_display_media_with_constraints(&constraints)
            .map_err(|_| MediaError::Unsupported)?;
        let stream = media_stream(promise).await?;
        let (mut video, mut audio) = (None, None);
        for track in tracks(&stream) {
            let slot = if track.kind() == "video" {
                &mut video
            } else {
                &mut audio
            };
            if slot.is_none() {
                *slot = Some(track);
            } else {
                // Nothing more is expected; were it given, it is not kept running.
                track.stop();
            }
        }
        let Some(track) = video else {
            if let Some(audio) = audio {
                audio.stop();
            }
            return Err(MediaError::Missing);
        };
        let audio =
            audio.and_then(
                |tab| match TabAudio::new(<MediaStreamTrack as Clone>::clone(&tab)) {
                    Ok(audio) => Some(audio),
                    Err(error) => {
                        // Shared without its sound rather than not at all.
                        web_sys::console::warn_1(&error);
                        tab.stop();
                        None
                    }
                },
            );
        let on_ended = Closure::<dyn FnMut()>::new(on_ended);
        track.set_onended(Some(on_ended.as_ref().unchecked_ref()));
        Ok(Self {
            track,
            audio,
            _on_ended: on_ended,
        })
    }

    /// A second handle on the capture's track (for the sender), never a copy of it.
    pub fn track(&self) -> MediaStreamTrack {
        <MediaStreamTrack as Clone>::clone(&self.track)
    }

    /// The track for the audio sender while this capture has sound: the tab mixed with `mic`
    /// (called again with the new microphone when the user switches). `None`: the capture has no
    /// sound, the microphone stays on the sender as it is.
    pub fn mix_with(&mut self, mic: Option<&MediaStreamTrack>) -> Option<MediaStreamTrack> {
        let audio = self.audio.as_mut()?;
        if let Err(error) = audio.set_mic(mic) {
            web_sys::console::warn_1(&error);
        }
        audio.track()
    }

    /// Whether the capture's sound is on the audio sender (stopping it puts the microphone back).
    pub fn has_sound(&self) -> bool {
        self.audio.is_some()
    }
}

impl Drop for ScreenShare {
    fn drop(&mut self) {
        self.track.set_onended(None);
        self.track.stop();
    }
}

fn classify(error: &JsValue) -> MediaError {
    let name = Reflect::get(error, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    match name.as_str() {
        "NotAllowedError" | "SecurityError" => MediaError::Denied,
        "NotFoundError" | "OverconstrainedError" => MediaError::Missing,
        _ => MediaError::Failed(describe(error)),
    }
}

/// What the peer connection needs the app to do or know.
pub enum LinkEvent {
    /// A message for the peer (offer, answer or candidate, without the call id).
    Outbound(Outbound),
    /// The peer's media arrived (called again if the stream changes).
    RemoteStream(MediaStream),
    Report(LinkReport),
}

pub enum Outbound {
    /// An `RTCSessionDescriptionInit` (`{type, sdp}`).
    Description(Value),
    /// An `RTCIceCandidateInit` (`{candidate, sdpMid, sdpMLineIndex}`).
    Candidate(Value),
}

impl Outbound {
    pub fn into_message(self, call_id: Option<String>) -> Option<PeerMessage> {
        Some(match self {
            Self::Description(sdp) => match sdp.get("type").and_then(Value::as_str) {
                Some("offer") => PeerMessage::Offer { sdp, call_id },
                Some("answer") => PeerMessage::Answer { sdp, call_id },
                _ => return None,
            },
            Self::Candidate(sdp) => PeerMessage::Candidate { sdp, call_id },
        })
    }
}

/// The perfect-negotiation flags, shared by the event handlers and the inbound queue.
#[derive(Default)]
struct Negotiation {
    making_offer: Cell<bool>,
    /// When our last offer went out (`Date.now()`), to tell a pending offer from a lost one.
    offered_at: Cell<f64>,
    ignore_offer: Cell<bool>,
    /// Candidates that arrived before the remote description they belong to.
    early_candidates: RefCell<Vec<Value>>,
    last_report: Cell<Option<LinkReport>>,
    remote_stream_id: RefCell<Option<String>>,
}

type Handler<E> = Closure<dyn FnMut(E)>;

/// What a new connection sends from the start.
pub enum Senders<'a> {
    /// The devices are open: their tracks (the caller, prepared while it rang). The callee's
    /// offer then finds these senders and uses them.
    Tracks(&'a LocalMedia),
    /// The devices are still opening: empty senders for the microphone (and camera), so the
    /// offer goes out at once; [`attach`] puts the tracks on them without renegotiation.
    Later { video: bool },
}

/// One call's `RTCPeerConnection`. Dropping it closes the connection.
pub struct PeerLink {
    pc: RtcPeerConnection,
    state: Rc<Negotiation>,
    /// Chat and files (`talk`). Negotiated (same id on both sides), so it is part of the first
    /// offer, needs no renegotiation of its own, and lives through ICE restarts.
    channel: RtcDataChannel,
    inbox: UnboundedSender<PeerMessage>,
    worker: AbortHandle,
    _handlers: (
        Handler<JsValue>,
        Handler<RtcPeerConnectionIceEvent>,
        Handler<RtcTrackEvent>,
        Handler<JsValue>,
    ),
    /// In relay-only mode: ends the call clearly when the TURN server refuses us.
    _relay_watch: Option<RelayWatch>,
}

impl PeerLink {
    /// Creates the connection and its senders, which starts negotiation by itself
    /// (`negotiationneeded`). The `polite` side yields when both offer at once.
    pub fn new(
        ice_servers: &Value,
        policy: IceTransportPolicy,
        polite: bool,
        senders: Senders,
        on_event: impl Fn(LinkEvent) + 'static,
    ) -> Result<Self, RtcError> {
        let config = RtcConfiguration::new();
        set_ice_servers(&config, ice_servers);
        // One transport (one TURN allocation) for audio and video.
        let _ = Reflect::set(&config, &"bundlePolicy".into(), &"max-bundle".into());
        let _ = Reflect::set(
            &config,
            &"iceTransportPolicy".into(),
            &policy.as_str().into(),
        );
        let pc = RtcPeerConnection::new_with_configuration(&config)
            .map_err(|e| RtcError::PeerConnection(describe(&e)))?;
        let on_event: Rc<dyn Fn(LinkEvent)> = Rc::new(on_event);
        let state = Rc::new(Negotiation::default());

        let on_negotiation_needed = {
            let (pc, state, on_event) = (pc.clone(), state.clone(), on_event.clone());
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                // The callee opens the negotiation (its offer is on its way by the time the
                // caller, prepared while it rang, could offer). Two crossing first offers made the
                // polite side roll its own back, after which Chromium gathered no candidates for
                // the answer and the call stayed "connecting" (seen in the set-up timelines).
                if !polite && pc.remote_description().is_none() {
                    return;
                }
                let (pc, state, on_event) = (pc.clone(), state.clone(), on_event.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    state.making_offer.set(true);
                    if set_local_description(&pc).await.is_ok() {
                        state.offered_at.set(js_sys::Date::now());
                        send_local_description(&pc, &*on_event);
                    }
                    state.making_offer.set(false);
                });
            })
        };
        pc.set_onnegotiationneeded(Some(on_negotiation_needed.as_ref().unchecked_ref()));

        let on_ice_candidate = {
            let on_event = on_event.clone();
            Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
                move |event: RtcPeerConnectionIceEvent| {
                    // `null` marks the end of gathering; the seed never sent it, nor do we.
                    if let Some(candidate) = event.candidate()
                        && let Some(init) = to_json(&candidate.to_json())
                    {
                        on_event(LinkEvent::Outbound(Outbound::Candidate(init)));
                    }
                },
            )
        };
        pc.set_onicecandidate(Some(on_ice_candidate.as_ref().unchecked_ref()));

        let on_track = {
            let (state, on_event) = (state.clone(), on_event.clone());
            let fallback = MediaStream::new().ok();
            Closure::<dyn FnMut(RtcTrackEvent)>::new(move |event: RtcTrackEvent| {
                let stream = match event.streams().get(0).dyn_into::<MediaStream>() {
                    Ok(stream) => stream,
                    // A peer that added tracks without a stream: collect them ourselves.
                    Err(_) => match &fallback {
                        Some(stream) => {
                            stream.add_track(&event.track());
                            same_stream(stream)
                        }
                        None => return,
                    },
                };
                let id = stream.id();
                if state.remote_stream_id.borrow().as_deref() != Some(&id) {
                    *state.remote_stream_id.borrow_mut() = Some(id);
                    on_event(LinkEvent::RemoteStream(stream));
                }
            })
        };
        pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));

        let on_state_change = {
            let (pc, state, on_event) = (pc.clone(), state.clone(), on_event.clone());
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                let report = link_report(&pc);
                if report.is_some() && report != state.last_report.get() {
                    state.last_report.set(report);
                    if let Some(report) = report {
                        on_event(LinkEvent::Report(report));
                    }
                }
            })
        };
        pc.set_onconnectionstatechange(Some(on_state_change.as_ref().unchecked_ref()));
        pc.set_oniceconnectionstatechange(Some(on_state_change.as_ref().unchecked_ref()));
        // After an ICE restart over a path that never stopped working, no connection state
        // changes; the end of the negotiation is when the call hears "connected" again.
        pc.set_onsignalingstatechange(Some(on_state_change.as_ref().unchecked_ref()));

        // Inbound descriptions and candidates are applied strictly one after another: each
        // step awaits the browser, and interleaving two would break the negotiation.
        let (inbox, mut inbound) = mpsc::unbounded::<PeerMessage>();
        let (worker, stop) = {
            let (pc, state, on_event) = (pc.clone(), state.clone(), on_event.clone());
            abortable(async move {
                while let Some(message) = inbound.next().await {
                    match message {
                        PeerMessage::Offer { sdp, .. } | PeerMessage::Answer { sdp, .. } => {
                            apply_description(&pc, &state, polite, &sdp, &*on_event).await;
                        }
                        PeerMessage::Candidate { sdp, .. } => {
                            apply_candidate(&pc, &state, sdp).await;
                        }
                        _ => {}
                    }
                }
            })
        };
        wasm_bindgen_futures::spawn_local(async move {
            let _ = worker.await;
        });

        let channel = open_data_channel(&pc);
        match senders {
            Senders::Tracks(media) => {
                for track in tracks(media.stream()) {
                    pc.add_track_0(&track, media.stream());
                }
            }
            Senders::Later { video } => {
                // One stream for both, as `addTrack` gives: the peer plays them together.
                let stream =
                    MediaStream::new().map_err(|e| RtcError::PeerConnection(describe(&e)))?;
                let kinds: &[&str] = if video {
                    &["audio", "video"]
                } else {
                    &["audio"]
                };
                for kind in kinds {
                    let init = RtcRtpTransceiverInit::new();
                    init.set_direction(RtcRtpTransceiverDirection::Sendrecv);
                    init.set_streams(&js_sys::Array::of1(&stream));
                    pc.add_transceiver_with_str_and_init(kind, &init);
                }
            }
        }
        set_hook(PC_HOOK, &pc);
        let relay_watch = (policy == IceTransportPolicy::Relay).then(|| {
            let on_event = on_event.clone();
            RelayWatch::new(&pc, move |why| {
                web_sys::console::warn_1(&why.into());
                on_event(LinkEvent::Report(LinkReport::RelayRefused));
            })
        });

        Ok(Self {
            pc,
            state,
            channel,
            inbox,
            worker: stop,
            _handlers: (
                on_negotiation_needed,
                on_ice_candidate,
                on_track,
                on_state_change,
            ),
            _relay_watch: relay_watch,
        })
    }

    /// Hands over an offer, answer or candidate from the peer.
    pub fn negotiate(&self, message: PeerMessage) {
        let _ = self.inbox.unbounded_send(message);
    }

    /// The connection itself, for reading its stats (the verification code).
    pub fn peer_connection(&self) -> &RtcPeerConnection {
        &self.pc
    }

    /// Asks ICE to gather fresh candidates (with `ice_servers`, whose TURN credentials may be
    /// newer than the call); the new offer follows through `negotiationneeded`.
    pub fn restart_ice(&self, ice_servers: &Value) {
        let config = self.pc.get_configuration();
        if set_ice_servers(&config, ice_servers)
            && let Err(error) = self.pc.set_configuration_with_configuration(&config)
        {
            web_sys::console::warn_1(&format!("setConfiguration: {}", describe(&error)).into());
        }
        // A report equal to the last one (`failed` again after this restart) must reach the call.
        self.state.last_report.set(None);
        let (pc, state) = (self.pc.clone(), self.state.clone());
        wasm_bindgen_futures::spawn_local(async move {
            // An earlier restart's offer that was never answered (lost with the peer's
            // signaling) would hold `negotiationneeded` back for ever: take it back first.
            if pc.signaling_state() == RtcSignalingState::HaveLocalOffer
                && !state.making_offer.get()
            {
                let rollback = RtcSessionDescriptionInit::new(web_sys::RtcSdpType::Rollback);
                if let Err(error) = JsFuture::from(pc.set_local_description(&rollback)).await {
                    web_sys::console::warn_1(&format!("rollback: {}", describe(&error)).into());
                }
            }
            pc.unchecked_ref::<PcExt>().restart_ice();
        });
    }

    /// The call's data channel (closed when this link drops).
    pub fn data_channel(&self) -> RtcDataChannel {
        self.channel.clone()
    }
}

fn open_data_channel(pc: &RtcPeerConnection) -> RtcDataChannel {
    use protocol::datachannel::{DATA_CHANNEL_ID, DATA_CHANNEL_LABEL};
    let init = RtcDataChannelInit::new();
    init.set_negotiated(true);
    init.set_id(DATA_CHANNEL_ID);
    let channel = pc.create_data_channel_with_data_channel_dict(DATA_CHANNEL_LABEL, &init);
    channel.set_binary_type(RtcDataChannelType::Arraybuffer);
    channel
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.worker.abort();
        self.pc.set_onnegotiationneeded(None);
        self.pc.set_onicecandidate(None);
        self.pc.set_ontrack(None);
        self.pc.set_onconnectionstatechange(None);
        self.pc.set_oniceconnectionstatechange(None);
        self.pc.set_onsignalingstatechange(None);
        self.channel.close();
        self.pc.close();
        clear_hook(PC_HOOK);
    }
}

/// Puts `ice_servers` (the `hello`'s JSON array of `RTCIceServer`) into `config`; false when it
/// is not an array (nothing to set).
fn set_ice_servers(config: &RtcConfiguration, ice_servers: &Value) -> bool {
    let servers = ice_servers.is_array().then(|| to_js(ice_servers)).flatten();
    if let Some(servers) = &servers {
        config.set_ice_servers(servers);
    }
    servers.is_some()
}

fn link_report(pc: &RtcPeerConnection) -> Option<LinkReport> {
    use RtcIceConnectionState as Ice;
    use RtcPeerConnectionState as Pc;
    let ice = pc.ice_connection_state();
    match pc.connection_state() {
        Pc::Failed => Some(LinkReport::Failed),
        _ if ice == Ice::Failed => Some(LinkReport::Failed),
        Pc::Connected => Some(LinkReport::Connected),
        Pc::Disconnected => Some(LinkReport::Interrupted),
        _ if ice == Ice::Disconnected => Some(LinkReport::Interrupted),
        _ => None,
    }
}

fn send_local_description(pc: &RtcPeerConnection, on_event: &dyn Fn(LinkEvent)) {
    if let Some(description) = pc.local_description().and_then(|d| to_json(&d)) {
        on_event(LinkEvent::Outbound(Outbound::Description(description)));
    }
}

/// Perfect negotiation's `onmessage` for a description.
async fn apply_description(
    pc: &RtcPeerConnection,
    state: &Negotiation,
    polite: bool,
    sdp: &Value,
    on_event: &dyn Fn(LinkEvent),
) {
    let is_offer = sdp.get("type").and_then(Value::as_str) == Some("offer");
    let collision =
        is_offer && (state.making_offer.get() || pc.signaling_state() != RtcSignalingState::Stable);
    // An offer of ours still unanswered after a while was lost (it went out while the peer's
    // network was down): the impolite side yields too, or both would wait for ever — the peer
    // for our answer, we for an answer to an offer it never saw.
    let ours_lost = !state.making_offer.get()
        && pc.signaling_state() == RtcSignalingState::HaveLocalOffer
        && js_sys::Date::now() - state.offered_at.get() > LOST_OFFER_MS;
    state.ignore_offer.set(!polite && collision && !ours_lost);
    if state.ignore_offer.get() {
        return;
    }
    let Some(description) = to_js(sdp) else {
        return;
    };
    let description: RtcSessionDescriptionInit = description.unchecked_into();
    // The polite side's pending offer is rolled back implicitly by this call.
    if let Err(error) = JsFuture::from(pc.set_remote_description(&description)).await {
        web_sys::console::warn_1(&format!("setRemoteDescription: {}", describe(&error)).into());
        return;
    }
    if is_offer {
        if set_local_description(pc).await.is_err() {
            return;
        }
        send_local_description(pc, on_event);
    }
    let early = std::mem::take(&mut *state.early_candidates.borrow_mut());
    for candidate in early {
        apply_candidate(pc, state, candidate).await;
    }
}

async fn apply_candidate(pc: &RtcPeerConnection, state: &Negotiation, sdp: Value) {
    if sdp.is_null() {
        return;
    }
    if pc.remote_description().is_none() {
        state.early_candidates.borrow_mut().push(sdp);
        return;
    }
    let Some(init) = to_js(&sdp) else {
        return;
    };
    let init: RtcIceCandidateInit = init.unchecked_into();
    let added = pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init));
    if let Err(error) = JsFuture::from(added).await {
        // Candidates of an offer we chose to ignore are expected to fail.
        if !state.ignore_offer.get() {
            web_sys::console::warn_1(&format!("addIceCandidate: {}", describe(&error)).into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outbound_descriptions_become_the_seeds_messages() {
        let call_id = Some("c1".to_owned());
        let offer = json!({"type": "offer", "sdp": "v=0"});
        assert_eq!(
            Outbound::Description(offer.clone()).into_message(call_id.clone()),
            Some(PeerMessage::Offer {
                sdp: offer,
                call_id: call_id.clone()
            })
        );
        let answer = json!({"type": "answer", "sdp": "v=0"});
        assert!(matches!(
            Outbound::Description(answer).into_message(call_id.clone()),
            Some(PeerMessage::Answer { .. })
        ));
        let candidate = json!({"candidate": "candidate:1", "sdpMid": "0", "sdpMLineIndex": 0});
        assert!(matches!(
            Outbound::Candidate(candidate).into_message(call_id.clone()),
            Some(PeerMessage::Candidate { .. })
        ));
        // A rollback or garbage is never sent to the peer.
        let rollback = json!({"type": "rollback"});
        assert_eq!(Outbound::Description(rollback).into_message(call_id), None);
    }
}
