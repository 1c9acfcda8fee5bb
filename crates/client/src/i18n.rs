//! Every string the user reads, in English and Simplified Chinese.
//!
//! One struct per language: a missing translation is a compile error, not a blank button.
//! Strings with a `{name}` slot are filled by [`fill`].

use protocol::{AccountError, AuthErrorCode, CallOutcome, wait_minutes};

use crate::call::EndReason;
use crate::quality::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    /// Picks the language for a BCP 47 tag such as `navigator.language`.
    pub fn from_tag(tag: &str) -> Self {
        if tag.trim().to_ascii_lowercase().starts_with("zh") {
            Self::Zh
        } else {
            Self::En
        }
    }

    /// The tag for `<html lang>` and for storage.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh-CN",
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::En => Self::Zh,
            Self::Zh => Self::En,
        }
    }

    pub fn strings(self) -> &'static Strings {
        match self {
            Self::En => &EN,
            Self::Zh => &ZH,
        }
    }
}

/// Replaces the `{name}` slot.
pub fn fill(template: &str, name: &str) -> String {
    template.replace("{name}", name)
}

pub struct Strings {
    /// The language's own name, shown on the switch that selects it.
    pub language_name: &'static str,
    pub switch_language: &'static str,
    pub loading: &'static str,
    pub tagline: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub log_in: &'static str,
    pub register: &'static str,
    pub working: &'static str,
    pub log_out: &'static str,
    pub signed_in_as: &'static str,
    pub auth_network: &'static str,
    pub auth_failed: &'static str,
    pub username_empty: &'static str,
    pub username_too_long: &'static str,
    pub username_characters: &'static str,
    pub username_mixed_scripts: &'static str,
    pub password_too_short: &'static str,
    pub password_too_long: &'static str,
    pub username_taken: &'static str,
    pub wrong_credentials: &'static str,
    pub throttled_minutes: &'static str,
    pub registrations_minutes: &'static str,
    pub server_busy: &'static str,
    pub server_trouble: &'static str,
    pub storage_full: &'static str,
    pub offline_banner: &'static str,
    pub contacts_heading: &'static str,
    pub recent_heading: &'static str,
    pub outcome_answered: &'static str,
    pub outcome_declined: &'static str,
    pub outcome_missed: &'static str,
    pub outcome_busy: &'static str,
    pub outcome_cancelled: &'static str,
    pub outcome_failed: &'static str,
    pub call_back: &'static str,
    pub no_calls_yet: &'static str,
    pub add_contact: &'static str,
    pub request_sent: &'static str,
    pub requests_heading: &'static str,
    pub accept_contact: &'static str,
    pub decline_contact: &'static str,
    pub offline_contact: &'static str,
    /// A contact online but in a call with someone.
    pub in_a_call: &'static str,
    pub pending_contact: &'static str,
    pub manage_contacts: &'static str,
    pub remove_contact: &'static str,
    pub block_contact: &'static str,
    pub unblock_contact: &'static str,
    pub calls_from_label: &'static str,
    pub calls_from_anyone: &'static str,
    pub calls_from_contacts: &'static str,
    pub contact_yourself: &'static str,
    pub no_request: &'static str,
    pub too_many_contacts: &'static str,
    pub filter_label: &'static str,
    pub nobody_online: &'static str,
    pub no_match: &'static str,
    pub call_name: &'static str,
    pub voice_call_name: &'static str,
    pub video_call: &'static str,
    pub voice_call: &'static str,
    pub answer_voice: &'static str,
    pub idle_heading: &'static str,
    pub idle_hint: &'static str,
    pub calling_name: &'static str,
    pub ringing: &'static str,
    pub waiting: &'static str,
    pub cancel: &'static str,
    pub incoming_name: &'static str,
    pub incoming_title: &'static str,
    pub notification_body: &'static str,
    pub accept: &'static str,
    pub decline: &'static str,
    pub connecting: &'static str,
    pub connected: &'static str,
    pub reconnecting: &'static str,
    pub mute: &'static str,
    pub unmute: &'static str,
    pub camera_off: &'static str,
    pub camera_on: &'static str,
    pub hang_up: &'static str,
    pub full_screen: &'static str,
    pub exit_full_screen: &'static str,
    pub picture_in_picture: &'static str,
    /// The device pickers: their disclosure, and one label per kind.
    pub devices: &'static str,
    pub camera: &'static str,
    pub microphone: &'static str,
    pub speaker: &'static str,
    /// A device in use went away; `{name}` is the one the call goes on with.
    pub camera_fell_back: &'static str,
    pub microphone_fell_back: &'static str,
    /// The pre-call check: its button and title, its meter, its sound, and closing it.
    pub check_devices: &'static str,
    pub mic_level: &'static str,
    pub test_sound: &'static str,
    pub done: &'static str,
    pub share_screen: &'static str,
    pub stop_sharing: &'static str,
    /// The peer's video is their shared screen.
    pub remote_sharing: &'static str,
    /// The keyboard shortcuts' help: its title, and the keys (one line of text).
    pub shortcuts: &'static str,
    pub shortcut_keys: &'static str,
    pub remote_muted: &'static str,
    pub remote_camera_off: &'static str,
    pub you: &'static str,
    pub call_duration: &'static str,
    pub your_camera_off: &'static str,
    pub call_ended: &'static str,
    pub ended_declined: &'static str,
    pub ended_busy: &'static str,
    pub ended_no_answer: &'static str,
    pub ended_they_hung_up: &'static str,
    pub ended_you_hung_up: &'static str,
    pub ended_connection_lost: &'static str,
    pub ended_peer_offline: &'static str,
    pub ended_media_denied: &'static str,
    pub ended_cancelled: &'static str,
    pub ended_relay_refused: &'static str,
    pub verification_code: &'static str,
    pub verification_hint: &'static str,
    pub call_again: &'static str,
    pub audio_only: &'static str,
    pub back: &'static str,
    /// The indicator's accessible name; `{name}` is one of the three levels below.
    pub quality_name: &'static str,
    pub quality_good: &'static str,
    pub quality_fair: &'static str,
    pub quality_poor: &'static str,
    pub quality_details: &'static str,
    pub quality_sending: &'static str,
    pub quality_receiving: &'static str,
    pub quality_round_trip: &'static str,
    pub quality_loss_in: &'static str,
    pub quality_loss_out: &'static str,
    pub quality_jitter: &'static str,
    pub quality_resolution: &'static str,
    pub quality_frame_rate: &'static str,
    pub quality_path: &'static str,
    pub quality_direct: &'static str,
    pub quality_relayed: &'static str,
    pub poor_connection: &'static str,
    pub not_now: &'static str,
    pub account: &'static str,
    pub change_password: &'static str,
    pub current_password: &'static str,
    pub new_password: &'static str,
    pub password_changed: &'static str,
    pub log_out_everywhere: &'static str,
    pub delete_account: &'static str,
    pub delete_warning: &'static str,
    pub wrong_password: &'static str,
}

