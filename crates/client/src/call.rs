//! The call state machine: every rule about who may call whom, when, and what happens next.
//!
//! Pure data in, pure data out — no browser APIs — so each transition is unit-tested natively.
//! The runtime feeds [`Event`]s in and carries out the returned [`Effect`]s (sending messages,
//! starting timers, acquiring the camera, …); it never decides anything itself.

use protocol::{CallId, ErrorCode, PeerMessage};

/// How long the caller waits for an answer before giving up.
pub const NO_ANSWER_MS: u32 = 30_000;
/// How long the media path may take to come up once both sides have their devices.
pub const CONNECT_TIMEOUT_MS: u32 = 30_000;
/// How long an ICE restart may take before the call is given up as lost.
pub const ICE_RESTART_TIMEOUT_MS: u32 = 15_000;
/// How long the "call ended" card stays before the app returns to the contact list by itself.
pub const ENDED_LINGER_MS: u32 = 10_000;

/// Which end of the call this tab is. The callee is the "polite" peer of perfect negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Caller,
    Callee,
}

/// Whether a side's microphone and camera are sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaFlags {
    pub audio: bool,
    pub video: bool,
}

impl MediaFlags {
    pub const ON: Self = Self {
        audio: true,
        video: true,
    };
}

/// The health of the peer-to-peer media path, as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Connected,
    Reconnecting,
}

/// What the WebRTC layer reports about the media path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkReport {
    Connected,
    /// Transient loss (ICE `disconnected`): the browser is still trying.
    Interrupted,
    /// ICE gave up (`failed`).
    Failed,
    /// Relay-only mode, and the TURN server refused us (or gave no relay candidate in time).
    RelayRefused,
}

/// Why a call ended; the tag doubles as the `data-reason` test hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Declined,
    Busy,
    NoAnswer,
    /// `by_me` tells "you hung up" from "they hung up"; both are `hangup` to tests.
    HungUp {
        by_me: bool,
    },
    ConnectionLost,
    PeerOffline,
    MediaDenied,
    /// The caller gave up before this side answered.
    Cancelled,
    /// Relay-only mode, and the media relay (TURN) refused the connection.
    RelayRefused,
}

impl EndReason {
    pub fn tag(self) -> &'static str {
        match self {
            Self::Declined => "declined",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::HungUp { .. } => "hangup",
            Self::ConnectionLost => "connection-lost",
            Self::PeerOffline => "peer-offline",
            Self::MediaDenied => "media-denied",
            Self::Cancelled => "cancelled",
            Self::RelayRefused => "relay-refused",
        }
    }
}

/// Everything the call can be doing, each state holding exactly what it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum CallState {
    Idle,
    /// We invited `peer` and wait for an answer. Meanwhile our own devices and peer connection
    /// are prepared, so that an answer costs no more than the callee's own set-up.
    Outgoing {
        peer: String,
        call_id: CallId,
        /// The callee's client confirmed it is ringing.
        ringing: bool,
        video: bool,
        devices: Devices,
    },
    /// `peer` invites us; we are ringing.
    Incoming {
        peer: String,
        call_id: CallId,
    },
    /// Both sides said yes; devices and the media path are being set up.
    Connecting(Active),
    /// Media flows (or is being recovered).
    InCall {
        call: Active,
        started_at_ms: f64,
    },
    Ended {
        peer: String,
        call_id: CallId,
        reason: EndReason,
        /// Whether the failed call wanted the camera (an audio-only retry is offered otherwise).
        video: bool,
    },
}

/// The caller's devices while the callee's phone rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Devices {
    Opening,
    /// Open, with the peer connection made; `video` is false when only a microphone could be had.
    Ready {
        video: bool,
    },
}

/// The part of a call shared by [`CallState::Connecting`] and [`CallState::InCall`].
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    pub peer: String,
    pub call_id: CallId,
    pub role: Role,
    /// Our devices are open and the peer connection exists.
    pub media_ready: bool,
    pub local: MediaFlags,
    pub remote: MediaFlags,
    pub link: Link,
    /// An ICE restart was already tried since the path last worked.
    pub ice_restarted: bool,
}

impl Active {
    fn new(peer: String, call_id: CallId, role: Role, video: bool) -> Self {
        Self {
            peer,
            call_id,
            role,
            media_ready: false,
            local: MediaFlags { audio: true, video },
            remote: MediaFlags::ON,
            link: Link::Connecting,
            ice_restarted: false,
        }
    }
}

