-- Calls as the server relayed them, one row per user in the call: deleting mine leaves yours.
CREATE TABLE call_records (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The callers' own id for the call (random, 128 bits).
    call_id TEXT NOT NULL,
    peer_name TEXT NOT NULL,
    outgoing BOOLEAN NOT NULL,
    -- answered, declined, missed, busy, cancelled or failed (protocol::CallOutcome).
    outcome TEXT NOT NULL,
    -- Unix milliseconds: ringing started, answered (answered calls only), ended.
    started_at BIGINT NOT NULL,
    answered_at BIGINT,
    ended_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, call_id)
);
-- The history page, newest first.
CREATE INDEX call_records_by_user_time ON call_records (user_id, started_at);

-- Missed calls started after this (Unix milliseconds) count as not yet seen.
ALTER TABLE users ADD COLUMN calls_seen_at BIGINT NOT NULL DEFAULT 0;
