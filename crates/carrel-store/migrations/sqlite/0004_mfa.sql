-- TOTP multi-factor authentication. The secret is sealed (XChaCha20-Poly1305
-- under the secrets key, bound to the user id); recovery codes and login
-- challenges are stored as hashes only.
CREATE TABLE user_mfa (
    user_id        BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  BLOB NOT NULL,
    confirmed_at   TEXT,
    -- The last accepted 30-second step: a code is never accepted twice.
    last_used_step INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL
) STRICT;

CREATE TABLE recovery_codes (
    user_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at   TEXT,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- The second step of a login: short-lived, single-use, attempt-limited.
CREATE TABLE mfa_challenges (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_name TEXT,
    use_cookies INTEGER NOT NULL DEFAULT 0 CHECK (use_cookies IN (0, 1)),
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
) STRICT;
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
