-- Single-term relevance pages (catalog/search.rs) read a term's matches one
-- score class at a time: the exact set of field groups it occurs in. The GIN
-- index on the weighted `search_vector` cannot tell the groups apart (it keeps
-- lexemes, not weights, so a weight-labelled query rechecks every match in the
-- heap). One GIN index per field group, over `ts_filter` of the same vector to
-- one weight label, answers "the term occurs in this group" from index data:
-- the same lexemes, made by the same configuration, split by weight.
--
-- Not partial: the planner takes statistics of index expressions only from
-- indexes without a predicate, and it needs them to choose between walking a
-- class in id order and reading it through these indexes.
CREATE INDEX items_search_a ON items USING GIN (ts_filter(search_vector, '{a}'));
CREATE INDEX items_search_b ON items USING GIN (ts_filter(search_vector, '{b}'));
CREATE INDEX items_search_c ON items USING GIN (ts_filter(search_vector, '{c}'));
CREATE INDEX items_search_d ON items USING GIN (ts_filter(search_vector, '{d}'));