/// Timers the state machine asks for; each fires as [`Event::Timeout`] with its call id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    NoAnswer,
    Connect,
    IceRestart,
    EndedLinger,
}

/// Something that happened: a user action, a peer's message, or a report from the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The user picked someone to call. The runtime draws the random `call_id`.
    Dial {
        peer: String,
        call_id: CallId,
        video: bool,
    },
    Cancel,
    Accept,
    Decline,
    HangUp,
    ToggleMic,
    ToggleCamera,
    /// Leave the "ended" card.
    Dismiss,
    Peer {
        from: String,
        message: PeerMessage,
    },
    /// The server reported an error about a frame we sent; `call_id` is that frame's call
    /// (`None` from a server that does not say).
    ServerError {
        code: ErrorCode,
        call_id: Option<CallId>,
    },
    /// A user's last connection to the server closed.
    PeerOffline(String),
    /// Our camera/microphone are open and the peer connection exists. `video` is false when only a
    /// microphone could be had.
    MediaReady {
        call_id: CallId,
        video: bool,
    },
    MediaFailed {
        call_id: CallId,
    },
    Link {
        call_id: CallId,
        report: LinkReport,
        now_ms: f64,
    },
    Timeout {
        timer: Timer,
        call_id: CallId,
    },
}

/// What the runtime must do after a transition, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send {
        to: String,
        message: PeerMessage,
    },
    StartTimer {
        timer: Timer,
        call_id: CallId,
        ms: u32,
    },
    /// Start or stop the incoming-call alert (ring tone, title, notification).
    Ring {
        from: Option<String>,
    },
    /// Open camera (if `video`) and microphone, then create the peer connection, add the tracks
    /// and report [`Event::MediaReady`] or [`Event::MediaFailed`]. While the call is outgoing,
    /// what the peer connection wants to send is held back until [`Effect::SendHeld`].
    OpenMedia {
        call_id: CallId,
        video: bool,
        polite: bool,
    },
    /// Hand an offer/answer/candidate for the current call to the peer connection.
    Negotiate(PeerMessage),
    RestartIce,
    /// Enable or disable our outgoing tracks.
    SetLocalMedia(MediaFlags),
    /// The callee accepted: send what our peer connection prepared while it rang (the offer
    /// and candidates), and from now on send as it speaks.
    SendHeld,
    /// Close the peer connection and stop every local track.
    Release,
}

fn send(to: &str, message: PeerMessage) -> Effect {
    Effect::Send {
        to: to.to_owned(),
        message,
    }
}

fn timer(timer: Timer, call_id: &str, ms: u32) -> Effect {
    Effect::StartTimer {
        timer,
        call_id: call_id.to_owned(),
        ms,
    }
}

fn ended(peer: &str, call_id: &str, reason: EndReason, video: bool) -> (CallState, Vec<Effect>) {
    (
        CallState::Ended {
            peer: peer.to_owned(),
            call_id: call_id.to_owned(),
            reason,
            video,
        },
        vec![timer(Timer::EndedLinger, call_id, ENDED_LINGER_MS)],
    )
}

/// Ends an active call: tells the peer (when it still needs telling), releases the devices.
fn end_active(call: &Active, reason: EndReason, tell_peer: bool) -> (CallState, Vec<Effect>) {
    let mut effects = Vec::new();
    if tell_peer {
        let call_id = call.call_id.clone();
        effects.push(send(&call.peer, PeerMessage::Hangup { call_id }));
    }
    effects.push(Effect::Release);
    let (state, more) = ended(&call.peer, &call.call_id, reason, call.local.video);
    effects.extend(more);
    (state, effects)
}

