-- Logins that started before this time (Unix milliseconds) are over: a password change sets it, so
-- every session of the old password ends, in this process and in any other.
ALTER TABLE users ADD COLUMN sessions_since BIGINT NOT NULL DEFAULT 0;
CREATE INDEX users_sessions_since ON users (sessions_since);
