//! Catalog search: full text through each backend's own engine (PostgreSQL's
//! text-search parser and 'english' configuration with a GIN index, SQLite
//! FTS5), whitelisted filters, and keyset pagination.
//!
//! The SQL is assembled only from `&'static str` fragments chosen by typed
//! enums; every value is a bound parameter. Relevance adds, for each query
//! term, a weight for each field group the engine matches it in: title 10,
//! subtitle or authors 4, subjects 2, description 1. It depends on the item
//! alone, not on corpus statistics, so an item's rank never changes while
//! others are added and a cursor walk visits every match exactly once.
//!
//! Both engines answer "does this term occur in that field group" from their
//! own index data (PostgreSQL: the field-group keys `a:<lexeme>` … `d:<lexeme>`
//! of `search_keys`, made from the weighted `tsvector` of the 'english'
//! configuration, see migration 0006; SQLite: FTS5 column filters), and a
//! relevance search ranks only ids and scores before it loads the columns and
//! copy counts of one page. A one-word relevance page reads score classes best
//! first and stops when it is full (see [`class_score`]).
//!
//! PostgreSQL searches with words are planned for their actual values (unnamed
//! statements): how many rows a key matches decides between walking an index in
//! order and reading the key's GIN posting list, and a generic plan cannot know.
//!
//! `items_fts` is keyed by the implicit `items.rowid` (items has no INTEGER
//! PRIMARY KEY), and SQLite's `VACUUM` may renumber such rowids. Carrel never
//! runs VACUUM; an operator who does must rebuild the FTS rows afterwards.

use carrel_core::statuses::UnknownValue;
use sqlx::QueryBuilder;
use time::OffsetDateTime;
use uuid::Uuid;

use super::items::{ItemRow, item_columns};
use crate::pool::DbPool;
use crate::users::like_pattern;
use crate::{Store, StoreError};

/// The sort orders of `GET /items`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemSort {
    Relevance,
    Title { descending: bool },
    Year { descending: bool },
    Created { descending: bool },
}

/// A keyset position: the sort value of the last row of a page, and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SortKey {
    Relevance(i64),
    Title(String),
    Year(i32),
    Created(OffsetDateTime),
}

/// A search; `terms` are already tokenised (lower-case words, stop words removed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemSearch {
    pub terms: Vec<String>,
    /// The last term also matches the words it begins (search-as-you-type).
    pub prefix: bool,
    pub author: Option<String>,
    pub item_type: Option<String>,
    pub subject: Option<String>,
    pub isbn: Option<String>,
    pub year_from: Option<i32>,
    pub year_to: Option<i32>,
    pub available_only: bool,
    /// Only items with a copy whose home is this branch (available there, with
    /// `available_only`).
    pub branch_id: Option<Uuid>,
    pub sort: ItemSort,
    pub after: Option<(SortKey, Uuid)>,
    pub limit: u32,
}

/// A search result with its relevance score (0 for other sorts).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemHit {
    #[sqlx(flatten)]
    pub item: ItemRow,
    pub score: i64,
}

impl ItemHit {
    /// The keyset position of this row under `sort`.
    pub fn key(&self, sort: ItemSort) -> SortKey {
        match sort {
            ItemSort::Relevance => SortKey::Relevance(self.score),
            ItemSort::Title { .. } => SortKey::Title(self.item.title_key.clone()),
            ItemSort::Year { .. } => SortKey::Year(self.item.year_key),
            ItemSort::Created { .. } => SortKey::Created(self.item.created_at),
        }
    }
}

/// At most this many terms are searched (each costs a few comparisons per match).
pub const MAX_TERMS: usize = 8;

/// Appends trusted SQL text. Only `'static` strings are accepted, so nothing a
/// client sent can become SQL.
fn sql<DB: sqlx::Database>(qb: &mut QueryBuilder<DB>, text: &'static str) {
    qb.push(text);
}

/// Field groups of the relevance score: weight, FTS5 column filter, and the
/// prefix of the group's keys in PostgreSQL's `search_keys`.
const FIELD_GROUPS: [(&str, &str, &str); 4] = [
    ("10", "{title}", "a:"),
    ("4", "{subtitle authors}", "b:"),
    ("2", "{subjects}", "c:"),
    ("1", "{description}", "d:"),
];

/// The numeric weights of [`FIELD_GROUPS`], in the same order.
const WEIGHTS: [i64; 4] = [10, 4, 2, 1];

/// A score class of one term: the set of field groups it occurs in, as a bit
/// mask (bit 3 = title … bit 0 = description, the order of [`FIELD_GROUPS`]).
/// The weights are superincreasing (10 > 4 + 2 + 1, 4 > 2 + 1, 2 > 1), so every
/// set has its own score and a larger mask always scores higher: walking the
/// masks from 15 down to 1 walks the scores from high to low.
fn class_score(mask: u8) -> i64 {
    (0..4)
        .filter(|g| mask & (8 >> g) != 0)
        .map(|g| WEIGHTS[g])
        .sum()
}

/// The SQLite full-text query of one class: the term (an FTS5 phrase) in every
/// group of `mask` and in none of the other groups of `present` (FTS5 column
/// filters; `NOT` is FTS5's binary operator). Groups outside `present` hold no
/// match at all.
fn class_match(phrase: &str, mask: u8, present: u8) -> String {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for (g, (_, columns, _)) in FIELD_GROUPS.iter().enumerate() {
        let filter = format!("{columns}: {phrase}");
        if mask & (8 >> g) != 0 {
            with.push(filter);
        } else if present & (8 >> g) != 0 {
            without.push(filter);
        }
    }
    if without.is_empty() {
        with.join(" AND ")
    } else {
        format!("({}) NOT ({})", with.join(" AND "), without.join(" OR "))
    }
}

/// SQLite: `SELECT rowid FROM <group table> WHERE <group table> MATCH `, per
/// field group in the order of [`FIELD_GROUPS`]. Each group has its own FTS5
/// table (migration 0016), whose posting lists hold that group only.
const GROUP_MATCH: [&str; 4] = [
    "SELECT rowid FROM items_fts_title WHERE items_fts_title MATCH ",
    "SELECT rowid FROM items_fts_names WHERE items_fts_names MATCH ",
    "SELECT rowid FROM items_fts_subjects WHERE items_fts_subjects MATCH ",
    "SELECT rowid FROM items_fts_description WHERE items_fts_description MATCH ",
];

