//! Call history, written by the server from the call-control frames it relayed (`invite`,
//! `accept`, `decline`, `busy`, `cancel`, `hangup`), not from what a browser says happened.
//!
//! A call rings from the moment its `invite` is delivered; the [`CallLog`] keeps it in memory
//! until it ends, then writes one record for each of the two users. A user whose last connection
//! closes ends their calls (an answered call ends then; an unanswered one failed or was missed).
//! The seed's calls (bare `offer`/`answer` without `call_id`) are not recorded.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::db::{BeginWrite, Pool};
use crate::with_pool;
use protocol::{CallHistory, CallOutcome, CallRecord, PeerKind};

use crate::accounts::AccountsError;

/// Calls ringing or in progress at once, server-wide; invites beyond it are relayed but not
/// recorded (a client cannot grow the server's memory without bound).
const MAX_OPEN_CALLS: usize = 100_000;

/// Records per history page, at most.
pub const MAX_PAGE: i64 = 100;

/// One side of a call: the case-folded key and the name as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub key: String,
    pub name: String,
}

#[derive(Debug)]
struct OpenCall {
    caller: Party,
    callee: Party,
    started_at: i64,
    answered_at: Option<i64>,
}

/// A call that ended, ready to be written for both users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedCall {
    pub call_id: String,
    pub caller: Party,
    pub callee: Party,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: i64,
    pub caller_sees: CallOutcome,
    pub callee_sees: CallOutcome,
}

/// What a relayed frame did to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallChange {
    /// The callee answered: both are in a call now (their keys).
    Answered {
        caller: String,
        callee: String,
    },
    Ended(EndedCall),
}

/// Calls in progress, by call id.
#[derive(Default)]
pub struct CallLog {
    open: Mutex<HashMap<String, OpenCall>>,
}

fn now_ms() -> i64 {
    crate::sessions::unix_ms(time::OffsetDateTime::now_utc())
}

impl CallLog {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, OpenCall>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call-control frame of `kind` for `call_id` was delivered from `from` to `to`; returns
    /// what that did to the call, if anything.
    pub fn relayed(
        &self,
        kind: PeerKind,
        call_id: &str,
        from: &Party,
        to: &Party,
    ) -> Option<CallChange> {
        let now = now_ms();
        let mut open = self.lock();
        if kind == PeerKind::Invite {
            if open.len() < MAX_OPEN_CALLS && !open.contains_key(call_id) {
                open.insert(
                    call_id.to_owned(),
                    OpenCall {
                        caller: from.clone(),
                        callee: to.clone(),
                        started_at: now,
                        answered_at: None,
                    },
                );
            }
            return None;
        }
        let call = open.get_mut(call_id)?;
        let by_caller = call.caller.key == from.key && call.callee.key == to.key;
        let by_callee = call.callee.key == from.key && call.caller.key == to.key;
        if !by_caller && !by_callee {
            // Someone else's frame naming this call: not theirs to end.
            return None;
        }
        let (caller_sees, callee_sees) = match (kind, call.answered_at, by_callee) {
            (PeerKind::Accept, None, true) => {
                call.answered_at = Some(now);
                return Some(CallChange::Answered {
                    caller: call.caller.key.clone(),
                    callee: call.callee.key.clone(),
                });
            }
            (PeerKind::Hangup | PeerKind::Leave | PeerKind::Cancel, Some(_), _) => {
                (CallOutcome::Answered, CallOutcome::Answered)
            }
            (PeerKind::Decline, None, true) => (CallOutcome::Declined, CallOutcome::Declined),
            (PeerKind::Busy, None, true) => (CallOutcome::Busy, CallOutcome::Missed),
            (PeerKind::Cancel | PeerKind::Hangup | PeerKind::Leave, None, false) => {
                (CallOutcome::Cancelled, CallOutcome::Missed)
            }
            (PeerKind::Hangup | PeerKind::Leave, None, true) => {
                (CallOutcome::Declined, CallOutcome::Declined)
            }
            _ => return None,
        };
        let call = open.remove(call_id)?;
        Some(CallChange::Ended(ended(
            call_id.to_owned(),
            call,
            now,
            caller_sees,
            callee_sees,
        )))
    }