impl CallState {
    /// The `data-state` test hook.
    pub fn tag(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Outgoing { .. } => "outgoing",
            Self::Incoming { .. } => "incoming",
            Self::Connecting(_) => "connecting",
            Self::InCall { .. } => "in-call",
            Self::Ended { .. } => "ended",
        }
    }

    /// The call this tab owns, if any; messages about other calls are not ours.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            Self::Idle => None,
            Self::Outgoing { call_id, .. }
            | Self::Incoming { call_id, .. }
            | Self::Ended { call_id, .. } => Some(call_id),
            Self::Connecting(call) | Self::InCall { call, .. } => Some(&call.call_id),
        }
    }

    pub fn peer(&self) -> Option<&str> {
        match self {
            Self::Idle => None,
            Self::Outgoing { peer, .. }
            | Self::Incoming { peer, .. }
            | Self::Ended { peer, .. } => Some(peer),
            Self::Connecting(call) | Self::InCall { call, .. } => Some(&call.peer),
        }
    }

    pub fn active(&self) -> Option<&Active> {
        match self {
            Self::Connecting(call) | Self::InCall { call, .. } => Some(call),
            _ => None,
        }
    }

    /// Whether a new call may start from here (no call in progress).
    pub fn is_free(&self) -> bool {
        matches!(self, Self::Idle | Self::Ended { .. })
    }

    /// Whether choosing `user` in the contact list does something now: call them, or answer
    /// them if they are the one ringing.
    pub fn can_dial(&self, user: &str) -> bool {
        match self {
            Self::Incoming { peer, .. } => peer == user,
            state => state.is_free(),
        }
    }

    /// The transition function: the next state and what to do about it.
    pub fn on(self, event: Event) -> (CallState, Vec<Effect>) {
        use CallState as S;
        use Event as E;
        match (self, event) {
            (
                state,
                E::Dial {
                    peer,
                    call_id,
                    video,
                },
            ) if state.is_free() => {
                let effects = vec![
                    send(
                        &peer,
                        PeerMessage::Invite {
                            call_id: call_id.clone(),
                        },
                    ),
                    timer(Timer::NoAnswer, &call_id, NO_ANSWER_MS),
                    Effect::OpenMedia {
                        call_id: call_id.clone(),
                        video,
                        polite: false,
                    },
                ];
                let state = S::Outgoing {
                    peer,
                    call_id,
                    ringing: false,
                    video,
                    devices: Devices::Opening,
                };
                (state, effects)
            }

            (S::Outgoing { peer, call_id, .. }, E::Cancel) => (
                S::Idle,
                vec![
                    send(&peer, PeerMessage::Cancel { call_id }),
                    Effect::Release,
                ],
            ),
            (
                S::Outgoing {
                    peer,
                    call_id,
                    ringing,
                    video,
                    devices: Devices::Opening,
                },
                E::MediaReady {
                    call_id: ready,
                    video: have_video,
                },
            ) if ready == call_id => (
                S::Outgoing {
                    peer,
                    call_id,
                    ringing,
                    video,
                    devices: Devices::Ready { video: have_video },
                },
                vec![],
            ),
            (
                S::Outgoing {
                    peer,
                    call_id,
                    video,
                    ..
                },
                E::MediaFailed { call_id: failed },
            ) if failed == call_id => {
                let (state, mut effects) = ended(&peer, &call_id, EndReason::MediaDenied, video);
                effects.splice(
                    0..0,
                    [
                        send(&peer, PeerMessage::Cancel { call_id }),
                        Effect::Release,
                    ],
                );
                (state, effects)
            }
            (
                S::Outgoing {
                    peer,
                    call_id,
                    video,
                    ..
                },
                E::Timeout {
                    timer: Timer::NoAnswer,
                    call_id: fired,
                },
            ) if fired == call_id => {
                let (state, mut effects) = ended(&peer, &call_id, EndReason::NoAnswer, video);
                effects.splice(
                    0..0,
                    [
                        send(&peer, PeerMessage::Cancel { call_id }),
                        Effect::Release,
                    ],
                );
                (state, effects)
            }
            (
                S::Outgoing {
                    peer,
                    call_id,
                    video,
                    ..
                },
                E::ServerError {
                    code: ErrorCode::PeerOffline,
                    call_id: about,
                },
            ) if about.as_ref().is_none_or(|about| *about == call_id) => {
                released(ended(&peer, &call_id, EndReason::PeerOffline, video))
            }
            (
                S::Outgoing {
                    peer,
                    call_id,
                    video,
                    ..
                },
                E::PeerOffline(user),
            ) if user == peer => released(ended(&peer, &call_id, EndReason::PeerOffline, video)),
            (
                S::Outgoing {
                    peer,
                    call_id,
                    ringing,
                    video,
                    devices,
                },
                E::Peer { from, message },
            ) => on_outgoing_message(
                Outgoing {
                    peer,
                    call_id,
                    ringing,
                    video,
                    devices,
                },
                from,
                message,
            ),

            // Calling the person who is calling us is answering them (the other half of glare:
            // their invite arrived before we pressed "call").
            (S::Incoming { peer, call_id }, E::Dial { peer: wanted, .. }) if wanted == peer => {
                S::Incoming { peer, call_id }.on(E::Accept)
            }
            (S::Incoming { peer, call_id }, E::Accept) => {
                // `accept` goes out at once: the caller's offer travels while our devices open.
                let effects = vec![
                    Effect::Ring { from: None },
                    send(
                        &peer,
                        PeerMessage::Accept {
                            call_id: call_id.clone(),
                        },
                    ),
                    Effect::OpenMedia {
                        call_id: call_id.clone(),
                        video: true,
                        polite: true,
                    },
                ];
                let call = Active::new(peer, call_id, Role::Callee, true);
                (S::Connecting(call), effects)
            }
            (S::Incoming { peer, call_id }, E::Decline) => (
                S::Idle,
                vec![
                    Effect::Ring { from: None },
                    send(&peer, PeerMessage::Decline { call_id }),
                ],
            ),
            (S::Incoming { peer, call_id }, E::PeerOffline(user)) if user == peer => {
                let (state, mut effects) = ended(&peer, &call_id, EndReason::Cancelled, true);
                effects.insert(0, Effect::Ring { from: None });
                (state, effects)
            }
            (S::Incoming { peer, call_id }, E::Peer { from, message }) => {
                on_incoming_message(peer, call_id, from, message)
            }

            (S::Connecting(call), event) => on_active(call, None, event),
            (
                S::InCall {
                    call,
                    started_at_ms,
                },
                event,
            ) => on_active(call, Some(started_at_ms), event),

            (S::Ended { .. }, E::Dismiss) => (S::Idle, vec![]),
            (
                S::Ended { call_id, .. },
                E::Timeout {
                    timer: Timer::EndedLinger,
                    call_id: fired,
                },
            ) if fired == call_id => (S::Idle, vec![]),

            (state, E::Peer { from, message }) if state.is_free() => {
                on_free_message(state, from, message)
            }

            // Anything else is stale (an old timer, a late reply) or meaningless here.
            (state, _) => (state, vec![]),
        }
    }
}

