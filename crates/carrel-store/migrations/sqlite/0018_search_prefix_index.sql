-- Prefix indexes for search-as-you-type (`GET /items?prefix=true`).
--
-- A completed last word is an FTS5 prefix query (`"mu" *`). Without a prefix
-- index FTS5 answers it by merging the posting lists of every indexed word
-- that begins with the prefix, at every use: for a two- or three-letter
-- prefix that is a large share of the whole index (`hiza mu*` at 1,000,000
-- items: 236 ms p99). With `prefix = '2 3'` FTS5 also keeps one posting list
-- per two- and three-letter prefix, written with the words themselves, so
-- such a query reads one list. Longer prefixes match few words and merge
-- little; one-letter words are never completed (catalog/search.rs).
--
-- The option can only be given when a table is created, so each table is
-- made again. `items_fts` keeps its text: it is copied under a new name and
-- renamed. The group tables are contentless: they are dropped and filled again
-- from `items` with the texts of their triggers (migration 0016), which write
-- to them by name and so go on working unchanged.
CREATE VIRTUAL TABLE items_fts_prefixed USING fts5(
    title, subtitle, authors, subjects, description,
    tokenize = 'porter unicode61 remove_diacritics 2', prefix = '2 3'
);
INSERT INTO items_fts_prefixed (rowid, title, subtitle, authors, subjects, description)
SELECT rowid, title, subtitle, authors, subjects, description FROM items_fts;
DROP TABLE items_fts;
ALTER TABLE items_fts_prefixed RENAME TO items_fts;

DROP TABLE items_fts_title;
DROP TABLE items_fts_names;
DROP TABLE items_fts_subjects;
DROP TABLE items_fts_description;
CREATE VIRTUAL TABLE items_fts_title USING fts5(
    title, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE VIRTUAL TABLE items_fts_names USING fts5(
    subtitle, authors, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE VIRTUAL TABLE items_fts_subjects USING fts5(
    subjects, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2', prefix = '2 3'
);
CREATE VIRTUAL TABLE items_fts_description USING fts5(
    description, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2', prefix = '2 3'
);
INSERT INTO items_fts_title (rowid, title) SELECT rowid, title FROM items;
INSERT INTO items_fts_names (rowid, subtitle, authors)
SELECT rowid, subtitle, replace(authors_key, '|', ' ') FROM items;
INSERT INTO items_fts_subjects (rowid, subjects) SELECT rowid, replace(subjects_key, '|', ' ') FROM items;
INSERT INTO items_fts_description (rowid, description) SELECT rowid, description FROM items;