    /// User `key` went offline (their last connection closed): their calls end.
    pub fn gone(&self, key: &str) -> Vec<EndedCall> {
        let now = now_ms();
        let mut open = self.lock();
        let theirs: Vec<String> = open
            .iter()
            .filter(|(_, call)| call.caller.key == key || call.callee.key == key)
            .map(|(id, _)| id.clone())
            .collect();
        theirs
            .into_iter()
            .filter_map(|id| {
                let call = open.remove(&id)?;
                let (caller_sees, callee_sees) = if call.answered_at.is_some() {
                    (CallOutcome::Answered, CallOutcome::Answered)
                } else if call.caller.key == key {
                    (CallOutcome::Cancelled, CallOutcome::Missed)
                } else {
                    (CallOutcome::Failed, CallOutcome::Missed)
                };
                Some(ended(id, call, now, caller_sees, callee_sees))
            })
            .collect()
    }
}

fn ended(
    call_id: String,
    call: OpenCall,
    ended_at: i64,
    caller_sees: CallOutcome,
    callee_sees: CallOutcome,
) -> EndedCall {
    EndedCall {
        call_id,
        caller: call.caller,
        callee: call.callee,
        started_at: call.started_at,
        answered_at: call.answered_at,
        ended_at,
        caller_sees,
        callee_sees,
    }
}

/// Call records in the database.
#[derive(Clone)]
pub struct CallStore {
    pool: Pool,
}

