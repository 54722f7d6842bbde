-- SQLite 0018 adds FTS5 prefix indexes for completing the last word typed.
-- PostgreSQL completes a prefix from `search_lexemes` (0015), so nothing
-- changes here; the version keeps both backends on the same migration numbers.
SELECT 1;
