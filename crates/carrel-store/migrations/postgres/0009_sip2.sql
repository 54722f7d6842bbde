-- Patron cards, PINs for self-check (with their own lockout, apart from the
-- password's) and SIP2 terminal accounts.
ALTER TABLE users ADD COLUMN card_number TEXT;
ALTER TABLE users ADD COLUMN pin_hash TEXT;
ALTER TABLE users ADD COLUMN pin_failed_attempts INTEGER NOT NULL DEFAULT 0 CHECK (pin_failed_attempts >= 0);
ALTER TABLE users ADD COLUMN pin_locked_until TIMESTAMPTZ;
-- Card numbers are stored upper-cased by the app; NULL (no card) is not unique.
CREATE UNIQUE INDEX users_card_number ON users (card_number);

CREATE TABLE sip2_terminals (
    id            UUID PRIMARY KEY,
    login         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    institution   TEXT NOT NULL,
    branch_code   TEXT,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX sip2_terminals_login ON sip2_terminals (login);
