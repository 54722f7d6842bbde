-- PostgreSQL 0015 adds a table of lexemes for completing the last word typed.
-- SQLite's FTS5 index answers prefix queries itself, so nothing changes here;
-- the version keeps both backends on the same migration numbers.
SELECT 1;
