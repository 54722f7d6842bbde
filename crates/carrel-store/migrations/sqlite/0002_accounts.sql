-- Accounts, sessions and single-use tokens. Booleans are INTEGER 0/1, ids are
-- 16-byte BLOBs, timestamps are whole-second RFC 3339 UTC text (sortable).
CREATE TABLE users (
    id                  BLOB PRIMARY KEY NOT NULL,
    email               TEXT NOT NULL,
    email_key           TEXT NOT NULL,
    username            TEXT NOT NULL,
    username_key        TEXT NOT NULL,
    full_name           TEXT,
    role                TEXT NOT NULL CHECK (role IN ('patron', 'librarian', 'admin')),
    password_hash       TEXT,
    email_verified      INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    is_active           INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    mfa_enabled         INTEGER NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1)),
    keep_loan_history   INTEGER NOT NULL DEFAULT 0 CHECK (keep_loan_history IN (0, 1)),
    failed_logins       INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until        TEXT,
    password_changed_at TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    deleted_at          TEXT,
    deleted_by          BLOB
) STRICT;
-- Case-insensitive uniqueness lives in the *_key columns (lower-cased by the app).
CREATE UNIQUE INDEX users_email_key ON users (email_key);
CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE INDEX users_role ON users (role, created_at);

CREATE TABLE password_history (
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX password_history_user ON password_history (user_id, created_at);

CREATE TABLE sessions (
    id             BLOB PRIMARY KEY NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_name    TEXT,
    user_agent     TEXT,
    ip_address     TEXT,
    scope          TEXT,
    created_at     TEXT NOT NULL,
    last_used_at   TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    revoked_at     TEXT,
    revoked_reason TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id, created_at);

-- Every refresh token a session was ever given; only the newest is unrotated.
-- Presenting a rotated one again is reuse and revokes the session.
CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    rotated_at TEXT
) STRICT;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Email verification, password reset and invitation tokens (stored hashed).
CREATE TABLE one_time_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset', 'invitation')),
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);