/// Idle or showing an ended call: only a new invite matters.
fn on_free_message(
    state: CallState,
    from: String,
    message: PeerMessage,
) -> (CallState, Vec<Effect>) {
    match message {
        PeerMessage::Invite { call_id } => {
            let effects = vec![
                send(
                    &from,
                    PeerMessage::Ringing {
                        call_id: call_id.clone(),
                    },
                ),
                Effect::Ring {
                    from: Some(from.clone()),
                },
            ];
            (
                CallState::Incoming {
                    peer: from,
                    call_id,
                },
                effects,
            )
        }
        _ => (state, vec![]),
    }
}

/// An outgoing call's fields, handed to [`on_outgoing_message`] as one value.
struct Outgoing {
    peer: String,
    call_id: CallId,
    ringing: bool,
    video: bool,
    devices: Devices,
}

impl Outgoing {
    fn state(self) -> CallState {
        CallState::Outgoing {
            peer: self.peer,
            call_id: self.call_id,
            ringing: self.ringing,
            video: self.video,
            devices: self.devices,
        }
    }

    fn end(self, reason: EndReason) -> (CallState, Vec<Effect>) {
        released(ended(&self.peer, &self.call_id, reason, self.video))
    }
}

/// The transition `ended` makes, after letting go of devices opened while ringing.
fn released((state, mut effects): (CallState, Vec<Effect>)) -> (CallState, Vec<Effect>) {
    effects.insert(0, Effect::Release);
    (state, effects)
}

