-- PostgreSQL 0006 replaces its weighted tsvector with field-group search keys
-- (one GIN index that answers both "does the item hold the word" and "in which
-- field groups"). SQLite's FTS5 index already answers both (column filters),
-- so nothing changes here; the version keeps both backends on the same
-- migration numbers.
SELECT 1;
