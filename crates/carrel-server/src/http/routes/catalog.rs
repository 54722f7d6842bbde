//! `/api/v1/items` and `/api/v1/copies`: the public catalog (reading needs no
//! login) and its maintenance by librarians.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carrel_store::{
    Copy, FacetCounts, ItemFacets, ItemHit, ItemPage, ItemRow, ItemSearch, ItemSort, SortKey,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::Actor;
use crate::app::catalog::{self, CopyChangesInput, ItemChanges, NewCopyInput};
use crate::catalog::fields::ItemInput;
use crate::catalog::search;
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, Query, nullable, parse_id};
use crate::http::pagination::{self, Page};
use crate::http::principal::RequireLibrarian;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_items, create_item))
        .routes(routes!(get_item, update_item, delete_item))
        .routes(routes!(restore_item))
        .routes(routes!(item_events))
        .routes(routes!(list_copies, add_copy))
        .routes(routes!(update_copy, delete_copy))
}

/// The public shape of an item.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    pub id: Uuid,
    pub title: String,
    pub subtitle: Option<String>,
    pub authors: Vec<String>,
    /// ISBN-13.
    pub isbn: Option<String>,
    pub item_type: String,
    pub publisher: Option<String>,
    pub publication_year: Option<i32>,
    pub language: Option<String>,
    pub subjects: Vec<String>,
    pub description: Option<String>,
    /// Changes whenever a new cover is uploaded, so it may be cached forever.
    pub cover_url: Option<String>,
    pub copies_total: i64,
    pub copies_available: i64,
    /// Copies per home branch (search results and `GET /items/{id}`; branches
    /// without a copy are left out).
    pub availability: Vec<BranchAvailabilityView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// How many copies of an item a branch holds, and how many are on its shelf.
#[derive(Debug, Serialize, ToSchema)]
pub struct BranchAvailabilityView {
    pub branch_id: Uuid,
    pub copies_total: i64,
    pub copies_available: i64,
}

/// Fills in `availability` of each item from one grouped query.
async fn with_availability(state: &AppState, items: &mut [ItemView]) -> Result<(), ApiError> {
    let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
    for row in state.store.copy_availability(&ids).await? {
        if let Some(item) = items.iter_mut().find(|i| i.id == row.item_id) {
            item.availability.push(BranchAvailabilityView {
                branch_id: row.branch_id,
                copies_total: row.copies_total,
                copies_available: row.copies_available,
            });
        }
    }
    Ok(())
}