/// `term` as one FTS5 string (quoted, so operators are just characters).
fn fts_string(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

impl ItemSearch {
    /// SQLite: term `i` as an FTS5 phrase; a completed last term is an FTS5
    /// prefix phrase (`"histor" *`), which the porter tokenizer stems as
    /// PostgreSQL stems the prefix, so it also matches the term itself.
    fn fts_phrase(&self, i: usize) -> String {
        let phrase = fts_string(&self.terms[i]);
        if self.prefix && i + 1 == self.terms.len() {
            format!("{phrase} *")
        } else {
            phrase
        }
    }
}

/// PostgreSQL: one query term as `search_keys` sees it.
#[derive(Debug, Clone)]
struct PgTerm {
    /// The lexemes the 'english' configuration makes of the term (all of them
    /// must occur in a group for the term to count there), or with `any`, the
    /// alternatives of a completed prefix (one of them is enough).
    lexemes: Vec<String>,
    any: bool,
}

/// PostgreSQL: the `search_keys` entries of `lexemes` in the field groups of
/// `mask` (bit 3 = title … bit 0 = description).
fn group_keys(lexemes: &[String], mask: u8) -> Vec<String> {
    let mut keys = Vec::with_capacity(lexemes.len() * 4);
    for (g, (_, _, prefix)) in FIELD_GROUPS.iter().enumerate() {
        if mask & (8 >> g) != 0 {
            keys.extend(lexemes.iter().map(|l| format!("{prefix}{l}")));
        }
    }
    keys
}

/// PostgreSQL: " i.search_keys …" saying that `term` occurs in every field
/// group of `mask` (one GIN-indexed condition for a plain term, one per group
/// for a completed prefix).
fn push_in_every(qb: &mut QueryBuilder<sqlx::Postgres>, term: &PgTerm, mask: u8) {
    if !term.any {
        sql(qb, " i.search_keys @> ");
        qb.push_bind(group_keys(&term.lexemes, mask));
        return;
    }
    let mut first = true;
    for g in (0..4).filter(|g| mask & (8 >> g) != 0) {
        if !first {
            sql(qb, " AND");
        }
        first = false;
        sql(qb, " i.search_keys && ");
        qb.push_bind(group_keys(&term.lexemes, 8 >> g));
    }
}

/// PostgreSQL: " (…)" saying that `term` occurs in at least one field group of `mask`.
fn push_in_some(qb: &mut QueryBuilder<sqlx::Postgres>, term: &PgTerm, mask: u8) {
    if term.any || term.lexemes.len() == 1 {
        sql(qb, " i.search_keys && ");
        qb.push_bind(group_keys(&term.lexemes, mask));
        return;
    }
    sql(qb, " (FALSE");
    for g in (0..4).filter(|g| mask & (8 >> g) != 0) {
        sql(qb, " OR i.search_keys @> ");
        qb.push_bind(group_keys(&term.lexemes, 8 >> g));
    }
    sql(qb, ")");
}

/// PostgreSQL: " + (…)", the score of a completed prefix in one row: the
/// weights of the field groups holding one of its alternatives. One pass over
/// the row's keys, each looked up in the alternatives of every group (a
/// constant array of nine or more, which PostgreSQL hashes): `search_keys &&`
/// per group compares every key with every alternative, and with 64
/// completions that was most of a tier's time (`united sta`, 250,000 records).
fn push_completed_score(qb: &mut QueryBuilder<sqlx::Postgres>, term: &PgTerm) {
    sql(qb, " + (SELECT COALESCE(SUM(DISTINCT CASE left(k, 2)");
    for (weight, _, prefix) in FIELD_GROUPS {
        sql(qb, " WHEN '");
        sql(qb, prefix);
        sql(qb, "' THEN ");
        sql(qb, weight);
    }
    sql(
        qb,
        " END), 0) FROM unnest(i.search_keys) AS k WHERE k = ANY(",
    );
    qb.push_bind(group_keys(&term.lexemes, 0b1111));
    sql(qb, "))");
}

/// PostgreSQL: the lexemes the 'english' configuration makes of each term, in
/// term order (none for its stop words, several for e.g. "e-mail").
const TERM_LEXEMES: &str = "SELECT tsvector_to_array(to_tsvector('english', t)) \
     FROM unnest(CAST($1 AS TEXT[])) WITH ORDINALITY AS u(t, n) ORDER BY n";

/// PostgreSQL: the completions of a prefix (see migration 0015), the most
/// frequent first as the planner's statistics of `search_keys` know them (its
/// most common elements, refreshed by ANALYZE), then the shortest.
const COMPLETIONS: &str = "WITH freq AS (SELECT substr(e, 3) AS lexeme, SUM(f) AS f \
     FROM pg_stats s, unnest(CAST(CAST(s.most_common_elems AS TEXT) AS TEXT[]), s.most_common_elem_freqs) AS u(e, f) \
     WHERE s.schemaname = current_schema() AND s.tablename = 'items' AND s.attname = 'search_keys' \
     AND e LIKE '_:' || $1 ESCAPE '\\' GROUP BY 1) \
     SELECT l.lexeme FROM (SELECT DISTINCT lexeme FROM search_lexemes WHERE lexeme LIKE $1 ESCAPE '\\') l \
     LEFT JOIN freq ON freq.lexeme = l.lexeme ORDER BY freq.f DESC NULLS LAST, length(l.lexeme), l.lexeme LIMIT $2";

/// PostgreSQL: at most this many words complete a prefix (the shortest ones).
pub const MAX_COMPLETIONS: i64 = 64;

/// SQLite: all the words in one FTS5 match.
fn push_fts_match(qb: &mut QueryBuilder<sqlx::Sqlite>, s: &ItemSearch) {
    if s.terms.is_empty() {
        return;
    }
    let fts: Vec<String> = (0..s.terms.len()).map(|i| s.fts_phrase(i)).collect();
    sql(
        qb,
        " AND i.rowid IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ",
    );
    qb.push_bind(fts.join(" "));
    sql(qb, ")");
}

/// PostgreSQL: every lexeme of every term (one alternative of a completed
/// prefix) occurs in some field group, one GIN-indexed condition each.
fn push_key_match(qb: &mut QueryBuilder<sqlx::Postgres>, terms: &[PgTerm]) {
    for term in terms {
        if term.any {
            sql(qb, " AND i.search_keys && ");
            qb.push_bind(group_keys(&term.lexemes, 0b1111));
            continue;
        }
        for lexeme in &term.lexemes {
            sql(qb, " AND i.search_keys && ");
            qb.push_bind(group_keys(std::slice::from_ref(lexeme), 0b1111));
        }
    }
}

/// One tier of a multi-term relevance page: only items scoring at least
/// `min_score` are ranked, and each of those holds term `t` in some field group
/// of `groups[t]` (`None`: wherever the term occurs).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tier {
    min_score: i64,
    groups: Vec<Option<u8>>,
}

/// The field groups (some of) which a term must occur in to score at least
/// `m` for it: the weights are superincreasing, so 10 needs the title, 4 the
/// title or the subtitle/authors, 2 any group but the description.
fn groups_for(m: i64) -> u8 {
    match m {
        10.. => 0b1000,
        4.. => 0b1100,
        2.. => 0b1110,
        _ => 0b1111,
    }
}

/// The tiers of a multi-term relevance page, best first, given the field
/// groups that hold each term anywhere (`present`) and the score of the cursor
/// (`ceiling`). An item scoring `T` holds each term `t` with a score of at
/// least `T` minus the best scores of the other terms, so a high floor
/// restricts every term to its few high-weight postings (the title lists are
/// far shorter than the description lists). Each tier keeps the lowest floor
/// with the same restriction; a tier restricting nothing is the full ranking.
fn tiers(present: &[u8], ceiling: Option<i64>) -> Vec<Tier> {
    let best: Vec<i64> = present.iter().map(|p| class_score(*p)).collect();
    let sum: i64 = best.iter().sum();
    let mut floors: Vec<i64> = best
        .iter()
        .flat_map(|b| [10, 4, 2].map(|w| sum - b + w))
        // The top score itself is the top class, read in id order beforehand.
        .filter(|t| *t < sum && *t >= 1 && ceiling.is_none_or(|c| *t <= c))
        .collect();
    floors.sort_unstable_by(|a, b| b.cmp(a));
    floors.dedup();
    let mut out: Vec<Tier> = Vec::new();
    for floor in floors {
        let groups: Vec<Option<u8>> = present
            .iter()
            .zip(&best)
            .map(|(p, b)| {
                let g = groups_for(floor - (sum - b)) & p;
                (g != *p).then_some(g)
            })
            .collect();
        if groups.iter().all(Option::is_none) {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.groups == groups => last.min_score = floor,
            _ => out.push(Tier {
                min_score: floor,
                groups,
            }),
        }
    }
    out
}

macro_rules! bind_key {
    ($qb:ident, $key:expr) => {
        match $key {
            SortKey::Relevance(score) => $qb.push_bind(*score),
            SortKey::Title(title) => $qb.push_bind(title.clone()),
            SortKey::Year(year) => $qb.push_bind(*year),
            SortKey::Created(at) => $qb.push_bind(*at),
        }
    };
}

