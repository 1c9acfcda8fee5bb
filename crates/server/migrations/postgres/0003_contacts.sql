-- Contacts as intents: a row (user_id, contact_key) says "this user wants that name as a contact".
-- A pair of rows, one each way, is a contact; one alone is a request. Keyed by the target's
-- case-folded name rather than its id, so a request to a name answers the same whether or not
-- that account exists (no enumeration), and is shown to its sender as sent either way.
CREATE TABLE contacts (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    contact_key TEXT NOT NULL,
    -- The name as the sender typed it (normalised), shown while the request is pending.
    contact_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, contact_key)
);
-- Incoming requests: who wants me.
CREATE INDEX contacts_by_contact_key ON contacts (contact_key);

-- A row says "this user refuses that name": its requests, calls and presence.
CREATE TABLE blocks (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_key TEXT NOT NULL,
    blocked_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, blocked_key)
);
-- Who blocked me (so that I do not see their presence either).
CREATE INDEX blocks_by_blocked_key ON blocks (blocked_key);

-- Who may call this user: 'anyone' (who knows the name) or 'contacts'.
ALTER TABLE users ADD COLUMN calls_from TEXT NOT NULL DEFAULT 'anyone';
