-- Library structure: branches, their opening calendars, and where copies,
-- loans, holds and patrons belong. One branch, MAIN, is created here with a
-- fixed id (carrel_store::MAIN_BRANCH_ID) and everything that existed moves onto it.
--
-- `copies` is rebuilt (SQLite cannot change a CHECK): the status list gains
-- `in_transit`, and a copy gets its home branch and, while travelling, the
-- branch it travels to. Foreign keys are deferred for this transaction so the
-- rows of `loans` and `holds` that point at copies stay valid across the rebuild;
-- they are checked again at COMMIT.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE branches (
    id              BLOB PRIMARY KEY NOT NULL,
    -- Case-sensitive and unique: MAIN and main are two codes.
    code            TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 16 AND code NOT GLOB '*[^A-Za-z0-9_-]*'),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- An IANA name checked by the application; NULL means the library's zone.
    timezone        TEXT CHECK (timezone IS NULL OR length(timezone) BETWEEN 1 AND 64),
    address         TEXT CHECK (address IS NULL OR length(address) <= 1000),
    -- NULL until a calendar is set: a branch without one is open every day.
    calendar_set_at TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX branches_code ON branches (code);
INSERT INTO branches (id, code, name, created_at, updated_at)
VALUES (X'00000000000070008000000000000001', 'MAIN', 'Main library',
        strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

-- Weekly opening hours (weekday 0 = Monday), local time of the branch.
CREATE TABLE branch_opening_hours (
    branch_id BLOB NOT NULL REFERENCES branches (id),
    weekday   INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    opens     TEXT NOT NULL CHECK (length(opens) = 5),
    closes    TEXT NOT NULL CHECK (length(closes) = 5),
    CHECK (opens < closes),
    PRIMARY KEY (branch_id, weekday, opens)
) STRICT;

CREATE TABLE branch_closed_dates (
    branch_id BLOB NOT NULL REFERENCES branches (id),
    closed_on TEXT NOT NULL CHECK (length(closed_on) = 10),
    PRIMARY KEY (branch_id, closed_on)
) STRICT;

CREATE TEMP TABLE copies_before_0013 AS SELECT * FROM copies;
DROP TABLE copies;
CREATE TABLE copies (
    id                   BLOB PRIMARY KEY NOT NULL,
    item_id              BLOB NOT NULL REFERENCES items (id),
    barcode              TEXT NOT NULL,
    location             TEXT,
    call_number          TEXT,
    status               TEXT NOT NULL CHECK (status IN ('available', 'on_loan', 'on_hold_shelf', 'in_transit', 'lost', 'damaged', 'withdrawn')),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    deleted_at           TEXT,
    branch_id            BLOB NOT NULL DEFAULT (X'00000000000070008000000000000001') REFERENCES branches (id),
    transit_to_branch_id BLOB REFERENCES branches (id),
    -- A copy in transit always says where to; no other copy does.
    CHECK ((status = 'in_transit') = (transit_to_branch_id IS NOT NULL))
) STRICT;
INSERT INTO copies (id, item_id, barcode, location, call_number, status, created_at, updated_at, deleted_at)
SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at, deleted_at FROM copies_before_0013;
DROP TABLE copies_before_0013;
CREATE UNIQUE INDEX copies_barcode ON copies (barcode);
CREATE INDEX copies_item ON copies (item_id, status);
CREATE INDEX copies_branch ON copies (branch_id, item_id);
CREATE INDEX copies_transit ON copies (transit_to_branch_id) WHERE transit_to_branch_id IS NOT NULL;

-- SQLite cannot add a column that both references another table and has a
-- non-NULL default; these branch columns are NOT NULL with MAIN as default and
-- triggers keep them pointing at a real branch (PostgreSQL has foreign keys).
ALTER TABLE users ADD COLUMN home_branch_id BLOB REFERENCES branches (id);
ALTER TABLE holds ADD COLUMN pickup_branch_id BLOB NOT NULL DEFAULT (X'00000000000070008000000000000001');
ALTER TABLE loans ADD COLUMN branch_id BLOB NOT NULL DEFAULT (X'00000000000070008000000000000001');
-- The local due day (YYYY-MM-DD); every loan so far was due 23:59:59 UTC, and a
-- row written without one (an import) is read as the UTC date of `due_at`.
ALTER TABLE loans ADD COLUMN due_date TEXT CHECK (due_date IS NULL OR length(due_date) = 10);
UPDATE loans SET due_date = substr(due_at, 1, 10);

CREATE TRIGGER holds_pickup_branch_exists BEFORE INSERT ON holds
WHEN NOT EXISTS (SELECT 1 FROM branches WHERE id = NEW.pickup_branch_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;
CREATE TRIGGER holds_pickup_branch_exists_update BEFORE UPDATE OF pickup_branch_id ON holds
WHEN NOT EXISTS (SELECT 1 FROM branches WHERE id = NEW.pickup_branch_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;
CREATE TRIGGER loans_branch_exists BEFORE INSERT ON loans
WHEN NOT EXISTS (SELECT 1 FROM branches WHERE id = NEW.branch_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;
CREATE INDEX holds_pickup ON holds (pickup_branch_id, status);

-- The overdue fine's calculation names the closed days it did not count.
ALTER TABLE fines ADD COLUMN closed_days_skipped INTEGER CHECK (closed_days_skipped IS NULL OR closed_days_skipped >= 0);