/// The filters every search shares apart from the words, each starting with " AND".
macro_rules! push_filters {
    ($qb:ident, $s:expr) => {{
        let s: &ItemSearch = $s;
        if let Some(author) = &s.author {
            sql(&mut $qb, " AND i.authors_key LIKE ");
            $qb.push_bind(like_pattern(author));
            sql(&mut $qb, " ESCAPE '\\'");
        }
        if let Some(subject) = &s.subject {
            // Equality with one list entry: `|subject|` inside `|a|b|`.
            let exact = like_pattern(&format!("|{}|", subject.to_lowercase()));
            sql(&mut $qb, " AND i.subjects_key LIKE ");
            $qb.push_bind(exact);
            sql(&mut $qb, " ESCAPE '\\'");
        }
        if let Some(item_type) = &s.item_type {
            sql(&mut $qb, " AND i.item_type = ");
            $qb.push_bind(item_type.clone());
        }
        if let Some(isbn) = &s.isbn {
            sql(&mut $qb, " AND i.isbn = ");
            $qb.push_bind(isbn.clone());
        }
        if let Some(from) = s.year_from {
            sql(&mut $qb, " AND i.publication_year >= ");
            $qb.push_bind(from);
        }
        if let Some(to) = s.year_to {
            sql(&mut $qb, " AND i.publication_year <= ");
            $qb.push_bind(to);
        }
        if let Some(branch) = s.branch_id {
            sql(&mut $qb, " AND EXISTS (SELECT 1 FROM copies c WHERE c.item_id = i.id AND c.deleted_at IS NULL AND c.branch_id = ");
            $qb.push_bind(branch);
            if s.available_only {
                sql(&mut $qb, " AND c.status = 'available')");
            } else {
                sql(&mut $qb, " AND c.status <> 'withdrawn')");
            }
        } else if s.available_only {
            sql(&mut $qb, " AND EXISTS (SELECT 1 FROM copies c WHERE c.item_id = i.id AND c.status = 'available' AND c.deleted_at IS NULL)");
        }
    }};
}

/// Relevance order on PostgreSQL: the page's ids and scores are found first,
/// then only those rows are loaded with their copy counts. Without a tier every
/// match is scored; a tier scores only its candidates (see [`tiers`]).
fn relevance_postgres(
    s: &ItemSearch,
    terms: &[PgTerm],
    tier: Option<&Tier>,
) -> QueryBuilder<sqlx::Postgres> {
    let mut qb = QueryBuilder::new(concat!(
        "SELECT ",
        item_columns!(),
        ", hits.score AS score FROM (SELECT scored.id, scored.score FROM (SELECT i.id, CAST(0"
    ));
    for term in terms {
        if term.any {
            push_completed_score(&mut qb, term);
            continue;
        }
        for (g, (weight, _, _)) in FIELD_GROUPS.iter().enumerate() {
            // A term is in a group when all its lexemes are (as a weight-labelled
            // tsquery of the term would say).
            sql(&mut qb, " + (CASE WHEN");
            push_in_every(&mut qb, term, 8 >> g);
            sql(&mut qb, " THEN ");
            sql(&mut qb, weight);
            sql(&mut qb, " ELSE 0 END)");
        }
    }
    sql(
        &mut qb,
        " AS BIGINT) AS score FROM items i WHERE i.deleted_at IS NULL",
    );
    match tier {
        None => push_key_match(&mut qb, terms),
        Some(tier) => {
            for (term, groups) in terms.iter().zip(&tier.groups) {
                match groups {
                    // Being in one of these groups implies being somewhere:
                    // the tier's condition replaces the match's (one array
                    // comparison less per candidate; a completed prefix's
                    // alternatives in every group are a long array).
                    Some(groups) => {
                        sql(&mut qb, " AND");
                        push_in_some(&mut qb, term, *groups);
                    }
                    None => push_key_match(&mut qb, std::slice::from_ref(term)),
                }
            }
        }
    }
    push_filters!(qb, s);
    // OFFSET 0 keeps the subquery whole, so each row's score is computed once
    // (flattened, the score condition below repeats the whole expression).
    sql(&mut qb, " OFFSET 0) scored WHERE TRUE");
    if let Some(tier) = tier {
        sql(&mut qb, " AND scored.score >= ");
        qb.push_bind(tier.min_score);
    }
    if let Some((key, id)) = &s.after {
        // Score high to low, ties by ascending id: mixed directions need the OR form.
        sql(&mut qb, " AND (scored.score < ");
        bind_key!(qb, key);
        sql(&mut qb, " OR (scored.score = ");
        bind_key!(qb, key);
        sql(&mut qb, " AND scored.id > ");
        qb.push_bind(*id);
        sql(&mut qb, "))");
    }
    sql(&mut qb, " ORDER BY scored.score DESC, scored.id ASC LIMIT ");
    qb.push_bind(i64::from(s.limit) + 1);
    sql(
        &mut qb,
        ") hits JOIN items i ON i.id = hits.id ORDER BY hits.score DESC, hits.id ASC",
    );
    qb
}

/// The score classes a relevance page walks, best first: each class's mask, its
/// score, and the id to continue after within the cursor's own class (classes
/// scoring above the cursor were visited by earlier pages).
fn classes_after(after: &Option<(SortKey, Uuid)>) -> impl Iterator<Item = (u8, i64, Option<Uuid>)> {
    (1..16u8).rev().filter_map(move |mask| {
        let score = class_score(mask);
        match after {
            Some((SortKey::Relevance(key), _)) if score > *key => None,
            Some((SortKey::Relevance(key), id)) if score == *key => Some((mask, score, Some(*id))),
            _ => Some((mask, score, None)),
        }
    })
}

/// What every class query adds after its text condition: live items matching
/// the filters, in id order after `after_id`, at most `take`.
macro_rules! push_class_rest {
    ($qb:ident, $s:expr, $after_id:expr, $take:expr) => {{
        sql(&mut $qb, " AND i.deleted_at IS NULL");
        push_filters!($qb, $s);
        if let Some(id) = $after_id {
            sql(&mut $qb, " AND i.id > ");
            $qb.push_bind(id);
        }
        sql(&mut $qb, " ORDER BY i.id LIMIT ");
        $qb.push_bind($take as i64);
    }};
}

/// PostgreSQL: which field groups hold `term` in any item, one GIN lookup each.
fn probe_postgres(term: &PgTerm) -> QueryBuilder<sqlx::Postgres> {
    let mut qb = QueryBuilder::new("SELECT ");
    for g in 0..4 {
        if g > 0 {
            sql(&mut qb, ", ");
        }
        sql(&mut qb, "EXISTS (SELECT 1 FROM items i WHERE");
        push_in_every(&mut qb, term, 8 >> g);
        sql(&mut qb, ")");
    }
    qb
}

/// PostgreSQL: one class of a one-term relevance page (see
/// [`class_query_sqlite`]): the keys hold the term in exactly the groups of
/// `mask` (groups outside `present` hold it nowhere). The planner walks the
/// primary key for a populous class and reads the keys' posting lists for a
/// sparse one, so either costs about a page.
fn class_query_postgres(
    s: &ItemSearch,
    term: &PgTerm,
    (mask, present): (u8, u8),
    after_id: Option<Uuid>,
    take: usize,
) -> QueryBuilder<sqlx::Postgres> {
    let mut qb = QueryBuilder::new("SELECT i.id FROM items i WHERE");
    push_in_every(&mut qb, term, mask);
    if present & !mask != 0 {
        sql(&mut qb, " AND NOT i.search_keys && ");
        qb.push_bind(group_keys(&term.lexemes, present & !mask));
    }
    push_class_rest!(qb, s, after_id, take);
    qb
}

/// PostgreSQL: the top class of a multi-term relevance page: every term in
/// every field group that holds it anywhere (the best score there is), in id order.
fn top_class_postgres(
    s: &ItemSearch,
    terms: &[PgTerm],
    present: &[u8],
    after_id: Option<Uuid>,
    take: usize,
) -> QueryBuilder<sqlx::Postgres> {
    let mut qb = QueryBuilder::new("SELECT i.id FROM items i WHERE TRUE");
    for (term, mask) in terms.iter().zip(present) {
        sql(&mut qb, " AND");
        push_in_every(&mut qb, term, *mask);
    }
    push_class_rest!(qb, s, after_id, take);
    qb
}

