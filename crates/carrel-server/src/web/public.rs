//! Public pages: the catalog search and an item with its availability per
//! branch (and "place a hold" for a signed-in patron).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::i18n::Lang;
use super::session::{PageCtx, Web};
use crate::app::{Actor, holds};
use crate::http::client::ClientInfo;
use crate::http::error::ApiError;
use crate::http::routes::catalog::{self, SearchParams};
use crate::state::AppState;

/// Results per page.
const PAGE_SIZE: u32 = 20;

/// The search form's fields, as a browser sends them (empty fields included).
#[derive(Debug, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    author: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    item_type: String,
    #[serde(default)]
    year_from: String,
    #[serde(default)]
    year_to: String,
    #[serde(default)]
    available: String,
    /// `1`: count the matches by type, language, decade and subject (a pass
    /// over every match, so only on request, as the API's `facets=true`).
    #[serde(default)]
    facets: String,
    cursor: Option<String>,
}

fn filled(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

impl SearchForm {
    /// The API's search parameters; a year that is not a number is a 400.
    fn params(&self) -> Result<SearchParams, ApiError> {
        let year = |field: &str, raw: &str| -> Result<Option<i32>, ApiError> {
            filled(raw)
                .map(|y| {
                    y.parse::<i32>()
                        .map_err(|_| crate::http::error::field_error(field, "must be a year"))
                })
                .transpose()
        };
        Ok(SearchParams {
            q: filled(&self.q),
            author: filled(&self.author),
            item_type: filled(&self.item_type),
            subject: filled(&self.subject),
            isbn: None,
            year_from: year("year_from", &self.year_from)?,
            year_to: year("year_to", &self.year_to)?,
            available: (self.available == "true").then_some(true),
            branch_id: None,
            sort: None,
            prefix: None,
            // Counted over every match, so only when asked for (a link on
            // the page) and when something is searched for.
            facets: self.wants_facets().then_some(true),
            limit: Some(PAGE_SIZE),
            cursor: self.cursor.clone().filter(|c| !c.is_empty()),
        })
    }

    /// Whether the counts were asked for, on a search.
    fn wants_facets(&self) -> bool {
        self.facets == "1" && self.has_criteria()
    }

    /// Whether anything is searched for or filtered by.
    fn has_criteria(&self) -> bool {
        [
            &self.q,
            &self.author,
            &self.subject,
            &self.item_type,
            &self.year_from,
            &self.year_to,
            &self.available,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }

    /// This search, first page, with `change` applied to its filters.
    fn refined(&self, change: impl FnOnce(&mut SearchForm)) -> String {
        let mut form = SearchForm {
            q: self.q.clone(),
            author: self.author.clone(),
            subject: self.subject.clone(),
            item_type: self.item_type.clone(),
            year_from: self.year_from.clone(),
            year_to: self.year_to.clone(),
            available: self.available.clone(),
            facets: self.facets.clone(),
            cursor: None,
        };
        change(&mut form);
        form.href(None)
    }

    /// This search's query string with another cursor (None: the first page).
    fn href(&self, cursor: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", &self.q),
            ("author", &self.author),
            ("subject", &self.subject),
            ("item_type", &self.item_type),
            ("year_from", &self.year_from),
            ("year_to", &self.year_to),
            ("available", &self.available),
            ("facets", &self.facets),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
        format!("/?{}", query.finish())
    }
}

/// One search result as the page shows it.
#[derive(Debug)]
struct ResultRow {
    id: Uuid,
    title: String,
    authors: String,
    kind: String,
    year: Option<i32>,
    available: bool,
    availability: String,
}

/// One value of a facet: what it is, how many matching items have it, and
/// the link that narrows the search to it (or, when it is the filter in
/// force, the link that removes that filter). No link: the search has no
/// filter for it (language; items without a year).
#[derive(Debug)]
struct FacetValue {
    label: String,
    count: i64,
    href: Option<String>,
    selected: bool,
}

/// One facet (item type, language, decade, subject) with its values.
#[derive(Debug)]
struct FacetGroup {
    /// The element id of its heading (`facet-item_type`, …).
    id: &'static str,
    heading: &'static str,
    values: Vec<FacetValue>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    page: PageCtx,
    q: String,
    author: String,
    subject: String,
    item_type: String,
    year_from: String,
    year_to: String,
    available: bool,
    item_types: Vec<String>,
    item_type_names: HashMap<String, String>,
    results: Vec<ResultRow>,
    /// The counts over every match (`GET /api/v1/items?facets=true`), when
    /// something was searched for.
    facets: Vec<FacetGroup>,
    /// This search with the counts, when they were not asked for.
    facets_href: Option<String>,
    problem: Option<String>,
    next_href: Option<String>,
    first_href: Option<String>,
}

impl SearchPage {
    fn type_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.item_type_names.get(code).map_or(code, String::as_str)
    }
}

/// "2 available · 3 copies".
fn availability_text(lang: Lang, available: i64, total: i64) -> String {
    let t = lang.texts();
    format!(
        "{} · {}",
        Lang::fill(t.available_of, available),
        lang.count(total, t.copy_one, t.copy_other)
    )
}

/// `/`: the catalog search (the same search as `GET /api/v1/items`).
pub async fn search(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let web = Web::load(&state, &mut parts).await;
    let form: SearchForm = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let types = match state.store.list_item_types().await {
        Ok(types) => types,
        Err(error) => return web.api_problem(&ApiError::from(error)),
    };
    let outcome = match form.params() {
        Ok(params) => catalog::search_page(&state, params).await,
        Err(error) => Err(error),
    };
    let (status, results, next_cursor, facets, problem) = match outcome {
        Ok(found) => (
            StatusCode::OK,
            found.data,
            found.next_cursor,
            found.facets,
            None,
        ),
        Err(error) => (
            error.status(),
            Vec::new(),
            None,
            None,
            Some(web.describe(&error)),
        ),
    };
    let item_type_names: HashMap<String, String> = types
        .iter()
        .map(|t| (t.code.clone(), t.name.clone()))
        .collect();
    let facets = facets
        .map(|f| facet_groups(web.lang, &form, &item_type_names, f))
        .unwrap_or_default();
    let results = results
        .into_iter()
        .map(|item| ResultRow {
            id: item.id,
            authors: item.authors.join("; "),
            kind: item_type_names
                .get(&item.item_type)
                .cloned()
                .unwrap_or(item.item_type),
            year: item.publication_year,
            available: item.copies_available > 0,
            availability: availability_text(web.lang, item.copies_available, item.copies_total),
            title: item.title,
        })
        .collect();
    let page = SearchPage {
        page: web.page(),
        q: form.q.clone(),
        author: form.author.clone(),
        subject: form.subject.clone(),
        item_type: form.item_type.clone(),
        year_from: form.year_from.clone(),
        year_to: form.year_to.clone(),
        available: form.available == "true",
        item_types: types.into_iter().map(|t| t.code).collect(),
        item_type_names,
        results,
        facets,
        facets_href: (form.has_criteria() && !form.wants_facets())
            .then(|| form.refined(|f| f.facets = "1".to_owned())),
        problem,
        next_href: next_cursor.as_deref().map(|c| form.href(Some(c))),
        first_href: form.cursor.as_ref().map(|_| form.href(None)),
    };
    web.render(status, &page)
}

/// The facets as groups of links: each value narrows this search to it (a
/// first page), or removes the filter when it is the one in force.
fn facet_groups(
    lang: Lang,
    form: &SearchForm,
    type_names: &HashMap<String, String>,
    facets: catalog::ItemFacetsView,
) -> Vec<FacetGroup> {
    let t = lang.texts();
    let value = |label: String, count: i64, selected: bool, href: Option<String>| FacetValue {
        label,
        count,
        href,
        selected,
    };
    let item_type = facets
        .item_type
        .into_iter()
        .filter_map(|f| {
            let code = f.value?;
            let selected = form.item_type.trim() == code;
            let href = form.refined(|s| {
                s.item_type = if selected {
                    String::new()
                } else {
                    code.clone()
                };
            });
            let label = type_names.get(&code).cloned().unwrap_or(code);
            Some(value(label, f.count, selected, Some(href)))
        })
        .collect();
    // The search has no language filter: counts only.
    let language = facets
        .language
        .into_iter()
        .map(|f| {
            let label = f.value.unwrap_or_else(|| t.facet_none.to_owned());
            value(label, f.count, false, None)
        })
        .collect();
    let decade = facets
        .decade
        .into_iter()
        .map(|f| match f.value {
            Some(start) => {
                let (from, to) = (start.to_string(), (start + 9).to_string());
                let selected = form.year_from.trim() == from && form.year_to.trim() == to;
                let href = form.refined(|s| {
                    if selected {
                        s.year_from.clear();
                        s.year_to.clear();
                    } else {
                        s.year_from = from.clone();
                        s.year_to = to.clone();
                    }
                });
                value(
                    Lang::fill(t.facet_decade, start),
                    f.count,
                    selected,
                    Some(href),
                )
            }
            None => value(t.facet_no_year.to_owned(), f.count, false, None),
        })
        .collect();
    let subject = facets
        .subject
        .into_iter()
        .filter_map(|f| {
            let subject = f.value?;
            let selected = form.subject.trim().to_lowercase() == subject.to_lowercase();
            let href = form.refined(|s| {
                s.subject = if selected {
                    String::new()
                } else {
                    subject.clone()
                };
            });
            Some(value(subject, f.count, selected, Some(href)))
        })
        .collect();
    [
        ("facet-item_type", t.filter_type, item_type),
        ("facet-language", t.item_language, language),
        ("facet-decade", t.facet_decades, decade),
        ("facet-subject", t.filter_subject, subject),
    ]
    .into_iter()
    .filter(|(_, _, values): &(_, _, Vec<FacetValue>)| !values.is_empty())
    .map(|(id, heading, values)| FacetGroup {
        id,
        heading,
        values,
    })
    .collect()
}

#[derive(Debug)]
struct BranchRow {
    name: String,
    total: i64,
    available: i64,
}

#[derive(Template)]
#[template(path = "item.html")]
struct ItemPage {
    page: PageCtx,
    id: Uuid,
    title: String,
    subtitle: Option<String>,
    authors: String,
    kind: String,
    publisher: Option<String>,
    year: Option<i32>,
    isbn: Option<String>,
    language: Option<String>,
    subjects: String,
    description: Option<String>,
    branches: Vec<BranchRow>,
    /// (id, name) of every branch, for the pickup choice.
    pickup_branches: Vec<(Uuid, String)>,
    notice: Option<String>,
    problem: Option<String>,
}

/// The item page, with an optional notice or problem (after "place a hold").
async fn item_page(
    state: &AppState,
    web: &Web,
    id: Uuid,
    status: StatusCode,
    notice: Option<String>,
    problem: Option<String>,
) -> Response {
    let item = match catalog::live_item(state, id).await {
        Ok(item) => item,
        Err(error) => return web.api_problem(&error),
    };
    let names = match branch_names(state).await {
        Ok(names) => names,
        Err(error) => return web.api_problem(&error),
    };
    let kind = match state.store.list_item_types().await {
        Ok(types) => types
            .into_iter()
            .find(|t| t.code == item.item_type)
            .map_or(item.item_type.clone(), |t| t.name),
        Err(error) => return web.api_problem(&ApiError::from(error)),
    };
    let mut pickup_branches: Vec<(Uuid, String)> =
        names.iter().map(|(id, name)| (*id, name.clone())).collect();
    pickup_branches.sort_by(|a, b| a.1.cmp(&b.1));
    let branches = item
        .availability
        .iter()
        .map(|a| BranchRow {
            name: names
                .get(&a.branch_id)
                .cloned()
                .unwrap_or_else(|| a.branch_id.to_string()),
            total: a.copies_total,
            available: a.copies_available,
        })
        .collect();
    web.render(
        status,
        &ItemPage {
            page: web.page(),
            id: item.id,
            title: item.title,
            subtitle: item.subtitle,
            authors: item.authors.join("; "),
            kind,
            publisher: item.publisher,
            year: item.publication_year,
            isbn: item.isbn,
            language: item.language,
            subjects: item.subjects.join("; "),
            description: item.description,
            branches,
            pickup_branches,
            notice,
            problem,
        },
    )
}

/// Branch id → name.
pub(super) async fn branch_names(state: &AppState) -> Result<HashMap<Uuid, String>, ApiError> {
    Ok(state
        .store
        .list_branches(None, 1_000)
        .await?
        .into_iter()
        .map(|b| (b.id, b.name))
        .collect())
}

/// `/items/{id}`.
pub async fn item(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let web = Web::load(&state, &mut parts).await;
    let Ok(id) = Uuid::parse_str(&id) else {
        return web.api_problem(&ApiError::not_found());
    };
    item_page(&state, &web, id, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub struct HoldForm {
    /// A branch id; empty: the patron's home branch.
    #[serde(default)]
    pickup: String,
}

/// "Place a hold" for the signed-in patron (as `POST /api/v1/holds`),
/// picked up at the chosen branch (default: their home branch).
pub async fn place_hold(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, form) = match Web::form::<HoldForm>(&state, request, true).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let (Some(me), Ok(id)) = (web.principal.clone(), Uuid::parse_str(&id)) else {
        return web.api_problem(&ApiError::not_found());
    };
    // An unknown branch is a 404, as in the API.
    let pickup = match filled(&form.pickup).map(|p| Uuid::parse_str(&p)) {
        None => None,
        Some(Ok(branch)) => {
            match crate::http::routes::branches::require_branch(&state, branch).await {
                Ok(branch) => Some(branch.id),
                Err(error) => return web.api_problem(&error),
            }
        }
        Some(Err(_)) => return web.api_problem(&ApiError::not_found()),
    };
    let t = web.t();
    match holds::place(
        &state,
        &Actor::api(me.user_id, &client),
        id,
        me.user_id,
        pickup,
    )
    .await
    {
        Ok(hold) => {
            let notice = if hold.status == carrel_core::statuses::HoldStatus::Ready {
                format!("{} {}", t.hold_placed, t.hold_ready_now)
            } else {
                t.hold_placed.to_owned()
            };
            item_page(&state, &web, id, StatusCode::OK, Some(notice), None).await
        }
        Err(carrel_store::StoreError::Circulation(refusal)) => {
            let problem = Lang::fill(t.desk_refused, web.lang.refusal(&refusal));
            item_page(&state, &web, id, StatusCode::CONFLICT, None, Some(problem)).await
        }
        Err(error) => web.api_problem(&ApiError::from(error)),
    }
}
