//! Catalog search: full text through each backend's own engine (PostgreSQL
//! `tsvector` + GIN, SQLite FTS5), whitelisted filters, and keyset pagination.
//!
//! The SQL is assembled only from `&'static str` fragments chosen by typed
//! enums; every value is a bound parameter. Relevance is a weighted count of
//! the query terms found in each field (title 10, subtitle 4, authors 4,
//! subjects 2, description 1): it depends on the item alone, not on corpus
//! statistics, so an item's rank never changes while others are added and a
//! cursor walk visits every match exactly once.

use sqlx::QueryBuilder;
use time::OffsetDateTime;
use uuid::Uuid;

use super::items::{ItemRow, item_columns};
use crate::users::like_pattern;
use crate::{Backend, Store, StoreError};

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

/// Per-field weights of the relevance score.
const WEIGHTS: [(&str, &str); 5] = [
    ("10", "i.title_key"),
    ("4", "LOWER(COALESCE(i.subtitle, ''))"),
    ("4", "i.authors_key"),
    ("2", "i.subjects_key"),
    ("1", "LOWER(COALESCE(i.description, ''))"),
];

macro_rules! build_search {
    ($qb:ident, $search:expr, $sqlite:expr) => {{
        let s = $search;
        let relevance = s.sort == ItemSort::Relevance && !s.terms.is_empty();
        if relevance {
            sql(&mut $qb, "SELECT * FROM (");
        }
        sql(&mut $qb, concat!("SELECT ", item_columns!(), ", CAST("));
        if relevance {
            for (i, term) in s.terms.iter().enumerate() {
                if i > 0 {
                    sql(&mut $qb, " + ");
                }
                for (j, (weight, column)) in WEIGHTS.iter().enumerate() {
                    if j > 0 {
                        sql(&mut $qb, " + ");
                    }
                    sql(&mut $qb, if $sqlite { "CASE WHEN instr(" } else { "CASE WHEN strpos(" });
                    sql(&mut $qb, column);
                    sql(&mut $qb, ", ");
                    $qb.push_bind(term.clone());
                    sql(&mut $qb, ") > 0 THEN ");
                    sql(&mut $qb, weight);
                    sql(&mut $qb, " ELSE 0 END");
                }
            }
        } else {
            sql(&mut $qb, "0");
        }
        sql(&mut $qb, " AS BIGINT) AS score FROM items i WHERE i.deleted_at IS NULL");
        if !s.terms.is_empty() {
            if $sqlite {
                // Each term quoted: FTS5 operators in the input are just words.
                let fts: Vec<String> = s.terms.iter().map(|t| format!("\"{t}\"")).collect();
                sql(&mut $qb, " AND i.rowid IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ");
                $qb.push_bind(fts.join(" "));
                sql(&mut $qb, ")");
            } else {
                sql(&mut $qb, " AND i.search_vector @@ plainto_tsquery('english', ");
                $qb.push_bind(s.terms.join(" "));
                sql(&mut $qb, ")");
            }
        }
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
        if s.available_only {
            sql(&mut $qb, " AND EXISTS (SELECT 1 FROM copies c WHERE c.item_id = i.id AND c.status = 'available' AND c.deleted_at IS NULL)");
        }
        if relevance {
            sql(&mut $qb, ") hits");
        }
        let (column, descending) = match s.sort {
            ItemSort::Relevance if relevance => ("score", true),
            ItemSort::Relevance | ItemSort::Title { descending: false } => ("title_key", false),
            ItemSort::Title { descending: true } => ("title_key", true),
            ItemSort::Year { descending } => ("year_key", descending),
            ItemSort::Created { descending } => ("created_at", descending),
        };
        if let Some((key, id)) = &s.after {
            if relevance {
                // Score high to low, ties by ascending id: mixed directions need the OR form.
                sql(&mut $qb, " WHERE (hits.score < ");
                bind_key!($qb, key);
                sql(&mut $qb, " OR (hits.score = ");
                bind_key!($qb, key);
                sql(&mut $qb, " AND hits.id > ");
                $qb.push_bind(*id);
                sql(&mut $qb, "))");
            } else {
                // One direction: a row-value comparison the index can seek on, so a
                // deep page costs the same as the first one.
                sql(&mut $qb, " AND (");
                push_column(&mut $qb, false, column);
                sql(&mut $qb, if descending { ", i.id) < (" } else { ", i.id) > (" });
                bind_key!($qb, key);
                sql(&mut $qb, ", ");
                $qb.push_bind(*id);
                sql(&mut $qb, ")");
            }
        }
        sql(&mut $qb, " ORDER BY ");
        push_column(&mut $qb, relevance, column);
        match (relevance, descending) {
            (true, _) => sql(&mut $qb, " DESC, hits.id ASC"),
            (false, false) => sql(&mut $qb, " ASC, i.id ASC"),
            (false, true) => sql(&mut $qb, " DESC, i.id DESC"),
        }
        sql(&mut $qb, " LIMIT ");
        $qb.push_bind(i64::from(s.limit) + 1);
    }};
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

fn push_column<DB: sqlx::Database>(
    qb: &mut QueryBuilder<DB>,
    relevance: bool,
    column: &'static str,
) {
    sql(qb, if relevance { "hits." } else { "i." });
    sql(qb, column);
}

impl Store {
    /// Runs a catalog search; returns `limit + 1` rows (the extra one signals a next page).
    pub async fn search_items(&self, search: &ItemSearch) -> Result<Vec<ItemHit>, StoreError> {
        let sqlite = self.backend() == Backend::Sqlite;
        Ok(crate::on_pool!(self, pool => {
            let mut qb = QueryBuilder::new("");
            build_search!(qb, search, sqlite);
            qb.build_query_as::<ItemHit>().fetch_all(pool).await?
        }))
    }
}