/// Relevance order on SQLite. Scores come from the FTS5 indexes alone: one
/// match per term and field group, summed per rowid. Without a tier it is a
/// column-filtered match in `items_fts` that also requires every term (FTS5
/// seeks to the rows the rarest term holds); in a tier it is a pass over the
/// term's posting list in the group's own table (migration 0016), kept for the
/// tier's candidates, which are found once (a row that lacks a term is
/// dropped, as the full-text match would); a term the tier holds in one group
/// only is in that group for every candidate, so its weight there needs no
/// pass. With `floor`, only rows scoring at
/// least the (limit + 1)-th best score are looked up in `items` (for their id,
/// the tie-break, and the filters): those rows are a prefix of the full order,
/// so if they fill the page the page is exact, and [`Store::search_items`]
/// reruns without the floor otherwise.
fn relevance_sqlite(
    s: &ItemSearch,
    floor: bool,
    tier: Option<&Tier>,
) -> QueryBuilder<sqlx::Sqlite> {
    // Without a tier (few matches), every branch also asks for every word
    // anywhere: FTS5 then advances a column-filtered phrase by seeking to the
    // rows the rarest word holds, where a column filter alone walks the word's
    // whole doclist. A tier's own column filters already restrict the branches,
    // and adding common words there only adds iterators (measured slower).
    let mut qb = QueryBuilder::new("WITH ");
    if let Some(tier) = tier {
        // A tier's candidates once, from the group tables; then each term's
        // weight in each group is one pass over that group's posting list,
        // kept for the candidates (`+rowid`: not a rowid look-up per candidate).
        sql(&mut qb, "candidates AS MATERIALIZED (");
        push_tier_candidates(&mut qb, s, tier);
        sql(&mut qb, "), ");
    }
    sql(
        &mut qb,
        "scored AS MATERIALIZED (SELECT rowid, SUM(w) AS score FROM (",
    );
    let everywhere: Vec<String> = (0..s.terms.len()).map(|t| s.fts_phrase(t)).collect();
    let everywhere = everywhere.join(" AND ");
    for i in 0..s.terms.len() {
        let phrase = s.fts_phrase(i);
        for (j, (weight, columns, _)) in FIELD_GROUPS.iter().enumerate() {
            if i + j > 0 {
                sql(&mut qb, " UNION ALL ");
            }
            sql(&mut qb, "SELECT rowid, ");
            sql(&mut qb, weight);
            sql(&mut qb, " AS w, ");
            qb.push_bind(i as i64);
            if tier.is_some_and(|tier| tier.groups[i] == Some(8 >> j)) {
                // The tier holds this term in this one group for every
                // candidate: its weight needs no pass over the posting list.
                sql(&mut qb, " AS term FROM candidates");
            } else if tier.is_some() {
                sql(&mut qb, " AS term FROM (");
                sql(&mut qb, GROUP_MATCH[j]);
                qb.push_bind(phrase.clone());
                sql(&mut qb, " AND +rowid IN candidates)");
            } else {
                sql(&mut qb, " AS term FROM items_fts WHERE items_fts MATCH ");
                qb.push_bind(format!("({columns}: {phrase}) AND {everywhere}"));
            }
        }
    }
    sql(&mut qb, ") GROUP BY rowid");
    if s.terms.len() > 1 {
        sql(&mut qb, " HAVING COUNT(DISTINCT term) = ");
        qb.push_bind(s.terms.len() as i64);
    }
    sql(&mut qb, "), bound AS (SELECT ");
    if floor {
        sql(&mut qb, "COALESCE((SELECT score FROM scored");
        if let Some((key, id)) = &s.after {
            // Only rows after the cursor: the rows of the cursor's own score
            // before it (earlier pages) would otherwise take places below the
            // offset, and a floor set too high leaves the page short, which
            // costs a second, unfloored ranking. Only rows of the cursor's
            // score are looked up for their id.
            sql(&mut qb, " WHERE score < ");
            bind_key!(qb, key);
            sql(&mut qb, " OR (score = ");
            bind_key!(qb, key);
            sql(
                &mut qb,
                " AND (SELECT c.id FROM items c WHERE c.rowid = scored.rowid) > ",
            );
            qb.push_bind(*id);
            sql(&mut qb, ")");
        }
        sql(&mut qb, " ORDER BY score DESC LIMIT 1 OFFSET ");
        qb.push_bind(i64::from(s.limit));
        sql(&mut qb, "), 0)");
    } else {
        sql(&mut qb, "0");
    }
    sql(
        &mut qb,
        concat!(
            " AS floor) SELECT ",
            item_columns!(),
            ", hits.score AS score, hits.floor AS floor FROM (SELECT i.id, scored.score, bound.floor \
             FROM bound CROSS JOIN scored CROSS JOIN items i \
             WHERE i.rowid = scored.rowid AND scored.score >= bound.floor AND i.deleted_at IS NULL"
        ),
    );
    if let Some(tier) = tier {
        sql(&mut qb, " AND scored.score >= ");
        qb.push_bind(tier.min_score);
    }
    push_filters!(qb, s);
    if let Some((key, id)) = &s.after {
        // Score high to low, ties by ascending id: mixed directions need the OR form.
        sql(&mut qb, " AND (scored.score < ");
        bind_key!(qb, key);
        sql(&mut qb, " OR (scored.score = ");
        bind_key!(qb, key);
        sql(&mut qb, " AND i.id > ");
        qb.push_bind(*id);
        sql(&mut qb, "))");
    }
    sql(&mut qb, " ORDER BY scored.score DESC, i.id ASC LIMIT ");
    qb.push_bind(i64::from(s.limit) + 1);
    sql(
        &mut qb,
        ") hits JOIN items i ON i.id = hits.id ORDER BY hits.score DESC, hits.id ASC",
    );
    qb
}

/// One class of a relevance search on SQLite: the ids of up to `take` live
/// items matching the FTS5 query `class` (see [`class_match`]) and the filters,
/// in id order (after `after_id` within the cursor's own class). The FTS5
/// query finds the class's rowids; only those rows are read. `CROSS JOIN`
/// keeps the FTS5 table the outer loop: with a filter on an indexed column
/// (`item_type`) SQLite otherwise walks that index and runs the MATCH once per
/// row (`history` + `item_type=book` at 100k items: 2.3 s instead of ms).
fn class_query_sqlite(
    s: &ItemSearch,
    class: String,
    after_id: Option<Uuid>,
    take: usize,
) -> QueryBuilder<sqlx::Sqlite> {
    let mut qb = QueryBuilder::new(
        "SELECT i.id FROM items_fts f CROSS JOIN items i ON i.rowid = f.rowid WHERE items_fts MATCH ",
    );
    qb.push_bind(class);
    push_class_rest!(qb, s, after_id, take);
    qb
}

/// SQLite: which field groups hold the term (an FTS5 phrase) in any item: the
/// first entry of its posting list in each group's table, if any.
fn probe_sqlite(phrase: &str) -> QueryBuilder<sqlx::Sqlite> {
    let mut qb = QueryBuilder::new("SELECT ");
    for (g, select) in GROUP_MATCH.iter().enumerate() {
        if g > 0 {
            sql(&mut qb, ", ");
        }
        sql(&mut qb, "EXISTS (");
        sql(&mut qb, select);
        qb.push_bind(phrase.to_owned());
        sql(&mut qb, ")");
    }
    qb
}