impl From<ItemRow> for ItemView {
    fn from(row: ItemRow) -> Self {
        let cover_url = row.cover_name.as_deref().map(|name| {
            let version = name.split('.').next().unwrap_or(name);
            format!("/api/v1/items/{}/cover?v={version}", row.id)
        });
        Self {
            id: row.id,
            title: row.title,
            subtitle: row.subtitle,
            authors: row.authors.0,
            isbn: row.isbn,
            item_type: row.item_type,
            publisher: row.publisher,
            publication_year: row.publication_year,
            language: row.language,
            subjects: row.subjects.0,
            description: row.description,
            cover_url,
            copies_total: row.copies_total,
            copies_available: row.copies_available,
            availability: Vec::new(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
pub enum SortParam {
    #[serde(rename = "relevance")]
    Relevance,
    #[serde(rename = "title")]
    Title,
    #[serde(rename = "-title")]
    TitleDesc,
    #[serde(rename = "publication_year")]
    Year,
    #[serde(rename = "-publication_year")]
    YearDesc,
    #[serde(rename = "created_at")]
    Created,
    #[serde(rename = "-created_at")]
    CreatedDesc,
}

/// Every parameter of the search: anything else is a 400.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Full text over title, subtitle, authors, subjects and description.
    pub q: Option<String>,
    /// Case-insensitive substring of any author.
    pub author: Option<String>,
    /// A defined item type code (see `/item-types`); anything else is a 400.
    pub item_type: Option<String>,
    /// Case-insensitive equality with any subject.
    pub subject: Option<String>,
    /// ISBN-10 or ISBN-13.
    pub isbn: Option<String>,
    pub year_from: Option<i32>,
    pub year_to: Option<i32>,
    /// `true`: only items with a copy on the shelf (of `branch_id`, when given).
    pub available: Option<bool>,
    /// Only items with copies whose home is this branch.
    pub branch_id: Option<Uuid>,
    /// Default: `relevance` with `q`, else `title`.
    pub sort: Option<SortParam>,
    /// `true`: the last word of `q` also matches the words it begins (`histor`
    /// finds "history"), as a search-as-you-type box needs; only when `q` does
    /// not end with a space or punctuation and that word has 2 or more characters.
    pub prefix: Option<bool>,
    /// `true`: the response also counts every matching item by item type,
    /// language, decade and subject (`facets`). It costs a pass over all matches.
    pub facets: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// How many matching items have one value of a facet.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetCount {
    /// `null` counts the items without a value.
    pub value: Option<String>,
    pub count: i64,
}

/// How many matching items were published in one decade.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecadeCount {
    /// The first year of the decade (1990 for 1990–1999); `null` counts the
    /// items without a publication year.
    pub value: Option<i32>,
    pub count: i64,
}

/// Counts over every item the search matches (the whole result, not the
/// page). Each facet lists at most its 20 most frequent values, most items
/// first. An item counts once in `item_type`, `language` and `decade` (their
/// counts add up to `total` when a facet has at most 20 values) and once for
/// each of its subjects in `subject`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemFacetsView {
    /// Every matching item.
    pub total: i64,
    pub item_type: Vec<FacetCount>,
    pub language: Vec<FacetCount>,
    pub decade: Vec<DecadeCount>,
    pub subject: Vec<FacetCount>,
}

fn facet_counts(counts: FacetCounts<String>) -> Vec<FacetCount> {
    counts
        .into_iter()
        .map(|(value, count)| FacetCount { value, count })
        .collect()
}

impl From<ItemFacets> for ItemFacetsView {
    fn from(f: ItemFacets) -> Self {
        Self {
            total: f.total,
            item_type: facet_counts(f.item_type),
            language: facet_counts(f.language),
            decade: f
                .decade
                .into_iter()
                .map(|(value, count)| DecadeCount { value, count })
                .collect(),
            subject: facet_counts(f.subject),
        }
    }
}

/// A page of search results: the list shape of every list, plus the facets
/// when `facets=true` was asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemSearchPage {
    pub data: Vec<ItemView>,
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<ItemFacetsView>,
}

fn bad_query(field: &str, reason: &str) -> ApiError {
    ApiError::bad_request("invalid query parameter").with_detail("fields", json!({ field: reason }))
}

fn sort_name(sort: ItemSort) -> &'static str {
    match sort {
        ItemSort::Relevance => "relevance",
        ItemSort::Title { descending: false } => "title",
        ItemSort::Title { descending: true } => "-title",
        ItemSort::Year { descending: false } => "publication_year",
        ItemSort::Year { descending: true } => "-publication_year",
        ItemSort::Created { descending: false } => "created_at",
        ItemSort::Created { descending: true } => "-created_at",
    }
}

/// The cursor: the sort it belongs to, the last row's sort value and id.
fn encode_cursor(sort: ItemSort, key: &SortKey, id: Uuid) -> String {
    let value = match key {
        SortKey::Relevance(score) => json!(score),
        SortKey::Title(title) => json!(title),
        SortKey::Year(year) => json!(year),
        SortKey::Created(at) => json!(at.unix_timestamp()),
    };
    URL_SAFE_NO_PAD.encode(json!({"s": sort_name(sort), "k": value, "id": id}).to_string())
}

