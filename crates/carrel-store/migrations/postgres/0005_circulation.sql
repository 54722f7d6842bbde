-- Circulation: policies, loans, holds, fines, payments, idempotency keys,
-- notices and the background-job lease. Money is BIGINT cents. Every invariant
-- that two desks could race on is a constraint here, not only a check in code.

CREATE TABLE circulation_policies (
    item_type              TEXT PRIMARY KEY NOT NULL CHECK (item_type IN ('book', 'ebook', 'audiobook', 'dvd', 'magazine', 'other')),
    loan_days              INTEGER NOT NULL CHECK (loan_days BETWEEN 1 AND 365),
    max_renewals           INTEGER NOT NULL CHECK (max_renewals BETWEEN 0 AND 100),
    daily_fine_cents       BIGINT NOT NULL CHECK (daily_fine_cents >= 0),
    max_fine_cents         BIGINT NOT NULL CHECK (max_fine_cents >= 0),
    grace_days             INTEGER NOT NULL CHECK (grace_days BETWEEN 0 AND 365),
    replacement_cost_cents BIGINT NOT NULL CHECK (replacement_cost_cents >= 0),
    updated_at             TIMESTAMPTZ,
    updated_by             UUID
);
-- The defaults of carrel_core::circulation::LoanPolicy::default_for.
INSERT INTO circulation_policies (item_type, loan_days, max_renewals, daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents) VALUES
    ('book', 21, 3, 25, 1000, 1, 2500),
    ('ebook', 14, 2, 0, 0, 0, 0),
    ('audiobook', 14, 2, 25, 1000, 1, 3000),
    ('dvd', 7, 1, 100, 1500, 0, 2500),
    ('magazine', 7, 0, 10, 300, 1, 500),
    ('other', 14, 1, 25, 1000, 1, 2000);

-- A loan keeps the policy in force at checkout, so later policy edits never
-- rewrite what it costs. `user_id` becomes NULL when the loan is anonymised.
CREATE TABLE loans (
    id                     UUID PRIMARY KEY,
    copy_id                UUID NOT NULL REFERENCES copies (id),
    item_id                UUID NOT NULL REFERENCES items (id),
    user_id                UUID REFERENCES users (id),
    status                 TEXT NOT NULL CHECK (status IN ('active', 'overdue', 'returned', 'lost')),
    checked_out_at         TIMESTAMPTZ NOT NULL,
    due_at                 TIMESTAMPTZ NOT NULL,
    returned_at            TIMESTAMPTZ,
    renewals               INTEGER NOT NULL DEFAULT 0 CHECK (renewals >= 0),
    loan_days              INTEGER NOT NULL,
    max_renewals           INTEGER NOT NULL,
    daily_fine_cents       BIGINT NOT NULL,
    max_fine_cents         BIGINT NOT NULL,
    grace_days             INTEGER NOT NULL,
    replacement_cost_cents BIGINT NOT NULL,
    anonymised_at          TIMESTAMPTZ,
    CHECK ((status IN ('active', 'overdue')) = (returned_at IS NULL) OR status = 'lost'),
    CHECK (user_id IS NOT NULL OR status IN ('returned', 'lost'))
);
-- At most one open loan per copy: two desks scanning one barcode cannot both win.
CREATE UNIQUE INDEX loans_open_copy ON loans (copy_id) WHERE status IN ('active', 'overdue');
CREATE INDEX loans_user ON loans (user_id, status, checked_out_at);
CREATE INDEX loans_open_due ON loans (due_at) WHERE status IN ('active', 'overdue');
CREATE INDEX loans_listing ON loans (checked_out_at, id);
CREATE INDEX loans_returned ON loans (returned_at) WHERE user_id IS NOT NULL AND returned_at IS NOT NULL;

CREATE TABLE holds (
    id           UUID PRIMARY KEY,
    item_id      UUID NOT NULL REFERENCES items (id),
    user_id      UUID REFERENCES users (id),
    status       TEXT NOT NULL CHECK (status IN ('waiting', 'ready', 'fulfilled', 'cancelled', 'expired')),
    created_at   TIMESTAMPTZ NOT NULL,
    ready_at     TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    copy_id      UUID REFERENCES copies (id),
    closed_at    TIMESTAMPTZ,
    CHECK (status <> 'ready' OR (copy_id IS NOT NULL AND expires_at IS NOT NULL)),
    CHECK (user_id IS NOT NULL OR status IN ('fulfilled', 'cancelled', 'expired'))
);
-- One open hold per patron and item (HOLD_EXISTS), one ready hold per copy.
CREATE UNIQUE INDEX holds_open_user_item ON holds (item_id, user_id) WHERE status IN ('waiting', 'ready');
CREATE UNIQUE INDEX holds_ready_copy ON holds (copy_id) WHERE status = 'ready';
CREATE INDEX holds_queue ON holds (item_id, status, created_at, id);
CREATE INDEX holds_user ON holds (user_id, status, created_at);
CREATE INDEX holds_listing ON holds (created_at, id);
CREATE INDEX holds_ready_expiry ON holds (expires_at) WHERE status = 'ready';