/// SQLite: the top class of a multi-term relevance page (every term in every
/// field group that holds it anywhere), in id order after `after_id`, at most
/// `take`. Per group, one MATCH of the terms it holds in that group's table,
/// where FTS5 intersects their posting lists by seeking.
///
/// The groups other than the last (descriptions, the longest lists) are
/// chained, shortest lists first (titles, names, subjects): the first group's
/// rows are materialised, and each next group is one pass over its list, kept
/// for the rows so far (`+rowid`); an `INTERSECT` of the groups' row sets
/// sorted every set into a temporary b-tree (`hiza mule` at 1,000,000 items:
/// 40,188 title rows, 14,265 names; about twice the time). If the chain leaves
/// at most [`LOOKUP_CANDIDATES`] rows and the last group's match is long (at
/// least [`PASS_ROWS_PER_LOOKUP`] rows per candidate, counted with that
/// limit), the last group is asked about each candidate (a rowid look-up in its
/// posting lists: `hiza mule`, 584 candidates, 412,180 description rows);
/// otherwise it is one pass over its match kept for them (`history mule`: 588
/// candidates, 23,747 description rows, where FTS5's seeking keeps the pass short).
async fn top_class_sqlite(
    conn: &mut sqlx::SqliteConnection,
    s: &ItemSearch,
    present: &[u8],
    after_id: Option<Uuid>,
    take: usize,
) -> Result<Vec<Uuid>, StoreError> {
    let groups: Vec<(usize, String)> = GROUP_MATCH
        .iter()
        .enumerate()
        .filter_map(|(g, _)| {
            let phrases: Vec<String> = (0..s.terms.len())
                .filter(|t| present[*t] & (8 >> g) != 0)
                .map(|t| s.fts_phrase(t))
                .collect();
            (!phrases.is_empty()).then(|| (g, phrases.join(" AND ")))
        })
        .collect();
    let Some(((last, last_match), others)) = groups.split_last() else {
        // No group holds every term (the caller sends such searches nowhere).
        return Ok(Vec::new());
    };
    // The chain's rows when they are few, and whether to look them up.
    let mut few: Option<(Vec<i64>, bool)> = None;
    if !others.is_empty() {
        let mut qb = QueryBuilder::new("WITH ");
        push_chain(&mut qb, others);
        sql(&mut qb, " SELECT rowid FROM chain LIMIT ");
        qb.push_bind(LOOKUP_CANDIDATES + 1);
        let rowids: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
        if rowids.is_empty() {
            return Ok(Vec::new());
        }
        if rowids.len() as i64 <= LOOKUP_CANDIDATES {
            // Look-ups pay only when the last group's own match is long: a
            // match of rare words is a short seek-driven pass. Count it up to
            // what the look-ups would cost.
            let cap = rowids.len() as i64 * PASS_ROWS_PER_LOOKUP;
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM (");
            sql(&mut count, GROUP_MATCH[*last]);
            count.push_bind(last_match.clone());
            sql(&mut count, " LIMIT ");
            count.push_bind(cap);
            sql(&mut count, ")");
            let matches: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;
            few = Some((rowids, matches >= cap));
        }
    }
    let mut qb = QueryBuilder::new("");
    match &few {
        Some((rowids, lookup)) => {
            sql(&mut qb, "SELECT i.id FROM items i WHERE i.rowid IN (");
            sql(&mut qb, GROUP_MATCH[*last]);
            qb.push_bind(last_match.clone());
            // Without `+`, FTS5 looks each rowid up instead of walking the
            // list; with it, the chain's rows (already read) filter the pass.
            sql(
                &mut qb,
                if *lookup {
                    " AND rowid IN (SELECT value FROM json_each("
                } else {
                    " AND +rowid IN (SELECT value FROM json_each("
                },
            );
            qb.push_bind(serde_json::to_string(rowids).unwrap_or_default());
            sql(&mut qb, ")))");
        }
        None => {
            if !others.is_empty() {
                sql(&mut qb, "WITH ");
                push_chain(&mut qb, others);
                sql(&mut qb, " ");
            }
            sql(&mut qb, "SELECT i.id FROM items i WHERE i.rowid IN (");
            sql(&mut qb, GROUP_MATCH[*last]);
            qb.push_bind(last_match.clone());
            if !others.is_empty() {
                sql(&mut qb, " AND +rowid IN chain");
            }
            sql(&mut qb, ")");
        }
    }
    push_class_rest!(qb, s, after_id, take);
    Ok(qb.build_query_scalar().fetch_all(&mut *conn).await?)
}

/// SQLite: the top class asks the last field group about each candidate
/// rowid when the other groups leave at most this many (see
/// [`top_class_sqlite`]). A look-up of two words costs ~100 µs, a pass over a
/// long description match ~170 ms (`hiza mule`, 1,000,000 items), so this
/// bounds the look-ups to about what such a pass costs.
const LOOKUP_CANDIDATES: i64 = 1_000;

/// SQLite: how many rows of a pass cost about one look-up (a look-up of two
/// words in a description table: ~100 µs; a pass: ~0.4 µs a matching row, at
/// 1,000,000 items). The top class looks its candidates up only when the last
/// group's match has more rows than this many per candidate.
const PASS_ROWS_PER_LOOKUP: i64 = 200;

/// SQLite: the CTEs `link0 … chain` of [`top_class_sqlite`]: each group's
/// MATCH (`(group, phrases)`), kept for the rows of the one before.
fn push_chain(qb: &mut QueryBuilder<sqlx::Sqlite>, groups: &[(usize, String)]) {
    const LINKS: [&str; 3] = ["link0", "link1", "link2"];
    for (n, (g, phrases)) in groups.iter().enumerate() {
        if n > 0 {
            sql(qb, ", ");
        }
        // The last link is not materialised: read with a limit, it stops early.
        if n + 1 == groups.len() {
            sql(qb, "chain AS (");
        } else {
            sql(qb, LINKS[n]);
            sql(qb, " AS MATERIALIZED (");
        }
        sql(qb, GROUP_MATCH[*g]);
        qb.push_bind(phrases.clone());
        if n > 0 {
            sql(qb, " AND +rowid IN ");
            sql(qb, LINKS[n - 1]);
        }
        sql(qb, ")");
    }
}

/// SQLite: the candidates of a tier (see [`tiers`]), as a compound SELECT of
/// rowids: each restricted term in one of its groups. Terms restricted to the
/// same single group share one MATCH of that group's table (its posting lists
/// intersected by seeking); a term allowed in several groups is the union of
/// its lists there.
fn push_tier_candidates(qb: &mut QueryBuilder<sqlx::Sqlite>, s: &ItemSearch, tier: &Tier) {
    let mut first = true;
    let mut intersect = |qb: &mut QueryBuilder<sqlx::Sqlite>| {
        if !first {
            sql(qb, " INTERSECT ");
        }
        first = false;
    };
    for (g, select) in GROUP_MATCH.iter().enumerate() {
        let alone: Vec<String> = tier
            .groups
            .iter()
            .enumerate()
            .filter(|(_, groups)| **groups == Some(8 >> g))
            .map(|(t, _)| s.fts_phrase(t))
            .collect();
        if !alone.is_empty() {
            intersect(qb);
            sql(qb, select);
            qb.push_bind(alone.join(" AND "));
        }
    }
    for (t, groups) in tier.groups.iter().enumerate() {
        let Some(groups) = groups.filter(|g| g.count_ones() > 1) else {
            continue;
        };
        intersect(qb);
        sql(qb, "SELECT rowid FROM (");
        let mut union = false;
        for (g, select) in GROUP_MATCH.iter().enumerate() {
            if groups & (8 >> g) == 0 {
                continue;
            }
            if union {
                sql(qb, " UNION ");
            }
            union = true;
            sql(qb, select);
            qb.push_bind(s.fts_phrase(t));
        }
        sql(qb, ")");
    }
}

/// The field-group mask of a probe's four answers (title first).
fn probe_mask(probes: (bool, bool, bool, bool)) -> u8 {
    u8::from(probes.0) << 3 | u8::from(probes.1) << 2 | u8::from(probes.2) << 1 | u8::from(probes.3)
}

/// Loads the rows of `ranked` (score, id) in one query and orders them.
macro_rules! load_ranked {
    ($tx:ident, $ranked:expr) => {{
        let ranked: &[(i64, Uuid)] = $ranked;
        let mut hits: Vec<ItemHit> = if ranked.is_empty() {
            Vec::new()
        } else {
            let mut qb = QueryBuilder::new(concat!(
                "SELECT ",
                item_columns!(),
                ", CAST(0 AS BIGINT) AS score FROM items i WHERE i.id IN ("
            ));
            let mut list = qb.separated(", ");
            for (_, id) in ranked {
                list.push_bind(*id);
            }
            sql(&mut qb, ")");
            qb.build_query_as().fetch_all(&mut *$tx).await?
        };
        for hit in &mut hits {
            hit.score = ranked
                .iter()
                .find(|(_, id)| *id == hit.item.id)
                .map_or(0, |(score, _)| *score);
        }
        hits.sort_by(|a, b| b.score.cmp(&a.score).then(a.item.id.cmp(&b.item.id)));
        hits
    }};
}

/// A single-term relevance page, class by class from the best score down, in
/// one read snapshot (so an item edited meanwhile cannot show up in two
/// classes). A probe first finds the field groups that hold the term at all:
/// classes needing another group are empty and skipped, and the others need
/// not exclude it. A class is read only while the page still has room, in id
/// order with a limit, so a page costs the classes it reaches, not every match.
/// `$probe` and `$class` build the backend's queries ([`probe_sqlite`],
/// [`class_query_sqlite`] and their PostgreSQL twins); `$persistent` says
/// whether to keep them as prepared statements.
macro_rules! single_term_page {
    ($tx:expr, $s:expr, $probe:expr, $class:expr, $persistent:expr) => {{
        let (mut tx, s): (_, &ItemSearch) = ($tx, $s);
        let want = s.limit as usize + 1;
        let present = probe_mask(
            $probe
                .build_query_as()
                .persistent($persistent)
                .fetch_one(&mut *tx)
                .await?,
        );
        let mut ranked: Vec<(i64, Uuid)> = Vec::with_capacity(want);
        for (mask, score, after_id) in classes_after(&s.after).filter(|(m, _, _)| m & !present == 0)
        {
            let ids: Vec<Uuid> = $class((mask, present), after_id, want - ranked.len())
                .build_query_scalar()
                .persistent($persistent)
                .fetch_all(&mut *tx)
                .await?;
            ranked.extend(ids.into_iter().map(|id| (score, id)));
            if ranked.len() >= want {
                break;
            }
        }
        let hits = load_ranked!(tx, &ranked);
        tx.commit().await?;
        hits
    }};
}

/// A multi-term relevance page without scoring every match, in one read
/// snapshot: `Some(page)` when the top class or a tier filled it, `None` when
/// only the full ranking can tell (then few items match, or the words meet
/// only in low-weight fields).
///
/// 1. A probe per term finds the field groups that hold it at all, and a
///    count (up to [`FEW_PAGES`] pages) of the items holding every term sends
///    a search with fewer matches straight to the full ranking.
/// 2. The top class (every term in every such group: the best score there is)
///    is read in id order with a limit, as a one-term class is.
/// 3. Each tier of [`tiers`] ranks only its candidates and keeps the rows
///    scoring at least its floor. Every item scoring that much is a candidate,
///    so a tier that returns a whole page (plus one) returned exactly the top of
///    the full order.
///
/// `$probe(i)`, `$count(cap)`, `$top(connection, present, after_id, take)` (an
/// async closure giving the top class's ids) and
/// `$tier(&tier)` build the backend's queries.
macro_rules! multi_term_page {
    ($tx:expr, $s:expr, $terms:expr, $probe:expr, $count:expr, $top:expr, $tier:expr, $tier_row:ty, $persistent:expr) => {{
        let (mut tx, s): (_, &ItemSearch) = ($tx, $s);
        let want = s.limit as usize + 1;
        let mut present: Vec<u8> = Vec::with_capacity($terms);
        for i in 0..$terms {
            present.push(probe_mask(
                $probe(i)
                    .build_query_as()
                    .persistent($persistent)
                    .fetch_one(&mut *tx)
                    .await?,
            ));
        }
        let ceiling = match &s.after {
            Some((SortKey::Relevance(score), id)) => Some((*score, *id)),
            _ => None,
        };
        let best: i64 = present.iter().map(|p| class_score(*p)).sum();
        let mut page: Option<Vec<ItemHit>> = None;
        if present.contains(&0) {
            // A term that occurs nowhere: nothing matches every term.
            page = Some(Vec::new());
        }
        let mut few = false;
        if page.is_none() {
            // Few matches in all: scoring them all is cheaper than the tiers.
            let cap = FEW_PAGES * want as i64;
            let matches: i64 = $count(cap)
                .build_query_scalar()
                .persistent($persistent)
                .fetch_one(&mut *tx)
                .await?;
            few = matches < cap;
        }
        if page.is_none() && !few && ceiling.is_none_or(|(score, _)| score >= best) {
            let after_id = ceiling
                .filter(|(score, _)| *score == best)
                .map(|(_, id)| id);
            let ids: Vec<Uuid> = $top(&mut *tx, &present, after_id, want).await?;
            if ids.len() >= want {
                let ranked: Vec<(i64, Uuid)> = ids.into_iter().map(|id| (best, id)).collect();
                page = Some(load_ranked!(tx, &ranked));
            }
        }
        if page.is_none() && !few {
            for tier in tiers(&present, ceiling.map(|(score, _)| score)) {
                let rows: Vec<$tier_row> = $tier(&tier)
                    .build_query_as()
                    .persistent($persistent)
                    .fetch_all(&mut *tx)
                    .await?;
                if rows.len() >= want {
                    page = Some(rows.into_iter().map(Into::into).collect());
                    break;
                }
            }
        }
        tx.commit().await?;
        page
    }};
}

/// With fewer matches than this many pages hold, a multi-term page scores them
/// all (see [`multi_term_page`]).
const FEW_PAGES: i64 = 4;

/// SQLite: how many items hold every term, counting up to `cap`.
fn count_sqlite(s: &ItemSearch, cap: i64) -> QueryBuilder<sqlx::Sqlite> {
    let mut qb = QueryBuilder::new(
        "SELECT COUNT(*) FROM (SELECT rowid FROM items_fts WHERE items_fts MATCH ",
    );
    let all: Vec<String> = (0..s.terms.len()).map(|t| s.fts_phrase(t)).collect();
    qb.push_bind(all.join(" AND "));
    sql(&mut qb, " LIMIT ");
    qb.push_bind(cap);
    sql(&mut qb, ")");
    qb
}

/// PostgreSQL: how many live items hold every term, counting up to `cap`.
fn count_postgres(terms: &[PgTerm], cap: i64) -> QueryBuilder<sqlx::Postgres> {
    let mut qb =
        QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1 FROM items i WHERE i.deleted_at IS NULL");
    push_key_match(&mut qb, terms);
    sql(&mut qb, " LIMIT ");
    qb.push_bind(cap);
    sql(&mut qb, ") m");
    qb
}

/// A SQLite relevance row: the hit and the score floor its query applied.
#[derive(sqlx::FromRow)]
struct FlooredHit {
    #[sqlx(flatten)]
    hit: ItemHit,
    floor: i64,
}

impl From<FlooredHit> for ItemHit {
    fn from(row: FlooredHit) -> Self {
        row.hit
    }
}

/// Every other order: one query that walks the sort key's index where it can.
macro_rules! build_search {
    ($qb:ident, $search:expr, $push_text:expr) => {{
        let s = $search;
        sql(
            &mut $qb,
            concat!(
                "SELECT ",
                item_columns!(),
                ", CAST(0 AS BIGINT) AS score FROM items i WHERE i.deleted_at IS NULL"
            ),
        );
        ($push_text)(&mut $qb);
        push_filters!($qb, s);
        let (column, descending) = match s.sort {
            ItemSort::Relevance | ItemSort::Title { descending: false } => ("title_key", false),
            ItemSort::Title { descending: true } => ("title_key", true),
            ItemSort::Year { descending } => ("year_key", descending),
            ItemSort::Created { descending } => ("created_at", descending),
        };
        if let Some((key, id)) = &s.after {
            // One direction: a row-value comparison the index can seek on, so a
            // deep page costs the same as the first one.
            sql(&mut $qb, " AND (i.");
            sql(&mut $qb, column);
            sql(
                &mut $qb,
                if descending {
                    ", i.id) < ("
                } else {
                    ", i.id) > ("
                },
            );
            bind_key!($qb, key);
            sql(&mut $qb, ", ");
            $qb.push_bind(*id);
            sql(&mut $qb, ")");
        }
        sql(&mut $qb, " ORDER BY i.");
        sql(&mut $qb, column);
        sql(
            &mut $qb,
            if descending {
                " DESC, i.id DESC"
            } else {
                " ASC, i.id ASC"
            },
        );
        // The limit is written into the SQL, not bound: SQLite's planner reads a
        // bound LIMIT, and then every new binding expires the prepared statement,
        // so each run would parse and plan the query again (27 % of a list page's
        // time in a profile). It is a number the API checked (1..=100), never
        // client text.
        sql(&mut $qb, " LIMIT ");
        $qb.push(i64::from(s.limit) + 1);
    }};
}

/// The counts of one facet: `(value, items)`, most items first, at most [`FACET_VALUES`].
pub type FacetCounts<T> = Vec<(Option<T>, i64)>;

/// At most this many values of a facet are counted (the most frequent ones).
pub const FACET_VALUES: i64 = 20;

/// Counts of the items matching a search, by facet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemFacets {
    /// Every matching item.
    pub total: i64,
    pub item_type: FacetCounts<String>,
    /// The stored language code; `None` counts items without one.
    pub language: FacetCounts<String>,
    /// The decade of the publication year (1990 for 1990–1999); `None` counts
    /// items without a year.
    pub decade: FacetCounts<i32>,
    /// Subjects as stored; an item counts once for each of its subjects.
    pub subject: FacetCounts<String>,
}

