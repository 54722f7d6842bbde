-- Sign-in attempts whose secret (password or second-factor code) is being
-- checked right now. Lockout counts them with the committed failures, so no
-- more than the threshold of guesses is ever evaluated, however many requests
-- race; attempts beyond it wait for these to finish. A row lives until its
-- attempt reports the result, or until it expires (a crashed instance).
CREATE TABLE sign_in_attempts (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX sign_in_attempts_user ON sign_in_attempts (user_id, expires_at);
