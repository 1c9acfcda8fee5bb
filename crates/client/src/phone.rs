//! The phone: runs the call state machine against the signaling socket, the WebRTC glue and
//! the ringer.
//!
//! Components hold a [`Phone`], a copyable handle with the reactive state to show and methods to
//! send commands. Everything browser-bound lives in one task (the runtime) that handles one input
//! at a time — commands, server frames, device and connection reports — so there is no shared
//! mutable state between callbacks, and the state machine sees events in a single order.

use futures::StreamExt;
use futures::channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures::channel::oneshot;
use futures::future::{AbortHandle, abortable};
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use serde_json::Value;
use web_sys::{MediaStream, MediaStreamTrack, RtcPeerConnection};

use protocol::{CallId, ClientFrame, IceTransportPolicy, PeerMessage, ServerEvent, ServerMessage};

use crate::call::{CallState, Devices, Effect, Event, LinkReport};
use crate::devices::Kind;
use crate::i18n::{Lang, fill};
use crate::network_watch::NetworkWatch;
use crate::quality::{Adaptation, QualityReport, StatsSample};
use crate::ringer::{Ringer, request_notification_permission};
use crate::rtc::{LinkEvent, LocalMedia, MediaError, PeerLink, ScreenShare, Senders};
use crate::signaling::{SignalEvent, Signaling};

/// A media stream the UI can hold in a signal (the browser is single-threaded).
pub type SharedStream = SendWrapper<MediaStream>;
/// The current call's data channel (chat and files), shared the same way.
pub type SharedChannel = SendWrapper<web_sys::RtcDataChannel>;

/// What a component can ask the phone to do.
#[derive(Debug)]
enum Command {
    Dial {
        peer: String,
        video: bool,
    },
    Call(Event),
    UnlockAudio,
    /// The user picked this device (already remembered for later calls).
    UseDevice {
        kind: Kind,
        id: String,
    },
    /// Hang up and disconnect; `done`, if any, is told once the farewell is sent.
    Stop {
        done: Option<oneshot::Sender<()>>,
    },
}

/// The UI's handle on the phone.
#[derive(Clone, Copy)]
pub struct Phone {
    call: RwSignal<CallState>,
    /// The ringing call on the page was answered and the call's pane is not shown yet: the
    /// ringing card stops ringing. The runtime draws the pane once the media path is up (see
    /// `Runtime::view_behind`).
    answered: RwSignal<bool>,
    online: RwSignal<Vec<String>>,
    /// Those of `online` who are in a call now.
    in_call: RwSignal<Vec<String>>,
    server_down: RwSignal<bool>,
    local_stream: RwSignal<Option<SharedStream>>,
    remote_stream: RwSignal<Option<SharedStream>>,
    /// The call's verification code (crate::verify), once the media path is up.
    verification: RwSignal<Option<String>>,
    /// The last second's connection quality, once there is a second to compare with.
    quality: RwSignal<Option<QualityReport>>,
    /// The link has been poor for a while (the app offers to turn the camera off).
    poor_for_a_while: RwSignal<bool>,
    data_channel: RwSignal<Option<SharedChannel>>,
    /// We share a screen in place of the camera.
    sharing: RwSignal<bool>,
    /// The peer's video is a shared screen (the browser marks it so in the stats).
    peer_sharing: RwSignal<bool>,
    /// Bumped when the contact book may have changed (the server said so, or reconnected).
    contacts_changed: RwSignal<u32>,
    /// Bumped when the call history may have changed (a call of ours was recorded).
    history_changed: RwSignal<u32>,
    /// Bumped when devices come or go (the pickers list them again).
    devices_changed: RwSignal<u32>,
    /// The speaker the peer is heard through (`None`: the system's).
    speaker: RwSignal<Option<String>>,
    /// A device in use went away and the call goes on with another: said in a sentence, in the
    /// language of the moment it happened (it is announced once, not kept up to date).
    device_notice: RwSignal<Option<String>>,
    commands: StoredValue<Option<UnboundedSender<Command>>>,
}

impl Default for Phone {
    fn default() -> Self {
        Self::new()
    }
}

impl Phone {
    pub fn new() -> Self {
        Self {
            call: RwSignal::new(CallState::Idle),
            answered: RwSignal::new(false),
            online: RwSignal::new(Vec::new()),
            in_call: RwSignal::new(Vec::new()),
            server_down: RwSignal::new(false),
            local_stream: RwSignal::new(None),
            remote_stream: RwSignal::new(None),
            verification: RwSignal::new(None),
            quality: RwSignal::new(None),
            poor_for_a_while: RwSignal::new(false),
            data_channel: RwSignal::new(None),
            sharing: RwSignal::new(false),
            peer_sharing: RwSignal::new(false),
            contacts_changed: RwSignal::new(0),
            history_changed: RwSignal::new(0),
            devices_changed: RwSignal::new(0),
            speaker: RwSignal::new(None),
            device_notice: RwSignal::new(None),
            commands: StoredValue::new(None),
        }
    }

    pub fn call(&self) -> ReadSignal<CallState> {
        self.call.read_only()
    }

    /// Changes when the contact book should be fetched again.
    pub fn contacts_changed(&self) -> ReadSignal<u32> {
        self.contacts_changed.read_only()
    }

    /// Changes when the call history should be fetched again.
    pub fn history_changed(&self) -> ReadSignal<u32> {
        self.history_changed.read_only()
    }

    /// The contact book changed here (this tab acted on it).
    pub fn contacts_touched(&self) {
        self.contacts_changed.update(|n| *n = n.wrapping_add(1));
    }

    /// Contacts online now, sorted.
    pub fn online(&self) -> ReadSignal<Vec<String>> {
        self.online.read_only()
    }

    /// Contacts online now who are in a call.
    pub fn in_call(&self) -> ReadSignal<Vec<String>> {
        self.in_call.read_only()
    }