/// One counted facet inside [`facets_query!`]: the `$value` of each matching
/// item (read from the materialized `m`, joined by `$from`), most items first,
/// then values without one, then by value, at most [`FACET_VALUES`]; `r` is
/// that rank. The top values are picked by a top-N sort of the groups; only
/// those few are ranked.
macro_rules! push_facet {
    ($qb:ident, $facet:literal, $value:literal, $from:literal) => {{
        sql(
            &mut $qb,
            concat!(
                " UNION ALL SELECT facet, value, n, ROW_NUMBER() OVER (ORDER BY n DESC, value IS NULL, value) \
                 FROM (SELECT CAST(",
                $facet,
                " AS BIGINT) AS facet, ",
                $value,
                " AS value, COUNT(*) AS n FROM m",
                $from,
                " GROUP BY ",
                $value,
                " ORDER BY COUNT(*) DESC, ",
                $value,
                " IS NULL, ",
                $value,
                " LIMIT "
            ),
        );
        $qb.push_bind(FACET_VALUES);
        sql(&mut $qb, concat!(") f", $facet));
    }};
}

/// Every facet of a search in one statement: the matching items are found
/// once (a materialized CTE; the cursor and the sort do not apply) and counted
/// four ways, plus the total. Rows are `(facet, value, items)`: facet 0 is the
/// total, then item type, language, decade (as text) and subject, each in its
/// order. One pass over the matches instead of five: the text match and the
/// row look-ups are most of a facet query's cost. `$subject` is the subject
/// value and `$subjects` what joins each item's distinct subjects (an item
/// counts once per subject even if it lists one twice, and a per-item
/// de-duplication keeps the count a hash aggregate).
macro_rules! facets_query {
    ($qb:ident, $s:expr, $subject:literal, $subjects:literal, $push_text:expr) => {{
        let mut $qb = QueryBuilder::new(
            "SELECT facet, value, n FROM (WITH m AS MATERIALIZED (SELECT i.id, i.item_type, \
             i.language, CAST(CAST(i.publication_year / 10 * 10 AS INTEGER) AS TEXT) AS decade, \
             i.subjects FROM items i WHERE i.deleted_at IS NULL",
        );
        ($push_text)(&mut $qb);
        push_filters!($qb, $s);
        sql(
            &mut $qb,
            ") SELECT CAST(0 AS BIGINT) AS facet, CAST(NULL AS TEXT) AS value, COUNT(*) AS n, \
             CAST(0 AS BIGINT) AS r FROM m",
        );
        push_facet!($qb, "1", "item_type", "");
        push_facet!($qb, "2", "language", "");
        push_facet!($qb, "3", "decade", "");
        push_facet!($qb, "4", $subject, $subjects);
        sql(&mut $qb, ") u ORDER BY facet, r");
        $qb
    }};
}

