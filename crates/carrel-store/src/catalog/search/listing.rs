//! List pages without words (`GET /items` without `q`): one statement that
//! walks the sort key's index, as [`Store::search_items`] does, and has the
//! database render the page as the API's item JSON, availability per branch
//! included.
//!
//! Why: a page read as typed rows cost about 6 µs of server time per row, in
//! copying each of its 22 columns out of the driver, one hand-off per row
//! between sqlx's SQLite worker thread and the runtime, a second query for the
//! availability, decoding the JSON lists and serialising it all again. Here
//! the page is one row of one text column whatever its length; the database
//! builds each item's object with its JSON functions (which escape strings as
//! JSON requires) next to the index read, and the server copies the text into
//! the response.
//!
//! The object has exactly the fields, order and values of the typed item view
//! (`ItemView` in the HTTP layer); the tests compare the two for the same
//! items. Timestamps are those the typed view prints: SQLite keeps the RFC 3339
//! text sqlx wrote, PostgreSQL formats `timestamptz` in UTC with the fraction's
//! trailing zeros left out, as the `time` crate does.

use sqlx::QueryBuilder;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ItemSearch, ItemSort, SortKey, sql};
use crate::pool::DbPool;
use crate::users::like_pattern;
use crate::{Store, StoreError};

/// A rendered page of items.
#[derive(Debug, Clone)]
pub struct ItemPage {
    /// A JSON array of the page's items, in order (shared with the view that
    /// keeps the page).
    pub json: std::sync::Arc<str>,
    /// How many items the page holds.
    pub len: usize,
    /// The keyset position of the page's last item when another page follows.
    pub next: Option<(SortKey, Uuid)>,
}

/// The one row the page statement returns.
#[derive(sqlx::FromRow)]
struct PageRow {
    data: String,
    fetched: i64,
    last_id: Option<Uuid>,
    last_title: Option<String>,
    last_year: Option<i64>,
    last_created: Option<OffsetDateTime>,
}

/// SQLite: the hyphenated lower-case text of a 16-byte UUID blob whose
/// `lower(hex(…))` is the column `$h`.
macro_rules! uuid_text_sqlite {
    ($h:literal) => {
        concat!(
            "substr(",
            $h,
            ", 1, 8) || '-' || substr(",
            $h,
            ", 9, 4) || '-' || substr(",
            $h,
            ", 13, 4) || '-' || substr(",
            $h,
            ", 17, 4) || '-' || substr(",
            $h,
            ", 21, 12)"
        )
    };
}

/// SQLite: the copies of the page's items by item and home branch, then by
/// item with the availability array (one grouped read of the copies for the
/// whole page, not three subqueries per row).
const HELD_SQLITE: &str = concat!(
    ", held AS (SELECT c.item_id, c.branch_id, lower(hex(c.branch_id)) AS h, COUNT(*) AS t, \
     SUM(c.status = 'available') AS a FROM copies c \
     WHERE c.item_id IN (SELECT id FROM page) AND c.deleted_at IS NULL AND c.status <> 'withdrawn' \
     GROUP BY c.item_id, c.branch_id), \
     per_item AS (SELECT held.item_id, SUM(held.t) AS t, SUM(held.a) AS a, \
     '[' || group_concat(json_object('branch_id', ",
    uuid_text_sqlite!("held.h"),
    ", 'copies_total', held.t, 'copies_available', held.a), ',' ORDER BY held.branch_id) || ']' AS av \
     FROM held GROUP BY held.item_id) "
);

/// SQLite: one item as the API's JSON object (`n` is a row of the page, `n.h`
/// its id in hex, `pi` its copies).
const ITEM_JSON_SQLITE: &str = concat!(
    "json_object('id', ",
    uuid_text_sqlite!("n.h"),
    ", 'title', n.title, 'subtitle', n.subtitle, 'authors', json(n.authors), 'isbn', n.isbn, \
     'item_type', n.item_type, 'publisher', n.publisher, 'publication_year', n.publication_year, \
     'language', n.language, 'subjects', json(n.subjects), 'description', n.description, \
     'cover_url', CASE WHEN n.cover_name IS NULL THEN NULL ELSE '/api/v1/items/' || ",
    uuid_text_sqlite!("n.h"),
    " || '/cover?v=' || CASE WHEN instr(n.cover_name, '.') > 0 \
     THEN substr(n.cover_name, 1, instr(n.cover_name, '.') - 1) ELSE n.cover_name END END, \
     'copies_total', COALESCE(pi.t, 0), 'copies_available', COALESCE(pi.a, 0), \
     'availability', json(COALESCE(pi.av, '[]')), \
     'created_at', n.created_at, 'updated_at', n.updated_at)"
);