-- A copy on the hold shelf goes out only to its holder, whatever the code does.
CREATE FUNCTION loans_hold_shelf_only_to_holder() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM holds WHERE copy_id = NEW.copy_id AND status = 'ready' AND user_id IS DISTINCT FROM NEW.user_id) THEN
        RAISE EXCEPTION 'copy is on the hold shelf for another patron' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER loans_hold_shelf_only_to_holder BEFORE INSERT ON loans
    FOR EACH ROW EXECUTE FUNCTION loans_hold_shelf_only_to_holder();

-- paid + waived never exceeds the amount: the balance cannot go below zero,
-- however many payments race.
CREATE TABLE fines (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users (id),
    loan_id          UUID REFERENCES loans (id),
    reason           TEXT NOT NULL CHECK (reason IN ('overdue', 'lost', 'damage', 'manual')),
    amount_cents     BIGINT NOT NULL CHECK (amount_cents > 0),
    paid_cents       BIGINT NOT NULL DEFAULT 0 CHECK (paid_cents >= 0),
    waived_cents     BIGINT NOT NULL DEFAULT 0 CHECK (waived_cents >= 0),
    status           TEXT NOT NULL CHECK (status IN ('open', 'paid', 'waived')),
    note             TEXT,
    days_late        INTEGER,
    grace_days       INTEGER,
    daily_fine_cents BIGINT,
    max_fine_cents   BIGINT,
    capped           BOOLEAN,
    created_by       UUID,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    CHECK (paid_cents + waived_cents <= amount_cents),
    CHECK ((status = 'open') = (paid_cents + waived_cents < amount_cents))
);
-- One replacement fine per loan. (Overdue fines: one per due date, as renewing an
-- overdue loan charges the lateness so far and the return charges any after it.)
CREATE UNIQUE INDEX fines_loan_lost ON fines (loan_id) WHERE reason = 'lost';
CREATE INDEX fines_user ON fines (user_id, status, created_at);
CREATE INDEX fines_listing ON fines (created_at, id);

CREATE TABLE payments (
    id           UUID PRIMARY KEY,
    fine_id      UUID NOT NULL REFERENCES fines (id),
    user_id      UUID NOT NULL REFERENCES users (id),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    method       TEXT NOT NULL CHECK (method IN ('cash', 'card', 'online')),
    reference    TEXT,
    created_by   UUID NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX payments_fine ON payments (fine_id, created_at);
CREATE INDEX payments_user ON payments (user_id, created_at);

CREATE TABLE fine_waivers (
    id           UUID PRIMARY KEY,
    fine_id      UUID NOT NULL REFERENCES fines (id),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    reason       TEXT NOT NULL,
    created_by   UUID NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX fine_waivers_fine ON fine_waivers (fine_id, created_at);

-- Idempotency keys are scoped to the caller; the stored response is replayed.
CREATE TABLE idempotency_keys (
    caller_id       UUID NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BYTEA NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller_id, key)
);

-- Each notice is sent once: the job claims it by inserting this row.
CREATE TABLE notices_sent (
    kind       TEXT NOT NULL CHECK (kind IN ('hold_ready', 'due_soon', 'overdue')),
    subject_id UUID NOT NULL,
    sent_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, subject_id)
);

-- One instance at a time runs the background jobs.
CREATE TABLE job_leases (
    name       TEXT PRIMARY KEY NOT NULL,
    holder     UUID,
    expires_at TIMESTAMPTZ
);
INSERT INTO job_leases (name) VALUES ('circulation');

-- Circulation entries in an item's history name the loan or hold and the
-- patron in columns, so anonymisation can remove the patron.
ALTER TABLE item_events ADD COLUMN loan_id UUID;
ALTER TABLE item_events ADD COLUMN hold_id UUID;
ALTER TABLE item_events ADD COLUMN patron_id UUID;
CREATE INDEX item_events_loan ON item_events (loan_id) WHERE loan_id IS NOT NULL;
CREATE INDEX item_events_hold ON item_events (hold_id) WHERE hold_id IS NOT NULL;
