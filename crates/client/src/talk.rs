//! Chat and file transfer over the call's data channel: the browser side of
//! `protocol::datachannel`. [`Talk`] is the state the UI shows; its engine owns the channel's
//! handlers and the files in flight. The conversation never leaves the two browsers.
//!
//! Anything malformed from the other browser is dropped with a console warning; a transfer
//! whose channel closes is marked interrupted, never left hanging.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures::channel::oneshot;
use js_sys::{Array, ArrayBuffer, Uint8Array};
use leptos::prelude::*;
use protocol::datachannel::{
    CHUNK_HEADER_BYTES, DataMessage, ItemId, MAX_CHAT_CHARS, chunk_id, encode_chunk,
};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, File, MessageEvent, RtcDataChannel, RtcDataChannelState};

use crate::transfer::{
    BUFFER_HIGH_BYTES, BUFFER_LOW_BYTES, CHUNK_BYTES, FOLD_BYTES, MAX_FILE_SETTING, Outgoing,
    READ_BYTES, Reassembly, TransferError, check_size, max_file_bytes, ranges,
};

/// One chat message, ours or theirs.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatLine {
    pub id: ItemId,
    pub mine: bool,
    pub text: String,
    /// Local time (ms since the epoch) it was written or arrived.
    pub at: f64,
    /// Handed to the channel (ours; theirs always are).
    pub sent: bool,
    /// The other side confirmed it (ours only).
    pub delivered: bool,
}

/// Why a transfer did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    TooLarge,
    Digest,
    Interrupted,
    Unreadable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Ours, offered; waiting for the other side to choose.
    Waiting,
    /// Theirs, offered; waiting for us to choose.
    Offered,
    Sending,
    Receiving,
    Done,
    Declined,
    Cancelled,
    Failed(Failure),
}

impl FileState {
    /// The `data-state` test hook.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Offered => "offered",
            Self::Sending => "sending",
            Self::Receiving => "receiving",
            Self::Done => "done",
            Self::Declined => "declined",
            Self::Cancelled => "cancelled",
            Self::Failed(Failure::TooLarge) => "too-large",
            Self::Failed(Failure::Digest) => "digest-mismatch",
            Self::Failed(Failure::Interrupted) => "interrupted",
            Self::Failed(Failure::Unreadable) => "unreadable",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Waiting | Self::Offered | Self::Sending | Self::Receiving
        )
    }
}

/// One file, either way.
#[derive(Debug, Clone, PartialEq)]
pub struct FileItem {
    pub id: ItemId,
    pub mine: bool,
    pub name: String,
    pub size: u64,
    pub mime: String,
    pub state: FileState,
    pub done: u64,
    pub started_ms: f64,
    pub updated_ms: f64,
    /// The received file, as an object URL to download.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Chat(ChatLine),
    File(FileItem),
}

/// An item and a revision number that changes with every update, so the UI redraws only the
/// rows that changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub item: Item,
    pub rev: u32,
}

/// The conversation of the current call, as the UI sees it.
#[derive(Clone, Copy)]
pub struct Talk {
    /// Bumped on every change of the entries (which live outside the reactive arena: one
    /// counter signal is much cheaper in wasm than a signal of a vector).
    revision: RwSignal<u32>,
    pub unread: RwSignal<u32>,
    pub open: RwSignal<bool>,
}

thread_local! {
    /// The conversation: chat lines and files, in order.
    static ENTRIES: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    /// The page's engine (one call at a time). Kept out of the reactive arena: a local
    /// `StoredValue` would cost the bundle more than this.
    static ENGINE: RefCell<Option<Rc<Engine>>> = const { RefCell::new(None) };
}

impl Default for Talk {
    fn default() -> Self {
        Self::new()
    }
}

impl Talk {
    pub fn new() -> Self {
        Self {
            revision: RwSignal::new(0),
            unread: RwSignal::new(0),
            open: RwSignal::new(false),
        }
    }

    /// This conversation's engine (not one left over from an earlier page view).
    fn engine(&self) -> Option<Rc<Engine>> {
        ENGINE
            .with_borrow(Clone::clone)
            .filter(|engine| engine.talk.revision == self.revision)
    }