/// PostgreSQL: a `timestamptz` column as the typed view prints it (RFC 3339 in
/// UTC, `Z`, the fraction without trailing zeros and without a dot when zero).
macro_rules! rfc3339_postgres {
    ($column:literal) => {
        concat!(
            "rtrim(rtrim(to_char(",
            $column,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '0'), '.') || 'Z'"
        )
    };
}

/// PostgreSQL: the copies of the page's items by item and home branch, then
/// by item with the availability array (as [`HELD_SQLITE`]).
const HELD_POSTGRES: &str = ", held AS (SELECT c.item_id, c.branch_id, COUNT(*) AS t, \
     COUNT(*) FILTER (WHERE c.status = 'available') AS a FROM copies c \
     WHERE c.item_id IN (SELECT id FROM page) AND c.deleted_at IS NULL AND c.status <> 'withdrawn' \
     GROUP BY c.item_id, c.branch_id), \
     per_item AS (SELECT held.item_id, CAST(SUM(held.t) AS BIGINT) AS t, CAST(SUM(held.a) AS BIGINT) AS a, \
     json_agg(json_build_object('branch_id', held.branch_id, 'copies_total', held.t, \
     'copies_available', held.a) ORDER BY held.branch_id) AS av FROM held GROUP BY held.item_id) ";

/// PostgreSQL: one item as the API's JSON object (`n` is a row of the page,
/// `pi` its copies).
const ITEM_JSON_POSTGRES: &str = concat!(
    "json_build_object('id', n.id, 'title', n.title, 'subtitle', n.subtitle, 'authors', n.authors, \
     'isbn', n.isbn, 'item_type', n.item_type, 'publisher', n.publisher, \
     'publication_year', n.publication_year, 'language', n.language, 'subjects', n.subjects, \
     'description', n.description, \
     'cover_url', '/api/v1/items/' || n.id || '/cover?v=' || split_part(n.cover_name, '.', 1), \
     'copies_total', COALESCE(pi.t, 0), 'copies_available', COALESCE(pi.a, 0), \
     'availability', COALESCE(pi.av, CAST('[]' AS json)), \
     'created_at', ",
    rfc3339_postgres!("n.created_at"),
    ", 'updated_at', ",
    rfc3339_postgres!("n.updated_at"),
    ")"
);

/// The columns of `items` the page reads.
const PAGE_COLUMNS: &str = "SELECT i.id, i.title, i.subtitle, i.authors, i.isbn, i.item_type, \
     i.publisher, i.publication_year, i.language, i.subjects, i.description, i.cover_name, \
     i.title_key, i.year_key, i.created_at, i.updated_at FROM items i WHERE i.deleted_at IS NULL";

/// The index order of a sort: its key column and whether it runs downwards.
fn order(sort: ItemSort) -> (&'static str, bool) {
    match sort {
        ItemSort::Relevance | ItemSort::Title { descending: false } => ("title_key", false),
        ItemSort::Title { descending: true } => ("title_key", true),
        ItemSort::Year { descending } => ("year_key", descending),
        ItemSort::Created { descending } => ("created_at", descending),
    }
}

/// `ORDER BY` text of a sort over the alias `t`.
fn order_by(sort: ItemSort, alias: &'static str) -> [&'static str; 6] {
    let (column, descending) = order(sort);
    let (key_dir, id_dir) = if descending {
        (" DESC, ", ".id DESC")
    } else {
        (" ASC, ", ".id ASC")
    };
    [alias, ".", column, key_dir, alias, id_dir]
}

/// The start of the page statement: the rows of the page (and one more, which
/// tells that another page follows) in index order, then numbered; `$with_h`
/// adds columns to the numbered rows. The caller goes on after `SELECT`.
macro_rules! page_rows {
    ($qb:ident, $search:expr, $with_h:literal, $held:expr) => {{
        let s: &ItemSearch = $search;
        let (column, descending) = order(s.sort);
        sql(&mut $qb, "WITH page AS (");
        sql(&mut $qb, PAGE_COLUMNS);
        push_filters!($qb, s);
        if let Some((key, id)) = &s.after {
            // The seek of `build_search!`: a row-value comparison on the index.
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
        sql(&mut $qb, " ORDER BY ");
        for part in order_by(s.sort, "i") {
            sql(&mut $qb, part);
        }
        // Written into the SQL, not bound (see `build_search!`): a number the API
        // checked (1..=100), never client text.
        sql(&mut $qb, " LIMIT ");
        $qb.push(i64::from(s.limit) + 1);
        sql(&mut $qb, "), numbered AS (SELECT p.*");
        sql(&mut $qb, $with_h);
        sql(&mut $qb, ", row_number() OVER (ORDER BY ");
        for part in order_by(s.sort, "p") {
            sql(&mut $qb, part);
        }
        sql(&mut $qb, ") AS rn FROM page p)");
        sql(&mut $qb, $held);
        sql(&mut $qb, "SELECT ");
    }};
}

/// Appends `parts` with the page's limit between each two of them.
fn push_with_limit<DB: sqlx::Database>(
    qb: &mut QueryBuilder<DB>,
    limit: u32,
    parts: &[&'static str],
) {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            qb.push(i64::from(limit));
        }
        sql(qb, part);
    }
}

