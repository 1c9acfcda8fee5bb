//! The chat panel and file transfers of a call. Everything the other browser sends is put in
//! as text; only `http(s)://` links become anchors, opened in a new tab without an opener.

use leptos::html;
use leptos::prelude::*;
use protocol::datachannel::ItemId;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, DragEvent, Element, File, FileList, KeyboardEvent, MouseEvent};

use crate::call::CallState;
use crate::i18n::Lang;
use crate::phone::Phone;
use crate::talk::{ChatLine, Entry, Failure, FileItem, FileState, Item, Talk};
use crate::transfer::{Segment, format_bytes, linkify, rate};
use crate::ui::{Locale, format_duration};

/// The words of this panel, in each language (kept beside it rather than in `i18n::Strings`).
pub struct ChatStrings {
    pub chat: &'static str,
    pub send: &'static str,
    pub send_file: &'static str,
    pub placeholder: &'static str,
    pub close: &'static str,
    pub you: &'static str,
    pub delivered: &'static str,
    pub queued: &'static str,
    pub unread: &'static str,
    pub accept: &'static str,
    pub decline: &'static str,
    pub cancel: &'static str,
    pub download: &'static str,
    pub waiting: &'static str,
    pub offered: &'static str,
    pub sent: &'static str,
    pub received: &'static str,
    pub declined: &'static str,
    pub cancelled: &'static str,
    pub too_large: &'static str,
    pub digest_mismatch: &'static str,
    pub interrupted: &'static str,
    pub unreadable: &'static str,
    pub left: &'static str,
    pub drop_hint: &'static str,
}

pub static CHAT_EN: ChatStrings = ChatStrings {
    chat: "Chat",
    send: "Send",
    send_file: "Send file",
    placeholder: "Message (Enter sends, Shift+Enter for a new line)",
    close: "Close chat",
    you: "You",
    delivered: "Delivered",
    queued: "Waiting for the connection…",
    unread: "unread",
    accept: "Accept",
    decline: "Decline",
    cancel: "Cancel",
    download: "Download",
    waiting: "Waiting for them to accept…",
    offered: "wants to send you a file",
    sent: "Sent",
    received: "Received — checksum verified",
    declined: "Declined",
    cancelled: "Cancelled",
    too_large: "Too large (over the size limit)",
    digest_mismatch: "The file arrived damaged (checksum mismatch) and was discarded",
    interrupted: "Interrupted: the connection closed",
    unreadable: "The file could not be read",
    left: "left",
    drop_hint: "or drop files onto the call",
};

pub static CHAT_ZH: ChatStrings = ChatStrings {
    chat: "聊天",
    send: "发送",
    send_file: "发送文件",
    placeholder: "消息（Enter 发送，Shift+Enter 换行）",
    close: "关闭聊天",
    you: "你",
    delivered: "已送达",
    queued: "等待连接…",
    unread: "未读",
    accept: "接收",
    decline: "拒绝",
    cancel: "取消",
    download: "下载",
    waiting: "等待对方接收…",
    offered: "想给你发送文件",
    sent: "已发送",
    received: "已接收，校验通过",
    declined: "已拒绝",
    cancelled: "已取消",
    too_large: "文件过大（超过大小上限）",
    digest_mismatch: "文件传输损坏（校验和不匹配），已丢弃",
    interrupted: "已中断：连接已关闭",
    unreadable: "无法读取该文件",
    left: "剩余",
    drop_hint: "或将文件拖到通话画面上",
};

pub fn chat_strings(lang: Lang) -> &'static ChatStrings {
    match lang {
        Lang::En => &CHAT_EN,
        Lang::Zh => &CHAT_ZH,
    }
}

