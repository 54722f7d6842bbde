-- One FTS5 index per field group of the relevance score (title; subtitle and
-- authors; subjects; description), next to `items_fts`, which stays for "every
-- word anywhere" and for one-word classes.
--
-- In `items_fts` a word's posting list holds every field, and a column filter
-- (`{title}: "united"`) walks the whole list and decodes each row's columns;
-- FTS5's seeking between the lists of an AND does not help a filtered phrase.
-- So a multi-word relevance page paid a pass over each common word's list per
-- field group and per candidate filter. Here the title list holds titles only:
-- "both words in the title" is one MATCH whose lists FTS5 intersects by seeking,
-- and the score of each candidate in a group is one pass over that group's list
-- (catalog/search.rs). PostgreSQL's group-labelled `search_keys` (0006) already
-- work this way.
--
-- The tables are contentless (the text is in `items`) and keyed by
-- `items.rowid`, as `items_fts` is; `contentless_delete` lets an update replace
-- a row. Triggers keep them in step with every write of the searched columns
-- (imports, the JSON API, bulk loads), in the writing transaction. The texts
-- are those of `items_fts`'s columns, so a word is in a group's table exactly
-- when `items_fts` finds it in that group's columns.
CREATE VIRTUAL TABLE items_fts_title USING fts5(
    title, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE items_fts_names USING fts5(
    subtitle, authors, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE items_fts_subjects USING fts5(
    subjects, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE items_fts_description USING fts5(
    description, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER items_search_groups_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts_title (rowid, title) VALUES (new.rowid, new.title);
    INSERT INTO items_fts_names (rowid, subtitle, authors)
    VALUES (new.rowid, new.subtitle, replace(new.authors_key, '|', ' '));
    INSERT INTO items_fts_subjects (rowid, subjects) VALUES (new.rowid, replace(new.subjects_key, '|', ' '));
    INSERT INTO items_fts_description (rowid, description) VALUES (new.rowid, new.description);
END;

CREATE TRIGGER items_search_groups_update
AFTER UPDATE OF title, subtitle, authors_key, subjects_key, description ON items BEGIN
    DELETE FROM items_fts_title WHERE rowid = old.rowid;
    DELETE FROM items_fts_names WHERE rowid = old.rowid;
    DELETE FROM items_fts_subjects WHERE rowid = old.rowid;
    DELETE FROM items_fts_description WHERE rowid = old.rowid;
    INSERT INTO items_fts_title (rowid, title) VALUES (new.rowid, new.title);
    INSERT INTO items_fts_names (rowid, subtitle, authors)
    VALUES (new.rowid, new.subtitle, replace(new.authors_key, '|', ' '));
    INSERT INTO items_fts_subjects (rowid, subjects) VALUES (new.rowid, replace(new.subjects_key, '|', ' '));
    INSERT INTO items_fts_description (rowid, description) VALUES (new.rowid, new.description);
END;

CREATE TRIGGER items_search_groups_delete AFTER DELETE ON items BEGIN
    DELETE FROM items_fts_title WHERE rowid = old.rowid;
    DELETE FROM items_fts_names WHERE rowid = old.rowid;
    DELETE FROM items_fts_subjects WHERE rowid = old.rowid;
    DELETE FROM items_fts_description WHERE rowid = old.rowid;
END;

INSERT INTO items_fts_title (rowid, title) SELECT rowid, title FROM items;
INSERT INTO items_fts_names (rowid, subtitle, authors)
SELECT rowid, subtitle, replace(authors_key, '|', ' ') FROM items;
INSERT INTO items_fts_subjects (rowid, subjects) SELECT rowid, replace(subjects_key, '|', ' ') FROM items;
INSERT INTO items_fts_description (rowid, description) SELECT rowid, description FROM items;
