-- MARC 21: the original record of each imported item, and catalog import jobs.
--
-- The record is kept as ISO 2709 bytes, UTF-8 (leader/09 'a'): about a third of
-- the size of MARCXML, parsed several times faster, and written with exact lengths
-- by carrel-marc. A record that does not fit ISO 2709's lengths (possible only
-- for a MARCXML source: over 99,999 bytes, or a field over 9,999) is kept as
-- MARCXML instead; `format` says which.
CREATE TABLE item_marc (
    item_id                   UUID PRIMARY KEY REFERENCES items (id),
    format                    TEXT NOT NULL CHECK (format IN ('marc', 'marcxml')),
    record                    BYTEA NOT NULL,
    -- 001 and 003, for --match control-number ('' when the record has no 003).
    control_number            TEXT,
    control_number_identifier TEXT NOT NULL DEFAULT '',
    -- SHA-256 of the record's bytes (hex, first 32 digits): how a record with
    -- neither ISBN nor 001 finds its item again on a re-run.
    fingerprint               TEXT NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL
);
CREATE INDEX item_marc_control_number ON item_marc (control_number, control_number_identifier)
    WHERE control_number IS NOT NULL;
CREATE INDEX item_marc_fingerprint ON item_marc (fingerprint);

-- An import job (`POST /api/v1/imports`; the CLI runs without one). `processed`
-- is the index of the last record whose result is committed, written in the
-- same transaction as that batch, so a restarted job resumes after it.
CREATE TABLE imports (
    id               UUID PRIMARY KEY,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    format           TEXT NOT NULL CHECK (format IN ('auto', 'marc', 'marcxml')),
    match_mode       TEXT NOT NULL CHECK (match_mode IN ('isbn', 'control-number', 'none')),
    file_name        TEXT,
    file_path        TEXT NOT NULL,
    file_bytes       BIGINT NOT NULL DEFAULT 0,
    total            BIGINT,
    processed        BIGINT NOT NULL DEFAULT 0,
    created          BIGINT NOT NULL DEFAULT 0,
    updated          BIGINT NOT NULL DEFAULT 0,
    skipped          BIGINT NOT NULL DEFAULT 0,
    failed           BIGINT NOT NULL DEFAULT 0,
    error            TEXT,
    created_by       UUID,
    lease_holder     UUID,
    lease_expires_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX imports_open ON imports (status) WHERE status IN ('queued', 'running');

-- Records reported by an import: failures, cuts and skips (several per record
-- possible, `seq` orders them).
CREATE TABLE import_errors (
    import_id      UUID NOT NULL REFERENCES imports (id),
    record_index   BIGINT NOT NULL,
    seq            BIGINT NOT NULL,
    control_number TEXT,
    reason         TEXT NOT NULL,
    PRIMARY KEY (import_id, record_index, seq)
);