fn decode_cursor(sort: ItemSort, raw: &str) -> Result<(SortKey, Uuid), ApiError> {
    let invalid = || bad_query("cursor", "is not a cursor of this search");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if value["s"] != sort_name(sort) {
        return Err(invalid());
    }
    let id = value["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(invalid)?;
    let k = &value["k"];
    let key = match sort {
        ItemSort::Relevance => SortKey::Relevance(k.as_i64().ok_or_else(invalid)?),
        ItemSort::Title { .. } => SortKey::Title(
            k.as_str()
                .filter(|t| t.len() <= 2_000)
                .ok_or_else(invalid)?
                .to_owned(),
        ),
        ItemSort::Year { .. } => SortKey::Year(
            k.as_i64()
                .and_then(|y| i32::try_from(y).ok())
                .ok_or_else(invalid)?,
        ),
        ItemSort::Created { .. } => SortKey::Created(
            k.as_i64()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                .ok_or_else(invalid)?,
        ),
    };
    Ok((key, id))
}

/// Searches the catalog (no login needed).
///
/// With `q`, the default order is relevance: for each word, title 10,
/// subtitle or authors 4, subjects 2, description 1 for each field group it
/// occurs in, summed over the words (every word must occur); ties by id. The
/// score depends on the item alone, so pages follow each other by cursor
/// without gaps or repeats while items are added (an item edited between two
/// pages may move across the cursor). A page of several words ranks the best
/// candidates first and stops once the page is certain, instead of scoring
/// every match.
#[utoipa::path(get, path = "/items", tag = "catalog", params(SearchParams),
    responses((status = 200, body = ItemSearchPage), (status = 400, body = ErrorBody)))]
async fn search_items(
    State(state): State<AppState>,
    Query(p): Query<SearchParams>,
) -> Result<Response, ApiError> {
    let (query, want_facets) = match prepare_search(&state, p).await? {
        PreparedSearch::Nothing(page) => return Ok(axum::Json(page).into_response()),
        PreparedSearch::Run { query, want_facets } => (query, want_facets),
    };
    if !query.terms.is_empty() {
        let page = run_search(&state, &query, want_facets).await?;
        return Ok(axum::Json(page).into_response());
    }
    // A list without words: the store renders the page's JSON in one statement.
    let facets = facets_of(&state, &query, want_facets).await?;
    Ok(rendered_page(
        state.store.list_items_page(&query).await?,
        query.sort,
        facets,
    ))
}

/// One page of a catalog search as typed views (the web catalog; the API's
/// `GET /items` answers the same page).
pub async fn search_page(state: &AppState, p: SearchParams) -> Result<ItemSearchPage, ApiError> {
    match prepare_search(state, p).await? {
        PreparedSearch::Nothing(page) => Ok(page),
        PreparedSearch::Run { query, want_facets } => run_search(state, &query, want_facets).await,
    }
}

/// A search's parameters, checked.
enum PreparedSearch {
    /// Words that can match nothing (only stop words or punctuation): the answer.
    Nothing(ItemSearchPage),
    /// The store query, and whether facets are wanted.
    Run {
        query: ItemSearch,
        want_facets: bool,
    },
}

/// Checks the parameters of `GET /items` and builds the store query.
async fn prepare_search(state: &AppState, p: SearchParams) -> Result<PreparedSearch, ApiError> {
    let limit = pagination::limit(p.limit)?;
    let terms = p.q.as_deref().map(search::terms).unwrap_or_default();
    let has_text = p.q.as_deref().is_some_and(|q| !q.trim().is_empty());
    let want_facets = p.facets.unwrap_or(false);
    if has_text && terms.is_empty() {
        return Ok(PreparedSearch::nothing(want_facets));
    }
    let completes = |q: &str| search::completes_last_word(q, &terms);
    let prefix = p.prefix.unwrap_or(false) && p.q.as_deref().is_some_and(completes);
    let sort = item_sort(p.sort, !terms.is_empty())?;
    let isbn = isbn_filter(p.isbn.as_deref())?;
    check_years(p.year_from, p.year_to)?;
    let item_type = item_type_filter(state, p.item_type).await?;
    let after = p
        .cursor
        .as_deref()
        .map(|c| decode_cursor(sort, c))
        .transpose()?;
    let query = ItemSearch {
        terms,
        prefix,
        author: short_filter("author", p.author)?,
        item_type,
        subject: short_filter("subject", p.subject)?,
        isbn,
        year_from: p.year_from,
        year_to: p.year_to,
        available_only: p.available.unwrap_or(false),
        branch_id: p.branch_id,
        sort,
        after,
        limit,
    };
    Ok(PreparedSearch::Run { query, want_facets })
}

