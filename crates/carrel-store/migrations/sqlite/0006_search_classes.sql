-- Single-term relevance pages (catalog/search.rs) read a term's matches one
-- score class at a time. On SQLite the FTS5 index already answers "the term
-- occurs in this field group" (column filters, `NOT`), so nothing changes here;
-- the version exists to keep both backends on the same migration numbers
-- (PostgreSQL 0006 adds one GIN index per field group).
--
-- Note: `items_fts` is keyed by the implicit `items.rowid` (items has no
-- INTEGER PRIMARY KEY), and `VACUUM` may renumber such rowids. Carrel never
-- runs VACUUM; an operator who does must rebuild the FTS rows afterwards.
SELECT 1;
