-- Circulation: policies, loans, holds, fines, payments, idempotency keys,
-- notices and the background-job lease. Money is INTEGER cents; ids are BLOBs;
-- timestamps whole-second RFC 3339 UTC text. Every invariant that two desks
-- could race on is a constraint here, not only a check in code.

CREATE TABLE circulation_policies (
    item_type              TEXT PRIMARY KEY NOT NULL CHECK (item_type IN ('book', 'ebook', 'audiobook', 'dvd', 'magazine', 'other')),
    loan_days              INTEGER NOT NULL CHECK (loan_days BETWEEN 1 AND 365),
    max_renewals           INTEGER NOT NULL CHECK (max_renewals BETWEEN 0 AND 100),
    daily_fine_cents       INTEGER NOT NULL CHECK (daily_fine_cents >= 0),
    max_fine_cents         INTEGER NOT NULL CHECK (max_fine_cents >= 0),
    grace_days             INTEGER NOT NULL CHECK (grace_days BETWEEN 0 AND 365),
    replacement_cost_cents INTEGER NOT NULL CHECK (replacement_cost_cents >= 0),
    updated_at             TEXT,
    updated_by             BLOB
) STRICT;
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
    id                     BLOB PRIMARY KEY NOT NULL,
    copy_id                BLOB NOT NULL REFERENCES copies (id),
    item_id                BLOB NOT NULL REFERENCES items (id),
    user_id                BLOB REFERENCES users (id),
    status                 TEXT NOT NULL CHECK (status IN ('active', 'overdue', 'returned', 'lost')),
    checked_out_at         TEXT NOT NULL,
    due_at                 TEXT NOT NULL,
    returned_at            TEXT,
    renewals               INTEGER NOT NULL DEFAULT 0 CHECK (renewals >= 0),
    loan_days              INTEGER NOT NULL,
    max_renewals           INTEGER NOT NULL,
    daily_fine_cents       INTEGER NOT NULL,
    max_fine_cents         INTEGER NOT NULL,
    grace_days             INTEGER NOT NULL,
    replacement_cost_cents INTEGER NOT NULL,
    anonymised_at          TEXT,
    CHECK ((status IN ('active', 'overdue')) = (returned_at IS NULL) OR status = 'lost'),
    CHECK (user_id IS NOT NULL OR status IN ('returned', 'lost'))
) STRICT;
-- At most one open loan per copy: two desks scanning one barcode cannot both win.
CREATE UNIQUE INDEX loans_open_copy ON loans (copy_id) WHERE status IN ('active', 'overdue');
CREATE INDEX loans_user ON loans (user_id, status, checked_out_at);
CREATE INDEX loans_open_due ON loans (due_at) WHERE status IN ('active', 'overdue');
CREATE INDEX loans_listing ON loans (checked_out_at, id);
CREATE INDEX loans_returned ON loans (returned_at) WHERE user_id IS NOT NULL AND returned_at IS NOT NULL;

CREATE TABLE holds (
    id           BLOB PRIMARY KEY NOT NULL,
    item_id      BLOB NOT NULL REFERENCES items (id),
    user_id      BLOB REFERENCES users (id),
    status       TEXT NOT NULL CHECK (status IN ('waiting', 'ready', 'fulfilled', 'cancelled', 'expired')),
    created_at   TEXT NOT NULL,
    ready_at     TEXT,
    expires_at   TEXT,
    copy_id      BLOB REFERENCES copies (id),
    closed_at    TEXT,
    CHECK (status <> 'ready' OR (copy_id IS NOT NULL AND expires_at IS NOT NULL)),
    CHECK (user_id IS NOT NULL OR status IN ('fulfilled', 'cancelled', 'expired'))
) STRICT;
-- One open hold per patron and item (HOLD_EXISTS), one ready hold per copy.
CREATE UNIQUE INDEX holds_open_user_item ON holds (item_id, user_id) WHERE status IN ('waiting', 'ready');
CREATE UNIQUE INDEX holds_ready_copy ON holds (copy_id) WHERE status = 'ready';
CREATE INDEX holds_queue ON holds (item_id, status, created_at, id);
CREATE INDEX holds_user ON holds (user_id, status, created_at);
CREATE INDEX holds_listing ON holds (created_at, id);
CREATE INDEX holds_ready_expiry ON holds (expires_at) WHERE status = 'ready';