/// Creates the call's conversation, provides it to the panel, binds it to the phone's data
/// channel, and forgets it when the user leaves the call (idle, or a new call rings).
pub fn install(phone: Phone) -> Talk {
    let talk = Talk::new();
    provide_context(talk);
    let channel = phone.data_channel();
    Effect::new(move |_| {
        let channel = channel.get();
        talk.attach(channel.map(|c| (*c).clone()));
    });
    let call = phone.call();
    let tag = Memo::new(move |_| call.with(CallState::tag));
    Effect::new(move |_| {
        if matches!(tag.get(), "idle" | "outgoing" | "incoming") {
            talk.clear();
        }
    });
    talk
}

fn files_of(list: Option<FileList>) -> Vec<File> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// `dragover` on the call view: allow the drop.
pub fn drag_over(event: DragEvent) {
    event.prevent_default();
}

/// `drop` on the call view: offer the files.
pub fn drop_files(talk: Talk, event: DragEvent) {
    event.prevent_default();
    let files = files_of(event.data_transfer().and_then(|d| d.files()));
    if !files.is_empty() {
        talk.set_open(true);
        talk.offer_files(files);
    }
}

fn clock(at: f64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// The chat button (with the unread count) and the panel. The panel's rows are drawn by
/// [`sync_rows`] straight into the DOM (text only ever as text nodes): a few hundred bytes of
/// wasm instead of a typed view per row kind.
#[component]
pub fn ChatDock(
    /// Built before the call is answered, shown from then on.
    shown: Signal<bool>,
) -> impl IntoView {
    let talk = expect_context::<Talk>();
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let call = phone.call();
    let peer = Memo::new(move |_| call.with(|s| s.peer().unwrap_or_default().to_owned()));
    let t = move || chat_strings(locale.lang().get());
    let open = talk.open;
    let unread = talk.unread;
    let picker = NodeRef::<html::Input>::new();
    let input = NodeRef::<html::Textarea>::new();
    let log = NodeRef::<html::Ol>::new();

    let send = move || {
        if let Some(input) = input.get_untracked() {
            talk.say(&input.value());
            input.set_value("");
        }
    };
    let on_key = move |event: KeyboardEvent| {
        if event.key() == "Enter" && !event.shift_key() && !event.is_composing() {
            event.prevent_default();
            send();
        }
    };
    let on_pick = move |_| {
        if let Some(picker) = picker.get_untracked() {
            let files = files_of(picker.files());
            picker.set_value("");
            talk.offer_files(files);
        }
    };
    // One listener for every button in the log (`data-action`, `data-id`, `data-mine`).
    let on_log_click = move |event: MouseEvent| {
        let Some(button) = event
            .target()
            .and_then(|t| t.dyn_into::<Element>().ok())
            .and_then(|t| t.closest("button[data-action]").ok().flatten())
        else {
            return;
        };
        let attr = |name: &str| button.get_attribute(name).unwrap_or_default();
        let Ok(id) = attr("data-id").parse::<ItemId>() else {
            return;
        };
        match attr("data-action").as_str() {
            "accept" => talk.accept(id),
            "decline" => talk.decline(id),
            "cancel" => talk.cancel(attr("data-mine") == "true", id),
            _ => {}
        }
    };
    let rows = std::cell::RefCell::new(Rows::default());
    Effect::new(move |_| {
        let lang = locale.lang().get();
        let peer = peer.get();
        if let Some(log) = log.get() {
            talk.with_entries(|entries| {
                sync_rows(&log, entries, &mut rows.borrow_mut(), lang, &peer);
            });
        }
    });
    let toggle = move |_| {
        let now_open = !open.get_untracked();
        talk.set_open(now_open);
        if now_open && let Some(input) = input.get_untracked() {
            let _ = input.focus();
        }
    };

    view! {
        <div class="chat-dock" hidden=move || !shown.get()>
            <button
                type="button"
                class="btn chat-toggle"
                data-testid="chat-toggle"
                aria-expanded=move || open.get().to_string()
                on:click=toggle
            >
                {move || t().chat}
                {move || {
                    let count = unread.get();
                    (count > 0 && !open.get())
                        .then(|| {
                            view! {
                                <span class="unread" data-testid="chat-unread" title=t().unread>
                                    {count}
                                </span>
                            }
                        })
                }}
            </button>
            <aside
                class="chat-panel"
                data-testid="chat-panel"
                hidden=move || !open.get()
                aria-label=move || t().chat
            >
                <header>
                    <h3>{move || t().chat}</h3>
                    <button
                        type="button"
                        class="btn ghost chat-close"
                        data-testid="chat-close"
                        aria-label=move || t().close
                        on:click=move |_| talk.set_open(false)
                    >
                        "×"
                    </button>
                </header>
                <ol class="chat-log" aria-live="polite" node_ref=log on:click=on_log_click></ol>
                <form
                    class="chat-compose"
                    on:submit=move |event| {
                        event.prevent_default();
                        send();
                    }
                >
                    <textarea
                        node_ref=input
                        data-testid="chat-input"
                        rows="2"
                        aria-label=move || t().placeholder
                        placeholder=move || t().placeholder
                        on:keydown=on_key
                    ></textarea>
                    <button type="submit" class="btn primary" data-testid="chat-send">
                        {move || t().send}
                    </button>
                </form>
                <div class="chat-files">
                    <button
                        type="button"
                        class="btn secondary"
                        data-testid="send-file"
                        on:click=move |_| {
                            if let Some(picker) = picker.get_untracked() {
                                picker.click();
                            }
                        }
                    >
                        {move || t().send_file}
                    </button>
                    <span class="muted">{move || t().drop_hint}</span>
                    <input
                        type="file"
                        multiple=true
                        hidden=true
                        node_ref=picker
                        data-testid="file-input"
                        on:change=on_pick
                    />
                </div>
            </aside>
        </div>
    }
}

/// What the log shows now: one element per entry, with the revision and words it was drawn with.
#[derive(Default)]
struct Rows {
    drawn: Vec<(u32, Element)>,
    words: Option<(Lang, String)>,
}

/// Brings the log's elements up to date with `entries`: new entries are appended, changed ones
/// redrawn, everything redrawn when the language or the peer changes.
fn sync_rows(log: &Element, entries: &[Entry], rows: &mut Rows, lang: Lang, peer: &str) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let words = Some((lang, peer.to_owned()));
    if rows.words != words || entries.len() < rows.drawn.len() {
        for (_, element) in rows.drawn.drain(..) {
            element.remove();
        }
        rows.words = words;
    }
    let t = chat_strings(lang);
    let mut appended = false;
    for (i, entry) in entries.iter().enumerate() {
        if rows.drawn.get(i).is_some_and(|(rev, _)| *rev == entry.rev) {
            continue;
        }
        // Progress alone is updated in place: a row redrawn several times a second would
        // swallow clicks on its Cancel button.
        if let Some(slot) = rows.drawn.get_mut(i)
            && update_progress(&slot.1, &entry.item, t)
        {
            slot.0 = entry.rev;
            continue;
        }
        let Some(row) = draw(&doc, &entry.item, t, peer) else {
            return;
        };
        match rows.drawn.get_mut(i) {
            Some(slot) => {
                let _ = slot.1.replace_with_with_node_1(&row);
                *slot = (entry.rev, row);
            }
            None => {
                let _ = log.append_child(&row);
                rows.drawn.push((entry.rev, row));
                appended = true;
            }
        }
    }
    if appended {
        log.set_scroll_top(log.scroll_height());
    }
}