impl PreparedSearch {
    /// Text that holds no searchable word finds nothing.
    fn nothing(want_facets: bool) -> Self {
        PreparedSearch::Nothing(ItemSearchPage {
            data: Vec::new(),
            next_cursor: None,
            facets: want_facets.then(|| ItemFacets::default().into()),
        })
    }
}

/// `year_from` must not be after `year_to`.
fn check_years<T: PartialOrd>(from: Option<T>, to: Option<T>) -> Result<(), ApiError> {
    if from.zip(to).is_some_and(|(from, to)| from > to) {
        return Err(bad_query("year_from", "must not be after year_to"));
    }
    Ok(())
}

/// The `item_type` filter: a defined item type.
async fn item_type_filter(state: &AppState, t: Option<String>) -> Result<Option<String>, ApiError> {
    match t {
        Some(t) if state.store.item_type_exists(&t).await? => Ok(Some(t)),
        Some(_) => Err(bad_query("item_type", "must be a defined item type")),
        None => Ok(None),
    }
}

/// The sort asked for; without one, relevance when there are terms, else title.
fn item_sort(sort: Option<SortParam>, has_terms: bool) -> Result<ItemSort, ApiError> {
    let default = if has_terms {
        SortParam::Relevance
    } else {
        SortParam::Title
    };
    Ok(match sort.unwrap_or(default) {
        SortParam::Relevance if !has_terms => {
            return Err(bad_query("sort", "relevance needs q"));
        }
        SortParam::Relevance => ItemSort::Relevance,
        SortParam::Title => ItemSort::Title { descending: false },
        SortParam::TitleDesc => ItemSort::Title { descending: true },
        SortParam::Year => ItemSort::Year { descending: false },
        SortParam::YearDesc => ItemSort::Year { descending: true },
        SortParam::Created => ItemSort::Created { descending: false },
        SortParam::CreatedDesc => ItemSort::Created { descending: true },
    })
}

/// The `isbn` filter, normalised (blank is none).
fn isbn_filter(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Ok(Some(
            carrel_core::isbn::normalize_isbn(raw)
                .map_err(|e| bad_query("isbn", &e.to_string()))?,
        )),
        None => Ok(None),
    }
}

/// An author or subject filter: trimmed, blank is none, at most 200 characters.
fn short_filter(field: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > 200 => {
            Err(bad_query(field, "must be at most 200 characters"))
        }
        // `|` delimits list entries in the filter keys; no author or subject contains it.
        Some(s) if s.contains('|') => Err(bad_query(field, "must not contain '|'")),
        other => Ok(other),
    }
}

async fn facets_of(
    state: &AppState,
    query: &ItemSearch,
    wanted: bool,
) -> Result<Option<ItemFacetsView>, ApiError> {
    Ok(if wanted {
        Some(state.store.item_facets(query).await?.into())
    } else {
        None
    })
}

/// Runs a checked search: one page of typed views with availability.
async fn run_search(
    state: &AppState,
    query: &ItemSearch,
    want_facets: bool,
) -> Result<ItemSearchPage, ApiError> {
    let facets = facets_of(state, query, want_facets).await?;
    let (sort, limit) = (query.sort, query.limit);
    let mut hits: Vec<ItemHit> = state.store.search_items(query).await?;
    let more = hits.len() > limit as usize;
    hits.truncate(limit as usize);
    let next_cursor = if more {
        hits.last()
            .map(|h| encode_cursor(sort, &h.key(sort), h.item.id))
    } else {
        None
    };
    let mut data: Vec<ItemView> = hits.into_iter().map(|h| ItemView::from(h.item)).collect();
    with_availability(state, &mut data).await?;
    Ok(ItemSearchPage {
        data,
        next_cursor,
        facets,
    })
}