    /// The signaling socket is down and being retried.
    pub fn server_down(&self) -> ReadSignal<bool> {
        self.server_down.read_only()
    }

    pub fn local_stream(&self) -> ReadSignal<Option<SharedStream>> {
        self.local_stream.read_only()
    }

    pub fn remote_stream(&self) -> ReadSignal<Option<SharedStream>> {
        self.remote_stream.read_only()
    }

    /// The code both users compare aloud (`"123 456"`), once the media path is up.
    pub fn verification(&self) -> ReadSignal<Option<String>> {
        self.verification.read_only()
    }

    pub fn quality(&self) -> ReadSignal<Option<QualityReport>> {
        self.quality.read_only()
    }

    pub fn poor_for_a_while(&self) -> ReadSignal<bool> {
        self.poor_for_a_while.read_only()
    }

    /// The data channel of the call whose media is set up (`None` between calls).
    pub fn data_channel(&self) -> ReadSignal<Option<SharedChannel>> {
        self.data_channel.read_only()
    }

    /// Whether we share a screen now.
    pub fn sharing(&self) -> ReadSignal<bool> {
        self.sharing.read_only()
    }

    /// Whether the ringing call the page shows was answered (the call's pane comes next).
    pub fn answered(&self) -> ReadSignal<bool> {
        self.answered.read_only()
    }

    /// Whether the peer's video is a shared screen.
    pub fn peer_sharing(&self) -> ReadSignal<bool> {
        self.peer_sharing.read_only()
    }

    /// Changes when devices were plugged in or out.
    pub fn devices_changed(&self) -> ReadSignal<u32> {
        self.devices_changed.read_only()
    }

    pub fn speaker(&self) -> ReadSignal<Option<String>> {
        self.speaker.read_only()
    }

    pub fn device_notice(&self) -> ReadSignal<Option<String>> {
        self.device_notice.read_only()
    }

    /// Uses the device `id` of `kind` from now on: in the call, if there is one (swapped on the
    /// same sender), and in the next (remembered in the browser).
    pub fn use_device(&self, kind: Kind, id: String) {
        crate::devices::remember(kind, &id);
        if kind == Kind::Speaker {
            self.speaker.set(Some(id));
        } else {
            self.command(Command::UseDevice { kind, id });
        }
    }

    pub fn dial(&self, peer: String, video: bool) {
        self.command(Command::Dial { peer, video });
    }

    /// A user action on the current call (accept, hang up, toggle the camera, …).
    pub fn act(&self, event: Event) {
        self.command(Command::Call(event));
    }

    /// To be called from a user gesture, so that a later incoming call can ring.
    pub fn unlock_audio(&self) {
        self.command(Command::UnlockAudio);
    }

    fn command(&self, command: Command) {
        self.commands.with_value(|commands| {
            if let Some(commands) = commands {
                let _ = commands.unbounded_send(command);
            }
        });
    }

    /// Connects to the server and starts answering calls. Browser only (call from an effect).
    pub fn start(&self, lang: Signal<Lang>, on_signed_out: impl Fn() + 'static) {
        self.stop();
        let (commands, command_inbox) = mpsc::unbounded();
        let (inputs, input_inbox) = mpsc::unbounded();
        let signaling = {
            let inputs = inputs.clone();
            Signaling::connect(move |event| {
                let _ = inputs.unbounded_send(Input::Signal(event));
            })
        };
        let network = {
            let inputs = inputs.clone();
            NetworkWatch::new(move || {
                let _ = inputs.unbounded_send(Input::NetworkChanged);
            })
        };
        let devices = {
            let inputs = inputs.clone();
            crate::devices::Watch::new(move || {
                let _ = inputs.unbounded_send(Input::DevicesChanged);
            })
        };
        self.speaker.set(crate::devices::preferred(Kind::Speaker));
        let runtime = Runtime {
            phone: *self,
            _network: network,
            _devices: devices,
            lang,
            inputs,
            signaling,
            ice_servers: Value::Array(Vec::new()),
            ice_policy: IceTransportPolicy::All,
            me: None,
            presence_pages: Vec::new(),
            presence_in_call: Vec::new(),
            media: None,
            early: Vec::new(),
            held: Vec::new(),
            ringer: Ringer::default(),
            on_signed_out: Box::new(on_signed_out),
            state: CallState::Idle,
        };
        self.commands.set_value(Some(commands));
        wasm_bindgen_futures::spawn_local(runtime.run(command_inbox, input_inbox));
    }

    /// Hangs up, disconnects and forgets everything (the page goes away, or the user did).
    pub fn stop(&self) {
        self.command(Command::Stop { done: None });
        self.commands.set_value(None);
    }

    /// [`stop`](Self::stop), resolving once the hang-up has been sent, so that it goes out
    /// before what the caller does next (a logout closes the session's sockets on the server).
    pub async fn stop_and_wait(&self) {
        let (done, stopped) = oneshot::channel();
        self.command(Command::Stop { done: Some(done) });
        self.commands.set_value(None);
        // Cancelled when the phone was not running: nothing to wait for.
        let _ = stopped.await;
    }

    fn reset(&self) {
        self.call.set(CallState::Idle);
        self.answered.set(false);
        self.online.set(Vec::new());
        self.in_call.set(Vec::new());
        self.server_down.set(false);
        self.local_stream.set(None);
        self.remote_stream.set(None);
        self.verification.set(None);
        self.quality.set(None);
        self.poor_for_a_while.set(false);
        self.data_channel.set(None);
        self.sharing.set(false);
        self.peer_sharing.set(false);
        self.device_notice.set(None);
    }
}

