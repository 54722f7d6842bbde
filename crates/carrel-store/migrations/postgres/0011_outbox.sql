-- The durable outbox: every email or notice is written here in the transaction
-- that causes it, and a sender in each instance delivers it (claiming rows with
-- a lease so exactly one instance sends each). `payload` holds the template's
-- parameters, which for account mail include a single-use link: it is set to
-- NULL once the message is sent, and old sent/dead rows are deleted.
CREATE TABLE outbox_messages (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    -- 0: account security (resets, invitations, lockout notices), sent first; 1: the rest.
    priority        INTEGER NOT NULL CHECK (priority IN (0, 1)),
    payload         JSONB,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_holder    UUID,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ,
    CHECK (state <> 'sent' OR sent_at IS NOT NULL),
    CHECK (state = 'pending' OR lease_holder IS NULL)
);

CREATE INDEX outbox_messages_due ON outbox_messages (priority, next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_messages_state ON outbox_messages (state, created_at, id);