/// An [`ItemSearchPage`] around a page the store rendered (a list without
/// words, see `Store::list_items_page`): its items are copied as they are.
fn rendered_page(page: ItemPage, sort: ItemSort, facets: Option<ItemFacetsView>) -> Response {
    let next_cursor = page.next.map(|(key, id)| encode_cursor(sort, &key, id));
    let mut body = String::with_capacity(page.json.len() + 128);
    body.push_str("{\"data\":");
    body.push_str(&page.json);
    body.push_str(",\"next_cursor\":");
    match next_cursor {
        // Base64url: nothing to escape.
        Some(cursor) => {
            body.push('"');
            body.push_str(&cursor);
            body.push('"');
        }
        None => body.push_str("null"),
    }
    if let Some(facets) = facets {
        body.push_str(",\"facets\":");
        body.push_str(&serde_json::to_string(&facets).unwrap_or_else(|_| "null".to_owned()));
    }
    body.push('}');
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    pub title: Option<String>,
    pub subtitle: Option<String>,
    pub authors: Option<Vec<String>>,
    /// ISBN-10 or ISBN-13, hyphens allowed; stored as ISBN-13.
    pub isbn: Option<String>,
    pub item_type: Option<String>,
    pub publisher: Option<String>,
    pub publication_year: Option<i32>,
    pub language: Option<String>,
    pub subjects: Option<Vec<String>>,
    pub description: Option<String>,
}