impl Strings {
    pub fn account_error(&self, error: &AccountError) -> &'static str {
        match error {
            AccountError::UsernameEmpty => self.username_empty,
            AccountError::UsernameTooLong => self.username_too_long,
            AccountError::UsernameCharacters => self.username_characters,
            AccountError::UsernameMixedScripts => self.username_mixed_scripts,
            AccountError::PasswordTooShort => self.password_too_short,
            AccountError::PasswordTooLong => self.password_too_long,
        }
    }

    /// Why the server refused to log in or register, in this language.
    pub fn refusal(&self, code: AuthErrorCode, retry_after_secs: Option<u64>) -> String {
        if let Some(error) = code.account_error() {
            return self.account_error(&error).to_owned();
        }
        match code {
            AuthErrorCode::UsernameTaken => self.username_taken.to_owned(),
            AuthErrorCode::WrongCredentials => self.wrong_credentials.to_owned(),
            AuthErrorCode::Throttled => {
                let minutes = wait_minutes(retry_after_secs.unwrap_or(60));
                fill(self.throttled_minutes, &minutes.to_string())
            }
            AuthErrorCode::TooManyRegistrations => {
                let minutes = wait_minutes(retry_after_secs.unwrap_or(60));
                fill(self.registrations_minutes, &minutes.to_string())
            }
            AuthErrorCode::Busy => self.server_busy.to_owned(),
            AuthErrorCode::Internal => self.server_trouble.to_owned(),
            AuthErrorCode::StorageFull => self.storage_full.to_owned(),
            AuthErrorCode::ContactYourself => self.contact_yourself.to_owned(),
            AuthErrorCode::NoRequest => self.no_request.to_owned(),
            AuthErrorCode::TooManyContacts => self.too_many_contacts.to_owned(),
            AuthErrorCode::WrongPassword => self.wrong_password.to_owned(),
            _ => self.auth_failed.to_owned(),
        }
    }

    /// How a call ended, in a word.
    pub fn outcome(&self, outcome: CallOutcome) -> &'static str {
        match outcome {
            CallOutcome::Answered => self.outcome_answered,
            CallOutcome::Declined => self.outcome_declined,
            CallOutcome::Missed => self.outcome_missed,
            CallOutcome::Busy => self.outcome_busy,
            CallOutcome::Cancelled => self.outcome_cancelled,
            CallOutcome::Failed => self.outcome_failed,
        }
    }

    /// A quality level's word, as it fills [`quality_name`](Self::quality_name).
    pub fn quality_level(&self, level: Level) -> &'static str {
        match level {
            Level::Good => self.quality_good,
            Level::Fair => self.quality_fair,
            Level::Poor => self.quality_poor,
        }
    }

    /// The sentence on the "call ended" card.
    pub fn end_reason(&self, reason: EndReason, peer: &str) -> String {
        let template = match reason {
            EndReason::Declined => self.ended_declined,
            EndReason::Busy => self.ended_busy,
            EndReason::NoAnswer => self.ended_no_answer,
            EndReason::HungUp { by_me: false } => self.ended_they_hung_up,
            EndReason::HungUp { by_me: true } => self.ended_you_hung_up,
            EndReason::ConnectionLost => self.ended_connection_lost,
            EndReason::PeerOffline => self.ended_peer_offline,
            EndReason::MediaDenied => self.ended_media_denied,
            EndReason::Cancelled => self.ended_cancelled,
            EndReason::RelayRefused => self.ended_relay_refused,
        };
        fill(template, peer)
    }
}

