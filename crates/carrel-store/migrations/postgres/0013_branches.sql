-- Library structure: branches, their opening calendars, and where copies,
-- loans, holds and patrons belong. One branch, MAIN, is created here with a
-- fixed id (carrel_store::MAIN_BRANCH_ID) and everything that existed moves onto it.
CREATE TABLE branches (
    id              UUID PRIMARY KEY,
    -- Case-sensitive and unique: MAIN and main are two codes.
    code            TEXT NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,16}$'),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- An IANA name checked by the application; NULL means the library's zone.
    timezone        TEXT CHECK (timezone IS NULL OR length(timezone) BETWEEN 1 AND 64),
    address         TEXT CHECK (address IS NULL OR length(address) <= 1000),
    -- NULL until a calendar is set: a branch without one is open every day.
    calendar_set_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX branches_code ON branches (code);
INSERT INTO branches (id, code, name, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'MAIN', 'Main library',
        date_trunc('second', now()), date_trunc('second', now()));

-- Weekly opening hours (weekday 0 = Monday), local time of the branch.
CREATE TABLE branch_opening_hours (
    branch_id UUID NOT NULL REFERENCES branches (id),
    weekday   INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    opens     TEXT NOT NULL CHECK (length(opens) = 5),
    closes    TEXT NOT NULL CHECK (length(closes) = 5),
    CHECK (opens < closes),
    PRIMARY KEY (branch_id, weekday, opens)
);

CREATE TABLE branch_closed_dates (
    branch_id UUID NOT NULL REFERENCES branches (id),
    closed_on DATE NOT NULL,
    PRIMARY KEY (branch_id, closed_on)
);

ALTER TABLE copies DROP CONSTRAINT copies_status_check;
ALTER TABLE copies ADD CONSTRAINT copies_status_check
    CHECK (status IN ('available', 'on_loan', 'on_hold_shelf', 'in_transit', 'lost', 'damaged', 'withdrawn'));
ALTER TABLE copies ADD COLUMN branch_id UUID NOT NULL DEFAULT '00000000-0000-7000-8000-000000000001' REFERENCES branches (id);
ALTER TABLE copies ADD COLUMN transit_to_branch_id UUID REFERENCES branches (id);
-- A copy in transit always says where to; no other copy does.
ALTER TABLE copies ADD CONSTRAINT copies_transit_destination
    CHECK ((status = 'in_transit') = (transit_to_branch_id IS NOT NULL));
CREATE INDEX copies_branch ON copies (branch_id, item_id);
CREATE INDEX copies_transit ON copies (transit_to_branch_id) WHERE transit_to_branch_id IS NOT NULL;

ALTER TABLE users ADD COLUMN home_branch_id UUID REFERENCES branches (id);
ALTER TABLE holds ADD COLUMN pickup_branch_id UUID NOT NULL DEFAULT '00000000-0000-7000-8000-000000000001' REFERENCES branches (id);
ALTER TABLE loans ADD COLUMN branch_id UUID NOT NULL DEFAULT '00000000-0000-7000-8000-000000000001' REFERENCES branches (id);
-- The local due day; every loan so far was due 23:59:59 UTC, and a row written
-- without one (an import) is read as the UTC date of `due_at`.
ALTER TABLE loans ADD COLUMN due_date DATE;
UPDATE loans SET due_date = (due_at AT TIME ZONE 'UTC')::date;
CREATE INDEX holds_pickup ON holds (pickup_branch_id, status);

-- The overdue fine's calculation names the closed days it did not count.
ALTER TABLE fines ADD COLUMN closed_days_skipped INTEGER CHECK (closed_days_skipped IS NULL OR closed_days_skipped >= 0);
