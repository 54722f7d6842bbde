-- PostgreSQL 0017 adds triggers that NOTIFY every instance's view of rendered
-- catalog pages when items or copies change. SQLite serves one process, whose
-- view reads the WAL-index header instead (see session_cache.rs), so nothing
-- changes here; the version keeps both backends on the same migration numbers.
SELECT 1;
