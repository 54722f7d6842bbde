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

use sqlx::QueryBuilder;
use time::OffsetDateTime;
use uuid::Uuid;

use super::items::{ItemRow, item_columns};
use crate::pool::DbPool;
use crate::users::like_pattern;
use crate::{Store, StoreError};

/// The sort orders of `GET /items`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemSort {
    Relevance,
    Title { descending: bool },
    Year { descending: bool },
    Created { descending: bool },
}

/// A keyset position: the sort value of the last row of a page, and its id.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Relevance(i64),
    Title(String),
    Year(i32),
    Created(OffsetDateTime),
}

/// A search; `terms` are already tokenised (lower-case words, stop words removed).
#[derive(Debug, Clone)]
pub struct ItemSearch {
    pub terms: Vec<String>,
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

/// The SQLite full-text query of one class: the term in every group of `mask`
/// and in none of the other groups of `present` (FTS5 column filters; `NOT` is
/// FTS5's binary operator). Groups outside `present` hold no match at all.
fn class_match(term: &str, mask: u8, present: u8) -> String {
    let phrase = fts_string(term);
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

/// Does the term occur in a field group of any item? An FTS5 column filter
/// (stops at the first hit; a full pass over the term's doclist only when the
/// group holds none).
const GROUP_PROBE_SQLITE: &str = "EXISTS (SELECT 1 FROM items_fts WHERE items_fts MATCH ";
/// `term` as one FTS5 string (quoted, so operators are just characters).
fn fts_string(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
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

/// PostgreSQL: the lexemes the 'english' configuration makes of each term, in
/// term order (none for its stop words, several for e.g. "e-mail").
const TERM_LEXEMES: &str = "SELECT tsvector_to_array(to_tsvector('english', t)) \
     FROM unnest(CAST($1 AS TEXT[])) WITH ORDINALITY AS u(t, n) ORDER BY n";

/// SQLite: all the words in one FTS5 match.
fn push_fts_match(qb: &mut QueryBuilder<sqlx::Sqlite>, s: &ItemSearch) {
    if s.terms.is_empty() {
        return;
    }
    let fts: Vec<String> = s.terms.iter().map(|t| fts_string(t)).collect();
    sql(
        qb,
        " AND i.rowid IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ",
    );
    qb.push_bind(fts.join(" "));
    sql(qb, ")");
}

/// PostgreSQL: every lexeme of every term occurs in some field group, one
/// GIN-indexed condition each.
fn push_key_match(qb: &mut QueryBuilder<sqlx::Postgres>, lexemes: &[Vec<String>]) {
    for lexeme in lexemes.iter().flatten() {
        sql(qb, " AND i.search_keys && ");
        qb.push_bind(group_keys(std::slice::from_ref(lexeme), 0b1111));
    }
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

/// Relevance order on PostgreSQL, scoring every match: the page's ids and
/// scores are found first, then only those rows are loaded with their copy
/// counts. A term without lexemes (a stop word of the configuration) adds nothing.
fn relevance_postgres(s: &ItemSearch, lexemes: &[Vec<String>]) -> QueryBuilder<sqlx::Postgres> {
    let mut qb = QueryBuilder::new(concat!(
        "SELECT ",
        item_columns!(),
        ", hits.score AS score FROM (SELECT scored.id, scored.score FROM (SELECT i.id, CAST(0"
    ));
    for term in lexemes.iter().filter(|l| !l.is_empty()) {
        for (g, (weight, _, _)) in FIELD_GROUPS.iter().enumerate() {
            // A term is in a group when all its lexemes are (as a weight-labelled
            // tsquery of the term would say).
            sql(&mut qb, " + (CASE WHEN i.search_keys @> ");
            qb.push_bind(group_keys(term, 8 >> g));
            sql(&mut qb, " THEN ");
            sql(&mut qb, weight);
            sql(&mut qb, " ELSE 0 END)");
        }
    }
    sql(
        &mut qb,
        " AS BIGINT) AS score FROM items i WHERE i.deleted_at IS NULL",
    );
    push_key_match(&mut qb, lexemes);
    push_filters!(qb, s);
    sql(&mut qb, ") scored");
    if let Some((key, id)) = &s.after {
        // Score high to low, ties by ascending id: mixed directions need the OR form.
        sql(&mut qb, " WHERE scored.score < ");
        bind_key!(qb, key);
        sql(&mut qb, " OR (scored.score = ");
        bind_key!(qb, key);
        sql(&mut qb, " AND scored.id > ");
        qb.push_bind(*id);
        sql(&mut qb, ")");
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

/// What every class query of a one-word page adds after its text condition:
/// live items matching the filters, in id order after `after_id`, at most `take`.
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

/// PostgreSQL: which field groups hold `lexeme` in any item, one GIN lookup each.
fn probe_postgres(lexeme: &[String]) -> QueryBuilder<sqlx::Postgres> {
    let mut qb = QueryBuilder::new("SELECT ");
    for g in 0..4 {
        if g > 0 {
            sql(&mut qb, ", ");
        }
        sql(
            &mut qb,
            "EXISTS (SELECT 1 FROM items i WHERE i.search_keys @> ",
        );
        qb.push_bind(group_keys(lexeme, 8 >> g));
        sql(&mut qb, ")");
    }
    qb
}

/// PostgreSQL: one class of a one-lexeme relevance page (see
/// [`class_query_sqlite`]): the keys hold the lexeme in exactly the groups of
/// `mask` (groups outside `present` hold it nowhere). The planner walks the
/// primary key for a populous class and reads the keys' posting lists for a
/// sparse one, so either costs about a page.
fn class_query_postgres(
    s: &ItemSearch,
    lexeme: &[String],
    (mask, present): (u8, u8),
    after_id: Option<Uuid>,
    take: usize,
) -> QueryBuilder<sqlx::Postgres> {
    let mut qb = QueryBuilder::new("SELECT i.id FROM items i WHERE i.search_keys @> ");
    qb.push_bind(group_keys(lexeme, mask));
    if present & !mask != 0 {
        sql(&mut qb, " AND NOT i.search_keys && ");
        qb.push_bind(group_keys(lexeme, present & !mask));
    }
    push_class_rest!(qb, s, after_id, take);
    qb
}

/// Relevance order on SQLite. Scores come from the FTS5 index alone: one
/// column-filtered match per term and field group, each a pass over one doclist,
/// summed per rowid (a row that lacks a term is dropped, as the full-text match
/// would). With `floor`, only rows scoring at least the (limit + 1)-th best score
/// are looked up in `items` (for their id, the tie-break, and the filters):
/// those rows are a prefix of the full order, so if they fill the page the page
/// is exact, and [`Store::search_items`] reruns without the floor otherwise.
fn relevance_sqlite(s: &ItemSearch, floor: bool) -> QueryBuilder<sqlx::Sqlite> {
    let mut qb =
        QueryBuilder::new("WITH scored AS MATERIALIZED (SELECT rowid, SUM(w) AS score FROM (");
    for (i, term) in s.terms.iter().enumerate() {
        for (j, (weight, columns, _)) in FIELD_GROUPS.iter().enumerate() {
            if i + j > 0 {
                sql(&mut qb, " UNION ALL ");
            }
            sql(&mut qb, "SELECT rowid, ");
            sql(&mut qb, weight);
            sql(&mut qb, " AS w, ");
            qb.push_bind(i as i64);
            sql(&mut qb, " AS term FROM items_fts WHERE items_fts MATCH ");
            qb.push_bind(format!("{columns}: {}", fts_string(term)));
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
        if let Some((key, _)) = &s.after {
            sql(&mut qb, " WHERE score <= ");
            bind_key!(qb, key);
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

/// One class of a single-term relevance search on SQLite: the ids of up to
/// `take` live items whose field groups for the term are exactly `mask`,
/// matching the filters, in id order (after `after_id` within the cursor's own
/// class). The FTS5 query finds the class's rowids; only those rows are read.
fn class_query_sqlite(
    s: &ItemSearch,
    term: &str,
    (mask, present): (u8, u8),
    after_id: Option<Uuid>,
    take: usize,
) -> QueryBuilder<sqlx::Sqlite> {
    let mut qb = QueryBuilder::new(
        "SELECT i.id FROM items_fts f JOIN items i ON i.rowid = f.rowid WHERE items_fts MATCH ",
    );
    qb.push_bind(class_match(term, mask, present));
    push_class_rest!(qb, s, after_id, take);
    qb
}

/// SQLite: which field groups hold `term` in any item (FTS5 column filters).
fn probe_sqlite(term: &str) -> QueryBuilder<sqlx::Sqlite> {
    let mut qb = QueryBuilder::new("SELECT ");
    for (g, (_, columns, _)) in FIELD_GROUPS.iter().enumerate() {
        if g > 0 {
            sql(&mut qb, ", ");
        }
        sql(&mut qb, GROUP_PROBE_SQLITE);
        qb.push_bind(format!("{columns}: {}", fts_string(term)));
        sql(&mut qb, ")");
    }
    qb
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
        let probes: (bool, bool, bool, bool) = $probe
            .build_query_as()
            .persistent($persistent)
            .fetch_one(&mut *tx)
            .await?;
        let present = u8::from(probes.0) << 3
            | u8::from(probes.1) << 2
            | u8::from(probes.2) << 1
            | u8::from(probes.3);
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
        let mut hits: Vec<ItemHit> = if ranked.is_empty() {
            Vec::new()
        } else {
            let mut qb = QueryBuilder::new(concat!(
                "SELECT ",
                item_columns!(),
                ", CAST(0 AS BIGINT) AS score FROM items i WHERE i.id IN ("
            ));
            let mut list = qb.separated(", ");
            for (_, id) in &ranked {
                list.push_bind(*id);
            }
            sql(&mut qb, ")");
            qb.build_query_as().fetch_all(&mut *tx).await?
        };
        tx.commit().await?;
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

/// A SQLite relevance row: the hit and the score floor its query applied.
#[derive(sqlx::FromRow)]
struct FlooredHit {
    #[sqlx(flatten)]
    hit: ItemHit,
    floor: i64,
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
        sql(&mut $qb, " LIMIT ");
        $qb.push_bind(i64::from(s.limit) + 1);
    }};
}

impl Store {
    /// Runs a catalog search; returns `limit + 1` rows (the extra one signals a next page).
    pub async fn search_items(&self, search: &ItemSearch) -> Result<Vec<ItemHit>, StoreError> {
        let relevance = search.sort == ItemSort::Relevance && !search.terms.is_empty();
        let single_term = match search.terms.as_slice() {
            [term] if relevance => Some(term.as_str()),
            _ => None,
        };
        let pool = match &self.pool {
            DbPool::Sqlite(pool) => {
                return sqlite_search(pool, search, relevance, single_term).await;
            }
            DbPool::Postgres(pool) => pool,
        };
        let lexemes: Vec<Vec<String>> = if search.terms.is_empty() {
            Vec::new()
        } else {
            let lexemes: Vec<Vec<String>> = sqlx::query_scalar(TERM_LEXEMES)
                .bind(&search.terms)
                .fetch_all(pool)
                .await?;
            if lexemes.iter().all(Vec::is_empty) {
                // Only stop words: nothing matches, as with an empty tsquery.
                return Ok(Vec::new());
            }
            lexemes
        };
        // Searches with words are planned for their values (see the module docs).
        let persistent = lexemes.is_empty();
        let mut qb = match (relevance, lexemes.as_slice()) {
            (true, [lexeme]) if lexeme.len() == 1 => {
                let tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                return Ok(single_term_page!(
                    tx,
                    search,
                    probe_postgres(lexeme),
                    |classes, after_id, take| {
                        class_query_postgres(search, lexeme, classes, after_id, take)
                    },
                    false
                ));
            }
            (true, _) => relevance_postgres(search, &lexemes),
            (false, _) => {
                let mut qb = QueryBuilder::new("");
                build_search!(qb, search, |qb: &mut QueryBuilder<sqlx::Postgres>| {
                    push_key_match(qb, &lexemes)
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
}

/// [`Store::search_items`] on SQLite.
async fn sqlite_search(
    pool: &sqlx::SqlitePool,
    search: &ItemSearch,
    relevance: bool,
    single_term: Option<&str>,
) -> Result<Vec<ItemHit>, StoreError> {
    Ok(match single_term {
        Some(term) => single_term_page!(
            pool.begin_with("BEGIN DEFERRED").await?,
            search,
            probe_sqlite(term),
            |classes, after_id, take| class_query_sqlite(search, term, classes, after_id, take),
            true
        ),
        None if relevance => {
            let hits: Vec<FlooredHit> = relevance_sqlite(search, true)
                .build_query_as()
                .fetch_all(pool)
                .await?;
            // A short page is exact only if the floor excluded nothing.
            let short = hits.len() <= search.limit as usize;
            if short && hits.first().is_none_or(|h| h.floor > 0) {
                relevance_sqlite(search, false)
                    .build_query_as::<FlooredHit>()
                    .fetch_all(pool)
                    .await?
            } else {
                hits
            }
            .into_iter()
            .map(|h| h.hit)
            .collect()
        }
        None => {
            let mut qb = QueryBuilder::new("");
            build_search!(qb, search, |qb: &mut QueryBuilder<sqlx::Sqlite>| {
                push_fts_match(qb, search)
            });
            qb.build_query_as().fetch_all(pool).await?
        }
    })
}

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
}