enum Input {
    Command(Command),
    Signal(SignalEvent),
    Media {
        call_id: CallId,
        polite: bool,
        result: Result<LocalMedia, MediaError>,
    },
    Link {
        call_id: CallId,
        event: LinkEvent,
    },
    Event(Event),
    NetworkChanged,
    Verified {
        call_id: CallId,
        code: String,
    },
    /// The camera, opened again after it was turned off.
    Camera {
        call_id: CallId,
        result: Result<MediaStreamTrack, MediaError>,
    },
    /// The screen the user picked to share (or why there is none).
    Screen {
        call_id: CallId,
        result: Result<ScreenShare, MediaError>,
    },
    /// Time to draw the call as it is, if the page is still behind.
    ShowCall,
    /// The shared screen's capture ended by itself (the browser's own "Stop sharing").
    ScreenEnded {
        call_id: CallId,
    },
    /// A camera or microphone to put in place of the one in use: the user's pick, or
    /// (`fell_back`) another one after the one in use went away.
    Swap {
        call_id: CallId,
        result: Result<MediaStreamTrack, MediaError>,
        fell_back: bool,
    },
    /// The device `id` of a track `kind` in use ended by itself, or is no longer listed.
    DeviceLost {
        call_id: CallId,
        kind: String,
        id: String,
    },
    /// Devices were plugged in or out.
    DevicesChanged,
    /// One second's statistics of the call's peer connection.
    Sampled {
        call_id: CallId,
        sample: Box<StatsSample>,
    },
}

/// One call's devices and connection; dropping it hangs up the media (connection first) and
/// stops sampling its statistics.
struct CallMedia {
    call_id: CallId,
    link: PeerLink,
    devices: OwnDevices,
    screen: Screen,
    quality: QualityWatch,
}

/// A screen shared in place of the camera, on the same video sender.
enum Screen {
    NotShared,
    /// The browser shows its picker: a second request would open a second one.
    Picking,
    Shared(ScreenShare),
}

impl CallMedia {
    /// Our camera and microphone, once open.
    fn local(&self) -> Option<&LocalMedia> {
        match &self.devices {
            OwnDevices::Open(local) => Some(local),
            OwnDevices::Opening => None,
        }
    }

    /// Puts the camera's `track` (or nothing, camera off) on the video sender, unless a shared
    /// screen holds it: then the camera's turn comes when sharing stops (`stop_sharing`).
    fn send_camera(&self, track: Option<MediaStreamTrack>) {
        if !matches!(self.screen, Screen::Shared(_)) {
            let stream = self.local().map(LocalMedia::share_stream);
            crate::rtc::send_video(self.link.peer_connection(), track, stream);
        }
    }
}

/// Our devices for the call. The callee's connection exists before them: it is made while the
/// phone rings, offers the moment the user accepts, and the tracks join its senders when the
/// devices open.
enum OwnDevices {
    /// Not open yet: ringing (nothing is opened before the user accepts), or opening.
    Opening,
    Open(LocalMedia),
}

/// Reads the peer connection's statistics once a second while the call lasts, and adapts what
/// we send to what the link carries.
struct QualityWatch {
    previous: Option<StatsSample>,
    adaptation: Adaptation,
    sampler: AbortHandle,
}

