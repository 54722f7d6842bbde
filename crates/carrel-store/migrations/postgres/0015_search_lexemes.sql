-- Completion of the last word typed (search-as-you-type, `GET /items?prefix=true`).
--
-- `search_keys` answers "which items hold this lexeme" through its GIN index,
-- but a GIN index over an array cannot find the lexemes that begin with a
-- prefix. This table keeps every lexeme of the catalog once (the same lexemes
-- as `search_keys`, without the field-group label), so a prefix becomes a
-- btree range read (`LIKE 'histor%'` under COLLATE "C") and then a few exact
-- keys. SQLite needs no table: FTS5 answers prefix queries itself.
--
-- It is written by statement-level triggers, in the transaction that writes the
-- items (imports and `COPY` included), so a completion is never missing for a
-- committed item. Lexemes are only added, never removed: a lexeme no item holds
-- any more completes to keys that match nothing. There is deliberately no
-- unique constraint: `ON CONFLICT` would make concurrent writers of the same
-- new lexeme wait for each other (and deadlock when two batches meet new words
-- in opposite orders); a rare duplicate from such a race costs a row, and the
-- completion query reads DISTINCT lexemes.
CREATE TABLE search_lexemes (
    lexeme TEXT COLLATE "C" NOT NULL
);
CREATE INDEX search_lexemes_lexeme ON search_lexemes (lexeme);

CREATE FUNCTION carrel_collect_lexemes() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO search_lexemes (lexeme)
    SELECT DISTINCT substr(k, 3) FROM changed_items, unnest(changed_items.search_keys) AS k
    WHERE NOT EXISTS (SELECT 1 FROM search_lexemes l WHERE l.lexeme = substr(k, 3));
    RETURN NULL;
END
$$;

CREATE TRIGGER items_collect_lexemes_insert AFTER INSERT ON items
    REFERENCING NEW TABLE AS changed_items
    FOR EACH STATEMENT EXECUTE FUNCTION carrel_collect_lexemes();
CREATE TRIGGER items_collect_lexemes_update AFTER UPDATE ON items
    REFERENCING NEW TABLE AS changed_items
    FOR EACH STATEMENT EXECUTE FUNCTION carrel_collect_lexemes();

INSERT INTO search_lexemes (lexeme)
SELECT DISTINCT substr(k, 3) FROM items, unnest(items.search_keys) AS k;