/// `<tag class=…>` with `text` as a text node (never markup) and the given attributes.
fn node(
    doc: &Document,
    tag: &str,
    class: &str,
    text: &str,
    attrs: &[(&str, &str)],
) -> Option<Element> {
    let element = doc.create_element(tag).ok()?;
    if !class.is_empty() {
        element.set_class_name(class);
    }
    if !text.is_empty() {
        element.set_text_content(Some(text));
    }
    for (name, value) in attrs {
        element.set_attribute(name, value).ok()?;
    }
    Some(element)
}

fn update_progress(row: &Element, item: &Item, t: &ChatStrings) -> bool {
    let Item::File(file) = item else {
        return false;
    };
    if row.get_attribute("data-state").as_deref() != Some(file.state.tag()) {
        return false;
    }
    let done = file.done.to_string();
    let _ = row.set_attribute("data-done", &done);
    if let Ok(Some(bar)) = row.query_selector("progress") {
        let _ = bar.set_attribute("value", &done);
    }
    if let Ok(Some(rate)) = row.query_selector(".rate") {
        rate.set_text_content(Some(&figures(file, t)));
    }
    true
}

/// `1.0 MB / 5.2 MB · 2.1 MB/s · 0:02 left`
fn figures(file: &FileItem, t: &ChatStrings) -> String {
    let mut figures = format!(
        "{} / {}",
        format_bytes(file.done as f64),
        format_bytes(file.size as f64)
    );
    let moving = matches!(file.state, FileState::Sending | FileState::Receiving);
    if moving
        && let Some((speed, left)) = rate(file.done, file.size, file.updated_ms - file.started_ms)
    {
        figures = format!(
            "{figures} · {}/s · {} {}",
            format_bytes(speed),
            format_duration(left * 1000.0),
            t.left
        );
    }
    figures
}