impl CallStore {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Writes an ended call for both users (one transaction).
    pub async fn write(&self, call: &EndedCall) -> Result<(), AccountsError> {
        with_pool!(&self.pool, pool => {
            let mut tx = pool.begin_write().await?;
            for (me, peer, outgoing, outcome) in [
                (&call.caller, &call.callee, true, call.caller_sees),
                (&call.callee, &call.caller, false, call.callee_sees),
            ] {
                sqlx::query(
                    "INSERT INTO call_records (user_id, call_id, peer_name, outgoing, outcome, \
                     started_at, answered_at, ended_at) \
                     SELECT id, $2, $3, $4, $5, $6, $7, $8 FROM users WHERE username_key = $1 \
                     ON CONFLICT (user_id, call_id) DO NOTHING",
                )
                .bind(&me.key)
                .bind(&call.call_id)
                .bind(&peer.name)
                .bind(outgoing)
                .bind(outcome.as_str())
                .bind(call.started_at)
                .bind(call.answered_at)
                .bind(call.ended_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A page of `username`'s calls started before `before` (Unix ms), newest first.
    pub async fn history(
        &self,
        username: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<CallHistory, AccountsError> {
        let key = protocol::username_key(username);
        let limit = limit.clamp(1, MAX_PAGE);
        type Row = (String, String, bool, String, i64, Option<i64>, i64);
        let (rows, missed_unseen): (Vec<Row>, i64) = with_pool!(&self.pool, pool => {
            let mut db = pool.acquire().await?;
            let rows = sqlx::query_as(
                "SELECT c.call_id, c.peer_name, c.outgoing, c.outcome, c.started_at, \
                 c.answered_at, c.ended_at FROM call_records c JOIN users u ON u.id = c.user_id \
                 WHERE u.username_key = $1 AND c.started_at < $2 \
                 ORDER BY c.started_at DESC, c.call_id DESC LIMIT $3",
            )
            .bind(&key)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit + 1)
            .fetch_all(&mut *db)
            .await?;
            let missed_unseen = sqlx::query_scalar(
                "SELECT COUNT(*) FROM call_records c JOIN users u ON u.id = c.user_id \
                 WHERE u.username_key = $1 AND c.outcome = 'missed' \
                 AND c.started_at > u.calls_seen_at",
            )
            .bind(&key)
            .fetch_one(&mut *db)
            .await?;
            (rows, missed_unseen)
        });
        let more = rows.len() as i64 > limit;
        let calls: Vec<CallRecord> = rows
            .into_iter()
            .take(limit as usize)
            .map(
                |(call_id, peer, outgoing, outcome, started_at, answered_at, ended_at)| {
                    CallRecord {
                        call_id,
                        peer,
                        outgoing,
                        outcome: CallOutcome::parse(&outcome).unwrap_or(CallOutcome::Failed),
                        started_at,
                        duration_ms: answered_at.map(|answered| (ended_at - answered).max(0)),
                    }
                },
            )
            .collect();
        Ok(CallHistory {
            next_before: more.then(|| calls.last().map(|c| c.started_at)).flatten(),
            calls,
            missed_unseen: u32::try_from(missed_unseen).unwrap_or(u32::MAX),
        })
    }

    /// Every missed call so far counts as seen.
    pub async fn seen(&self, username: &str) -> Result<(), AccountsError> {
        with_pool!(&self.pool, pool => {
            sqlx::query("UPDATE users SET calls_seen_at = $1 WHERE username_key = $2")
                .bind(now_ms())
                .bind(protocol::username_key(username))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes one record of `username`'s (the other user keeps theirs); whether there was one.
    pub async fn forget(&self, username: &str, call_id: &str) -> Result<bool, AccountsError> {
        let removed = with_pool!(&self.pool, pool => sqlx::query(
            "DELETE FROM call_records WHERE call_id = $2 AND user_id = \
             (SELECT id FROM users WHERE username_key = $1)",
        )
        .bind(protocol::username_key(username))
        .bind(call_id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(removed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(name: &str) -> Party {
        Party {
            key: name.to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn each_ending_is_recorded_as_each_side_sees_it() {
        let (a, b) = (party("a"), party("b"));
        let cases = [
            (
                vec![(PeerKind::Decline, false)],
                Some((CallOutcome::Declined, CallOutcome::Declined)),
            ),
            (
                vec![(PeerKind::Busy, false)],
                Some((CallOutcome::Busy, CallOutcome::Missed)),
            ),
            (
                vec![(PeerKind::Cancel, true)],
                Some((CallOutcome::Cancelled, CallOutcome::Missed)),
            ),
            (
                vec![(PeerKind::Accept, false), (PeerKind::Hangup, true)],
                Some((CallOutcome::Answered, CallOutcome::Answered)),
            ),
            (
                vec![(PeerKind::Accept, false), (PeerKind::Hangup, false)],
                Some((CallOutcome::Answered, CallOutcome::Answered)),
            ),
            // The caller cannot accept its own call.
            (vec![(PeerKind::Accept, true)], None),
        ];
        for (frames, expected) in cases {
            let log = CallLog::default();
            assert_eq!(log.relayed(PeerKind::Invite, "c", &a, &b), None);
            let mut ended = None;
            for (kind, by_caller) in &frames {
                let (from, to) = if *by_caller { (&a, &b) } else { (&b, &a) };
                ended = match log.relayed(*kind, "c", from, to) {
                    Some(CallChange::Ended(call)) => Some(call),
                    Some(CallChange::Answered { caller, callee }) => {
                        assert_eq!((caller.as_str(), callee.as_str()), ("a", "b"));
                        assert_eq!(*kind, PeerKind::Accept);
                        None
                    }
                    None => None,
                };
            }
            assert_eq!(
                ended.map(|e| (e.caller_sees, e.callee_sees)),
                expected,
                "{frames:?}"
            );
        }
    }

    #[test]
    fn a_third_user_cannot_end_someone_elses_call_and_going_offline_ends_it() {
        let (a, b, c) = (party("a"), party("b"), party("c"));
        let log = CallLog::default();
        log.relayed(PeerKind::Invite, "x", &a, &b);
        assert_eq!(log.relayed(PeerKind::Decline, "x", &c, &a), None);
        assert!(log.gone("c").is_empty());
        let ended = log.gone("b");
        assert_eq!(ended.len(), 1);
        assert_eq!(
            (ended[0].caller_sees, ended[0].callee_sees),
            (CallOutcome::Failed, CallOutcome::Missed)
        );
        assert!(log.gone("a").is_empty(), "ended once");
    }
}
