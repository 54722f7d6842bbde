-- SQLite 0016 adds one FTS5 index per field group. PostgreSQL's `search_keys`
-- (0006) already label every lexeme with its field group, so nothing changes
-- here; the version keeps both backends on the same migration numbers.
SELECT 1;