fn on_outgoing_message(
    mut call: Outgoing,
    from: String,
    message: PeerMessage,
) -> (CallState, Vec<Effect>) {
    if let PeerMessage::Invite { call_id: theirs } = &message {
        if from != call.peer {
            let busy = send(
                &from,
                PeerMessage::Busy {
                    call_id: theirs.clone(),
                },
            );
            return (call.state(), vec![busy]);
        }
        // Glare: we called each other at once. The smaller call id wins on both sides, so exactly
        // one call survives without another round trip.
        if *theirs < call.call_id {
            let theirs = theirs.clone();
            let active = Active::new(call.peer.clone(), theirs.clone(), Role::Callee, call.video);
            let effects = vec![
                // Our invite also rang the peer's other tabs: silence them.
                send(
                    &call.peer,
                    PeerMessage::Cancel {
                        call_id: call.call_id,
                    },
                ),
                send(
                    &call.peer,
                    PeerMessage::Accept {
                        call_id: theirs.clone(),
                    },
                ),
                // What we prepared as the caller (impolite) does not fit the callee's role.
                Effect::Release,
                Effect::OpenMedia {
                    call_id: theirs,
                    video: call.video,
                    polite: true,
                },
            ];
            return (CallState::Connecting(active), effects);
        }
        // Ours wins; the peer drops its invite and accepts ours.
        return (call.state(), vec![]);
    }
    if from != call.peer || message.call_id() != Some(call.call_id.as_str()) {
        return (call.state(), vec![]);
    }
    match message {
        PeerMessage::Ringing { .. } => {
            call.ringing = true;
            (call.state(), vec![])
        }
        PeerMessage::Accept { .. } => {
            let active = Active::new(call.peer, call.call_id.clone(), Role::Caller, call.video);
            match call.devices {
                Devices::Ready { video } => {
                    let (state, mut effects) =
                        CallState::Connecting(active).on(Event::MediaReady {
                            call_id: call.call_id,
                            video,
                        });
                    effects.insert(0, Effect::SendHeld);
                    (state, effects)
                }
                // Still opening: `MediaReady` will come to the connecting call.
                Devices::Opening => (CallState::Connecting(active), vec![Effect::SendHeld]),
            }
        }
        PeerMessage::Decline { .. } => call.end(EndReason::Declined),
        PeerMessage::Busy { .. } => call.end(EndReason::Busy),
        // A callee that gave up while its devices were opening.
        PeerMessage::Hangup { .. } | PeerMessage::Leave { .. } => {
            call.end(EndReason::HungUp { by_me: false })
        }
        _ => (call.state(), vec![]),
    }
}

fn on_incoming_message(
    peer: String,
    call_id: CallId,
    from: String,
    message: PeerMessage,
) -> (CallState, Vec<Effect>) {
    let unchanged = |peer, call_id| (CallState::Incoming { peer, call_id }, vec![]);
    match message {
        PeerMessage::Invite { call_id: other } if other != call_id => (
            unchanged(peer, call_id).0,
            vec![send(&from, PeerMessage::Busy { call_id: other })],
        ),
        PeerMessage::Cancel { call_id: c } if c == call_id && from == peer => {
            let (state, mut effects) = ended(&peer, &call_id, EndReason::Cancelled, true);
            effects.insert(0, Effect::Ring { from: None });
            (state, effects)
        }
        // The same call answered, declined or refused by another tab of ours (echoed by the
        // server): this tab just stops ringing.
        PeerMessage::Accept { call_id: c }
        | PeerMessage::Decline { call_id: c }
        | PeerMessage::Busy { call_id: c }
            if c == call_id =>
        {
            (CallState::Idle, vec![Effect::Ring { from: None }])
        }
        _ => unchanged(peer, call_id),
    }
}