/// The facets of [`facets_query!`]'s rows, in their order.
fn fold_facets(rows: Vec<(i64, Option<String>, i64)>) -> Result<ItemFacets, StoreError> {
    let mut facets = ItemFacets::default();
    for (facet, value, n) in rows {
        match facet {
            0 => facets.total = n,
            1 => facets.item_type.push((value, n)),
            2 => facets.language.push((value, n)),
            3 => {
                let decade = value
                    .map(|v| v.parse::<i32>())
                    .transpose()
                    .map_err(|_| StoreError::InvalidStored(UnknownValue("decade")))?;
                facets.decade.push((decade, n));
            }
            _ => facets.subject.push((value, n)),
        }
    }
    Ok(facets)
}

impl Store {
    /// Runs a catalog search; returns `limit + 1` rows (the extra one signals a next page).
    pub async fn search_items(&self, search: &ItemSearch) -> Result<Vec<ItemHit>, StoreError> {
        let relevance = search.sort == ItemSort::Relevance && !search.terms.is_empty();
        let pool = match &self.pool {
            DbPool::Sqlite(crate::pool::Db { read: pool, .. }) => {
                return sqlite_search(pool, search, relevance).await;
            }
            DbPool::Postgres(crate::pool::Db { read: pool, .. }) => pool,
        };
        let Some(terms) = pg_terms(pool, search).await? else {
            // Only stop words: nothing matches, as with an empty tsquery.
            return Ok(Vec::new());
        };
        // Searches with words are planned for their values (see the module docs).
        let persistent = terms.is_empty();
        let mut qb = match (relevance, terms.as_slice()) {
            (true, [term]) => {
                let tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                return Ok(single_term_page!(
                    tx,
                    search,
                    probe_postgres(term),
                    |classes, after_id, take| {
                        class_query_postgres(search, term, classes, after_id, take)
                    },
                    false
                ));
            }
            (true, _) => {
                let tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                let page = multi_term_page!(
                    tx,
                    search,
                    terms.len(),
                    |i: usize| probe_postgres(&terms[i]),
                    |cap| count_postgres(&terms, cap),
                    async |conn: &mut sqlx::PgConnection, present: &[u8], after_id, take| {
                        top_class_postgres(search, &terms, present, after_id, take)
                            .build_query_scalar()
                            .persistent(false)
                            .fetch_all(conn)
                            .await
                    },
                    |tier: &Tier| relevance_postgres(search, &terms, Some(tier)),
                    ItemHit,
                    false
                );
                if let Some(page) = page {
                    return Ok(page);
                }
                relevance_postgres(search, &terms, None)
            }
            (false, _) => {
                let mut qb = QueryBuilder::new("");
                build_search!(qb, search, |qb: &mut QueryBuilder<sqlx::Postgres>| {
                    push_key_match(qb, &terms)
                });
                qb
            }
        };
        Ok(qb
            .build_query_as()
            .persistent(persistent)
            .fetch_all(pool)
            .await?)
    }