impl Store {
    /// A page of items without words (every filter and sort of
    /// [`Store::search_items`] but relevance), rendered as the API's JSON.
    ///
    /// Pages are kept in the in-process view of `session_cache.rs`, which
    /// every write (on PostgreSQL, every instance's write to `items` or
    /// `copies`) empties; a page is rendered by the database only when the view
    /// does not hold it or may not answer.
    pub async fn list_items_page(&self, search: &ItemSearch) -> Result<ItemPage, StoreError> {
        debug_assert!(search.terms.is_empty(), "a page with words is a search");
        if let Some(page) = self.session_view.page(search) {
            return Ok(page);
        }
        let generation = self.session_view.page_generation();
        let page = self.render_items_page(search).await?;
        self.session_view.fill_page(generation, search, &page);
        Ok(page)
    }

    /// [`Store::list_items_page`] from the database.
    async fn render_items_page(&self, search: &ItemSearch) -> Result<ItemPage, StoreError> {
        let row: PageRow = match &self.pool {
            DbPool::Sqlite(crate::pool::Db { read: pool, .. }) => {
                let mut qb = QueryBuilder::<sqlx::Sqlite>::new("");
                page_rows!(qb, search, ", lower(hex(p.id)) AS h", HELD_SQLITE);
                sql(&mut qb, "'[' || COALESCE(group_concat(");
                sql(&mut qb, ITEM_JSON_SQLITE);
                push_with_limit(
                    &mut qb,
                    search.limit,
                    &[
                        ", ',' ORDER BY n.rn) FILTER (WHERE n.rn <= ",
                        "), '') || ']' AS data, COUNT(*) AS fetched, \
                         max(CASE WHEN n.rn = ",
                        " THEN n.id END) AS last_id, max(CASE WHEN n.rn = ",
                        " THEN n.title_key END) AS last_title, max(CASE WHEN n.rn = ",
                        " THEN n.year_key END) AS last_year, max(CASE WHEN n.rn = ",
                        " THEN n.created_at END) AS last_created \
                         FROM numbered n LEFT JOIN per_item pi ON pi.item_id = n.id",
                    ],
                );
                qb.build_query_as().fetch_one(pool).await?
            }
            DbPool::Postgres(crate::pool::Db { read: pool, .. }) => {
                let mut qb = QueryBuilder::<sqlx::Postgres>::new("");
                page_rows!(qb, search, "", HELD_POSTGRES);
                sql(&mut qb, "CAST(COALESCE(json_agg(");
                sql(&mut qb, ITEM_JSON_POSTGRES);
                push_with_limit(
                    &mut qb,
                    search.limit,
                    &[
                        " ORDER BY n.rn) FILTER (WHERE n.rn <= ",
                        "), '[]') AS TEXT) AS data, COUNT(*) AS fetched, \
                         (array_agg(n.id) FILTER (WHERE n.rn = ",
                        "))[1] AS last_id, (array_agg(n.title_key) FILTER (WHERE n.rn = ",
                        "))[1] AS last_title, CAST((array_agg(n.year_key) FILTER (WHERE n.rn = ",
                        "))[1] AS BIGINT) AS last_year, (array_agg(n.created_at) FILTER (WHERE n.rn = ",
                        "))[1] AS last_created \
                         FROM numbered n LEFT JOIN per_item pi ON pi.item_id = n.id",
                    ],
                );
                qb.build_query_as().fetch_one(pool).await?
            }
        };
        let fetched = usize::try_from(row.fetched).unwrap_or(0);
        let limit = search.limit as usize;
        let next = if fetched > limit {
            let key = match search.sort {
                ItemSort::Relevance | ItemSort::Title { .. } => row.last_title.map(SortKey::Title),
                ItemSort::Year { .. } => row
                    .last_year
                    .and_then(|y| i32::try_from(y).ok())
                    .map(SortKey::Year),
                ItemSort::Created { .. } => row.last_created.map(SortKey::Created),
            };
            key.zip(row.last_id)
        } else {
            None
        };
        Ok(ItemPage {
            json: row.data.into(),
            len: fetched.min(limit),
            next,
        })
    }
}