/// Connecting (`started_at_ms` is `None`) or in a call.
fn on_active(
    mut call: Active,
    started_at_ms: Option<f64>,
    event: Event,
) -> (CallState, Vec<Effect>) {
    let rebuild = |call: Active| match started_at_ms {
        Some(started_at_ms) => CallState::InCall {
            call,
            started_at_ms,
        },
        None => CallState::Connecting(call),
    };
    match event {
        Event::HangUp => end_active(&call, EndReason::HungUp { by_me: true }, true),
        Event::ToggleMic | Event::ToggleCamera => {
            if matches!(event, Event::ToggleMic) {
                call.local.audio = !call.local.audio;
            } else {
                call.local.video = !call.local.video;
            }
            let effects = vec![
                Effect::SetLocalMedia(call.local),
                send(
                    &call.peer,
                    PeerMessage::Media {
                        call_id: call.call_id.clone(),
                        audio: call.local.audio,
                        video: call.local.video,
                    },
                ),
            ];
            (rebuild(call), effects)
        }
        Event::MediaReady { call_id, video } if call_id == call.call_id && !call.media_ready => {
            call.media_ready = true;
            let mut effects = vec![timer(Timer::Connect, &call_id, CONNECT_TIMEOUT_MS)];
            if !video || !call.local.video {
                // No camera (or none wanted): say so, so the peer shows "camera off" instead of
                // a black picture.
                call.local.video = false;
                effects.push(send(
                    &call.peer,
                    PeerMessage::Media {
                        call_id,
                        audio: call.local.audio,
                        video: false,
                    },
                ));
            }
            (rebuild(call), effects)
        }
        Event::MediaFailed { call_id } if call_id == call.call_id => {
            end_active(&call, EndReason::MediaDenied, true)
        }
        Event::Link {
            call_id,
            report,
            now_ms,
        } if call_id == call.call_id => match report {
            LinkReport::Connected => {
                call.link = Link::Connected;
                call.ice_restarted = false;
                let started_at_ms = started_at_ms.unwrap_or(now_ms);
                (
                    CallState::InCall {
                        call,
                        started_at_ms,
                    },
                    vec![],
                )
            }
            LinkReport::Interrupted => {
                if started_at_ms.is_some() {
                    call.link = Link::Reconnecting;
                }
                (rebuild(call), vec![])
            }
            LinkReport::Failed if !call.ice_restarted => {
                call.ice_restarted = true;
                if started_at_ms.is_some() {
                    call.link = Link::Reconnecting;
                }
                let effects = vec![
                    Effect::RestartIce,
                    timer(Timer::IceRestart, &call_id, ICE_RESTART_TIMEOUT_MS),
                ];
                (rebuild(call), effects)
            }
            LinkReport::Failed => end_active(&call, EndReason::ConnectionLost, true),
            LinkReport::RelayRefused => end_active(&call, EndReason::RelayRefused, true),
        },
        Event::Timeout {
            timer: Timer::Connect,
            call_id,
        } if call_id == call.call_id && started_at_ms.is_none() => {
            end_active(&call, EndReason::ConnectionLost, true)
        }
        // A restart that never brought the path back (ICE may stay `failed` without another
        // state change to report).
        Event::Timeout {
            timer: Timer::IceRestart,
            call_id,
        } if call_id == call.call_id && call.ice_restarted && call.link != Link::Connected => {
            end_active(&call, EndReason::ConnectionLost, true)
        }
        Event::Peer { from, message } => on_active_message(call, started_at_ms, from, message),
        // The peer's signaling may drop while media still flows peer to peer; only the media
        // path decides whether the call is over.
        _ => (rebuild(call), vec![]),
    }
}

fn on_active_message(
    mut call: Active,
    started_at_ms: Option<f64>,
    from: String,
    message: PeerMessage,
) -> (CallState, Vec<Effect>) {
    let rebuild = |call: Active| match started_at_ms {
        Some(started_at_ms) => CallState::InCall {
            call,
            started_at_ms,
        },
        None => CallState::Connecting(call),
    };
    if let PeerMessage::Invite { call_id } = &message
        && *call_id != call.call_id
    {
        let effects = vec![send(
            &from,
            PeerMessage::Busy {
                call_id: call_id.clone(),
            },
        )];
        return (rebuild(call), effects);
    }
    if from != call.peer {
        return (rebuild(call), vec![]);
    }
    // The seed's messages carry no call id; from our peer they can only mean this call.
    let ours = message.call_id().is_none_or(|id| id == call.call_id);
    if !ours {
        return (rebuild(call), vec![]);
    }
    match message {
        PeerMessage::Offer { .. } | PeerMessage::Answer { .. } | PeerMessage::Candidate { .. } => {
            (rebuild(call), vec![Effect::Negotiate(message)])
        }
        PeerMessage::Hangup { .. } | PeerMessage::Leave { .. } => {
            end_active(&call, EndReason::HungUp { by_me: false }, false)
        }
        PeerMessage::Cancel { .. } => end_active(&call, EndReason::Cancelled, false),
        PeerMessage::Decline { .. } => end_active(&call, EndReason::Declined, false),
        PeerMessage::Media { audio, video, .. } => {
            call.remote = MediaFlags { audio, video };
            (rebuild(call), vec![])
        }
        _ => (rebuild(call), vec![]),
    }
}

#[cfg(test)]
mod tests;