fn add(parent: &Element, child: Option<Element>) -> Option<()> {
    let child: web_sys::Node = child?.into();
    parent.append_child(&child).ok().map(drop)
}

fn draw(doc: &Document, item: &Item, t: &ChatStrings, peer: &str) -> Option<Element> {
    match item {
        Item::Chat(line) => draw_line(doc, line, t, peer),
        Item::File(file) => draw_file(doc, file, t, peer),
    }
}

fn author<'a>(mine: bool, t: &'a ChatStrings, peer: &'a str) -> &'a str {
    if mine { t.you } else { peer }
}

fn draw_line(doc: &Document, line: &ChatLine, t: &ChatStrings, peer: &str) -> Option<Element> {
    let mine = line.mine.to_string();
    let row = node(
        doc,
        "li",
        if line.mine {
            "chat-message mine"
        } else {
            "chat-message"
        },
        "",
        &[
            ("data-testid", "chat-message"),
            ("data-mine", &mine),
            ("data-delivered", &line.delivered.to_string()),
        ],
    )?;
    let meta = node(doc, "div", "meta", "", &[])?;
    add(
        &meta,
        node(doc, "span", "author", author(line.mine, t, peer), &[]),
    )?;
    add(&meta, node(doc, "time", "", &clock(line.at), &[]))?;
    if line.mine && line.delivered {
        let mark = [
            ("data-testid", "delivered"),
            ("title", t.delivered),
            ("aria-label", t.delivered),
        ];
        add(&meta, node(doc, "span", "delivered", "✓", &mark))?;
    } else if line.mine && !line.sent {
        let mark = [
            ("data-testid", "queued"),
            ("title", t.queued),
            ("aria-label", t.queued),
        ];
        add(&meta, node(doc, "span", "queued", "…", &mark))?;
    }
    row.append_child(&meta).ok()?;
    let text = node(doc, "p", "text", "", &[])?;
    for segment in linkify(&line.text) {
        match segment {
            Segment::Text(plain) => {
                text.append_child(&doc.create_text_node(&plain)).ok()?;
            }
            Segment::Link(url) => {
                let attrs = [
                    ("href", url.as_str()),
                    ("target", "_blank"),
                    ("rel", "noopener noreferrer"),
                ];
                add(&text, node(doc, "a", "", &url, &attrs))?;
            }
        }
    }
    row.append_child(&text).ok()?;
    Some(row)
}

