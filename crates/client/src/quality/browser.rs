//! Reads [`StatsSample`]s from a live `RTCPeerConnection` and applies [`SendProfile`]s to its
//! video sender. Stats are read through `Reflect` rather than web-sys's dictionary bindings:
//! fewer bindings keep the wasm bundle small, and browsers differ in which fields they fill.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{RtcPeerConnection, RtcRtpSender};

use crate::js_fields::{get, number, text};

use super::{CandidatePair, CandidateType, Inbound, RemoteInbound, SendProfile, StatsSample};

#[wasm_bindgen]
extern "C" {
    /// `RTCRtpSender` parameters as plain objects (web-sys's typed ones need extra features).
    #[wasm_bindgen(extends = RtcRtpSender, js_name = RTCRtpSender)]
    type SenderExt;
    #[wasm_bindgen(method, js_name = getParameters)]
    fn get_parameters(this: &SenderExt) -> JsValue;
    #[wasm_bindgen(method, catch, js_name = setParameters)]
    fn set_parameters(this: &SenderExt, parameters: &JsValue) -> Result<js_sys::Promise, JsValue>;
}

/// Why a [`SendProfile`] could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// An audio-only call, or the camera track was removed.
    #[error("there is no video sender")]
    NoVideoSender,
    /// Before negotiation a sender has no encodings, and adding one is not allowed.
    #[error("the video sender has no encoding yet")]
    NotNegotiated,
    #[error("the browser refused the send parameters: {0}")]
    Refused(String),
}

fn count(value: &JsValue, key: &str) -> Option<u64> {
    number(value, key).filter(|n| *n >= 0.0).map(|n| n as u64)
}

fn inbound(entry: &JsValue) -> Inbound {
    let whole = |key| count(entry, key).and_then(|n| u32::try_from(n).ok());
    Inbound {
        bytes_received: count(entry, "bytesReceived").unwrap_or(0),
        packets_received: count(entry, "packetsReceived").unwrap_or(0),
        packets_lost: number(entry, "packetsLost").unwrap_or(0.0) as i64,
        jitter_s: number(entry, "jitter"),
        frame_width: whole("frameWidth"),
        frame_height: whole("frameHeight"),
        frames_per_second: number(entry, "framesPerSecond"),
        frames_decoded: count(entry, "framesDecoded"),
        screen_share: text(entry, "contentType").as_deref() == Some("screenshare"),
    }
}

/// Adds a second stream of the same kind (left over from a renegotiation): counters add up, the
/// picture is the busier stream's.
fn merge(into: &mut Option<Inbound>, entry: Inbound) {
    let Some(total) = into else {
        *into = Some(entry);
        return;
    };
    let picture = if entry.bytes_received > total.bytes_received {
        entry
    } else {
        *total
    };
    *total = Inbound {
        bytes_received: total.bytes_received + entry.bytes_received,
        packets_received: total.packets_received + entry.packets_received,
        packets_lost: total.packets_lost + entry.packets_lost,
        ..picture
    };
}

fn remote_inbound(entry: &JsValue) -> RemoteInbound {
    RemoteInbound {
        fraction_lost: number(entry, "fractionLost"),
        round_trip_time_s: number(entry, "roundTripTime"),
    }
}

fn add(into: &mut Option<u64>, bytes: Option<u64>) {
    *into = Some(into.unwrap_or(0) + bytes.unwrap_or(0));
}

fn is_selected_pair(entry: &JsValue) -> bool {
    let flag = |key| get(entry, key).and_then(|v| v.as_bool()) == Some(true);
    text(entry, "type").as_deref() == Some("candidate-pair")
        // Firefox marks it; Chrome names it on the transport, nominated and succeeded is close.
        && (flag("selected")
            || (flag("nominated") && text(entry, "state").as_deref() == Some("succeeded")))
}

