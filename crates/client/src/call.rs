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
/// How long ICE may stay `disconnected` before we restart it: it often recovers by itself
/// within a second or two, and a restart costs a round of signaling.
pub const DISCONNECT_GRACE_MS: u32 = 2_000;
/// How long one ICE restart may take before another is tried: its offer may have been lost
/// with the peer's signaling socket (a network change drops both at once).
pub const RESTART_RETRY_MS: u32 = 4_000;
/// How long a lost media path may take to come back before the call is given up.
pub const RECONNECT_GIVE_UP_MS: u32 = 30_000;
/// A path that comes back and drops again within this time continues the same loss, with the
/// same give-up time: Chromium flickers `connected`/`disconnected` around a dying path, and each
/// flicker must not buy a dead call another [`RECONNECT_GIVE_UP_MS`].
pub const FLAP_MS: f64 = 5_000.0;
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

/// Where an accepted call is, from opening the devices to talking (and recovering).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Our camera and microphone are opening. The callee's peer connection negotiates meanwhile
    /// (it offers at once, with empty senders), so the caller can be seen and heard before our
    /// own camera is up: its reports move the call on from here too.
    OpeningDevices,
    /// The first media path is being negotiated. `restarted`: ICE failed once already and an
    /// ICE restart was tried (the connect timer bounds this phase).
    Negotiating { restarted: bool },
    /// Media flows; the call timer counts from `started_at_ms`. `recovered`: the last loss, if
    /// this phase ended one.
    Connected {
        started_at_ms: f64,
        recovered: Option<Recovered>,
    },
    /// The media path worked and was lost; the call timer keeps counting. `episode` tells this
    /// loss from earlier ones, so a timer armed for an old loss cannot end a new one.
    Reconnecting {
        started_at_ms: f64,
        episode: u32,
        recovery: Recovery,
    },
}

/// Our signaling socket, as the call sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalingLink {
    Up,
    Down,
    /// Replaced after a network change (the old socket may be bound to an address that is gone,
    /// and the browser does not always close it): once the new one is up, ICE restarts too.
    Renewing,
}

/// A loss of the media path that ended, and when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recovered {
    pub episode: u32,
    pub at_ms: f64,
}

/// How a lost media path is being brought back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// ICE reported `disconnected`; it may come back by itself within the grace time.
    Grace,
    /// A restart is due, but our signaling socket is down: the offer would be lost. It goes out
    /// when the socket is back.
    AwaitingSignaling,
    /// ICE restart number `attempt` of this loss is under way.
    Restarting { attempt: u32 },
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
    /// `peer` invites us; we are ringing. `video`: a video call rings (false: a voice call).
    Incoming {
        peer: String,
        call_id: CallId,
        video: bool,
    },
    /// Both sides said yes: from opening the devices to hanging up.
    Active(Active),
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

/// An accepted call.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    pub peer: String,
    pub call_id: CallId,
    pub role: Role,
    pub local: MediaFlags,
    pub remote: MediaFlags,
    pub phase: Phase,
    /// How many times the media path was lost; numbers the next [`Phase::Reconnecting`].
    pub losses: u32,
    /// Our signaling socket, which an ICE restart needs.
    pub signaling: SignalingLink,
}

impl Phase {
    /// The `data-phase` test hook.
    pub fn tag(self) -> &'static str {
        match self {
            Self::OpeningDevices => "opening-devices",
            Self::Negotiating { .. } => "negotiating",
            Self::Connected { .. } => "connected",
            Self::Reconnecting { .. } => "reconnecting",
        }
    }
}

impl Active {
    /// `video`: whether we open our camera; `peer_video`: whether the peer opens theirs (a video
    /// call's caller does; its callee says otherwise once its devices are open).
    fn new(peer: String, call_id: CallId, role: Role, video: bool, peer_video: bool) -> Self {
        Self {
            peer,
            call_id,
            role,
            local: MediaFlags { audio: true, video },
            remote: MediaFlags {
                audio: true,
                video: peer_video,
            },
            phase: Phase::OpeningDevices,
            losses: 0,
            signaling: SignalingLink::Up,
        }
    }

    /// When media first flowed (the call timer's start), once it has.
    pub fn started_at_ms(&self) -> Option<f64> {
        match self.phase {
            Phase::Connected { started_at_ms, .. } | Phase::Reconnecting { started_at_ms, .. } => {
                Some(started_at_ms)
            }
            Phase::OpeningDevices | Phase::Negotiating { .. } => None,
        }
    }

    pub fn is_reconnecting(&self) -> bool {
        matches!(self.phase, Phase::Reconnecting { .. })
    }
}

