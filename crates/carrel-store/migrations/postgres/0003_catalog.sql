-- Catalog: bibliographic items, their physical copies, and the item history.
CREATE TABLE items (
    id                 UUID PRIMARY KEY,
    title              TEXT NOT NULL,
    subtitle           TEXT,
    authors            JSONB NOT NULL DEFAULT '[]',
    isbn               TEXT,
    item_type          TEXT NOT NULL CHECK (item_type IN ('book', 'ebook', 'audiobook', 'dvd', 'magazine', 'other')),
    publisher          TEXT,
    publication_year   INTEGER,
    language           TEXT,
    subjects           JSONB NOT NULL DEFAULT '[]',
    description        TEXT,
    cover_name         TEXT,
    cover_thumb_name   TEXT,
    cover_content_type TEXT,
    title_key          TEXT COLLATE "C" NOT NULL,
    authors_key        TEXT NOT NULL,
    subjects_key       TEXT NOT NULL,
    year_key           INTEGER NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    deleted_at         TIMESTAMPTZ,
    deleted_by         UUID,
    -- Weighted full-text vector, maintained by PostgreSQL itself.
    search_vector      TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') ||
        setweight(to_tsvector('english', coalesce(subtitle, '')), 'B') ||
        setweight(to_tsvector('english', replace(authors_key, '|', ' ')), 'B') ||
        setweight(to_tsvector('english', replace(subjects_key, '|', ' ')), 'C') ||
        setweight(to_tsvector('english', coalesce(description, '')), 'D')
    ) STORED
);
CREATE UNIQUE INDEX items_isbn ON items (isbn);
CREATE INDEX items_title ON items (title_key, id) WHERE deleted_at IS NULL;
CREATE INDEX items_year ON items (year_key, id) WHERE deleted_at IS NULL;
CREATE INDEX items_created ON items (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX items_type_title ON items (item_type, title_key, id) WHERE deleted_at IS NULL;
CREATE INDEX items_search ON items USING GIN (search_vector);

CREATE TABLE copies (
    id          UUID PRIMARY KEY,
    item_id     UUID NOT NULL REFERENCES items (id),
    barcode     TEXT NOT NULL,
    location    TEXT,
    call_number TEXT,
    status      TEXT NOT NULL CHECK (status IN ('available', 'on_loan', 'on_hold_shelf', 'lost', 'damaged', 'withdrawn')),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX copies_barcode ON copies (barcode);
CREATE INDEX copies_item ON copies (item_id, status);

CREATE TABLE item_events (
    id         UUID PRIMARY KEY,
    item_id    UUID NOT NULL REFERENCES items (id),
    event_type TEXT NOT NULL,
    actor_id   UUID,
    at         TIMESTAMPTZ NOT NULL,
    details    JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX item_events_item ON item_events (item_id, at, id);