    /// Reads the conversation (tracked: a reactive reader runs again after each change).
    pub fn with_entries<R>(&self, read: impl FnOnce(&[Entry]) -> R) -> R {
        self.revision.track();
        ENTRIES.with_borrow(|entries| read(entries))
    }

    fn read<R>(&self, read: impl FnOnce(&[Entry]) -> R) -> R {
        ENTRIES.with_borrow(|entries| read(entries))
    }

    fn edit(&self, change: impl FnOnce(&mut Vec<Entry>)) {
        ENTRIES.with_borrow_mut(change);
        self.revision.update(|n| *n = n.wrapping_add(1));
    }

    /// Binds the conversation to a call's channel (`None` when the call's media is gone).
    /// Browser only.
    pub fn attach(&self, channel: Option<RtcDataChannel>) {
        let engine = match self.engine() {
            Some(engine) => engine,
            None => {
                if channel.is_none() {
                    return;
                }
                let engine = Rc::new(Engine::new(*self));
                let old = ENGINE.replace(Some(engine.clone()));
                if let Some(old) = old {
                    old.attach(None);
                }
                engine
            }
        };
        engine.attach(channel);
    }

    /// Forgets the conversation (the user left the call's pages): stops transfers, frees the
    /// received files.
    pub fn clear(&self) {
        if let Some(engine) = self.engine() {
            engine.reset();
        }
        self.edit(Vec::clear);
        self.unread.set(0);
        self.open.set(false);
    }

    pub fn set_open(&self, open: bool) {
        self.open.set(open);
        if open {
            self.unread.set(0);
        }
    }

    /// Sends a chat message now, or as soon as the channel is open.
    pub fn say(&self, text: &str) {
        let text = text.trim_end();
        if text.trim().is_empty() {
            return;
        }
        let Some(engine) = self.engine() else { return };
        let text: String = text.chars().take(MAX_CHAT_CHARS).collect();
        let id = engine.next_id();
        self.push(Item::Chat(ChatLine {
            id,
            mine: true,
            text,
            at: js_sys::Date::now(),
            sent: false,
            delivered: false,
        }));
        engine.flush();
    }

    /// Offers files to the other side (each waits for Accept).
    pub fn offer_files(&self, files: Vec<File>) {
        if let Some(engine) = self.engine() {
            for file in files {
                engine.offer(file);
            }
        }
    }

    pub fn accept(&self, id: ItemId) {
        if let Some(engine) = self.engine() {
            engine.accept(id);
        }
    }

    pub fn decline(&self, id: ItemId) {
        if let Some(engine) = self.engine() {
            engine.decline(id);
        }
    }

    pub fn cancel(&self, mine: bool, id: ItemId) {
        if let Some(engine) = self.engine() {
            engine.cancel(mine, id, true);
        }
    }

    fn push(&self, item: Item) {
        self.edit(|entries| entries.push(Entry { item, rev: 0 }));
    }

    fn notice(&self) {
        if !self.open.get_untracked() {
            self.unread.update(|n| *n += 1);
        }
    }

    fn update_line(&self, id: ItemId, change: impl FnOnce(&mut ChatLine)) {
        self.edit(|entries| {
            for entry in entries.iter_mut() {
                if let Item::Chat(line) = &mut entry.item
                    && line.mine
                    && line.id == id
                {
                    change(line);
                    entry.rev += 1;
                    return;
                }
            }
        });
    }

    fn update_file(&self, mine: bool, id: ItemId, change: impl FnOnce(&mut FileItem)) {
        self.edit(|entries| {
            for entry in entries.iter_mut() {
                if let Item::File(file) = &mut entry.item
                    && file.mine == mine
                    && file.id == id
                {
                    change(file);
                    entry.rev += 1;
                    return;
                }
            }
        });
    }

    fn file_state(&self, mine: bool, id: ItemId) -> Option<FileState> {
        self.read(|entries| {
            entries.iter().find_map(|entry| match &entry.item {
                Item::File(file) if file.mine == mine && file.id == id => Some(file.state),
                _ => None,
            })
        })
    }

