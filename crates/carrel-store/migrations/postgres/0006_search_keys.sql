-- Field-group search keys replace the weighted tsvector.
--
-- `search_keys` holds every lexeme of the item's text once for each field group
-- it occurs in, as 'a:<lexeme>' (title), 'b:' (subtitle, authors), 'c:'
-- (subjects) or 'd:' (description). The lexemes are made by PostgreSQL's own
-- parser and 'english' configuration from the same weighted tsvector as before;
-- built-in functions take it apart by weight label (no per-lexeme loop).
--
-- One GIN index over the keys answers both "does the item contain the word" and
-- "in which field groups" from index data alone. The GIN index on the tsvector
-- kept lexemes without weights, so every relevance page had to fetch and score
-- each matching row in the heap; now a one-word page reads one score class (the
-- exact set of groups the word occurs in) at a time, in id order, and stops when
-- the page is full (catalog/search.rs). Keys are also much cheaper to test in a
-- row than a weight-labelled tsquery.
--
-- The keys compare bytewise (COLLATE "C"): they are only ever tested for
-- equality, and building the GIN index under a linguistic collation costs a
-- locale-aware comparison per key comparison.
--
-- \x1f cannot occur inside a lexeme (the parser treats control characters as
-- separators). An empty group leaves a bare 'a:' ... 'd:' behind, removed.
CREATE FUNCTION carrel_search_keys(v tsvector) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
        SELECT array_remove(array_remove(array_remove(array_remove(string_to_array(
            'a:' || array_to_string(tsvector_to_array(ts_filter(v, '{a}')), E'\x1fa:') ||
            E'\x1fb:' || array_to_string(tsvector_to_array(ts_filter(v, '{b}')), E'\x1fb:') ||
            E'\x1fc:' || array_to_string(tsvector_to_array(ts_filter(v, '{c}')), E'\x1fc:') ||
            E'\x1fd:' || array_to_string(tsvector_to_array(ts_filter(v, '{d}')), E'\x1fd:'),
            E'\x1f'), 'a:'), 'b:'), 'c:'), 'd:')
    $$;

DROP INDEX items_search;
ALTER TABLE items DROP COLUMN search_vector;
ALTER TABLE items ADD COLUMN search_keys TEXT[] COLLATE "C" GENERATED ALWAYS AS (carrel_search_keys(
    setweight(to_tsvector('english', title), 'A') ||
    setweight(to_tsvector('english', coalesce(subtitle, '')), 'B') ||
    setweight(to_tsvector('english', replace(authors_key, '|', ' ')), 'B') ||
    setweight(to_tsvector('english', replace(subjects_key, '|', ' ')), 'C') ||
    setweight(to_tsvector('english', coalesce(description, '')), 'D')
)) STORED;
CREATE INDEX items_search_keys ON items USING GIN (search_keys);

-- The planner's choice between walking a class in id order and reading it through
-- this index rests on its estimate of how many items hold a key. A key missing from
-- the column's most-common-elements list is estimated at half the least frequency
-- on the list; with the default list (1,000 keys) that is ~0.2 % of the catalog, so
-- a word in 5 items of a million looked common enough to walk the whole table for
-- (1.3 s measured). 10,000 keys bring that estimate down to ~0.01 %.
ALTER TABLE items ALTER COLUMN search_keys SET STATISTICS 1000;
