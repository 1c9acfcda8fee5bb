//! Call history: what the server recorded of each call a user was in (`GET /calls`).

use serde::{Deserialize, Serialize};

/// How a call ended, as the user it is recorded for sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Answered; the record has a duration.
    Answered,
    /// The callee said no.
    Declined,
    /// The callee did not answer: the caller gave up, or the callee was in another call.
    Missed,
    /// The callee was in another call (the caller's side of a busy call).
    Busy,
    /// The caller gave up before an answer (the caller's side of a missed call).
    Cancelled,
    /// It never rang, or a side vanished before an answer.
    Failed,
}

impl CallOutcome {
    pub const ALL: [Self; 6] = [
        Self::Answered,
        Self::Declined,
        Self::Missed,
        Self::Busy,
        Self::Cancelled,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Declined => "declined",
            Self::Missed => "missed",
            Self::Busy => "busy",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

/// One call, for one of the two users in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: String,
    /// The other user.
    pub peer: String,
    /// This user placed the call.
    pub outgoing: bool,
    pub outcome: CallOutcome,
    /// When the call started ringing (Unix milliseconds).
    pub started_at: i64,
    /// From the answer to the end, for answered calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

/// `GET /calls`: a page of the user's calls, newest first, and how many missed calls they have
/// not seen yet (`POST /calls/seen` marks all seen).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallHistory {
    pub calls: Vec<CallRecord>,
    pub missed_unseen: u32,
    /// Pass as `?before=` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_named_as_serde_names_them() {
        for outcome in CallOutcome::ALL {
            assert_eq!(
                serde_json::to_string(&outcome).unwrap(),
                format!("\"{}\"", outcome.as_str())
            );
            assert_eq!(CallOutcome::parse(outcome.as_str()), Some(outcome));
        }
    }
}