impl QualityWatch {
    fn start(pc: &RtcPeerConnection, call_id: CallId, inputs: UnboundedSender<Input>) -> Self {
        let pc = pc.clone();
        let (task, sampler) = abortable(async move {
            loop {
                gloo_timers::future::TimeoutFuture::new(SAMPLE_EVERY_MS).await;
                if let Some(sample) = crate::quality::browser::sample(&pc).await {
                    let call_id = call_id.clone();
                    if inputs
                        .unbounded_send(Input::Sampled {
                            call_id,
                            sample: Box::new(sample),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        wasm_bindgen_futures::spawn_local(async move {
            let _ = task.await;
        });
        Self {
            previous: None,
            adaptation: Adaptation::new(),
            sampler,
        }
    }
}

impl Drop for QualityWatch {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

/// How long the page may show a call that was just answered as still ringing.
const VIEW_BEHIND_MS: u32 = 250;

/// How often the quality indicator is brought up to date.
const SAMPLE_EVERY_MS: u32 = 1_000;

struct Runtime {
    phone: Phone,
    lang: Signal<Lang>,
    /// Feeds asynchronous results back into the queue.
    inputs: UnboundedSender<Input>,
    signaling: Signaling,
    ice_servers: Value,
    ice_policy: IceTransportPolicy,
    me: Option<String>,
    /// The pages of a long presence list received so far (the server pages big lists).
    presence_pages: Vec<String>,
    /// Those of `presence_pages` who are in a call.
    presence_in_call: Vec<String>,
    media: Option<CallMedia>,
    /// Negotiation messages that arrived before our peer connection existed.
    early: Vec<PeerMessage>,
    /// What our peer connection said while the callee's phone was still ringing (the offer and
    /// candidates), sent when they accept.
    held: Vec<PeerMessage>,
    ringer: Ringer,
    on_signed_out: Box<dyn Fn()>,
    /// The call as the state machine has it. The page shows `phone.call`, which follows it at
    /// once, except at the moment a call is answered (see `view_behind`).
    state: CallState,
    /// Feeds network changes in while the phone runs.
    _network: NetworkWatch,
    /// Feeds devices plugged in or out.
    _devices: crate::devices::Watch,
}

impl Runtime {
    async fn run(mut self, commands: UnboundedReceiver<Command>, inputs: UnboundedReceiver<Input>) {
        let mut queue = futures::stream::select(commands.map(Input::Command), inputs);
        while let Some(input) = queue.next().await {
            if let Input::Command(Command::Stop { done }) = input {
                self.shut_down();
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return;
            }
            if !self.handle(input) {
                break;
            }
        }
        self.shut_down();
    }

    /// Returns false when the phone must stop.
    fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Command(Command::Stop { .. }) => return false,
            Input::Command(Command::Dial { peer, video }) => {
                self.ringer.unlock();
                request_notification_permission();
                self.apply(Event::Dial {
                    peer,
                    call_id: new_call_id(),
                    video,
                });
            }
            Input::Command(Command::Call(event)) => {
                if matches!(event, Event::Accept | Event::AcceptVoice) {
                    self.ringer.unlock();
                }
                self.apply(event);
            }
            Input::Command(Command::UnlockAudio) => self.ringer.unlock(),
            Input::Command(Command::UseDevice { kind, id }) => self.switch_device(kind, id),
            Input::Swap {
                call_id,
                result,
                fell_back,
            } => self.on_swap(&call_id, result, fell_back),
            Input::DeviceLost { call_id, kind, id } => self.fall_back(&call_id, &kind, id),
            Input::DevicesChanged => {
                self.phone
                    .devices_changed
                    .update(|n| *n = n.wrapping_add(1));
                self.check_devices();
            }
            Input::Signal(event) => return self.on_signal(event),
            Input::Media {
                call_id,
                polite,
                result,
            } => self.on_media(call_id, polite, result),
            Input::Link { call_id, event } => self.on_link(call_id, event),
            Input::Event(event) => self.apply(event),
            Input::NetworkChanged => {
                // The socket may be bound to an address that is gone; the call restarts ICE once
                // the new one is up.
                self.signaling.renew();
                self.apply(Event::NetworkChanged);
            }
            Input::Verified { call_id, code } => {
                if self.media.as_ref().is_some_and(|m| m.call_id == call_id) {
                    self.phone.verification.set(Some(code));
                }
            }
            Input::Sampled { call_id, sample } => self.on_sample(&call_id, *sample),
            Input::Camera { call_id, result } => self.on_camera(&call_id, result),
            Input::Screen { call_id, result } => self.on_screen(&call_id, result),
            Input::ShowCall => self.show_call(),
            Input::ScreenEnded { call_id } => {
                if self.media.as_ref().is_some_and(|m| m.call_id == call_id) {
                    self.stop_sharing();
                }
            }
        }
        true
    }

    /// Leaves any call properly (the peer is told), then lets go of everything.
    fn shut_down(&mut self) {
        let farewell = match &self.state {
            CallState::Outgoing { .. } => Some(Event::Cancel),
            CallState::Incoming { .. } => Some(Event::Decline),
            CallState::Active(_) => Some(Event::HangUp),
            CallState::Idle | CallState::Ended { .. } => None,
        };
        if let Some(event) = farewell {
            self.apply(event);
        }
        self.ringer.stop();
        self.release();
        self.phone.reset();
    }

    fn on_signal(&mut self, event: SignalEvent) -> bool {
        match event {
            // The call hears of it with the `hello` that follows (fresh ICE servers first).
            SignalEvent::Up => self.phone.server_down.set(false),
            SignalEvent::Down => {
                self.phone.server_down.set(true);
                self.apply(Event::Signaling(false));
            }
            SignalEvent::SignedOut => {
                (self.on_signed_out)();
                return false;
            }
            SignalEvent::Message(ServerMessage::Event(event)) => self.on_server_event(event),
            SignalEvent::Message(ServerMessage::Peer(delivered)) => self.apply(Event::Peer {
                from: delivered.from,
                message: delivered.message,
            }),
        }
        true
    }

    fn on_server_event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::Hello {
                username,
                ice_servers,
                ice_transport_policy,
            } => {
                self.me = Some(username);
                self.presence_pages.clear();
                self.presence_in_call.clear();
                self.ice_servers = ice_servers;
                self.ice_policy = ice_transport_policy;
                self.apply(Event::Signaling(true));
                // Whatever changed while the socket was down.
                self.phone.contacts_touched();
            }
            ServerEvent::Status { username, in_call } => self.phone.in_call.update(|names| {
                names.retain(|user| *user != username);
                if in_call {
                    names.push(username);
                }
            }),
            ServerEvent::Contacts => self.phone.contacts_touched(),
            ServerEvent::History => self
                .phone
                .history_changed
                .update(|n| *n = n.wrapping_add(1)),
            // Fresh TURN credentials: the next call uses them.
            ServerEvent::Ice { ice_servers } => self.ice_servers = ice_servers,
            ServerEvent::Presence {
                online,
                more,
                in_call,
            } => {
                self.presence_pages.extend(online);
                self.presence_in_call.extend(in_call);
                if more {
                    return;
                }
                self.phone
                    .in_call
                    .set(std::mem::take(&mut self.presence_in_call));
                let mut others: Vec<String> = std::mem::take(&mut self.presence_pages)
                    .into_iter()
                    .filter(|user| Some(user) != self.me.as_ref())
                    .collect();
                sort_names(&mut others);
                self.phone.online.set(others);
            }
            ServerEvent::Online { username } => {
                if Some(&username) != self.me.as_ref() {
                    self.phone.online.update(|online| {
                        if !online.contains(&username) {
                            online.push(username.clone());
                            sort_names(online);
                        }
                    });
                    self.apply(Event::PeerOnline(username));
                }
            }
            ServerEvent::Offline { username } => {
                for list in [self.phone.online, self.phone.in_call] {
                    list.update(|names| names.retain(|user| *user != username));
                }
                self.apply(Event::PeerOffline(username));
            }
            ServerEvent::Error {
                code,
                message,
                call_id,
            } => {
                web_sys::console::warn_1(&format!("server: {message}").into());
                self.apply(Event::ServerError { code, call_id });
            }
        }
    }

    fn on_media(&mut self, call_id: CallId, polite: bool, result: Result<LocalMedia, MediaError>) {
        // Devices are awaited by a call without a connection yet, or by the callee's connection.
        let awaited = self
            .media
            .as_ref()
            .is_none_or(|media| matches!(media.devices, OwnDevices::Opening));
        let wanted = match &self.state {
            CallState::Active(call) => call.call_id == call_id && awaited,
            CallState::Outgoing {
                call_id: calling,
                devices: Devices::Opening,
                ..
            } => *calling == call_id,
            _ => false,
        };
        if !wanted {
            // The call ended while the devices were opening: `result` drops here, which stops
            // the tracks again at once.
            return;
        }
        let mut local = match result {
            Ok(local) => local,
            Err(error) => {
                web_sys::console::warn_1(&error.to_string().into());
                self.apply(Event::MediaFailed { call_id });
                return;
            }
        };
        // Whatever the user chose while the devices opened (mute, camera off) holds from the
        // first frame.
        if let Some(flags) = self.state.active().map(|call| call.local) {
            local.set_enabled(flags);
        }
        {
            let (inputs, call_id) = (self.inputs.clone(), call_id.clone());
            local.watch(move |kind, id| {
                let call_id = call_id.clone();
                let _ = inputs.unbounded_send(Input::DeviceLost { call_id, kind, id });
            });
        }
        let video = local.has_video();
        self.phone
            .local_stream
            .set(Some(SendWrapper::new(local.share_stream())));
        match self.media.as_mut().filter(|m| m.call_id == call_id) {
            // The callee's connection is already negotiating: the tracks join its senders.
            Some(media) => {
                let pc = media.link.peer_connection().clone();
                let stream = local.share_stream();
                wasm_bindgen_futures::spawn_local(async move {
                    crate::rtc::attach(&pc, &stream).await;
                });
                media.devices = OwnDevices::Open(local);
            }
            None => {
                let Some(link) = self.open_link(&call_id, polite, Senders::Tracks(&local)) else {
                    return;
                };
                self.start_media(call_id.clone(), link, OwnDevices::Open(local));
            }
        }
        self.apply(Event::MediaReady { call_id, video });
    }

    /// Makes the call's peer connection, or ends the call when the browser cannot.
    fn open_link(&self, call_id: &CallId, polite: bool, senders: Senders) -> Option<PeerLink> {
        let inputs = self.inputs.clone();
        let link_call = call_id.clone();
        let link = PeerLink::new(
            &self.ice_servers,
            self.ice_policy,
            polite,
            senders,
            move |event| {
                let _ = inputs.unbounded_send(Input::Link {
                    call_id: link_call.clone(),
                    event,
                });
            },
        );
        match link {
            Ok(link) => Some(link),
            Err(error) => {
                web_sys::console::error_1(&error.to_string().into());
                let _ = self.inputs.unbounded_send(Input::Event(Event::MediaFailed {
                    call_id: call_id.clone(),
                }));
                None
            }
        }
    }

    /// Makes the callee's connection with empty senders, before its devices open; false when
    /// the browser could not (the call then ends).
    fn prepare_link(&mut self, call_id: CallId, video: bool) -> bool {
        let Some(link) = self.open_link(&call_id, true, Senders::Later { video }) else {
            return false;
        };
        self.start_media(call_id, link, OwnDevices::Opening);
        true
    }

    /// Makes `link` the call's, with what arrived for it before it existed.
    fn start_media(&mut self, call_id: CallId, link: PeerLink, devices: OwnDevices) {
        for message in self.early.drain(..) {
            link.negotiate(message);
        }
        let quality =
            QualityWatch::start(link.peer_connection(), call_id.clone(), self.inputs.clone());
        self.phone
            .data_channel
            .set(Some(SendWrapper::new(link.data_channel())));
        self.media = Some(CallMedia {
            call_id,
            link,
            devices,
            screen: Screen::NotShared,
            quality,
        });
    }

    fn on_link(&mut self, call_id: CallId, event: LinkEvent) {
        let Some(media) = self.media.as_ref().filter(|m| m.call_id == call_id) else {
            return;
        };
        match event {
            LinkEvent::Outbound(outbound) => {
                // Nothing goes to the peer before the call is accepted.
                let peer = self.state.peer().map(str::to_owned);
                let ringing = matches!(
                    self.state,
                    CallState::Outgoing { .. } | CallState::Incoming { .. }
                );
                let message = outbound.into_message(Some(media.call_id.clone()));
                match (peer, message) {
                    (_, Some(message)) if ringing => self.held.push(message),
                    (Some(peer), Some(message)) => self.send(&peer, message),
                    _ => {}
                }
            }
            LinkEvent::RemoteStream(stream) => {
                self.phone.remote_stream.set(Some(SendWrapper::new(stream)));
            }
            LinkEvent::Report(report) => {
                if report == LinkReport::Connected {
                    self.read_verification(&call_id);
                }
                self.apply(Event::Link {
                    call_id,
                    report,
                    now_ms: js_sys::Date::now(),
                });
                // The media path is up: the call's pane may take the page now.
                if report == LinkReport::Connected {
                    self.show_call();
                }
            }
        }
    }

    /// Turns a second's statistics into the quality indicator, and lowers or raises what we send.
    fn on_sample(&mut self, call_id: &CallId, sample: StatsSample) {
        // Whether video should be arriving: not with the peer's camera off, nor while the path
        // is lost (starved video then is the outage, which the view already shows).
        let video_expected = self
            .state
            .active()
            .is_some_and(|call| call.remote.video && !call.is_reconnecting());
        let Some(media) = self.media.as_mut().filter(|m| &m.call_id == call_id) else {
            return;
        };
        // Chromium marks a screen capture's frames (the RTP video-content-type extension) and
        // reports it on the receiving side: no message of our own is needed to say so.
        let peer_sharing = sample.video_in.is_some_and(|video| video.screen_share);
        if self.phone.peer_sharing.get_untracked() != peer_sharing {
            self.phone.peer_sharing.set(peer_sharing);
        }
        let watch = &mut media.quality;
        let previous = watch.previous.replace(sample);
        // The first second has nothing to compare with yet.
        let (Some(previous), Some(current)) = (previous, watch.previous.as_ref()) else {
            return;
        };
        let report = QualityReport::between(&previous, current).with_peer_camera(video_expected);
        if let Some(profile) = watch.adaptation.observe(&report) {
            let pc = media.link.peer_connection().clone();
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(error) = crate::quality::browser::apply_profile(&pc, profile).await {
                    web_sys::console::warn_1(&error.to_string().into());
                }
            });
        }
        self.phone
            .poor_for_a_while
            .set(watch.adaptation.poor_for_a_while());
        self.phone.quality.set(Some(report));
    }

    /// Reads the DTLS fingerprints in use and derives the verification code (a few tries: the
    /// remote certificate may show in the stats a moment after `connected`).
    fn read_verification(&self, call_id: &CallId) {
        let Some(media) = self.media.as_ref().filter(|m| &m.call_id == call_id) else {
            return;
        };
        let pc = media.link.peer_connection().clone();
        let (inputs, call_id) = (self.inputs.clone(), call_id.clone());
        wasm_bindgen_futures::spawn_local(async move {
            for _ in 0..20 {
                if let Some((local, remote)) = crate::verify::fingerprints(&pc).await {
                    let code = crate::verify::verification_code(&local, &remote);
                    let _ = inputs.unbounded_send(Input::Verified { call_id, code });
                    return;
                }
                gloo_timers::future::TimeoutFuture::new(250).await;
            }
        });
    }

    /// Whether the page still shows the ringing card of a call that was just answered. Drawing the call's
    /// pane takes the page's main thread for tens of milliseconds, and at that moment the
    /// negotiation needs it more: the caller must answer the offer that came with the accept,
    /// and both must hand out and take in candidates. The pane is drawn once the media path is
    /// up, or after [`VIEW_BEHIND_MS`] at the latest (drawing it once the answer was out or in
    /// was tried and measured slower: docs/benchmarks.md).
    /// (`Phone::answered`, which the ringing card shows, is the one record of it.)
    fn view_behind(&self) -> bool {
        self.phone.answered.get_untracked()
    }

    /// Draws the call as it is, if the page is behind (see `view_behind`).
    fn show_call(&mut self) {
        if self.view_behind() {
            self.draw(self.state.clone());
        }
    }

    /// Shows `state` on the page.
    fn draw(&self, state: CallState) {
        self.phone.answered.set(false);
        self.phone.call.set(state);
    }

    /// Runs one transition of the state machine and carries out its effects.
    fn apply(&mut self, event: Event) {
        let current = self.state.clone();
        let (next, effects) = current.clone().on(event);
        // The caller hears ringback exactly while the other phone is ringing.
        let ringback =
            |state: &CallState| matches!(state, CallState::Outgoing { ringing: true, .. });
        if ringback(&next) != ringback(&current) {
            self.ringer.ringback(ringback(&next));
        }
        let answered = matches!(
            (&current, &next),
            (
                CallState::Outgoing { .. } | CallState::Incoming { .. },
                CallState::Active(_)
            )
        );
        if answered {
            self.phone.answered.set(true);
            let inputs = self.inputs.clone();
            wasm_bindgen_futures::spawn_local(async move {
                gloo_timers::future::TimeoutFuture::new(VIEW_BEHIND_MS).await;
                let _ = inputs.unbounded_send(Input::ShowCall);
            });
        } else if self.view_behind() && matches!(next, CallState::Active(_)) {
            // Still answering: `show_call` draws the call as it is by then.
        } else if next != current || self.view_behind() {
            self.draw(next.clone());
        }
        self.state = next;
        for effect in effects {
            self.perform(effect);
        }
    }

    fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::Send { to, message } => self.send(&to, message),
            Effect::StartTimer { timer, call_id, ms } => {
                let inputs = self.inputs.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    gloo_timers::future::TimeoutFuture::new(ms).await;
                    let _ = inputs.unbounded_send(Input::Event(Event::Timeout { timer, call_id }));
                });
            }
            Effect::Ring { from: Some(peer) } => {
                let strings = self.lang.get_untracked().strings();
                self.ringer.start(
                    &fill(strings.incoming_title, &peer),
                    strings.notification_body,
                );
            }
            Effect::Ring { from: None } => self.ringer.stop(),
            Effect::PrepareLink { call_id } => {
                self.release();
                self.prepare_link(call_id, true);
            }
            Effect::OpenMedia {
                call_id,
                video,
                polite,
            } => {
                // The callee keeps the connection it prepared while ringing.
                let prepared = polite && self.media.as_ref().is_some_and(|m| m.call_id == call_id);
                if !prepared {
                    self.release();
                    // The callee offers at once: its devices join the connection when they open.
                    if polite && !self.prepare_link(call_id.clone(), video) {
                        return;
                    }
                }
                let inputs = self.inputs.clone();
                let choice = crate::devices::choice();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = LocalMedia::open(video, &choice).await;
                    let _ = inputs.unbounded_send(Input::Media {
                        call_id,
                        polite,
                        result,
                    });
                });
            }
            Effect::Negotiate(message) => match &self.media {
                Some(media) => media.link.negotiate(message),
                None => self.early.push(message),
            },
            Effect::RestartIce => {
                if let Some(media) = &self.media {
                    // With the freshest TURN credentials: the call may be older than them.
                    media.link.restart_ice(&self.ice_servers);
                }
            }
            Effect::RefreshVideo => {
                if let Some(media) = &self.media {
                    let pc = media.link.peer_connection().clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        let refreshed = crate::quality::browser::restart_video_encoder(&pc).await;
                        // An audio-only call has no encoder to refresh.
                        if let Err(error) = refreshed
                            && error != crate::quality::browser::ProfileError::NoVideoSender
                        {
                            web_sys::console::warn_1(&error.to_string().into());
                        }
                    });
                }
            }
            Effect::SetLocalMedia(flags) => {
                if let Some(media) = &self.media
                    && let Some(local) = media.local()
                {
                    local.set_enabled(flags);
                    // Camera off means its light goes out: the track stops, and the sender sends
                    // nothing. On again, it is opened anew and put on the same sender.
                    if !flags.video && local.has_video() {
                        local.close_camera();
                        media.send_camera(None);
                    } else if flags.video && local.camera_closed() {
                        let (inputs, call_id) = (self.inputs.clone(), media.call_id.clone());
                        let chosen = crate::devices::preferred(Kind::Camera);
                        wasm_bindgen_futures::spawn_local(async move {
                            let result = crate::rtc::open_camera(chosen.as_deref()).await;
                            let _ = inputs.unbounded_send(Input::Camera { call_id, result });
                        });
                    }
                }
            }
            Effect::SendHeld => {
                if let Some(peer) = self.state.peer().map(str::to_owned) {
                    for message in std::mem::take(&mut self.held) {
                        self.send(&peer, message);
                    }
                }
            }
            Effect::ToggleShare => self.toggle_share(),
            Effect::Release => self.release(),
        }
    }

    /// Asks for a screen to share, or stops sharing. Only a call that sends video can share:
    /// the screen takes the camera's sender, so nothing is renegotiated.
    fn toggle_share(&mut self) {
        let Some(media) = self.media.as_mut() else {
            return;
        };
        match media.screen {
            Screen::Shared(_) => self.stop_sharing(),
            Screen::Picking => {}
            Screen::NotShared => {
                if !crate::rtc::has_video_sender(media.link.peer_connection()) {
                    web_sys::console::warn_1(&"screen: this call sends no video".into());
                    return;
                }
                media.screen = Screen::Picking;
                let (inputs, call_id) = (self.inputs.clone(), media.call_id.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let ended = {
                        let (inputs, call_id) = (inputs.clone(), call_id.clone());
                        move || {
                            let call_id = call_id.clone();
                            let _ = inputs.unbounded_send(Input::ScreenEnded { call_id });
                        }
                    };
                    let result = ScreenShare::open(ended).await;
                    let _ = inputs.unbounded_send(Input::Screen { call_id, result });
                });
            }
        }
    }

    /// The user picked a screen: on the sender if the call is still on (else dropping it stops
    /// the capture).
    fn on_screen(&mut self, call_id: &CallId, result: Result<ScreenShare, MediaError>) {
        let Some(media) = self
            .media
            .as_mut()
            .filter(|m| &m.call_id == call_id && matches!(m.screen, Screen::Picking))
        else {
            return;
        };
        match result {
            Ok(mut screen) => {
                let pc = media.link.peer_connection();
                let stream = media.local().map(LocalMedia::share_stream);
                crate::rtc::send_video(pc, Some(screen.track()), stream);
                // A shared tab's sound goes out mixed with the microphone, on its sender.
                let mic = media.local().and_then(LocalMedia::microphone_track);
                if let Some(mix) = screen.mix_with(mic.as_ref()) {
                    crate::rtc::send_audio(pc, Some(mix));
                }
                media.screen = Screen::Shared(screen);
                self.phone.sharing.set(true);
            }
            Err(error) => {
                // Most often the user closed the picker: the call goes on as it was.
                media.screen = Screen::NotShared;
                web_sys::console::warn_1(&format!("screen: {error}").into());
            }
        }
    }

    /// Stops the capture and puts the camera back on the sender (or nothing, if it is off).
    fn stop_sharing(&mut self) {
        let Some(media) = self.media.as_mut() else {
            return;
        };
        let Screen::Shared(screen) = std::mem::replace(&mut media.screen, Screen::NotShared) else {
            return;
        };
        // The capture stops (the browser's "sharing" bar goes away) before the camera returns.
        let had_sound = screen.has_sound();
        drop(screen);
        self.phone.sharing.set(false);
        media.send_camera(media.local().and_then(LocalMedia::camera_track));
        if had_sound {
            let mic = media.local().and_then(LocalMedia::microphone_track);
            crate::rtc::send_audio(media.link.peer_connection(), mic);
        }
    }

    /// The camera opened again: on the call's sender if the user still wants it (they may have
    /// turned it off again, or the call ended, while it opened), stopped otherwise.
    fn on_camera(&mut self, call_id: &CallId, result: Result<MediaStreamTrack, MediaError>) {
        let wanted = match &self.state {
            CallState::Active(call) => &call.call_id == call_id && call.local.video,
            _ => false,
        };
        let media = self.media.as_ref().filter(|m| &m.call_id == call_id);
        let local = media
            .and_then(CallMedia::local)
            .filter(|local| local.camera_closed());
        match (result, media, local) {
            (Ok(track), Some(media), Some(local)) if wanted => {
                local.add_camera(&track);
                // The preview loads the stream again, to show the new track.
                self.phone
                    .local_stream
                    .set(Some(SendWrapper::new(local.share_stream())));
                media.send_camera(Some(track));
            }
            (Ok(track), ..) => track.stop(),
            (Err(error), ..) => {
                web_sys::console::warn_1(&format!("camera: {error}").into());
                if wanted {
                    // Shown as off again, and the peer told so.
                    self.apply(Event::ToggleCamera);
                }
            }
        }
    }

    /// Opens the device the user picked, to swap it in for the one in use. A camera turned off
    /// is not opened: turning it on opens the chosen one.
    fn switch_device(&mut self, kind: Kind, id: String) {
        let Some(media) = self.media.as_ref() else {
            return;
        };
        let Some(local) = media.local() else {
            return;
        };
        let track_kind = match kind {
            Kind::Camera if local.has_video() => "video",
            Kind::Microphone => "audio",
            _ => return,
        };
        self.open_swap(media.call_id.clone(), track_kind, id, false);
    }

    fn open_swap(&self, call_id: CallId, kind: &'static str, id: String, fell_back: bool) {
        let inputs = self.inputs.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = crate::rtc::open_device(kind, &id).await;
            let _ = inputs.unbounded_send(Input::Swap {
                call_id,
                result,
                fell_back,
            });
        });
    }

    /// A device opened to replace the one in use: into our stream in its place (the old one
    /// stops), and onto the same sender, so nothing is renegotiated and the peer sees at most a
    /// frame's change.
    fn on_swap(
        &mut self,
        call_id: &CallId,
        result: Result<MediaStreamTrack, MediaError>,
        fell_back: bool,
    ) {
        let track = match result {
            Ok(track) => track,
            Err(error) => {
                web_sys::console::warn_1(&format!("device: {error}").into());
                return;
            }
        };
        let Some(media) = self.media.as_mut().filter(|m| &m.call_id == call_id) else {
            track.stop();
            return;
        };
        let video = track.kind() == "video";
        let Some(local) = media.local().filter(|local| !video || local.has_video()) else {
            // The call ended, or the camera was turned off while the device opened.
            track.stop();
            return;
        };
        local.swap(&track);
        self.phone
            .local_stream
            .set(Some(SendWrapper::new(local.share_stream())));
        if fell_back {
            let strings = self.lang.get_untracked().strings();
            let template = if video {
                strings.camera_fell_back
            } else {
                strings.microphone_fell_back
            };
            self.phone
                .device_notice
                .set(Some(fill(template, &track.label())));
        }
        if video {
            media.send_camera(Some(track));
        } else if let Screen::Shared(screen) = &mut media.screen
            && screen.has_sound()
        {
            // The microphone is in the mix with the shared tab's sound: the mix stays on the
            // sender, the new microphone goes into it.
            screen.mix_with(Some(&track));
        } else {
            crate::rtc::send_audio(media.link.peer_connection(), Some(track));
        }
    }

    /// The device `lost_id` in use for a track `kind` went away: another one of its kind takes
    /// its place, the one the user chose if it is there.
    fn fall_back(&mut self, call_id: &CallId, kind: &str, lost_id: String) {
        let Some(kind) = Kind::of_track(kind) else {
            return;
        };
        let track_kind = kind.track_kind().unwrap_or("audio");
        let Some(media) = self.media.as_ref().filter(|m| &m.call_id == call_id) else {
            return;
        };
        // Only the device the call still uses (one already replaced is not found again).
        let in_use = media.local().and_then(|local| match kind {
            Kind::Camera => local.camera_track(),
            _ => local.microphone_track(),
        });
        if !in_use.is_some_and(|track| crate::rtc::device_id(&track) == lost_id) {
            return;
        }
        let (inputs, call_id) = (self.inputs.clone(), call_id.clone());
        let chosen = crate::devices::preferred(kind);
        wasm_bindgen_futures::spawn_local(async move {
            let devices = crate::devices::list(kind).await;
            let Some(other) = crate::devices::fallback(&devices, &lost_id, chosen.as_deref())
            else {
                web_sys::console::warn_1(&format!("device: no other {track_kind} device").into());
                return;
            };
            let result = crate::rtc::open_device(track_kind, &other.id).await;
            let _ = inputs.unbounded_send(Input::Swap {
                call_id,
                result,
                fell_back: true,
            });
        });
    }

    /// Devices came or went: a device the call uses that is no longer listed is lost (its track
    /// may not say so by itself).
    fn check_devices(&self) {
        let Some(media) = self.media.as_ref() else {
            return;
        };
        let Some(local) = media.local() else {
            return;
        };
        let in_use: Vec<(Kind, String)> = [local.camera_track(), local.microphone_track()]
            .into_iter()
            .flatten()
            .filter_map(|track| {
                Some((
                    Kind::of_track(&track.kind())?,
                    crate::rtc::device_id(&track),
                ))
            })
            .collect();
        let (inputs, call_id) = (self.inputs.clone(), media.call_id.clone());
        wasm_bindgen_futures::spawn_local(async move {
            for (kind, id) in in_use {
                let listed = crate::devices::list(kind).await;
                if !listed.iter().any(|device| device.id == id) {
                    let kind = kind.track_kind().unwrap_or("audio").to_owned();
                    let call_id = call_id.clone();
                    let _ = inputs.unbounded_send(Input::DeviceLost { call_id, kind, id });
                }
            }
        });
    }

    fn release(&mut self) {
        self.media = None;
        self.early.clear();
        self.held.clear();
        self.phone.local_stream.set(None);
        self.phone.remote_stream.set(None);
        self.phone.verification.set(None);
        self.phone.quality.set(None);
        self.phone.poor_for_a_while.set(false);
        self.phone.data_channel.set(None);
        self.phone.sharing.set(false);
        self.phone.peer_sharing.set(false);
        self.phone.device_notice.set(None);
    }

    fn send(&self, to: &str, message: PeerMessage) {
        self.signaling.send(&ClientFrame {
            name: to.to_owned(),
            message,
        });
    }
}

/// Case-insensitive, so "alice" and "Bob" sort as people expect; without duplicates.
///
/// Each name is put in its place by binary search: the list is at most a contact book long, and
/// this keeps the standard library's sort (several kilobytes of the browser bundle) out.
fn sort_names(names: &mut Vec<String>) {
    let mut sorted: Vec<(String, String)> = Vec::with_capacity(names.len());
    for name in names.drain(..) {
        let key = (crate::text::lowercase(&name), name);
        if let Err(place) = sorted.binary_search(&key) {
            sorted.insert(place, key);
        }
    }
    names.extend(sorted.into_iter().map(|(_, name)| name));
}

/// 128 random bits as hex: unguessable, and comparable for the glare rule.
fn new_call_id() -> CallId {
    let mut bytes = [0u8; 16];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|crypto| crypto.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        for byte in &mut bytes {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::sort_names;

    #[test]
    fn names_sort_regardless_of_case_without_duplicates() {
        let mut names: Vec<String> = ["bob", "Alice", "carl", "alice", "Bob", "bob", "Ärne"]
            .map(String::from)
            .into();
        sort_names(&mut names);
        assert_eq!(names, ["Alice", "alice", "Bob", "bob", "carl", "Ärne"]);
    }
}