pub static EN: Strings = Strings {
    language_name: "English",
    switch_language: "Switch language",
    loading: "Loading…",
    tagline: "Face-to-face calls with the people you know.",
    username: "Username",
    password: "Password",
    log_in: "Log in",
    register: "Create account",
    working: "One moment…",
    log_out: "Log out",
    signed_in_as: "Signed in as",
    auth_network: "Can't reach the server. Check your connection and try again.",
    auth_failed: "That didn't work. Please try again.",
    username_empty: "Please enter a username.",
    username_too_long: "Usernames can be at most 32 characters.",
    username_characters: "Usernames may only use letters, digits, '_', '-' and '.'.",
    username_mixed_scripts: "Usernames cannot mix look-alike alphabets (such as Latin with Cyrillic).",
    password_too_short: "Passwords need at least 8 characters.",
    password_too_long: "Passwords can be at most 128 characters.",
    username_taken: "That username is taken. Pick another one, or log in.",
    wrong_credentials: "Wrong username or password.",
    throttled_minutes: "Too many failed attempts. Try again in {name} min.",
    registrations_minutes: "Too many new accounts from your network. Try again in {name} min.",
    server_busy: "The server is busy. Please try again in a few seconds.",
    server_trouble: "The server had a problem. Please try again in a moment.",
    storage_full: "The server is out of storage space. Please try again later.",
    offline_banner: "Connection to server lost — retrying…",
    contacts_heading: "Contacts",
    recent_heading: "Recent",
    outcome_answered: "Answered",
    outcome_declined: "Declined",
    outcome_missed: "Missed",
    outcome_busy: "Busy",
    outcome_cancelled: "Cancelled",
    outcome_failed: "Not connected",
    call_back: "Call back",
    no_calls_yet: "No calls yet.",
    add_contact: "Add contact",
    request_sent: "Request sent to {name}.",
    requests_heading: "Contact requests",
    accept_contact: "Accept",
    decline_contact: "Decline",
    offline_contact: "offline",
    in_a_call: "in a call",
    pending_contact: "request sent",
    manage_contacts: "Manage contacts",
    remove_contact: "Remove",
    block_contact: "Block",
    unblock_contact: "Unblock",
    calls_from_label: "Who may call me",
    calls_from_anyone: "Anyone who knows my username",
    calls_from_contacts: "Only my contacts",
    contact_yourself: "That is you.",
    no_request: "That request is no longer there.",
    too_many_contacts: "Your contact list is full.",
    filter_label: "Filter contacts",
    nobody_online: "None of your contacts is online. Add people by their username.",
    no_match: "No one online matches that.",
    call_name: "Video call {name}",
    voice_call_name: "Voice call {name}",
    video_call: "Video call",
    voice_call: "Voice call",
    answer_voice: "Answer with voice",
    idle_heading: "Who would you like to see?",
    idle_hint: "Pick someone who is online. Your camera is on only during a call.",
    calling_name: "Calling {name}…",
    ringing: "Ringing…",
    waiting: "Waiting for an answer…",
    cancel: "Cancel",
    incoming_name: "{name} is calling",
    incoming_title: "📞 {name} is calling — Duet",
    notification_body: "Open Duet to answer.",
    accept: "Accept",
    decline: "Decline",
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    mute: "Mute microphone",
    unmute: "Unmute microphone",
    camera_off: "Turn camera off",
    camera_on: "Turn camera on",
    hang_up: "Hang up",
    full_screen: "Full screen",
    exit_full_screen: "Exit full screen",
    picture_in_picture: "Picture in picture",
    devices: "Devices",
    camera: "Camera",
    microphone: "Microphone",
    speaker: "Speaker",
    camera_fell_back: "Your camera was disconnected. Now using {name}.",
    microphone_fell_back: "Your microphone was disconnected. Now using {name}.",
    check_devices: "Check camera and microphone",
    mic_level: "Microphone level",
    test_sound: "Play test sound",
    done: "Done",
    share_screen: "Share screen",
    stop_sharing: "Stop sharing",
    remote_sharing: "{name} is sharing their screen",
    shortcuts: "Keyboard shortcuts",
    shortcut_keys: "M mute or unmute · V camera on or off · S share screen or stop · Esc decline a ringing call",
    remote_muted: "{name} is muted",
    remote_camera_off: "{name} turned their camera off",
    you: "You",
    call_duration: "Call duration",
    your_camera_off: "Your camera is off",
    call_ended: "Call ended",
    ended_declined: "{name} declined the call.",
    ended_busy: "{name} is in another call.",
    ended_no_answer: "{name} didn't answer.",
    ended_they_hung_up: "{name} hung up.",
    ended_you_hung_up: "You hung up.",
    ended_connection_lost: "The connection to {name} was lost.",
    ended_peer_offline: "{name} is not taking calls.",
    ended_media_denied: "Duet couldn't use your camera or microphone. Check the browser's permissions, or call with audio only.",
    ended_cancelled: "Missed call from {name}.",
    ended_relay_refused: "The media relay refused the connection, so the call with {name} could not start. Ask whoever runs this Duet server to check its TURN settings.",
    verification_code: "Verification code",
    verification_hint: "Read this code aloud. If {name} sees a different one, hang up: someone may be listening in.",
    call_again: "Call again",
    audio_only: "Call with audio only",
    back: "Back to contacts",
    quality_name: "Connection quality: {name}",
    quality_good: "good",
    quality_fair: "fair",
    quality_poor: "poor",
    quality_details: "Connection details",
    quality_sending: "Sending",
    quality_receiving: "Receiving",
    quality_round_trip: "Round-trip time",
    quality_loss_in: "Packet loss (incoming)",
    quality_loss_out: "Packet loss (outgoing)",
    quality_jitter: "Jitter",
    quality_resolution: "Received video",
    quality_frame_rate: "Frame rate",
    quality_path: "Path",
    quality_direct: "Direct",
    quality_relayed: "Relayed (TURN)",
    poor_connection: "Your connection is poor. Turn your camera off to keep the sound clear?",
    not_now: "Not now",
    account: "Account",
    change_password: "Change password",
    current_password: "Current password",
    new_password: "New password",
    password_changed: "Password changed. Your other devices were signed out.",
    log_out_everywhere: "Log out of all devices",
    delete_account: "Delete account",
    delete_warning: "This deletes your account, contacts and call history for good. Enter your password to confirm.",
    wrong_password: "That password is not right.",
};

