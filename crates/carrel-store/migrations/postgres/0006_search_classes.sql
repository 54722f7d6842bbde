-- Single-term relevance pages read score classes best first on SQLite only
-- (catalog/search.rs). Per-field-group GIN indexes for the same walk on
-- PostgreSQL were tried and left out: they made the 1,000,000-item load about
-- 30 s slower and the walk measured slower than scoring every match (see
-- bench/README). Nothing changes here; the version keeps both backends aligned.
SELECT 1;