/// Timers the state machine asks for; each fires as [`Event::Timeout`] with its call id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    NoAnswer,
    /// Bounds the first negotiation.
    Connect,
    /// The grace time of loss `episode` is over: restart ICE if it has not recovered.
    DisconnectGrace {
        episode: u32,
    },
    /// Restart `attempt` of loss `episode` brought nothing: try again.
    RestartRetry {
        episode: u32,
        attempt: u32,
    },
    /// Loss `episode` lasted too long: the call is lost.
    GiveUp {
        episode: u32,
    },
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
    /// Answer the ringing call as it rings (a video call with our camera).
    Accept,
    /// Answer the ringing call with our microphone only, whichever kind it is.
    AcceptVoice,
    Decline,
    HangUp,
    ToggleMic,
    ToggleCamera,
    /// Share a screen in place of the camera, or stop sharing it.
    ToggleShare,
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
    /// A user connected to the server (again).
    PeerOnline(String),
    /// Our signaling socket connected (`true`) or dropped (`false`).
    Signaling(bool),
    /// The browser reports a network change (`online`, a new connection type).
    NetworkChanged,
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
    /// The callee makes its peer connection while it rings, with empty senders and no device:
    /// its offer is then ready to follow the accept at once. What it wants to send is held back
    /// until [`Effect::SendHeld`]; declining, or the call ending otherwise, releases it.
    PrepareLink {
        call_id: CallId,
    },
    /// Open camera (if `video`) and microphone and create the peer connection with their tracks,
    /// then report [`Event::MediaReady`] or [`Event::MediaFailed`]. The `polite` side (the
    /// callee) uses the connection it prepared while ringing (or makes one) and offers while its
    /// devices open. While the call is outgoing or still ringing here, what the peer connection
    /// wants to send is held back until [`Effect::SendHeld`].
    OpenMedia {
        call_id: CallId,
        video: bool,
        polite: bool,
    },
    /// Hand an offer/answer/candidate for the current call to the peer connection.
    Negotiate(PeerMessage),
    RestartIce,
    /// The media path is back after a loss: have our video encoder send a key frame, so the
    /// peer's picture does not stay frozen until its decoder asks again.
    RefreshVideo,
    /// Enable or disable our outgoing tracks.
    SetLocalMedia(MediaFlags),
    /// Start sharing a screen on the video sender, or go back to the camera. Nothing is said to
    /// the peer: the track changes on the same sender, without renegotiation.
    ToggleShare,
    /// The call was accepted: send what our peer connection prepared while it rang (the
    /// caller's candidates, the callee's offer and candidates), and from now on send as it speaks.
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
            Self::Active(call) if call.started_at_ms().is_none() => "connecting",
            Self::Active(_) => "in-call",
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
            Self::Active(call) => Some(&call.call_id),
        }
    }

    pub fn peer(&self) -> Option<&str> {
        match self {
            Self::Idle => None,
            Self::Outgoing { peer, .. }
            | Self::Incoming { peer, .. }
            | Self::Ended { peer, .. } => Some(peer),
            Self::Active(call) => Some(&call.peer),
        }
    }

    pub fn active(&self) -> Option<&Active> {
        match self {
            Self::Active(call) => Some(call),
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
                            video,
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
            (
                S::Incoming {
                    peer,
                    call_id,
                    video: rung,
                },
                E::Dial {
                    peer: wanted,
                    video,
                    ..
                },
            ) if wanted == peer => {
                let answer = if video { E::Accept } else { E::AcceptVoice };
                S::Incoming {
                    peer,
                    call_id,
                    video: rung,
                }
                .on(answer)
            }
            (
                S::Incoming {
                    peer,
                    call_id,
                    video: rung,
                },
                answer @ (E::Accept | E::AcceptVoice),
            ) => {
                // A voice call opens no camera here, whatever the answer.
                let video = rung && answer == E::Accept;
                // `accept` goes out at once, the offer prepared while ringing right behind it,
                // and our devices open meanwhile.
                let effects = vec![
                    Effect::Ring { from: None },
                    send(
                        &peer,
                        PeerMessage::Accept {
                            call_id: call_id.clone(),
                        },
                    ),
                    Effect::SendHeld,
                    Effect::OpenMedia {
                        call_id: call_id.clone(),
                        video,
                        polite: true,
                    },
                    timer(Timer::Connect, &call_id, CONNECT_TIMEOUT_MS),
                ];
                let call = Active::new(peer, call_id, Role::Callee, video, rung);
                (S::Active(call), effects)
            }
            (S::Incoming { peer, call_id, .. }, E::Decline) => {
                stop_ringing((S::Idle, vec![send(&peer, PeerMessage::Decline { call_id })]))
            }
            (S::Incoming { peer, call_id, .. }, E::PeerOffline(user)) if user == peer => {
                stop_ringing(ended(&peer, &call_id, EndReason::Cancelled, true))
            }
            (
                S::Incoming {
                    peer,
                    call_id,
                    video,
                },
                E::Peer { from, message },
            ) => on_incoming_message(
                Ringing {
                    peer,
                    call_id,
                    video,
                },
                from,
                message,
            ),

            (S::Active(call), event) => on_active(call, event),

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
        PeerMessage::Invite { call_id, video } => {
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
                Effect::PrepareLink {
                    call_id: call_id.clone(),
                },
            ];
            (
                CallState::Incoming {
                    peer: from,
                    call_id,
                    video,
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

/// A ringing call ends without being answered here: the alert stops and the connection
/// prepared while ringing goes.
fn stop_ringing(transition: (CallState, Vec<Effect>)) -> (CallState, Vec<Effect>) {
    let (state, mut effects) = released(transition);
    effects.insert(0, Effect::Ring { from: None });
    (state, effects)
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
    if let PeerMessage::Invite {
        call_id: theirs,
        video: their_video,
    } = &message
    {
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
            // Their call is the one that goes on: a voice call if either of us placed one.
            let video = call.video && *their_video;
            let active = Active::new(
                call.peer.clone(),
                theirs.clone(),
                Role::Callee,
                video,
                *their_video,
            );
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
                    call_id: theirs.clone(),
                    video,
                    polite: true,
                },
                timer(Timer::Connect, &theirs, CONNECT_TIMEOUT_MS),
            ];
            return (CallState::Active(active), effects);
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
            // The callee of a video call that answers with voice says so once its devices open.
            let active = Active::new(
                call.peer,
                call.call_id.clone(),
                Role::Caller,
                call.video,
                call.video,
            );
            match call.devices {
                Devices::Ready { video } => {
                    let (state, mut effects) = CallState::Active(active).on(Event::MediaReady {
                        call_id: call.call_id,
                        video,
                    });
                    effects.insert(0, Effect::SendHeld);
                    (state, effects)
                }
                // Still opening: `MediaReady` will come to the connecting call.
                Devices::Opening => (CallState::Active(active), vec![Effect::SendHeld]),
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

/// A ringing call's fields, handed to [`on_incoming_message`] as one value.
struct Ringing {
    peer: String,
    call_id: CallId,
    video: bool,
}

fn on_incoming_message(
    ringing: Ringing,
    from: String,
    message: PeerMessage,
) -> (CallState, Vec<Effect>) {
    let Ringing {
        peer,
        call_id,
        video,
    } = ringing;
    let unchanged = |peer, call_id| {
        (
            CallState::Incoming {
                peer,
                call_id,
                video,
            },
            vec![],
        )
    };
    match message {
        PeerMessage::Invite { call_id: other, .. } if other != call_id => (
            unchanged(peer, call_id).0,
            vec![send(&from, PeerMessage::Busy { call_id: other })],
        ),
        PeerMessage::Cancel { call_id: c } if c == call_id && from == peer => {
            stop_ringing(ended(&peer, &call_id, EndReason::Cancelled, true))
        }
        // The same call answered, declined or refused by another tab of ours (echoed by the
        // server): this tab just stops ringing.
        PeerMessage::Accept { call_id: c }
        | PeerMessage::Decline { call_id: c }
        | PeerMessage::Busy { call_id: c }
            if c == call_id =>
        {
            stop_ringing((CallState::Idle, vec![]))
        }
        _ => unchanged(peer, call_id),
    }
}

fn on_active(mut call: Active, event: Event) -> (CallState, Vec<Effect>) {
    match event {
        Event::HangUp => end_active(&call, EndReason::HungUp { by_me: true }, true),
        Event::ToggleShare => (CallState::Active(call), vec![Effect::ToggleShare]),
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
            (CallState::Active(call), effects)
        }
        Event::MediaReady { call_id, video } if call_id == call.call_id => {
            let mut effects = Vec::new();
            // The callee's connection negotiates from the accept on (its timer runs since then)
            // and may have connected already; the caller's starts now.
            if call.phase == Phase::OpeningDevices {
                call.phase = Phase::Negotiating { restarted: false };
                if call.role == Role::Caller {
                    effects.push(timer(Timer::Connect, &call_id, CONNECT_TIMEOUT_MS));
                }
            }
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
            (CallState::Active(call), effects)
        }
        Event::MediaFailed { call_id } if call_id == call.call_id => {
            end_active(&call, EndReason::MediaDenied, true)
        }
        Event::Link {
            call_id,
            report,
            now_ms,
        } if call_id == call.call_id => on_link(call, report, now_ms),
        Event::Timeout { timer, call_id } if call_id == call.call_id => on_timeout(call, timer),
        Event::Signaling(up) => {
            let renewed = up && call.signaling == SignalingLink::Renewing;
            call.signaling = match (up, call.signaling) {
                (true, _) => SignalingLink::Up,
                (false, SignalingLink::Renewing) => SignalingLink::Renewing,
                (false, _) => SignalingLink::Down,
            };
            match call.phase {
                Phase::Reconnecting {
                    recovery: Recovery::AwaitingSignaling,
                    ..
                } if up => restart(call),
                // The network changed under a working call: look for the new path now.
                Phase::Connected { .. } if renewed => {
                    (CallState::Active(call), vec![Effect::RestartIce])
                }
                // The restart's offer may have died with the socket: send a new one once back.
                Phase::Reconnecting {
                    started_at_ms,
                    episode,
                    recovery: Recovery::Restarting { .. },
                } if !up => {
                    call.phase = Phase::Reconnecting {
                        started_at_ms,
                        episode,
                        recovery: Recovery::AwaitingSignaling,
                    };
                    (CallState::Active(call), vec![])
                }
                _ => (CallState::Active(call), vec![]),
            }
        }
        // The peer's socket is back, so whatever we offered while it was away never reached it:
        // offer again now rather than at the next retry.
        Event::PeerOnline(user)
            if user == call.peer
                && matches!(
                    call.phase,
                    Phase::Reconnecting {
                        recovery: Recovery::Restarting { .. },
                        ..
                    }
                ) =>
        {
            restart(call)
        }
        // The runtime renews the signaling socket; the restart follows once it is back. A working
        // call stays "connected" meanwhile (the old path may still carry media), and a dead old
        // path shows as `disconnected` soon anyway.
        Event::NetworkChanged => {
            call.signaling = SignalingLink::Renewing;
            if let Phase::Reconnecting {
                started_at_ms,
                episode,
                ..
            } = call.phase
            {
                call.phase = Phase::Reconnecting {
                    started_at_ms,
                    episode,
                    recovery: Recovery::AwaitingSignaling,
                };
            }
            (CallState::Active(call), vec![])
        }
        Event::Peer { from, message } => on_active_message(call, from, message),
        // The peer's signaling may drop while media still flows peer to peer; only the media
        // path decides whether the call is over.
        _ => (CallState::Active(call), vec![]),
    }
}

fn on_link(mut call: Active, report: LinkReport, now_ms: f64) -> (CallState, Vec<Effect>) {
    let call_id = call.call_id.clone();
    match (call.phase, report) {
        (_, LinkReport::RelayRefused) => end_active(&call, EndReason::RelayRefused, true),
        (Phase::OpeningDevices | Phase::Negotiating { .. }, LinkReport::Connected) => {
            call.phase = Phase::Connected {
                started_at_ms: now_ms,
                recovered: None,
            };
            (CallState::Active(call), vec![])
        }
        (
            Phase::Reconnecting {
                started_at_ms,
                episode,
                ..
            },
            LinkReport::Connected,
        ) => {
            call.phase = Phase::Connected {
                started_at_ms,
                recovered: Some(Recovered {
                    episode,
                    at_ms: now_ms,
                }),
            };
            (CallState::Active(call), vec![Effect::RefreshVideo])
        }
        (Phase::OpeningDevices | Phase::Negotiating { restarted: false }, LinkReport::Failed) => {
            call.phase = Phase::Negotiating { restarted: true };
            (CallState::Active(call), vec![Effect::RestartIce])
        }
        (Phase::Negotiating { restarted: true }, LinkReport::Failed) => {
            end_active(&call, EndReason::ConnectionLost, true)
        }
        (
            Phase::Connected {
                started_at_ms,
                recovered,
            },
            LinkReport::Interrupted | LinkReport::Failed,
        ) => {
            let flapping = recovered.filter(|r| now_ms - r.at_ms < FLAP_MS);
            let episode = match flapping {
                Some(previous) => previous.episode,
                None => {
                    call.losses += 1;
                    call.losses
                }
            };
            call.phase = Phase::Reconnecting {
                started_at_ms,
                episode,
                recovery: Recovery::Grace,
            };
            // A flapping loss keeps the give-up timer it already has.
            let give_up = flapping
                .is_none()
                .then(|| timer(Timer::GiveUp { episode }, &call_id, RECONNECT_GIVE_UP_MS));
            if report == LinkReport::Failed {
                // ICE gave up on every pair: nothing will come back without a restart.
                let (state, mut effects) = restart(call);
                effects.extend(give_up);
                return (state, effects);
            }
            let grace = timer(
                Timer::DisconnectGrace { episode },
                &call_id,
                DISCONNECT_GRACE_MS,
            );
            (
                CallState::Active(call),
                give_up.into_iter().chain([grace]).collect(),
            )
        }
        // A restart that failed again (or a `failed` after `disconnected`): try the next one now.
        (
            Phase::Reconnecting {
                recovery: Recovery::Grace | Recovery::Restarting { .. },
                ..
            },
            LinkReport::Failed,
        ) => restart(call),
        _ => (CallState::Active(call), vec![]),
    }
}

fn on_timeout(call: Active, fired: Timer) -> (CallState, Vec<Effect>) {
    match (call.phase, fired) {
        (Phase::OpeningDevices | Phase::Negotiating { .. }, Timer::Connect) => {
            end_active(&call, EndReason::ConnectionLost, true)
        }
        (
            Phase::Reconnecting {
                episode,
                recovery: Recovery::Grace,
                ..
            },
            Timer::DisconnectGrace { episode: fired },
        ) if fired == episode => restart(call),
        (
            Phase::Reconnecting {
                episode,
                recovery: Recovery::Restarting { attempt },
                ..
            },
            Timer::RestartRetry {
                episode: fired,
                attempt: tried,
            },
        ) if fired == episode && tried == attempt => restart(call),
        (Phase::Reconnecting { episode, .. }, Timer::GiveUp { episode: fired })
            if fired == episode =>
        {
            end_active(&call, EndReason::ConnectionLost, true)
        }
        // A timer of an earlier phase or loss.
        _ => (CallState::Active(call), vec![]),
    }
}

/// Starts the next ICE restart of the current loss, or waits for the signaling socket it needs.
fn restart(mut call: Active) -> (CallState, Vec<Effect>) {
    let Phase::Reconnecting {
        started_at_ms,
        episode,
        recovery,
    } = call.phase
    else {
        return (CallState::Active(call), vec![]);
    };
    if call.signaling != SignalingLink::Up {
        call.phase = Phase::Reconnecting {
            started_at_ms,
            episode,
            recovery: Recovery::AwaitingSignaling,
        };
        return (CallState::Active(call), vec![]);
    }
    let attempt = match recovery {
        Recovery::Restarting { attempt } => attempt + 1,
        Recovery::Grace | Recovery::AwaitingSignaling => 1,
    };
    call.phase = Phase::Reconnecting {
        started_at_ms,
        episode,
        recovery: Recovery::Restarting { attempt },
    };
    let retry = timer(
        Timer::RestartRetry { episode, attempt },
        &call.call_id,
        RESTART_RETRY_MS,
    );
    (CallState::Active(call), vec![Effect::RestartIce, retry])
}

fn on_active_message(call: Active, from: String, message: PeerMessage) -> (CallState, Vec<Effect>) {
    let mut call = call;
    if let PeerMessage::Invite { call_id, .. } = &message
        && *call_id != call.call_id
    {
        let effects = vec![send(
            &from,
            PeerMessage::Busy {
                call_id: call_id.clone(),
            },
        )];
        return (CallState::Active(call), effects);
    }
    if from != call.peer {
        return (CallState::Active(call), vec![]);
    }
    // The seed's messages carry no call id; from our peer they can only mean this call.
    let ours = message.call_id().is_none_or(|id| id == call.call_id);
    if !ours {
        return (CallState::Active(call), vec![]);
    }
    match message {
        // Offers that cross (both sides restart at once) are settled by perfect negotiation in
        // the peer connection; the call itself does not change.
        PeerMessage::Offer { .. } | PeerMessage::Answer { .. } | PeerMessage::Candidate { .. } => {
            (CallState::Active(call), vec![Effect::Negotiate(message)])
        }
        PeerMessage::Hangup { .. } | PeerMessage::Leave { .. } => {
            end_active(&call, EndReason::HungUp { by_me: false }, false)
        }
        PeerMessage::Cancel { .. } => end_active(&call, EndReason::Cancelled, false),
        PeerMessage::Decline { .. } => end_active(&call, EndReason::Declined, false),
        PeerMessage::Media { audio, video, .. } => {
            call.remote = MediaFlags { audio, video };
            (CallState::Active(call), vec![])
        }
        _ => (CallState::Active(call), vec![]),
    }
}

#[cfg(test)]
mod tests;
