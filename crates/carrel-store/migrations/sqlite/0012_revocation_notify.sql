-- PostgreSQL 0012 adds triggers that NOTIFY every instance's session view when a
-- user or a session changes. SQLite serves one process, whose view reads the
-- WAL-index header instead (see session_cache.rs), so nothing changes here; the
-- version keeps both backends on the same migration numbers.
SELECT 1;
