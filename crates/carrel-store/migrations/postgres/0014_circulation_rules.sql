-- Rules a library writes: its own item types, patron categories with their own
-- limits, and the circulation rule matrix that replaces the one-policy-per-type
-- table (whose rows become the matrix's type-only rows, plus a default row).

CREATE TABLE item_types (
    code TEXT PRIMARY KEY CHECK (length(code) BETWEEN 1 AND 32),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100)
);
INSERT INTO item_types (code, name) VALUES
    ('book', 'Book'),
    ('ebook', 'E-book'),
    ('audiobook', 'Audiobook'),
    ('dvd', 'DVD'),
    ('magazine', 'Magazine'),
    ('other', 'Other');

ALTER TABLE items DROP CONSTRAINT items_item_type_check;
ALTER TABLE items ADD CONSTRAINT items_item_type_fkey FOREIGN KEY (item_type) REFERENCES item_types (code);

CREATE TABLE patron_categories (
    code             TEXT PRIMARY KEY CHECK (length(code) BETWEEN 1 AND 32),
    name             TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- NULL: the global setting (CARREL_MAX_ACTIVE_LOANS, CARREL_MAX_ACTIVE_HOLDS).
    max_active_loans INTEGER CHECK (max_active_loans BETWEEN 0 AND 10000),
    max_active_holds INTEGER CHECK (max_active_holds BETWEEN 0 AND 10000)
);
INSERT INTO patron_categories (code, name) VALUES
    ('adult', 'Adult'),
    ('child', 'Child'),
    ('staff', 'Staff');

ALTER TABLE users ADD COLUMN category TEXT NOT NULL DEFAULT 'adult' REFERENCES patron_categories (code);
CREATE INDEX users_category ON users (category);

-- The rule matrix. NULL in a key column means "any". The most specific
-- matching row wins (carrel_core::rules::resolve); the all-NULL default row is
-- always present (the PUT of the matrix refuses a matrix without it).
CREATE TABLE circulation_rules (
    branch_id              UUID REFERENCES branches (id),
    patron_category        TEXT REFERENCES patron_categories (code),
    item_type              TEXT REFERENCES item_types (code),
    loan_days              INTEGER NOT NULL CHECK (loan_days BETWEEN 1 AND 365),
    max_renewals           INTEGER NOT NULL CHECK (max_renewals BETWEEN 0 AND 100),
    daily_fine_cents       BIGINT NOT NULL CHECK (daily_fine_cents >= 0),
    max_fine_cents         BIGINT NOT NULL CHECK (max_fine_cents >= 0),
    grace_days             INTEGER NOT NULL CHECK (grace_days BETWEEN 0 AND 365),
    replacement_cost_cents BIGINT NOT NULL CHECK (replacement_cost_cents >= 0),
    max_loans_of_type      INTEGER CHECK (max_loans_of_type BETWEEN 0 AND 10000),
    holds_allowed          BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at             TIMESTAMPTZ,
    updated_by             UUID
);
-- One row per key (NULLs compared as equal).
CREATE UNIQUE INDEX circulation_rules_key
    ON circulation_rules ((coalesce(branch_id::text, '')), (coalesce(patron_category, '')), (coalesce(item_type, '')));
CREATE INDEX circulation_rules_item_type ON circulation_rules (item_type);

INSERT INTO circulation_rules (item_type, loan_days, max_renewals, daily_fine_cents, max_fine_cents, grace_days,
                               replacement_cost_cents, updated_at, updated_by)
SELECT item_type, loan_days, max_renewals, daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents,
       updated_at, updated_by
  FROM circulation_policies;
-- The default row: the `other` policy's defaults.
INSERT INTO circulation_rules (loan_days, max_renewals, daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents)
VALUES (14, 1, 25, 1000, 1, 2000);
DROP TABLE circulation_policies;