    fn unsent_lines(&self) -> Vec<ChatLine> {
        self.read(|entries| {
            entries
                .iter()
                .filter_map(|entry| match &entry.item {
                    Item::Chat(line) if line.mine && !line.sent => Some(line.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    fn has_line(&self, id: ItemId) -> bool {
        self.read(|entries| {
            entries
                .iter()
                .any(|e| matches!(&e.item, Item::Chat(line) if !line.mine && line.id == id))
        })
    }

    fn has_file(&self, id: ItemId) -> bool {
        self.file_state(false, id).is_some()
    }
}

fn warn(message: &str) {
    web_sys::console::warn_1(&JsValue::from_str(message));
}

fn now() -> f64 {
    js_sys::Date::now()
}

struct OutFile {
    file: File,
    announced: bool,
}

struct InFile {
    size: u64,
    /// `None` until accepted.
    reassembly: Option<Reassembly>,
    /// Chunk views, folded into one `Blob` every [`FOLD_BYTES`].
    parts: Array,
    unfolded: u64,
    mime: String,
}

type Handler<E> = Closure<dyn FnMut(E)>;

/// Files in flight by id.
struct Items<T>(Vec<(ItemId, T)>);

impl<T> Default for Items<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T> Items<T> {
    fn get(&self, id: &ItemId) -> Option<&T> {
        self.0.iter().find(|(i, _)| i == id).map(|(_, t)| t)
    }

    fn get_mut(&mut self, id: &ItemId) -> Option<&mut T> {
        self.0.iter_mut().find(|(i, _)| i == id).map(|(_, t)| t)
    }

    fn contains_key(&self, id: &ItemId) -> bool {
        self.get(id).is_some()
    }

    fn insert(&mut self, id: ItemId, item: T) {
        self.remove(&id);
        self.0.push((id, item));
    }

    fn remove(&mut self, id: &ItemId) -> Option<T> {
        let at = self.0.iter().position(|(i, _)| i == id)?;
        Some(self.0.remove(at).1)
    }

    fn ids(&self) -> Vec<ItemId> {
        self.0.iter().map(|(i, _)| *i).collect()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

struct Attached {
    channel: RtcDataChannel,
    _handlers: (
        Handler<JsValue>,
        Handler<JsValue>,
        Handler<MessageEvent>,
        Handler<JsValue>,
    ),
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.channel.set_onopen(None);
        self.channel.set_onclose(None);
        self.channel.set_onmessage(None);
        self.channel.set_onbufferedamountlow(None);
    }
}

struct Engine {
    talk: Talk,
    attached: RefCell<Option<Attached>>,
    next_id: Cell<ItemId>,
    // Few items at a time: plain lists (a hash map would cost the bundle more than it saves).
    outgoing: RefCell<Items<OutFile>>,
    incoming: RefCell<Items<InFile>>,
    /// Wakes a sender waiting for the send buffer to drain.
    drained: RefCell<Option<oneshot::Sender<()>>>,
    /// Object URLs of received files, revoked when the conversation is forgotten.
    urls: RefCell<Vec<String>>,
    scratch: RefCell<Vec<u8>>,
    max_bytes: u64,
}

impl Engine {
    fn new(talk: Talk) -> Self {
        let setting = web_sys::window()
            .and_then(|w| w.local_storage().ok().flatten())
            .and_then(|s| s.get_item(MAX_FILE_SETTING).ok().flatten());
        Self {
            talk,
            attached: RefCell::new(None),
            next_id: Cell::new(1),
            outgoing: RefCell::new(Items::default()),
            incoming: RefCell::new(Items::default()),
            drained: RefCell::new(None),
            urls: RefCell::new(Vec::new()),
            scratch: RefCell::new(Vec::new()),
            max_bytes: max_file_bytes(setting.as_deref()),
        }
    }

    fn next_id(&self) -> ItemId {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        id
    }

    fn channel(&self) -> Option<RtcDataChannel> {
        self.attached.borrow().as_ref().map(|a| a.channel.clone())
    }

    fn open_channel(&self) -> Option<RtcDataChannel> {
        self.channel()
            .filter(|c| c.ready_state() == RtcDataChannelState::Open)
    }

    fn send(&self, message: &DataMessage) -> bool {
        self.open_channel()
            .is_some_and(|c| c.send_with_str(&message.encode()).is_ok())
    }

    fn attach(&self, channel: Option<RtcDataChannel>) {
        let old = self.attached.borrow_mut().take();
        if old.is_some() {
            self.interrupt();
        }
        drop(old);
        let Some(channel) = channel else {
            return;
        };
        let talk = self.talk;
        let with_engine = move |f: &dyn Fn(&Engine)| {
            if let Some(engine) = talk.engine() {
                f(&engine);
            }
        };
        let on_open = Closure::<dyn FnMut(JsValue)>::new(move |_| with_engine(&|e| e.flush()));
        let on_close = Closure::<dyn FnMut(JsValue)>::new(move |_| with_engine(&|e| e.interrupt()));
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            with_engine(&|e| e.receive(&data));
        });
        let on_low = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            with_engine(&|e| {
                if let Some(wake) = e.drained.borrow_mut().take() {
                    let _ = wake.send(());
                }
            })
        });
        channel.set_buffered_amount_low_threshold(BUFFER_LOW_BYTES);
        channel.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        channel.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        channel.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
        let open = channel.ready_state() == RtcDataChannelState::Open;
        *self.attached.borrow_mut() = Some(Attached {
            channel,
            _handlers: (on_open, on_close, on_message, on_low),
        });
        if open {
            self.flush();
        }
    }

    /// Sends what waited for the channel: chat lines and file offers.
    fn flush(&self) {
        if self.open_channel().is_none() {
            return;
        }
        for line in self.talk.unsent_lines() {
            let message = DataMessage::Chat {
                id: line.id,
                text: line.text.clone(),
                at: line.at,
            };
            if !self.send(&message) {
                return;
            }
            self.talk.update_line(line.id, |l| l.sent = true);
        }
        let mut offers = Vec::new();
        for (id, out) in self.outgoing.borrow_mut().0.iter_mut() {
            if !out.announced {
                out.announced = true;
                offers.push(DataMessage::FileOffer {
                    id: *id,
                    name: out.file.name(),
                    size: out.file.size() as u64,
                    mime: out.file.type_(),
                });
            }
        }
        for offer in offers {
            self.send(&offer);
        }
    }

    /// The channel went away: whatever was moving stops, visibly.
    fn interrupt(&self) {
        self.outgoing.borrow_mut().clear();
        self.incoming.borrow_mut().clear();
        if let Some(wake) = self.drained.borrow_mut().take() {
            let _ = wake.send(());
        }
        self.talk.edit(|entries| {
            for entry in entries.iter_mut() {
                if let Item::File(file) = &mut entry.item
                    && file.state.is_active()
                {
                    file.state = FileState::Failed(Failure::Interrupted);
                    entry.rev += 1;
                }
            }
        });
    }

    fn reset(&self) {
        let ids = self.outgoing.borrow().ids();
        for id in ids {
            self.cancel(true, id, true);
        }
        let ids = self.incoming.borrow().ids();
        for id in ids {
            self.cancel(false, id, true);
        }
        for url in self.urls.borrow_mut().drain(..) {
            let _ = web_sys::Url::revoke_object_url(&url);
        }
        self.next_id.set(1);
    }

    fn offer(&self, file: File) {
        let id = self.next_id();
        let size = file.size() as u64;
        let state = match check_size(size, self.max_bytes) {
            Ok(()) => FileState::Waiting,
            Err(error) => {
                warn(&error.to_string());
                FileState::Failed(Failure::TooLarge)
            }
        };
        self.talk.push(Item::File(FileItem {
            id,
            mine: true,
            name: file.name(),
            size,
            mime: file.type_(),
            state,
            done: 0,
            started_ms: 0.0,
            updated_ms: 0.0,
            url: None,
        }));
        if state == FileState::Waiting {
            self.outgoing.borrow_mut().insert(
                id,
                OutFile {
                    file,
                    announced: false,
                },
            );
            self.flush();
        }
    }

    fn accept(&self, id: ItemId) {
        if self.talk.file_state(false, id) != Some(FileState::Offered) {
            return;
        }
        match self.incoming.borrow_mut().get_mut(&id) {
            Some(file) => file.reassembly = Some(Reassembly::new(file.size)),
            None => return,
        }
        if self.send(&DataMessage::FileAccept { id }) {
            let t = now();
            self.talk.update_file(false, id, |f| {
                f.state = FileState::Receiving;
                f.started_ms = t;
                f.updated_ms = t;
            });
        } else {
            self.incoming.borrow_mut().remove(&id);
            self.talk.update_file(false, id, |f| {
                f.state = FileState::Failed(Failure::Interrupted)
            });
        }
    }

    fn decline(&self, id: ItemId) {
        if self.talk.file_state(false, id) != Some(FileState::Offered) {
            return;
        }
        self.incoming.borrow_mut().remove(&id);
        self.send(&DataMessage::FileDecline { id });
        self.talk
            .update_file(false, id, |f| f.state = FileState::Declined);
    }

    /// Stops a transfer; `tell` sends the cancel to the other side (not when it cancelled).
    fn cancel(&self, mine: bool, id: ItemId, tell: bool) {
        let known = if mine {
            self.outgoing.borrow_mut().remove(&id).is_some()
        } else {
            self.incoming.borrow_mut().remove(&id).is_some()
        };
        if !known
            && !self
                .talk
                .file_state(mine, id)
                .is_some_and(FileState::is_active)
        {
            return;
        }
        if tell {
            self.send(&DataMessage::FileCancel {
                id,
                by_sender: mine,
            });
        }
        self.talk.update_file(mine, id, |f| {
            if f.state.is_active() {
                f.state = FileState::Cancelled;
            }
        });
    }

    fn receive(&self, data: &JsValue) {
        if let Some(text) = data.as_string() {
            // Parsed by the browser (see `crate::js_fields::parse_json`).
            let decoded = DataMessage::check_size(&text).and_then(|()| {
                crate::js_fields::parse_json(&text)
                    .ok_or_else(|| protocol::datachannel::DataError::Malformed("not JSON".into()))
                    .and_then(DataMessage::from_value)
            });
            match decoded {
                Ok(message) => self.on_message(message),
                Err(error) => warn(&error.to_string()),
            }
        } else if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
            self.on_chunk(buffer);
        } else {
            warn("data channel: ignored a frame that is neither text nor binary");
        }
    }

    fn on_message(&self, message: DataMessage) {
        let talk = self.talk;
        match message {
            DataMessage::Chat { id, text, .. } => {
                self.send(&DataMessage::ChatAck { id });
                if talk.has_line(id) {
                    return;
                }
                talk.push(Item::Chat(ChatLine {
                    id,
                    mine: false,
                    text: text.chars().take(MAX_CHAT_CHARS).collect(),
                    at: now(),
                    sent: true,
                    delivered: true,
                }));
                talk.notice();
            }
            DataMessage::ChatAck { id } => talk.update_line(id, |l| l.delivered = true),
            DataMessage::FileOffer {
                id,
                name,
                size,
                mime,
            } => {
                if talk.has_file(id) {
                    warn(&format!("data channel: file {id} offered twice"));
                    return;
                }
                let too_large = check_size(size, self.max_bytes).is_err();
                talk.push(Item::File(FileItem {
                    id,
                    mine: false,
                    name: clean_name(&name),
                    size,
                    mime: mime.clone(),
                    state: if too_large {
                        FileState::Failed(Failure::TooLarge)
                    } else {
                        FileState::Offered
                    },
                    done: 0,
                    started_ms: 0.0,
                    updated_ms: 0.0,
                    url: None,
                }));
                talk.notice();
                if too_large {
                    self.send(&DataMessage::FileDecline { id });
                } else {
                    self.incoming.borrow_mut().insert(
                        id,
                        InFile {
                            size,
                            reassembly: None,
                            parts: Array::new(),
                            unfolded: 0,
                            mime,
                        },
                    );
                }
            }
            DataMessage::FileAccept { id } => {
                if talk.file_state(true, id) == Some(FileState::Waiting)
                    && self.outgoing.borrow().contains_key(&id)
                {
                    let t = now();
                    talk.update_file(true, id, |f| {
                        f.state = FileState::Sending;
                        f.started_ms = t;
                        f.updated_ms = t;
                    });
                    wasm_bindgen_futures::spawn_local(send_file(talk, id));
                }
            }
            DataMessage::FileDecline { id } => {
                if self.outgoing.borrow_mut().remove(&id).is_some() {
                    talk.update_file(true, id, |f| f.state = FileState::Declined);
                }
            }
            DataMessage::FileCancel { id, by_sender } => self.cancel(!by_sender, id, false),
            DataMessage::FileEnd { id, sha256 } => self.on_end(id, &sha256),
            DataMessage::Unknown => {
                warn("data channel: ignored a message of a kind this version does not know")
            }
        }
    }

    fn on_chunk(&self, buffer: &ArrayBuffer) {
        let length = buffer.byte_length() as usize;
        if length < CHUNK_HEADER_BYTES {
            warn("data channel: ignored a binary frame shorter than its header");
            return;
        }
        let mut header = [0u8; CHUNK_HEADER_BYTES];
        Uint8Array::new_with_byte_offset_and_length(buffer, 0, CHUNK_HEADER_BYTES as u32)
            .copy_to(&mut header);
        let Ok(id) = chunk_id(&header) else { return };
        let body = Uint8Array::new_with_byte_offset(buffer, CHUNK_HEADER_BYTES as u32);
        let outcome = {
            let mut incoming = self.incoming.borrow_mut();
            // Chunks of a transfer that was just cancelled are still in flight: dropped quietly.
            let Some(file) = incoming.get_mut(&id) else {
                return;
            };
            let Some(reassembly) = file.reassembly.as_mut() else {
                warn(&format!(
                    "data channel: chunk for file {id} before it was accepted"
                ));
                return;
            };
            let mut scratch = self.scratch.borrow_mut();
            scratch.resize(body.length() as usize, 0);
            body.copy_to(&mut scratch);
            match reassembly.push(&scratch) {
                Ok(received) => {
                    file.parts.push(&body);
                    file.unfolded += scratch.len() as u64;
                    if file.unfolded >= FOLD_BYTES {
                        file.unfolded = 0;
                        if let Ok(blob) = Blob::new_with_u8_array_sequence(&file.parts) {
                            file.parts = Array::of1(&blob);
                        }
                        Ok(Some(received))
                    } else {
                        Ok(None)
                    }
                }
                Err(error) => Err(error),
            }
        };
        match outcome {
            Ok(Some(received)) => {
                let t = now();
                self.talk.update_file(false, id, |f| {
                    f.done = received;
                    f.updated_ms = t;
                });
            }
            Ok(None) => {}
            Err(error) => {
                warn(&format!("data channel: file {id}: {error}"));
                self.cancel(false, id, true);
                self.talk
                    .update_file(false, id, |f| f.state = FileState::Failed(Failure::Digest));
            }
        }
    }

    fn on_end(&self, id: ItemId, sha256: &str) {
        let Some(file) = self.incoming.borrow_mut().remove(&id) else {
            return;
        };
        let Some(reassembly) = file.reassembly else {
            warn(&format!(
                "data channel: file {id} ended before it was accepted"
            ));
            self.talk.update_file(false, id, |f| {
                f.state = FileState::Failed(Failure::Interrupted)
            });
            return;
        };
        let received = reassembly.received();
        let result = reassembly.finish(sha256).and_then(|_| {
            let options = BlobPropertyBag::new();
            options.set_type(&file.mime);
            Blob::new_with_u8_array_sequence_and_options(&file.parts, &options)
                .ok()
                .and_then(|blob| web_sys::Url::create_object_url_with_blob(&blob).ok())
                .ok_or(TransferError::Short {
                    got: received,
                    size: received,
                })
        });
        let t = now();
        match result {
            Ok(url) => {
                self.urls.borrow_mut().push(url.clone());
                self.talk.update_file(false, id, |f| {
                    f.state = FileState::Done;
                    f.done = received;
                    f.updated_ms = t;
                    f.url = Some(url);
                });
            }
            Err(error) => {
                warn(&format!("data channel: file {id}: {error}"));
                self.talk.update_file(false, id, |f| {
                    f.state = FileState::Failed(Failure::Digest);
                    f.done = received;
                    f.updated_ms = t;
                });
            }
        }
    }
}

/// A file name as shown and used for the download: no path, no control characters.
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    if cleaned.trim().is_empty() {
        "file".to_owned()
    } else {
        cleaned
    }
}

/// Waits until the send buffer drained below the low mark (or a short while, to re-check a
/// cancel or a closed channel).
async fn drained(talk: Talk) {
    let (wake, woken) = oneshot::channel();
    if let Some(engine) = talk.engine() {
        *engine.drained.borrow_mut() = Some(wake);
    }
    let tick = gloo_timers::future::TimeoutFuture::new(100);
    futures::future::select(woken, tick).await;
}

/// Streams one accepted file: read a slice, cut it into chunks, send each when the buffer has
/// room, hash as we go, then tell the digest.
async fn send_file(talk: Talk, id: ItemId) {
    let result = stream(talk, id).await;
    let Some(engine) = talk.engine() else { return };
    let still_ours = engine.outgoing.borrow_mut().remove(&id).is_some();
    match result {
        Ok(Some(digest)) if still_ours => {
            if engine.send(&DataMessage::FileEnd { id, sha256: digest }) {
                let t = now();
                talk.update_file(true, id, |f| {
                    f.state = FileState::Done;
                    f.done = f.size;
                    f.updated_ms = t;
                });
            } else {
                talk.update_file(true, id, |f| {
                    f.state = FileState::Failed(Failure::Interrupted)
                });
            }
        }
        Ok(_) => {}
        Err(failure) => {
            if still_ours {
                engine.send(&DataMessage::FileCancel {
                    id,
                    by_sender: true,
                });
            }
            talk.update_file(true, id, |f| {
                if f.state.is_active() {
                    f.state = FileState::Failed(failure);
                }
            });
        }
    }
}

/// `Ok(None)`: cancelled on the way.
async fn stream(talk: Talk, id: ItemId) -> Result<Option<String>, Failure> {
    let file = match talk.engine() {
        Some(engine) => match engine.outgoing.borrow().get(&id) {
            Some(out) => out.file.clone(),
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    let size = file.size() as u64;
    let mut digest = Outgoing::default();
    let mut slice = Vec::new();
    for (start, end) in ranges(size, READ_BYTES) {
        let blob = file
            .slice_with_f64_and_f64(start as f64, end as f64)
            .map_err(|_| Failure::Unreadable)?;
        let buffer = JsFuture::from(blob.array_buffer())
            .await
            .map_err(|_| Failure::Unreadable)?;
        let view = Uint8Array::new(&buffer);
        slice.resize(view.length() as usize, 0);
        view.copy_to(&mut slice);
        if slice.len() as u64 != end - start {
            return Err(Failure::Unreadable);
        }
        for piece in slice.chunks(CHUNK_BYTES) {
            let channel = loop {
                let Some(engine) = talk.engine() else {
                    return Ok(None);
                };
                if !engine.outgoing.borrow().contains_key(&id) {
                    return Ok(None);
                }
                let Some(channel) = engine.open_channel() else {
                    return Err(Failure::Interrupted);
                };
                if channel.buffered_amount() <= BUFFER_HIGH_BYTES {
                    break channel;
                }
                drop(engine);
                drained(talk).await;
            };
            digest.feed(piece);
            if channel
                .send_with_u8_array(&encode_chunk(id, piece))
                .is_err()
            {
                return Err(Failure::Interrupted);
            }
        }
        let (sent, t) = (digest.sent, now());
        talk.update_file(true, id, |f| {
            f.done = sent;
            f.updated_ms = t;
        });
    }
    Ok(Some(digest.digest()))
}

#[cfg(test)]
mod tests {
    use super::clean_name;

    #[test]
    fn offered_names_lose_paths_and_control_characters() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_name(""), "file");
        assert_eq!(clean_name("照片.jpg"), "照片.jpg");
    }
}