    /// Counts the items a search matches by item type, language, decade and
    /// subject (the cursor, the sort and the limit do not apply).
    pub async fn item_facets(&self, search: &ItemSearch) -> Result<ItemFacets, StoreError> {
        let rows: Vec<(i64, Option<String>, i64)> = match &self.pool {
            DbPool::Sqlite(crate::pool::Db { read: pool, .. }) => {
                facets_query!(
                    qb,
                    search,
                    "s.value",
                    " CROSS JOIN json_each(m.subjects) s WHERE NOT EXISTS (SELECT 1 \
                     FROM json_each(m.subjects) e WHERE e.key < s.key AND e.value = s.value)",
                    |qb: &mut QueryBuilder<sqlx::Sqlite>| push_fts_match(qb, search)
                )
                .build_query_as()
                .fetch_all(pool)
                .await?
            }
            DbPool::Postgres(crate::pool::Db { read: pool, .. }) => {
                let Some(terms) = pg_terms(pool, search).await? else {
                    return Ok(ItemFacets::default());
                };
                facets_query!(
                    qb,
                    search,
                    // Byte order, as SQLite's: faster to group than the
                    // database's linguistic collation, and the same ties.
                    "s.value COLLATE \"C\"",
                    " CROSS JOIN LATERAL (SELECT DISTINCT value \
                     FROM jsonb_array_elements_text(m.subjects)) AS s(value)",
                    |qb: &mut QueryBuilder<sqlx::Postgres>| push_key_match(qb, &terms)
                )
                .build_query_as()
                // Searches with words are planned for their values (module docs).
                .persistent(terms.is_empty())
                .fetch_all(pool)
                .await?
            }
        };
        fold_facets(rows)
    }
}

/// PostgreSQL: the search's terms as lexemes, terms without any (stop words
/// of the configuration) left out, the last one completed when the search
/// asks for it; `None` when words were given but none has a lexeme.
async fn pg_terms(
    pool: &sqlx::PgPool,
    search: &ItemSearch,
) -> Result<Option<Vec<PgTerm>>, StoreError> {
    if search.terms.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let lexemes: Vec<Vec<String>> = sqlx::query_scalar(TERM_LEXEMES)
        .bind(&search.terms)
        .fetch_all(pool)
        .await?;
    let last = lexemes.len().saturating_sub(1);
    let mut terms = Vec::with_capacity(lexemes.len());
    for (i, lexemes) in lexemes.into_iter().enumerate() {
        match lexemes.as_slice() {
            [] => {}
            [stem] if search.prefix && i == last => {
                // `histor` completes to `histori`, `historian`, …: the stem
                // itself first, then the most frequent words it begins.
                let mut pattern = like_pattern(stem);
                pattern.remove(0); // `%stem%` → `stem%`
                let completions: Vec<String> = sqlx::query_scalar(COMPLETIONS)
                    .bind(pattern)
                    .bind(MAX_COMPLETIONS)
                    .fetch_all(pool)
                    .await?;
                let mut alternatives = vec![stem.clone()];
                alternatives.extend(completions.into_iter().filter(|c| c != stem));
                terms.push(PgTerm {
                    lexemes: alternatives,
                    any: true,
                });
            }
            _ => terms.push(PgTerm {
                lexemes,
                any: false,
            }),
        }
    }
    Ok((!terms.is_empty()).then_some(terms))
}

/// [`Store::search_items`] on SQLite.
async fn sqlite_search(
    pool: &sqlx::SqlitePool,
    search: &ItemSearch,
    relevance: bool,
) -> Result<Vec<ItemHit>, StoreError> {
    if !relevance {
        let mut qb = QueryBuilder::new("");
        build_search!(qb, search, |qb: &mut QueryBuilder<sqlx::Sqlite>| {
            push_fts_match(qb, search)
        });
        return Ok(qb.build_query_as().fetch_all(pool).await?);
    }
    if search.terms.len() == 1 {
        let phrase = search.fts_phrase(0);
        return Ok(single_term_page!(
            pool.begin_with("BEGIN DEFERRED").await?,
            search,
            probe_sqlite(&phrase),
            |(mask, present), after_id, take| {
                class_query_sqlite(search, class_match(&phrase, mask, present), after_id, take)
            },
            true
        ));
    }
    let page = multi_term_page!(
        pool.begin_with("BEGIN DEFERRED").await?,
        search,
        search.terms.len(),
        |i: usize| probe_sqlite(&search.fts_phrase(i)),
        |cap| count_sqlite(search, cap),
        async |conn: &mut sqlx::SqliteConnection, present: &[u8], after_id, take| {
            top_class_sqlite(conn, search, present, after_id, take).await
        },
        |tier: &Tier| relevance_sqlite(search, true, Some(tier)),
        FlooredHit,
        true
    );
    if let Some(page) = page {
        return Ok(page);
    }
    let hits: Vec<FlooredHit> = relevance_sqlite(search, true, None)
        .build_query_as()
        .fetch_all(pool)
        .await?;
    // A short page is exact only if the floor excluded nothing.
    let short = hits.len() <= search.limit as usize;
    Ok(if short && hits.first().is_none_or(|h| h.floor > 0) {
        relevance_sqlite(search, false, None)
            .build_query_as::<FlooredHit>()
            .fetch_all(pool)
            .await?
    } else {
        hits
    }
    .into_iter()
    .map(|h| h.hit)
    .collect())
}

// After the macros it uses (`push_filters!`, `bind_key!`).
pub(super) mod listing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_weights_are_those_of_the_field_groups() {
        let from_sql: Vec<i64> = FIELD_GROUPS
            .iter()
            .map(|(w, _, _)| w.parse().expect("a number"))
            .collect();
        assert_eq!(from_sql, WEIGHTS);
        // Superincreasing: each weight beats the sum of the smaller ones.
        assert!((0..4).all(|g| WEIGHTS[g] > WEIGHTS[g + 1..].iter().sum::<i64>()));
        assert_eq!(class_score(0b1001), 11);
    }

    #[test]
    fn tiers_restrict_each_word_to_the_groups_a_floor_needs() {
        let tier = |min_score, groups: &[Option<u8>]| Tier {
            min_score,
            groups: groups.to_vec(),
        };
        // Two words found in every group: best 17 each, 34 in all.
        assert_eq!(
            tiers(&[15, 15], None),
            [
                tier(27, &[Some(0b1000), Some(0b1000)]),
                tier(21, &[Some(0b1100), Some(0b1100)]),
                tier(19, &[Some(0b1110), Some(0b1110)]),
            ]
        );
        // The cursor's score caps the floors.
        assert_eq!(
            tiers(&[15, 15], Some(20)),
            [tier(19, &[Some(0b1110), Some(0b1110)])]
        );
        // A word only in descriptions (best 1) and one in titles and
        // descriptions (best 11): any score above 2 needs the second in a title.
        assert_eq!(
            tiers(&[0b1001, 0b0001], None),
            [tier(3, &[Some(0b1000), None])]
        );
        // Two description-only words: the top class is everything, no tier.
        assert!(tiers(&[1, 1], None).is_empty());
        // Every item scoring at least a tier's floor is one of its candidates.
        for present in [[15u8, 15], [9, 1], [12, 3], [14, 7], [8, 15]] {
            for tier in tiers(&present, None) {
                let best: i64 = present.iter().map(|p| class_score(*p)).sum();
                for a in (1..16u8).filter(|a| a & !present[0] == 0) {
                    for b in (1..16u8).filter(|b| b & !present[1] == 0) {
                        let score = class_score(a) + class_score(b);
                        let holds = |mask: u8, g: Option<u8>| g.is_none_or(|g| mask & g != 0);
                        if score >= tier.min_score && score < best {
                            assert!(
                                holds(a, tier.groups[0]) && holds(b, tier.groups[1]),
                                "{present:?} {tier:?}: ({a}, {b}) scores {score}"
                            );
                        }
                    }
                }
            }
        }
    }
}