fn draw_file(doc: &Document, file: &FileItem, t: &ChatStrings, peer: &str) -> Option<Element> {
    let (mine, id) = (file.mine.to_string(), file.id.to_string());
    let row = node(
        doc,
        "li",
        if file.mine {
            "chat-file mine"
        } else {
            "chat-file"
        },
        "",
        &[
            ("data-testid", "transfer"),
            ("data-state", file.state.tag()),
            ("data-mine", &mine),
            ("data-name", &file.name),
            ("data-done", &file.done.to_string()),
        ],
    )?;
    let meta = node(doc, "div", "meta", "", &[])?;
    add(
        &meta,
        node(doc, "span", "author", author(file.mine, t, peer), &[]),
    )?;
    row.append_child(&meta).ok()?;
    add(&row, node(doc, "div", "file-name", &file.name, &[]))?;
    let mut about = format_bytes(file.size as f64);
    if !file.mime.is_empty() {
        about = format!("{about} · {}", file.mime);
    }
    add(&row, node(doc, "div", "muted small", &about, &[]))?;
    let moving = matches!(file.state, FileState::Sending | FileState::Receiving);
    if moving || file.state == FileState::Done {
        let bar = [
            ("data-testid", "progress"),
            ("max", &file.size.max(1).to_string()),
            ("value", &file.done.to_string()),
        ];
        add(&row, node(doc, "progress", "", "", &bar))?;
        let figures = figures(file, t);
        add(
            &row,
            node(doc, "span", "rate", &figures, &[("data-testid", "rate")]),
        )?;
    }
    let status = match file.state {
        FileState::Waiting => t.waiting,
        FileState::Offered => t.offered,
        FileState::Done if file.mine => t.sent,
        FileState::Done => t.received,
        FileState::Declined => t.declined,
        FileState::Cancelled => t.cancelled,
        FileState::Failed(Failure::TooLarge) => t.too_large,
        FileState::Failed(Failure::Digest) => t.digest_mismatch,
        FileState::Failed(Failure::Interrupted) => t.interrupted,
        FileState::Failed(Failure::Unreadable) => t.unreadable,
        FileState::Sending | FileState::Receiving => "",
    };
    add(
        &row,
        node(
            doc,
            "div",
            "file-status",
            status,
            &[("data-testid", "transfer-status")],
        ),
    )?;
    let actions = node(doc, "div", "file-actions", "", &[])?;
    let button = |action: &str, class: &str, label: &str| -> Option<()> {
        let testid = format!("file-{action}");
        let attrs = [
            ("type", "button"),
            ("data-action", action),
            ("data-id", id.as_str()),
            ("data-mine", mine.as_str()),
            ("data-testid", testid.as_str()),
        ];
        actions
            .append_child(&node(doc, "button", class, label, &attrs)?.into())
            .ok()?;
        Some(())
    };
    if file.state == FileState::Offered && !file.mine {
        button("accept", "btn success", t.accept)?;
        button("decline", "btn ghost", t.decline)?;
    } else if file.state.is_active() {
        button("cancel", "btn ghost", t.cancel)?;
    }
    if let Some(url) = &file.url {
        let link = [
            ("href", url.as_str()),
            ("download", &file.name),
            ("data-testid", "download"),
        ];
        actions
            .append_child(&node(doc, "a", "btn primary", t.download, &link)?.into())
            .ok()?;
    }
    row.append_child(&actions).ok()?;
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_name_the_panel() {
        assert_eq!(chat_strings(Lang::En).chat, "Chat");
        assert_eq!(chat_strings(Lang::En).send, "Send");
        assert_eq!(chat_strings(Lang::En).send_file, "Send file");
        assert_eq!(chat_strings(Lang::Zh).chat, "聊天");
        assert_eq!(chat_strings(Lang::Zh).send, "发送");
        assert_eq!(chat_strings(Lang::Zh).send_file, "发送文件");
    }
}