/// Adds an item to the catalog (librarian).
#[utoipa::path(post, path = "/items", tag = "catalog", security(("bearer" = [])), request_body = ItemRequest,
    responses((status = 201, body = ItemView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_item(
    State(state): State<AppState>,
    RequireLibrarian(staff): RequireLibrarian,
    client: ClientInfo,
    Json(req): Json<ItemRequest>,
) -> Result<(StatusCode, axum::Json<ItemView>), ApiError> {
    let actor = Actor::api(staff.user_id, &client);
    let row = catalog::create_item(&state, Some(&actor), req.into()).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

impl From<ItemRequest> for ItemInput {
    fn from(req: ItemRequest) -> Self {
        ItemInput {
            title: req.title,
            subtitle: req.subtitle,
            authors: req.authors,
            isbn: req.isbn,
            item_type: req.item_type,
            publisher: req.publisher,
            publication_year: req.publication_year,
            language: req.language,
            subjects: req.subjects,
            description: req.description,
        }
    }
}

/// One item (no login needed).
#[utoipa::path(get, path = "/items/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, body = ItemView), (status = 404, body = ErrorBody)))]
async fn get_item(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ItemView>, ApiError> {
    live_item(&state, parse_id(&id)?).await.map(axum::Json)
}

/// One live item with its availability per branch (the API's `GET /items/{id}`
/// and the web item page).
pub async fn live_item(state: &AppState, id: Uuid) -> Result<ItemView, ApiError> {
    let row = state
        .store
        .find_item(id, false)
        .await?
        .ok_or_else(ApiError::not_found)?;
    item_view(state, row).await
}

/// One item as the API shows it, with its availability per branch.
async fn item_view(state: &AppState, row: carrel_store::ItemRow) -> Result<ItemView, ApiError> {
    let mut view = [ItemView::from(row)];
    with_availability(state, &mut view).await?;
    let [view] = view;
    Ok(view)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemPatch {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub subtitle: Option<Option<String>>,
    pub authors: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub isbn: Option<Option<String>>,
    pub item_type: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub publisher: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub publication_year: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub language: Option<Option<String>>,
    pub subjects: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// Changes an item (librarian); `null` clears an optional field.
#[utoipa::path(patch, path = "/items/{id}", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = ItemPatch,
    responses((status = 200, body = ItemView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_item(
    State(state): State<AppState>,
    RequireLibrarian(staff): RequireLibrarian,
    client: ClientInfo,
    Path(id): Path<String>,
    Json(patch): Json<ItemPatch>,
) -> Result<axum::Json<ItemView>, ApiError> {
    let id = parse_id(&id)?;
    let actor = Actor::api(staff.user_id, &client);
    let row = catalog::update_item(&state, &actor, id, patch.into()).await?;
    Ok(axum::Json(item_view(&state, row).await?))
}

impl From<ItemPatch> for ItemChanges {
    fn from(p: ItemPatch) -> Self {
        ItemChanges {
            title: p.title,
            subtitle: p.subtitle,
            authors: p.authors,
            isbn: p.isbn,
            item_type: p.item_type,
            publisher: p.publisher,
            publication_year: p.publication_year,
            language: p.language,
            subjects: p.subjects,
            description: p.description,
        }
    }
}

/// Removes an item (soft delete, librarian); refused with 409 while copies are on loan.
#[utoipa::path(delete, path = "/items/{id}", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_item(
    State(state): State<AppState>,
    RequireLibrarian(staff): RequireLibrarian,
    client: ClientInfo,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::api(staff.user_id, &client);
    catalog::delete_item(&state, &actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restores a removed item (librarian).
#[utoipa::path(post, path = "/items/{id}/restore", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = ItemView), (status = 404, body = ErrorBody)))]
async fn restore_item(
    State(state): State<AppState>,
    RequireLibrarian(staff): RequireLibrarian,
    client: ClientInfo,
    Path(id): Path<String>,
) -> Result<axum::Json<ItemView>, ApiError> {
    let actor = Actor::api(staff.user_id, &client);
    let row = catalog::restore_item(&state, &actor, parse_id(&id)?).await?;
    Ok(axum::Json(item_view(&state, row).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemEventView {
    pub id: Uuid,
    pub event_type: String,
    pub actor_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[schema(value_type = Object)]
    pub details: Value,
    /// The patron of a circulation event; null for other events and once the
    /// loan or hold has been anonymised.
    pub user_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// An item's history, oldest first (librarian).
#[utoipa::path(get, path = "/items/{id}/events", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<ItemEventView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn item_events(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Path(id): Path<String>,
    Query(p): Query<PageParams>,
) -> Result<axum::Json<Page<ItemEventView>>, ApiError> {
    let id = parse_id(&id)?;
    state
        .store
        .find_item(id, true)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let limit = pagination::limit(p.limit)?;
    let rows = state
        .store
        .item_events(id, pagination::decode_cursor(p.cursor.as_deref())?, limit)
        .await?;
    Ok(axum::Json(pagination::paginate(
        rows,
        limit,
        |e| (e.at, e.id),
        |e| ItemEventView {
            id: e.id,
            event_type: e.event_type,
            actor_id: e.actor_id,
            at: e.at,
            details: e.details.0,
            user_id: e.patron_id,
        },
    )))
}

/// The public shape of a copy.
#[derive(Debug, Serialize, ToSchema)]
pub struct CopyView {
    pub id: Uuid,
    pub item_id: Uuid,
    pub barcode: String,
    pub location: Option<String>,
    pub call_number: Option<String>,
    /// `available`, `on_loan`, `on_hold_shelf`, `in_transit`, `lost`, `damaged` or `withdrawn`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The home branch.
    pub branch_id: Uuid,
    /// Where the copy is travelling to while `in_transit`, else null.
    pub transit_to_branch_id: Option<Uuid>,
}

impl From<Copy> for CopyView {
    fn from(c: Copy) -> Self {
        Self {
            id: c.id,
            item_id: c.item_id,
            barcode: c.barcode,
            location: c.location,
            call_number: c.call_number,
            status: c.status.to_string(),
            created_at: c.created_at,
            branch_id: c.branch_id,
            transit_to_branch_id: c.transit_to_branch_id,
        }
    }
}

/// The copies of an item (no login needed).
#[utoipa::path(get, path = "/items/{id}/copies", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<CopyView>), (status = 404, body = ErrorBody)))]
async fn list_copies(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Page<CopyView>>, ApiError> {
    let id = parse_id(&id)?;
    state
        .store
        .find_item(id, false)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let copies = state.store.list_copies(id).await?;
    Ok(axum::Json(Page {
        data: copies.into_iter().map(CopyView::from).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCopyRequest {
    pub barcode: String,
    pub location: Option<String>,
    pub call_number: Option<String>,
    /// The home branch; default MAIN.
    pub branch_id: Option<Uuid>,
}

/// Adds a copy to an item (librarian); a taken barcode is 409.
#[utoipa::path(post, path = "/items/{id}/copies", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = NewCopyRequest,
    responses((status = 201, body = CopyView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_copy(
    State(state): State<AppState>,
    RequireLibrarian(staff): RequireLibrarian,
    client: ClientInfo,
    Path(id): Path<String>,
    Json(req): Json<NewCopyRequest>,
) -> Result<(StatusCode, axum::Json<CopyView>), ApiError> {
    let id = parse_id(&id)?;
    let input = NewCopyInput {
        barcode: req.barcode,
        location: req.location,
        call_number: req.call_number,
        branch_id: req.branch_id,
    };
    let actor = Actor::api(staff.user_id, &client);
    let created = catalog::add_copy(&state, Some(&actor), id, input).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyPatch {
    pub barcode: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub location: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub call_number: Option<Option<String>>,
    /// `available`, `lost`, `damaged` or `withdrawn`.
    pub status: Option<String>,
    /// A new home branch.
    pub branch_id: Option<Uuid>,
}

/// Changes a copy (librarian).
#[utoipa::path(patch, path = "/copies/{id}", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = CopyPatch,
    responses((status = 200, body = CopyView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_copy(
    State(state): State<AppState>,
    RequireLibrarian(staff): RequireLibrarian,
    client: ClientInfo,
    Path(id): Path<String>,
    Json(req): Json<CopyPatch>,
) -> Result<axum::Json<CopyView>, ApiError> {
    let input = CopyChangesInput {
        barcode: req.barcode,
        location: req.location,
        call_number: req.call_number,
        status: req.status,
        branch_id: req.branch_id,
    };
    // The body is checked before the copy is looked for (as always): a
    // malformed id names no copy, and neither does the nil id, so it is a 404
    // once the body passes.
    let id = Uuid::parse_str(&id).unwrap_or_default();
    let actor = Actor::api(staff.user_id, &client);
    let copy = catalog::update_copy(&state, &actor, id, input).await?;
    Ok(axum::Json(copy.into()))
}

/// Removes a copy (librarian); refused with 409 while it is on loan or on the hold shelf.
#[utoipa::path(delete, path = "/copies/{id}", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_copy(
    State(state): State<AppState>,
    RequireLibrarian(staff): RequireLibrarian,
    client: ClientInfo,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::api(staff.user_id, &client);
    catalog::delete_copy(&state, &actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SORTS: [ItemSort; 7] = [
        ItemSort::Relevance,
        ItemSort::Title { descending: false },
        ItemSort::Title { descending: true },
        ItemSort::Year { descending: false },
        ItemSort::Year { descending: true },
        ItemSort::Created { descending: false },
        ItemSort::Created { descending: true },
    ];

    /// A title as stored (at most 500 characters) lower-cased into its sort key; biased
    /// towards 4-byte letters (Deseret), the longest a character can be once lower-cased.
    fn title_key() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                any::<char>(),
                proptest::char::range('\u{10400}', '\u{10427}')
            ],
            0..=500,
        )
        .prop_map(|chars| chars.into_iter().collect::<String>().to_lowercase())
    }

    /// A sort and a key of the kind rows under that sort have.
    fn sort_and_key() -> impl Strategy<Value = (ItemSort, SortKey)> {
        let min = time::PrimitiveDateTime::MIN.assume_utc().unix_timestamp();
        let max = time::PrimitiveDateTime::MAX.assume_utc().unix_timestamp();
        prop_oneof![
            any::<i64>().prop_map(|s| (ItemSort::Relevance, SortKey::Relevance(s))),
            (any::<bool>(), title_key())
                .prop_map(|(d, t)| (ItemSort::Title { descending: d }, SortKey::Title(t))),
            (any::<bool>(), any::<i32>())
                .prop_map(|(d, y)| (ItemSort::Year { descending: d }, SortKey::Year(y))),
            (any::<bool>(), min..=max).prop_map(|(d, s)| {
                let at = OffsetDateTime::from_unix_timestamp(s).unwrap();
                (ItemSort::Created { descending: d }, SortKey::Created(at))
            }),
        ]
    }

    /// `{"s", "k", "id"}` with plausible and implausible values of every JSON type.
    fn cursor_like_json() -> impl Strategy<Value = Value> {
        let s = prop_oneof![
            (0..SORTS.len()).prop_map(|i| json!(sort_name(SORTS[i]))),
            "\\PC{0,12}".prop_map(|t| json!(t)),
            Just(Value::Null),
        ];
        let k = prop_oneof![
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            "\\PC{0,40}".prop_map(|t| json!(t)),
            (1_990usize..2_010).prop_map(|n| json!("x".repeat(n))),
            any::<bool>().prop_map(|b| json!(b)),
            Just(json!([1, 2])),
            Just(Value::Null),
        ];
        let id = prop_oneof![
            any::<u128>().prop_map(|n| json!(Uuid::from_u128(n))),
            "\\PC{0,40}".prop_map(|t| json!(t)),
            any::<i64>().prop_map(|n| json!(n)),
        ];
        (s, k, id).prop_map(|(s, k, id)| json!({"s": s, "k": k, "id": id}))
    }

    #[test]
    fn longest_title_key_still_makes_a_cursor() {
        // 500 characters of 4 bytes each: the 2,000-byte bound of `decode_cursor`.
        let key = "\u{10400}".repeat(500).to_lowercase();
        assert_eq!(key.len(), 2_000);
        let sort = ItemSort::Title { descending: false };
        let id = Uuid::from_u128(7);
        let (decoded, decoded_id) =
            decode_cursor(sort, &encode_cursor(sort, &SortKey::Title(key.clone()), id)).unwrap();
        assert_eq!((decoded, decoded_id), (SortKey::Title(key), id));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The next page's cursor reads back as the last row's position, and only under
        /// the sort it was made for.
        #[test]
        fn search_cursor_round_trip((sort, key) in sort_and_key(), id in any::<u128>(), other in 0..SORTS.len()) {
            let id = Uuid::from_u128(id);
            let cursor = encode_cursor(sort, &key, id);
            prop_assert_eq!(decode_cursor(sort, &cursor).unwrap(), (key, id));
            let other = SORTS[other];
            if sort_name(other) != sort_name(sort) {
                prop_assert!(decode_cursor(other, &cursor).is_err());
            }
        }

        /// Any text, and base64 of any JSON object with the cursor's fields, is a 400 or a
        /// position; never a panic.
        #[test]
        fn any_search_cursor_is_refused_or_a_position(
            sort in 0..SORTS.len(),
            raw in "\\PC{0,64}",
            object in cursor_like_json(),
            use_json in any::<bool>(),
        ) {
            let sort = SORTS[sort];
            let raw = if use_json { URL_SAFE_NO_PAD.encode(object.to_string()) } else { raw };
            if let Ok((key, id)) = decode_cursor(sort, &raw) {
                prop_assert_eq!(decode_cursor(sort, &encode_cursor(sort, &key, id)).unwrap(), (key, id));
            }
        }
    }
}