-- A copy on the hold shelf goes out only to its holder, whatever the code does.
CREATE TRIGGER loans_hold_shelf_only_to_holder BEFORE INSERT ON loans
WHEN EXISTS (SELECT 1 FROM holds WHERE copy_id = NEW.copy_id AND status = 'ready' AND user_id IS NOT NEW.user_id)
BEGIN
    SELECT RAISE(ABORT, 'copy is on the hold shelf for another patron');
END;

-- paid + waived never exceeds the amount: the balance cannot go below zero,
-- however many payments race.
CREATE TABLE fines (
    id               BLOB PRIMARY KEY NOT NULL,
    user_id          BLOB NOT NULL REFERENCES users (id),
    loan_id          BLOB REFERENCES loans (id),
    reason           TEXT NOT NULL CHECK (reason IN ('overdue', 'lost', 'damage', 'manual')),
    amount_cents     INTEGER NOT NULL CHECK (amount_cents > 0),
    paid_cents       INTEGER NOT NULL DEFAULT 0 CHECK (paid_cents >= 0),
    waived_cents     INTEGER NOT NULL DEFAULT 0 CHECK (waived_cents >= 0),
    status           TEXT NOT NULL CHECK (status IN ('open', 'paid', 'waived')),
    note             TEXT,
    days_late        INTEGER,
    grace_days       INTEGER,
    daily_fine_cents INTEGER,
    max_fine_cents   INTEGER,
    capped           INTEGER CHECK (capped IN (0, 1)),
    created_by       BLOB,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    CHECK (paid_cents + waived_cents <= amount_cents),
    CHECK ((status = 'open') = (paid_cents + waived_cents < amount_cents))
) STRICT;
-- One replacement fine per loan. (Overdue fines: one per due date, as renewing an
-- overdue loan charges the lateness so far and the return charges any after it.)
CREATE UNIQUE INDEX fines_loan_lost ON fines (loan_id) WHERE reason = 'lost';
CREATE INDEX fines_user ON fines (user_id, status, created_at);
CREATE INDEX fines_listing ON fines (created_at, id);

CREATE TABLE payments (
    id           BLOB PRIMARY KEY NOT NULL,
    fine_id      BLOB NOT NULL REFERENCES fines (id),
    user_id      BLOB NOT NULL REFERENCES users (id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    method       TEXT NOT NULL CHECK (method IN ('cash', 'card', 'online')),
    reference    TEXT,
    created_by   BLOB NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX payments_fine ON payments (fine_id, created_at);
CREATE INDEX payments_user ON payments (user_id, created_at);

CREATE TABLE fine_waivers (
    id           BLOB PRIMARY KEY NOT NULL,
    fine_id      BLOB NOT NULL REFERENCES fines (id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    reason       TEXT NOT NULL,
    created_by   BLOB NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX fine_waivers_fine ON fine_waivers (fine_id, created_at);

-- Idempotency keys are scoped to the caller; the stored response is replayed.
CREATE TABLE idempotency_keys (
    caller_id       BLOB NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BLOB NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (caller_id, key)
) STRICT;

-- Each notice is sent once: the job claims it by inserting this row.
CREATE TABLE notices_sent (
    kind       TEXT NOT NULL CHECK (kind IN ('hold_ready', 'due_soon', 'overdue')),
    subject_id BLOB NOT NULL,
    sent_at    TEXT NOT NULL,
    PRIMARY KEY (kind, subject_id)
) STRICT;

-- One instance at a time runs the background jobs.
CREATE TABLE job_leases (
    name       TEXT PRIMARY KEY NOT NULL,
    holder     BLOB,
    expires_at TEXT
) STRICT;
INSERT INTO job_leases (name) VALUES ('circulation');

-- Circulation entries in an item's history name the loan or hold and the
-- patron in columns, so anonymisation can remove the patron.
ALTER TABLE item_events ADD COLUMN loan_id BLOB;
ALTER TABLE item_events ADD COLUMN hold_id BLOB;
ALTER TABLE item_events ADD COLUMN patron_id BLOB;
CREATE INDEX item_events_loan ON item_events (loan_id) WHERE loan_id IS NOT NULL;
CREATE INDEX item_events_hold ON item_events (hold_id) WHERE hold_id IS NOT NULL;