/// One reading of the connection's stats; `None` when the browser gives none (the connection
/// is closed, or stats are not available).
pub async fn sample(pc: &RtcPeerConnection) -> Option<StatsSample> {
    let report = JsFuture::from(pc.get_stats()).await.ok()?;
    let stats: Vec<JsValue> = js_sys::try_iter(&report)
        .ok()??
        .filter_map(Result::ok)
        .filter_map(|entry| Reflect::get(&entry, &JsValue::from_f64(1.0)).ok())
        .collect();
    let by_id = |id: Option<String>| {
        let id = id?;
        stats
            .iter()
            .find(|s| text(s, "id").as_deref() == Some(id.as_str()))
    };

    let mut sample = StatsSample::default();
    let mut selected_pair_id = None;
    for entry in &stats {
        sample.timestamp_ms = sample
            .timestamp_ms
            .max(number(entry, "timestamp").unwrap_or(0.0));
        let kind = text(entry, "kind");
        match (text(entry, "type").as_deref(), kind.as_deref()) {
            (Some("transport"), _) => {
                selected_pair_id = selected_pair_id.or(text(entry, "selectedCandidatePairId"));
            }
            (Some("outbound-rtp"), Some("video")) => {
                add(&mut sample.video_bytes_sent, count(entry, "bytesSent"))
            }
            (Some("outbound-rtp"), Some("audio")) => {
                add(&mut sample.audio_bytes_sent, count(entry, "bytesSent"))
            }
            (Some("inbound-rtp"), Some("video")) => merge(&mut sample.video_in, inbound(entry)),
            (Some("inbound-rtp"), Some("audio")) => merge(&mut sample.audio_in, inbound(entry)),
            (Some("remote-inbound-rtp"), Some("video")) => {
                sample.video_remote_in = Some(remote_inbound(entry))
            }
            (Some("remote-inbound-rtp"), Some("audio")) => {
                sample.audio_remote_in = Some(remote_inbound(entry))
            }
            _ => {}
        }
    }
    if stats.is_empty() {
        return None;
    }

    let pair = by_id(selected_pair_id).or_else(|| stats.iter().find(|s| is_selected_pair(s)));
    let candidate_type = |pair, key| {
        by_id(text(pair, key))
            .and_then(|candidate| text(candidate, "candidateType"))
            .map_or(CandidateType::Unknown, |t| CandidateType::parse(&t))
    };
    sample.pair = pair.map(|pair| CandidatePair {
        current_round_trip_time_s: number(pair, "currentRoundTripTime"),
        available_outgoing_bitrate_bps: number(pair, "availableOutgoingBitrate"),
        local_type: candidate_type(pair, "localCandidateId"),
        remote_type: candidate_type(pair, "remoteCandidateId"),
    });
    Some(sample)
}

fn refused(error: JsValue) -> ProfileError {
    ProfileError::Refused(
        text(&error, "message")
            .or_else(|| error.as_string())
            .unwrap_or_default(),
    )
}

/// Limits the video sender to `profile` (the first encoding's `maxBitrate` and
/// `scaleResolutionDownBy`; no `maxBitrate` at all for an unlimited profile). Audio senders
/// are left alone.
pub async fn apply_profile(
    pc: &RtcPeerConnection,
    profile: SendProfile,
) -> Result<(), ProfileError> {
    edit_video_encoding(pc, |encoding| {
        let max_bitrate = JsValue::from_str("maxBitrate");
        match profile.max_bitrate_bps {
            Some(bps) => Reflect::set(encoding, &max_bitrate, &JsValue::from(bps)),
            None => {
                Reflect::delete_property(encoding.unchecked_ref::<js_sys::Object>(), &max_bitrate)
            }
        }?;
        Reflect::set(
            encoding,
            &JsValue::from_str("scaleResolutionDownBy"),
            &JsValue::from_f64(profile.scale_resolution_down_by),
        )
        .map(|_| ())
    })
    .await
}

/// Makes the video encoder start over with a key frame, by pausing and resuming its encoding.
///
/// Why: after the path comes back, the peer's decoder waits for a key frame; the request it
/// sent while the path was down is lost, and Chromium repeats it only seconds later (seen as
/// 2–3 s of frozen picture after the network returned). There is no direct "send a key frame"
/// call outside encoded transforms.
pub async fn restart_video_encoder(pc: &RtcPeerConnection) -> Result<(), ProfileError> {
    for active in [false, true] {
        edit_video_encoding(pc, |encoding| {
            Reflect::set(
                encoding,
                &JsValue::from_str("active"),
                &JsValue::from(active),
            )
            .map(|_| ())
        })
        .await?;
    }
    Ok(())
}

/// Reads the video sender's parameters, lets `edit` change the first encoding, and applies them.
async fn edit_video_encoding(
    pc: &RtcPeerConnection,
    edit: impl Fn(&JsValue) -> Result<(), JsValue>,
) -> Result<(), ProfileError> {
    let sender = pc
        .get_senders()
        .iter()
        .filter_map(|sender| sender.dyn_into::<RtcRtpSender>().ok())
        .find(|sender| sender.track().is_some_and(|track| track.kind() == "video"))
        .ok_or(ProfileError::NoVideoSender)?
        .unchecked_into::<SenderExt>();
    let parameters = sender.get_parameters();
    let encoding = get(&parameters, "encodings")
        .and_then(|encodings| Reflect::get_u32(&encodings, 0).ok())
        .filter(JsValue::is_object)
        .ok_or(ProfileError::NotNegotiated)?;
    edit(&encoding).map_err(refused)?;
    let done = sender.set_parameters(&parameters).map_err(refused)?;
    JsFuture::from(done).await.map_err(refused)?;
    Ok(())
}
