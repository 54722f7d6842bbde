-- Catalog: bibliographic items, their physical copies, and the item history.
-- Lists are stored as JSON text for output, plus lower-cased '|'-delimited keys
-- for filtering (`author` substring, `subject` equality) without JSON functions.
CREATE TABLE items (
    id                 BLOB PRIMARY KEY NOT NULL,
    title              TEXT NOT NULL,
    subtitle           TEXT,
    authors            TEXT NOT NULL DEFAULT '[]',
    isbn               TEXT,
    item_type          TEXT NOT NULL CHECK (item_type IN ('book', 'ebook', 'audiobook', 'dvd', 'magazine', 'other')),
    publisher          TEXT,
    publication_year   INTEGER,
    language           TEXT,
    subjects           TEXT NOT NULL DEFAULT '[]',
    description        TEXT,
    cover_name         TEXT,
    cover_thumb_name   TEXT,
    cover_content_type TEXT,
    title_key          TEXT NOT NULL,
    authors_key        TEXT NOT NULL,
    subjects_key       TEXT NOT NULL,
    year_key           INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    deleted_at         TEXT,
    deleted_by         BLOB
) STRICT;
CREATE UNIQUE INDEX items_isbn ON items (isbn);
CREATE INDEX items_title ON items (title_key, id) WHERE deleted_at IS NULL;
CREATE INDEX items_year ON items (year_key, id) WHERE deleted_at IS NULL;
CREATE INDEX items_created ON items (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX items_type_title ON items (item_type, title_key, id) WHERE deleted_at IS NULL;

-- Full-text index over the searchable fields, keyed by the item's rowid and
-- written in the same transaction as the item.
CREATE VIRTUAL TABLE items_fts USING fts5(
    title, subtitle, authors, subjects, description,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TABLE copies (
    id          BLOB PRIMARY KEY NOT NULL,
    item_id     BLOB NOT NULL REFERENCES items (id),
    barcode     TEXT NOT NULL,
    location    TEXT,
    call_number TEXT,
    status      TEXT NOT NULL CHECK (status IN ('available', 'on_loan', 'on_hold_shelf', 'lost', 'damaged', 'withdrawn')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
) STRICT;
CREATE UNIQUE INDEX copies_barcode ON copies (barcode);
CREATE INDEX copies_item ON copies (item_id, status);

CREATE TABLE item_events (
    id         BLOB PRIMARY KEY NOT NULL,
    item_id    BLOB NOT NULL REFERENCES items (id),
    event_type TEXT NOT NULL,
    actor_id   BLOB,
    at         TEXT NOT NULL,
    details    TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX item_events_item ON item_events (item_id, at, id);