pub static ZH: Strings = Strings {
    language_name: "中文",
    switch_language: "切换语言",
    loading: "加载中…",
    tagline: "和熟悉的人面对面通话。",
    username: "用户名",
    password: "密码",
    log_in: "登录",
    register: "注册账号",
    working: "请稍候…",
    log_out: "退出登录",
    signed_in_as: "当前用户",
    auth_network: "无法连接服务器，请检查网络后重试。",
    auth_failed: "操作未成功，请重试。",
    username_empty: "请输入用户名。",
    username_too_long: "用户名最多 32 个字符。",
    username_characters: "用户名只能包含字母、数字、“_”、“-”和“.”。",
    username_mixed_scripts: "用户名不能混用外形相似的文字（如拉丁字母与西里尔字母）。",
    password_too_short: "密码至少需要 8 个字符。",
    password_too_long: "密码最多 128 个字符。",
    username_taken: "该用户名已被占用，请换一个，或直接登录。",
    wrong_credentials: "用户名或密码错误。",
    throttled_minutes: "失败次数过多，请 {name} 分钟后再试。",
    registrations_minutes: "你的网络新注册的账号过多，请 {name} 分钟后再试。",
    server_busy: "服务器繁忙，请几秒后重试。",
    server_trouble: "服务器出现问题，请稍后重试。",
    storage_full: "服务器存储空间已满，请稍后再试。",
    offline_banner: "与服务器的连接已断开，正在重试…",
    contacts_heading: "联系人",
    recent_heading: "最近通话",
    outcome_answered: "已接听",
    outcome_declined: "已拒绝",
    outcome_missed: "未接来电",
    outcome_busy: "忙线",
    outcome_cancelled: "已取消",
    outcome_failed: "未接通",
    call_back: "回拨",
    no_calls_yet: "还没有通话记录。",
    add_contact: "添加联系人",
    request_sent: "已向 {name} 发送请求。",
    requests_heading: "联系人请求",
    accept_contact: "接受",
    decline_contact: "拒绝",
    offline_contact: "离线",
    in_a_call: "通话中",
    pending_contact: "已发送请求",
    manage_contacts: "管理联系人",
    remove_contact: "移除",
    block_contact: "屏蔽",
    unblock_contact: "取消屏蔽",
    calls_from_label: "谁可以呼叫我",
    calls_from_anyone: "知道我用户名的任何人",
    calls_from_contacts: "仅限我的联系人",
    contact_yourself: "这是你自己。",
    no_request: "该请求已不存在。",
    too_many_contacts: "你的联系人列表已满。",
    filter_label: "筛选联系人",
    nobody_online: "你的联系人都不在线。输入用户名即可添加联系人。",
    no_match: "没有符合条件的在线联系人。",
    call_name: "与 {name} 视频通话",
    voice_call_name: "与 {name} 语音通话",
    video_call: "视频通话",
    voice_call: "语音通话",
    answer_voice: "语音接听",
    idle_heading: "想和谁通话？",
    idle_hint: "选择一位在线联系人。摄像头仅在通话期间开启。",
    calling_name: "正在呼叫 {name}…",
    ringing: "对方响铃中…",
    waiting: "等待对方接听…",
    cancel: "取消",
    incoming_name: "{name} 来电",
    incoming_title: "📞 {name} 来电 — Duet",
    notification_body: "打开 Duet 接听。",
    accept: "接听",
    decline: "拒绝",
    connecting: "正在连接…",
    connected: "已连接",
    reconnecting: "正在重新连接…",
    mute: "关闭麦克风",
    unmute: "打开麦克风",
    camera_off: "关闭摄像头",
    camera_on: "打开摄像头",
    hang_up: "挂断",
    full_screen: "全屏",
    exit_full_screen: "退出全屏",
    picture_in_picture: "画中画",
    devices: "设备",
    camera: "摄像头",
    microphone: "麦克风",
    speaker: "扬声器",
    camera_fell_back: "你的摄像头已断开，现在使用 {name}。",
    microphone_fell_back: "你的麦克风已断开，现在使用 {name}。",
    check_devices: "检查摄像头和麦克风",
    mic_level: "麦克风音量",
    test_sound: "播放测试音",
    done: "完成",
    share_screen: "共享屏幕",
    stop_sharing: "停止共享",
    remote_sharing: "{name} 正在共享屏幕",
    shortcuts: "键盘快捷键",
    shortcut_keys: "M 静音/取消静音 · V 开关摄像头 · S 共享/停止共享屏幕 · Esc 拒接来电",
    remote_muted: "{name} 已静音",
    remote_camera_off: "{name} 已关闭摄像头",
    you: "你",
    call_duration: "通话时长",
    your_camera_off: "你的摄像头已关闭",
    call_ended: "通话已结束",
    ended_declined: "{name} 拒绝了通话。",
    ended_busy: "{name} 正在通话中。",
    ended_no_answer: "{name} 无人接听。",
    ended_they_hung_up: "{name} 已挂断。",
    ended_you_hung_up: "你已挂断。",
    ended_connection_lost: "与 {name} 的连接已中断。",
    ended_peer_offline: "{name} 现在无法接听。",
    ended_media_denied: "Duet 无法使用你的摄像头或麦克风。请检查浏览器权限，或改用语音通话。",
    ended_cancelled: "{name} 的未接来电。",
    ended_relay_refused: "媒体中继服务器拒绝了连接，无法与 {name} 通话。请联系这台 Duet 服务器的管理员检查 TURN 设置。",
    verification_code: "验证码",
    verification_hint: "请大声读出这个验证码。如果 {name} 看到的不一样，请挂断：可能有人在窃听。",
    call_again: "重新呼叫",
    audio_only: "仅语音呼叫",
    back: "返回联系人",
    quality_name: "通话质量：{name}",
    quality_good: "良好",
    quality_fair: "一般",
    quality_poor: "较差",
    quality_details: "连接详情",
    quality_sending: "发送",
    quality_receiving: "接收",
    quality_round_trip: "往返时延",
    quality_loss_in: "丢包率（接收）",
    quality_loss_out: "丢包率（发送）",
    quality_jitter: "抖动",
    quality_resolution: "接收画面",
    quality_frame_rate: "帧率",
    quality_path: "连接方式",
    quality_direct: "直连",
    quality_relayed: "经中继（TURN）",
    poor_connection: "你的网络连接较差。要关闭摄像头以保证声音清晰吗？",
    not_now: "暂不",
    account: "账户",
    change_password: "修改密码",
    current_password: "当前密码",
    new_password: "新密码",
    password_changed: "密码已修改，其他设备已退出登录。",
    log_out_everywhere: "退出所有设备",
    delete_account: "删除账户",
    delete_warning: "这将永久删除你的账户、联系人和通话记录。请输入密码确认。",
    wrong_password: "密码不正确。",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_chosen_for_any_zh_tag() {
        for tag in ["zh", "zh-CN", "zh-TW", "ZH-hans"] {
            assert_eq!(Lang::from_tag(tag), Lang::Zh, "{tag}");
        }
        for tag in ["en-US", "de", ""] {
            assert_eq!(Lang::from_tag(tag), Lang::En, "{tag}");
        }
        assert_eq!(Lang::from_tag(Lang::Zh.tag()), Lang::Zh);
    }

    #[test]
    fn named_templates_have_their_slot() {
        for strings in [&EN, &ZH] {
            for template in [
                strings.call_name,
                strings.voice_call_name,
                strings.calling_name,
                strings.incoming_name,
                strings.incoming_title,
                strings.remote_muted,
                strings.remote_camera_off,
                strings.remote_sharing,
                strings.ended_declined,
                strings.ended_cancelled,
                strings.ended_relay_refused,
                strings.verification_hint,
                strings.request_sent,
                strings.quality_name,
                strings.camera_fell_back,
                strings.microphone_fell_back,
            ] {
                assert!(template.contains("{name}"), "{template}");
            }
            assert!(!strings.end_reason(EndReason::Busy, "bob").contains('{'));
            assert!(!fill(strings.quality_name, strings.quality_level(Level::Poor)).contains('{'));
        }
    }

    #[test]
    fn refusals_are_said_in_each_language() {
        for strings in [&EN, &ZH] {
            assert_eq!(
                strings.refusal(AuthErrorCode::WrongCredentials, None),
                strings.wrong_credentials
            );
            assert_eq!(
                strings.refusal(AuthErrorCode::PasswordTooShort, None),
                strings.password_too_short
            );
            assert!(
                strings
                    .refusal(AuthErrorCode::Throttled, Some(61))
                    .contains('2')
            );
            assert_eq!(
                strings.refusal(AuthErrorCode::StorageFull, Some(60)),
                strings.storage_full
            );
            assert_eq!(
                strings.refusal(AuthErrorCode::WrongPassword, None),
                strings.wrong_password
            );
        }
        assert_eq!(
            fill(EN.quality_name, EN.quality_level(Level::Good)),
            "Connection quality: good"
        );
        assert_eq!(
            fill(ZH.quality_name, ZH.quality_level(Level::Poor)),
            "通话质量：较差"
        );
        assert_eq!(
            ZH.refusal(AuthErrorCode::Throttled, Some(300)),
            "失败次数过多，请 5 分钟后再试。"
        );
    }
}
