//! `/admin` (administrators only): the circulation-rule matrix (view, edit
//! as a whole, simulate a checkout), users and their roles, item types and
//! patron categories. Every change goes through the use case the JSON API
//! calls (`app::admin`, `accounts::manage`), with its checks, refusals and
//! audit entries; a refusal is explained on the page, in its language.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use carrel_core::roles::Role;
use carrel_core::rules::{Rule, Specificity};
use carrel_core::statuses::ImportStatus;
use carrel_store::{StoreError, UserQuery};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::i18n::{Lang, Texts};
use super::session::{PageCtx, Web, signed_in};
use crate::accounts::AccountError;
use crate::accounts::manage::{self, StaffUpdate};
use crate::app::Actor;
use crate::app::admin::{self, AdminRefusal, MAX_RULE_ROWS};
use crate::app::circulation::{self, PatronRef};
use crate::http::client::ClientInfo;
use crate::http::error::ApiError;
use crate::http::principal::Principal;
use crate::state::AppState;

/// How many users a search lists.
const USER_ROWS: u32 = 50;

/// How many empty rows the matrix form offers for new rules.
const NEW_RULE_ROWS: usize = 3;

/// Refuses anyone but administrators.
fn admin_only(web: &Web) -> Option<Response> {
    match &web.principal {
        Some(me) if me.role == Role::Admin => None,
        Some(_) => Some(web.api_problem(&crate::http::principal::forbidden())),
        None => Some(web.to_login()),
    }
}

/// A page of `/admin`: signed in (else the sign-in page) as an administrator
/// (else 403).
async fn admin_page(state: &AppState, request: Request) -> Result<Web, Response> {
    let web = signed_in(state, request).await?;
    match admin_only(&web) {
        Some(refused) => Err(refused),
        None => Ok(web),
    }
}

/// A form POST of `/admin`: read with its CSRF check, administrators only.
async fn admin_form<T: DeserializeOwned>(
    state: &AppState,
    request: Request,
) -> Result<(Web, T, Principal), Response> {
    let (web, form, me) = Web::signed_in_form::<T>(state, request).await?;
    match admin_only(&web) {
        Some(refused) => Err(refused),
        None => Ok((web, form, me)),
    }
}

fn query_of<T: DeserializeOwned + Default>(request: &Request) -> T {
    request
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminHome {
    page: PageCtx,
}

/// `/admin`: what there is to administer.
pub async fn home(State(state): State<AppState>, request: Request) -> Response {
    match admin_page(&state, request).await {
        Ok(web) => web.render(StatusCode::OK, &AdminHome { page: web.page() }),
        Err(refused) => refused,
    }
}

// ---------------------------------------------------------------------------
// The rule matrix and the checkout simulator.

/// One option of a select.
#[derive(Debug, Clone)]
struct Choice {
    value: String,
    name: String,
    selected: bool,
}

/// What the matrix names: branches, categories and types, by id or code.
struct Names {
    branches: Vec<(String, String)>,
    categories: Vec<(String, String)>,
    types: Vec<(String, String)>,
}

impl Names {
    async fn load(state: &AppState) -> Result<Names, ApiError> {
        let mut branches: Vec<(String, String)> = super::public::branch_names(state)
            .await?
            .into_iter()
            .map(|(id, name)| (id.to_string(), name))
            .collect();
        branches.sort_by(|a, b| a.1.cmp(&b.1));
        let categories = state
            .store
            .list_patron_categories()
            .await?
            .into_iter()
            .map(|c| (c.code, c.name))
            .collect();
        let types = state
            .store
            .list_item_types()
            .await?
            .into_iter()
            .map(|t| (t.code, t.name))
            .collect();
        Ok(Names {
            branches,
            categories,
            types,
        })
    }

    /// "Any …" then every entry, `chosen` selected.
    fn choices(list: &[(String, String)], any: &str, chosen: &str) -> Vec<Choice> {
        let mut choices = vec![Choice {
            value: String::new(),
            name: any.to_owned(),
            selected: chosen.is_empty(),
        }];
        choices.extend(list.iter().map(|(value, name)| Choice {
            value: value.clone(),
            name: format!("{name} ({value})"),
            selected: value == chosen,
        }));
        choices
    }

    fn name_of(list: &[(String, String)], value: Option<&str>, any: &str) -> String {
        match value {
            None => any.to_owned(),
            Some(v) => list
                .iter()
                .find(|(code, _)| code == v)
                .map_or_else(|| v.to_owned(), |(_, name)| name.clone()),
        }
    }
}

/// One row of the matrix as the form holds it (text, as typed).
#[derive(Debug, Clone, Default)]
struct RowValues {
    branch: String,
    category: String,
    item_type: String,
    loan_days: String,
    max_renewals: String,
    daily_fine: String,
    max_fine: String,
    grace_days: String,
    replacement: String,
    max_of_type: String,
    holds: bool,
    remove: bool,
}

impl RowValues {
    fn of(rule: &Rule) -> Self {
        let p = &rule.policy;
        RowValues {
            branch: rule.branch_id.map(|b| b.to_string()).unwrap_or_default(),
            category: rule.patron_category.clone().unwrap_or_default(),
            item_type: rule.item_type.clone().unwrap_or_default(),
            loan_days: p.loan_days.to_string(),
            max_renewals: p.max_renewals.to_string(),
            daily_fine: p.daily_fine_cents.to_string(),
            max_fine: p.max_fine_cents.to_string(),
            grace_days: p.grace_days.to_string(),
            replacement: p.replacement_cost_cents.to_string(),
            max_of_type: rule
                .max_loans_of_type
                .map(|n| n.to_string())
                .unwrap_or_default(),
            holds: rule.holds_allowed,
            remove: false,
        }
    }

    /// A new, empty row: holds allowed by default, as in the API.
    fn blank() -> Self {
        RowValues {
            holds: true,
            ..Default::default()
        }
    }

    fn is_blank(&self) -> bool {
        [
            &self.branch,
            &self.category,
            &self.item_type,
            &self.loan_days,
            &self.max_renewals,
            &self.daily_fine,
            &self.max_fine,
            &self.grace_days,
            &self.replacement,
            &self.max_of_type,
        ]
        .iter()
        .all(|v| v.trim().is_empty())
    }

    fn set(&mut self, field: &str, value: String) {
        match field {
            "branch" => self.branch = value,
            "category" => self.category = value,
            "item_type" => self.item_type = value,
            "loan_days" => self.loan_days = value,
            "max_renewals" => self.max_renewals = value,
            "daily_fine" => self.daily_fine = value,
            "max_fine" => self.max_fine = value,
            "grace_days" => self.grace_days = value,
            "replacement" => self.replacement = value,
            "max_of_type" => self.max_of_type = value,
            "holds" => self.holds = true,
            "remove" => self.remove = true,
            _ => {}
        }
    }

    /// The rule this row states, or the columns (the API's field names) that
    /// are not numbers. A key column that names no branch is left to the use
    /// case to refuse, as the API does.
    fn rule(&self) -> Result<Rule, Vec<&'static str>> {
        let mut bad = Vec::new();
        fn number<T: std::str::FromStr>(
            text: &str,
            field: &'static str,
            bad: &mut Vec<&'static str>,
        ) -> Option<T> {
            let parsed = text.trim().parse().ok();
            if parsed.is_none() {
                bad.push(field);
            }
            parsed
        }
        let key = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        let branch_id = match key(&self.branch) {
            None => None,
            Some(text) => match Uuid::parse_str(&text) {
                Ok(id) => Some(id),
                Err(_) => {
                    bad.push("branch_id");
                    None
                }
            },
        };
        let loan_days = number(&self.loan_days, "loan_days", &mut bad);
        let max_renewals = number(&self.max_renewals, "max_renewals", &mut bad);
        let daily_fine = number(&self.daily_fine, "daily_fine_cents", &mut bad);
        let max_fine = number(&self.max_fine, "max_fine_cents", &mut bad);
        let grace_days = number(&self.grace_days, "grace_days", &mut bad);
        let replacement = number(&self.replacement, "replacement_cost_cents", &mut bad);
        let max_of_type = match self.max_of_type.trim() {
            "" => None,
            text => number(text, "max_loans_of_type", &mut bad),
        };
        match (
            loan_days,
            max_renewals,
            daily_fine,
            max_fine,
            grace_days,
            replacement,
        ) {
            (Some(l), Some(r), Some(d), Some(m), Some(g), Some(c)) if bad.is_empty() => Ok(Rule {
                branch_id,
                patron_category: key(&self.category),
                item_type: key(&self.item_type),
                policy: carrel_core::circulation::LoanPolicy {
                    loan_days: l,
                    max_renewals: r,
                    daily_fine_cents: d,
                    max_fine_cents: m,
                    grace_days: g,
                    replacement_cost_cents: c,
                },
                max_loans_of_type: max_of_type,
                holds_allowed: self.holds,
            }),
            _ => Err(bad),
        }
    }
}

/// One row of the matrix form.
#[derive(Debug)]
struct RuleFormRow {
    /// 1-based, as the page numbers rows.
    n: usize,
    values: RowValues,
    branches: Vec<Choice>,
    categories: Vec<Choice>,
    types: Vec<Choice>,
}

/// One row of the read-only matrix.
#[derive(Debug)]
struct RuleViewRow {
    level: &'static str,
    branch: String,
    category: String,
    item_type: String,
    loan_days: u32,
    max_renewals: u32,
    daily_fine: String,
    max_fine: String,
    grace_days: u32,
    replacement: String,
    max_of_type: String,
    holds: &'static str,
}

/// What the simulator found.
#[derive(Debug)]
struct SimulationResult {
    level: &'static str,
    loan_days: u32,
    due_iso: String,
    due: String,
    refusals: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "admin_rules.html")]
struct RulesPage {
    page: PageCtx,
    rows: Vec<RuleViewRow>,
    card: String,
    barcode: String,
    branches: Vec<Choice>,
    simulation: Option<SimulationResult>,
    notice: Option<String>,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_rules_edit.html")]
struct RulesEditPage {
    page: PageCtx,
    rows: Vec<RuleFormRow>,
    problems: Vec<String>,
}

/// The name of a matrix level, in the page's language.
fn level_name(t: &Texts, level: Specificity) -> &'static str {
    match level {
        Specificity::BranchCategoryType => t.rules_level_branch_category_type,
        Specificity::BranchCategory => t.rules_level_branch_category,
        Specificity::BranchType => t.rules_level_branch_type,
        Specificity::Branch => t.rules_level_branch,
        Specificity::CategoryType => t.rules_level_category_type,
        Specificity::Category => t.rules_level_category,
        Specificity::Type => t.rules_level_type,
        Specificity::Default => t.rules_level_default,
    }
}

#[derive(Debug, Default, Deserialize)]
struct RulesQuery {
    #[serde(default)]
    card: String,
    #[serde(default)]
    barcode: String,
    #[serde(default)]
    branch: String,
    #[serde(default)]
    saved: Option<String>,
}

/// `/admin/rules`: the matrix, most specific rows first, and the checkout
/// simulator (`?card=&barcode=&branch=`, as `POST
/// /api/v1/circulation-rules/simulate`: it changes nothing).
pub async fn rules(State(state): State<AppState>, request: Request) -> Response {
    let query: RulesQuery = query_of(&request);
    let web = match admin_page(&state, request).await {
        Ok(web) => web,
        Err(refused) => return refused,
    };
    let t = web.t();
    let (names, rules) = match async {
        Ok::<_, ApiError>((Names::load(&state).await?, state.store.list_rules().await?))
    }
    .await
    {
        Ok(loaded) => loaded,
        Err(error) => return web.api_problem(&error),
    };
    let currency = &state.config.currency;
    let money = |cents: i64| web.lang.money(cents, currency);
    let rows = rules
        .iter()
        .map(|r| RuleViewRow {
            level: level_name(t, r.specificity()),
            branch: Names::name_of(
                &names.branches,
                r.branch_id.map(|b| b.to_string()).as_deref(),
                t.rules_any,
            ),
            category: Names::name_of(&names.categories, r.patron_category.as_deref(), t.rules_any),
            item_type: Names::name_of(&names.types, r.item_type.as_deref(), t.rules_any),
            loan_days: r.policy.loan_days,
            max_renewals: r.policy.max_renewals,
            daily_fine: money(r.policy.daily_fine_cents),
            max_fine: money(r.policy.max_fine_cents),
            grace_days: r.policy.grace_days,
            replacement: money(r.policy.replacement_cost_cents),
            max_of_type: r
                .max_loans_of_type
                .map_or_else(|| t.rules_no_limit.to_owned(), |n| n.to_string()),
            holds: if r.holds_allowed { t.yes } else { t.no },
        })
        .collect();
    let mut status = StatusCode::OK;
    let mut problem = None;
    let mut simulation = None;
    let card = query.card.trim().to_owned();
    let barcode = query.barcode.trim().to_owned();
    let branch = query.branch.trim().to_owned();
    if !card.is_empty() || !barcode.is_empty() {
        match simulate(&state, &web, &card, &barcode, &branch).await {
            Ok(result) => simulation = Some(result),
            Err((code, why)) => {
                status = code;
                problem = Some(Lang::fill(t.desk_refused, why));
            }
        }
    }
    let page = RulesPage {
        page: web.page(),
        rows,
        branches: Names::choices(&names.branches, t.rules_sim_home_branch, &branch),
        card,
        barcode,
        simulation,
        notice: query.saved.map(|_| t.rules_saved.to_owned()),
        problem,
    };
    web.render(status, &page)
}

/// Runs checkout's decision without checking out (as the API's simulate).
async fn simulate(
    state: &AppState,
    web: &Web,
    card: &str,
    barcode: &str,
    branch: &str,
) -> Result<SimulationResult, (StatusCode, String)> {
    let t = web.t();
    let not_found = |why: &str| (StatusCode::NOT_FOUND, why.to_owned());
    if card.is_empty() || barcode.is_empty() {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            t.rules_sim_both.to_owned(),
        ));
    }
    let patron = match circulation::resolve_patron(state, PatronRef::Card(card)).await {
        Ok(id) => id,
        Err(StoreError::NotFound) => return Err(not_found(t.desk_no_match)),
        Err(error) => return Err(failure(web, error)),
    };
    let branch_id = match branch {
        "" => None,
        text => {
            let id = Uuid::parse_str(text).map_err(|_| not_found(t.error_not_found))?;
            crate::http::routes::branches::require_branch(state, id)
                .await
                .map_err(|e| (e.status(), web.describe(&e)))?;
            Some(id)
        }
    };
    match circulation::simulate_checkout(state, barcode, patron, branch_id, None).await {
        Ok(simulation) => Ok(SimulationResult {
            level: level_name(t, simulation.matched),
            loan_days: simulation.rule.policy.loan_days,
            due_iso: carrel_core::calendar::format_date(simulation.due_date),
            due: web.lang.date(simulation.due_date),
            refusals: simulation
                .refusals
                .iter()
                .map(|r| web.lang.refusal(r))
                .collect(),
        }),
        Err(StoreError::NotFound) => Err(not_found(t.rules_sim_no_copy)),
        Err(error) => Err(failure(web, error)),
    }
}

fn failure(web: &Web, error: StoreError) -> (StatusCode, String) {
    let error = ApiError::from(error);
    (error.status(), web.describe(&error))
}

/// The matrix form's rows: these values, then empty rows for new rules.
fn form_rows(t: &Texts, names: &Names, values: Vec<RowValues>) -> Vec<RuleFormRow> {
    values
        .into_iter()
        .chain(std::iter::repeat_with(RowValues::blank).take(NEW_RULE_ROWS))
        .enumerate()
        .map(|(i, values)| RuleFormRow {
            n: i + 1,
            branches: Names::choices(&names.branches, t.rules_any, &values.branch),
            categories: Names::choices(&names.categories, t.rules_any, &values.category),
            types: Names::choices(&names.types, t.rules_any, &values.item_type),
            values,
        })
        .collect()
}

/// `/admin/rules/edit`: the whole matrix as one form.
pub async fn edit_rules(State(state): State<AppState>, request: Request) -> Response {
    let web = match admin_page(&state, request).await {
        Ok(web) => web,
        Err(refused) => return refused,
    };
    let loaded =
        async { Ok::<_, ApiError>((Names::load(&state).await?, state.store.list_rules().await?)) };
    let (names, rules) = match loaded.await {
        Ok(loaded) => loaded,
        Err(error) => return web.api_problem(&error),
    };
    let rows = form_rows(web.t(), &names, rules.iter().map(RowValues::of).collect());
    web.render(
        StatusCode::OK,
        &RulesEditPage {
            page: web.page(),
            rows,
            problems: Vec::new(),
        },
    )
}

/// What a column is called and what it takes, for a refusal.
fn column_problem(t: &Texts, field: &str) -> String {
    let (name, hint) = match field {
        "branch_id" => (t.rules_branch, t.rules_hint_defined),
        "patron_category" => (t.rules_category, t.rules_hint_defined),
        "item_type" => (t.rules_type, t.rules_hint_defined),
        "loan_days" => (t.rules_loan_days, t.rules_hint_loan_days),
        "max_renewals" => (t.rules_renewals, t.rules_hint_renewals),
        "daily_fine_cents" => (t.rules_daily_fine, t.rules_hint_cents),
        "max_fine_cents" => (t.rules_max_fine, t.rules_hint_cents),
        "grace_days" => (t.rules_grace_days, t.rules_hint_grace_days),
        "replacement_cost_cents" => (t.rules_replacement, t.rules_hint_cents),
        "max_loans_of_type" => (t.rules_max_of_type, t.rules_hint_max_of_type),
        _ => (field, ""),
    };
    format!("{name}: {hint}")
}

/// Replaces the whole matrix (as `PUT /api/v1/circulation-rules`): the rows
/// not left empty or marked for removal, in the form's order. A refusal shows
/// the form again as sent, each problem named by row and column; nothing is
/// changed.
pub async fn save_rules(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, pairs, me) = match admin_form::<Vec<(String, String)>>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    // `r{i}.{field}`: the rows, in the form's order.
    let mut by_row: BTreeMap<usize, RowValues> = BTreeMap::new();
    for (name, value) in pairs {
        let Some((row, field)) = name
            .strip_prefix('r')
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(i, field)| Some((i.parse::<usize>().ok()?, field.to_owned())))
        else {
            continue;
        };
        by_row.entry(row).or_insert_with(|| RowValues {
            holds: false,
            ..Default::default()
        });
        if let Some(values) = by_row.get_mut(&row) {
            values.set(&field, value);
        }
    }
    let values: Vec<RowValues> = by_row.into_values().collect();
    let mut rules = Vec::new();
    // The page's row number of each rule sent to the use case.
    let mut origin = Vec::new();
    let mut problems = Vec::new();
    for (i, row) in values.iter().enumerate() {
        if row.remove || row.is_blank() {
            continue;
        }
        match row.rule() {
            Ok(rule) => {
                rules.push(rule);
                origin.push(i + 1);
            }
            Err(fields) => {
                for field in fields {
                    let what = column_problem(t, field);
                    problems.push(Lang::fill(&Lang::fill(t.rules_row_problem, i + 1), what));
                }
            }
        }
    }
    let refusal = if problems.is_empty() {
        let actor = Actor::api(me.user_id, &client);
        let count = rules.len();
        match admin::replace_rules(&state, &actor, rules).await {
            Ok(_) => return web.redirect("/admin/rules?saved=1"),
            Err(AdminRefusal::Invalid(fields)) => {
                for (path, _) in fields {
                    problems.push(matrix_problem(t, &path, &origin, count));
                }
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(AdminRefusal::Store(error)) => return web.api_problem(&ApiError::from(error)),
        }
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let names = match Names::load(&state).await {
        Ok(names) => names,
        Err(error) => return web.api_problem(&error),
    };
    // The form again as sent (rows marked for removal gone, empty ones kept
    // as the new rows), so the administrator can correct it.
    let kept: Vec<RowValues> = values
        .into_iter()
        .filter(|r| !r.remove && !r.is_blank())
        .collect();
    web.render(
        refusal,
        &RulesEditPage {
            page: web.page(),
            rows: form_rows(t, &names, kept),
            problems,
        },
    )
}

/// A refusal of the use case (`data[i].field`, `data[i]`, `data`) named by
/// the page's row and column.
fn matrix_problem(t: &Texts, path: &str, origin: &[usize], rows: usize) -> String {
    let Some(rest) = path.strip_prefix("data[") else {
        return if rows > MAX_RULE_ROWS {
            t.rules_too_many.to_owned()
        } else {
            t.rules_no_default.to_owned()
        };
    };
    let (index, field) = match rest.split_once(']') {
        Some((index, field)) => (index.parse::<usize>().ok(), field.trim_start_matches('.')),
        None => (None, ""),
    };
    let row = index.and_then(|i| origin.get(i).copied()).unwrap_or(0);
    if field.is_empty() {
        Lang::fill(t.rules_duplicate, row)
    } else {
        Lang::fill(
            &Lang::fill(t.rules_row_problem, row),
            column_problem(t, field),
        )
    }
}

// ---------------------------------------------------------------------------
// Users and roles.

#[derive(Debug)]
struct UserRow {
    id: Uuid,
    name: String,
    username: String,
    email: String,
    card: String,
    roles: Vec<Choice>,
    active: bool,
    role_label: String,
    active_label: String,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    page: PageCtx,
    q: String,
    users: Vec<UserRow>,
    searched: bool,
    notice: Option<String>,
    problem: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct UsersQuery {
    #[serde(default)]
    q: String,
}

fn role_name(t: &Texts, role: Role) -> &'static str {
    match role {
        Role::Admin => t.role_admin,
        Role::Librarian => t.role_librarian,
        Role::Patron => t.role_patron,
    }
}

async fn users_page(
    state: &AppState,
    web: &Web,
    status: StatusCode,
    q: &str,
    notice: Option<String>,
    problem: Option<String>,
) -> Response {
    let t = web.t();
    let q = q.trim();
    let query = UserQuery {
        q: Some(q.chars().take(100).collect::<String>()).filter(|q| !q.is_empty()),
        limit: USER_ROWS,
        ..Default::default()
    };
    let users = match manage::list_for_staff(state, query).await {
        Ok(users) => users,
        Err(error) => return web.api_problem(&ApiError::from(error)),
    };
    let users = users
        .into_iter()
        .take(USER_ROWS as usize)
        .map(|u| {
            let name = u
                .full_name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| u.username.clone());
            UserRow {
                id: u.id,
                roles: Role::ALL
                    .iter()
                    .map(|r| Choice {
                        value: r.as_str().to_owned(),
                        name: role_name(t, *r).to_owned(),
                        selected: *r == u.role,
                    })
                    .collect(),
                role_label: Lang::fill(t.users_role_of, &name),
                active_label: Lang::fill(
                    if u.is_active {
                        t.users_deactivate_label
                    } else {
                        t.users_reactivate_label
                    },
                    &name,
                ),
                active: u.is_active,
                username: u.username,
                email: u.email,
                card: u.card_number.unwrap_or_default(),
                name,
            }
        })
        .collect();
    web.render(
        status,
        &UsersPage {
            page: web.page(),
            q: q.to_owned(),
            users,
            searched: !q.is_empty(),
            notice,
            problem,
        },
    )
}

/// `/admin/users?q=`: accounts whose name, username or email contains `q`
/// (the newest first), each with its role and whether it is active.
pub async fn users(State(state): State<AppState>, request: Request) -> Response {
    let query: UsersQuery = query_of(&request);
    match admin_page(&state, request).await {
        Ok(web) => users_page(&state, &web, StatusCode::OK, &query.q, None, None).await,
        Err(refused) => refused,
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
    #[serde(default)]
    q: String,
}

#[derive(Deserialize)]
pub struct ActiveForm {
    active: bool,
    #[serde(default)]
    q: String,
}

/// The users page after a change: the notice, or the refusal explained.
async fn after_user_change(
    state: &AppState,
    web: &Web,
    me: &Principal,
    id: Uuid,
    q: &str,
    outcome: Result<String, AccountError>,
) -> Response {
    let t = web.t();
    match outcome {
        Ok(notice) => users_page(state, web, StatusCode::OK, q, Some(notice), None).await,
        Err(AccountError::Forbidden) if id == me.user_id => {
            let problem = Lang::fill(t.desk_refused, t.users_not_yourself);
            users_page(state, web, StatusCode::FORBIDDEN, q, None, Some(problem)).await
        }
        Err(error) => {
            let error = ApiError::from(error);
            let problem = Lang::fill(t.desk_refused, web.describe(&error));
            users_page(state, web, error.status(), q, None, Some(problem)).await
        }
    }
}

/// Changes a user's role (as `PATCH /api/v1/users/{id}` with `role`): the
/// same refusals (not one's own role) and the same `user.role_changed` entry.
pub async fn set_role(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, form, me) = match admin_form::<RoleForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let Ok(id) = Uuid::parse_str(&id) else {
        return web.api_problem(&ApiError::not_found());
    };
    let Some(role) = Role::ALL.into_iter().find(|r| r.as_str() == form.role) else {
        return web.problem(StatusCode::UNPROCESSABLE_ENTITY, t.error_invalid);
    };
    let update = StaffUpdate {
        role: Some(role),
        ..Default::default()
    };
    let outcome = manage::update_by_staff(&state, &client, &me, id, update)
        .await
        .map(|user| {
            Lang::fill(
                &Lang::fill(t.users_role_changed, &user.username),
                role_name(t, role),
            )
        });
    after_user_change(&state, &web, &me, id, &form.q, outcome).await
}

/// Deactivates or reactivates an account (as `PATCH /api/v1/users/{id}` with
/// `is_active`); never one's own.
pub async fn set_active(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, form, me) = match admin_form::<ActiveForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let Ok(id) = Uuid::parse_str(&id) else {
        return web.api_problem(&ApiError::not_found());
    };
    let update = StaffUpdate {
        is_active: Some(form.active),
        ..Default::default()
    };
    let outcome = manage::update_by_staff(&state, &client, &me, id, update)
        .await
        .map(|user| {
            Lang::fill(
                if form.active {
                    t.users_reactivated
                } else {
                    t.users_deactivated
                },
                &user.username,
            )
        });
    after_user_change(&state, &web, &me, id, &form.q, outcome).await
}

// ---------------------------------------------------------------------------
// Item types and patron categories.

#[derive(Debug)]
struct TypeRow {
    code: String,
    name: String,
    rename_label: String,
    delete_label: String,
}

#[derive(Debug)]
struct CategoryRow {
    code: String,
    name: String,
    max_loans: String,
    max_holds: String,
    save_label: String,
    delete_label: String,
}

#[derive(Template)]
#[template(path = "admin_types.html")]
struct TypesPage {
    page: PageCtx,
    types: Vec<TypeRow>,
    categories: Vec<CategoryRow>,
    notice: Option<String>,
    problem: Option<String>,
}

async fn types_page(
    state: &AppState,
    web: &Web,
    status: StatusCode,
    notice: Option<String>,
    problem: Option<String>,
) -> Response {
    let t = web.t();
    let loaded = async {
        Ok::<_, ApiError>((
            state.store.list_item_types().await?,
            state.store.list_patron_categories().await?,
        ))
    };
    let (types, categories) = match loaded.await {
        Ok(loaded) => loaded,
        Err(error) => return web.api_problem(&error),
    };
    let limit = |n: Option<i32>| n.map(|n| n.to_string()).unwrap_or_default();
    web.render(
        status,
        &TypesPage {
            page: web.page(),
            types: types
                .into_iter()
                .map(|it| TypeRow {
                    rename_label: Lang::fill(t.types_rename_label, &it.code),
                    delete_label: Lang::fill(t.types_delete_label, &it.code),
                    code: it.code,
                    name: it.name,
                })
                .collect(),
            categories: categories
                .into_iter()
                .map(|c| CategoryRow {
                    save_label: Lang::fill(t.types_save_label, &c.code),
                    delete_label: Lang::fill(t.types_delete_label, &c.code),
                    max_loans: limit(c.max_active_loans),
                    max_holds: limit(c.max_active_holds),
                    code: c.code,
                    name: c.name,
                })
                .collect(),
            notice,
            problem,
        },
    )
}

/// `/admin/types`: item types and patron categories.
pub async fn types(State(state): State<AppState>, request: Request) -> Response {
    match admin_page(&state, request).await {
        Ok(web) => types_page(&state, &web, StatusCode::OK, None, None).await,
        Err(refused) => refused,
    }
}

/// The types page after a change: the notice, or the refusal explained
/// (`in_use`: why the store refuses a deletion).
async fn after_types_change<T>(
    state: &AppState,
    web: &Web,
    outcome: Result<T, AdminRefusal>,
    done: String,
    in_use: &str,
) -> Response {
    let t = web.t();
    let (status, why) = match outcome {
        Ok(_) => return types_page(state, web, StatusCode::OK, Some(done), None).await,
        Err(AdminRefusal::Store(StoreError::Refused(_))) => {
            (StatusCode::CONFLICT, in_use.to_owned())
        }
        Err(AdminRefusal::Store(StoreError::Conflict { .. })) => {
            (StatusCode::CONFLICT, t.types_code_taken.to_owned())
        }
        Err(other) => {
            let error = ApiError::from(other);
            (error.status(), web.describe(&error))
        }
    };
    let problem = Lang::fill(t.desk_refused, why);
    types_page(state, web, status, None, Some(problem)).await
}

#[derive(Deserialize)]
pub struct TypeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
}

/// Defines an item type (as `POST /api/v1/item-types`).
pub async fn create_type(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form, me) = match admin_form::<TypeForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let actor = Actor::api(me.user_id, &client);
    let code = form.code.trim().to_owned();
    let done = Lang::fill(t.types_created, &code);
    let outcome = admin::create_item_type(&state, &actor, code, &form.name).await;
    after_types_change(&state, &web, outcome, done, t.types_in_use).await
}

/// Renames an item type (as `PATCH /api/v1/item-types/{code}`).
pub async fn rename_type(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(code): Path<String>,
    request: Request,
) -> Response {
    let (web, form, me) = match admin_form::<TypeForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let actor = Actor::api(me.user_id, &client);
    let outcome = admin::rename_item_type(&state, &actor, &code, &form.name).await;
    let done = Lang::fill(t.types_saved, &code);
    after_types_change(&state, &web, outcome, done, t.types_in_use).await
}

#[derive(Deserialize)]
pub struct EmptyForm {}

/// Deletes an item type (as `DELETE /api/v1/item-types/{code}`): refused,
/// and explained, while items or rules name it.
pub async fn delete_type(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(code): Path<String>,
    request: Request,
) -> Response {
    let (web, _, me) = match admin_form::<EmptyForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let actor = Actor::api(me.user_id, &client);
    let outcome = admin::delete_item_type(&state, &actor, &code).await;
    let done = Lang::fill(t.types_deleted, &code);
    after_types_change(&state, &web, outcome, done, t.types_in_use).await
}

#[derive(Deserialize)]
pub struct CategoryForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    max_loans: String,
    #[serde(default)]
    max_holds: String,
}

/// A limit as typed: empty is "no limit"; anything but a number names its
/// field as the API does.
fn typed_limit(text: &str, field: &str, bad: &mut Vec<(String, String)>) -> Option<Option<u32>> {
    match text.trim() {
        "" => Some(None),
        text => match text.parse::<u32>() {
            Ok(n) => Some(Some(n)),
            Err(_) => {
                bad.push((field.to_owned(), "must be a whole number".to_owned()));
                None
            }
        },
    }
}

fn category_limits(form: &CategoryForm) -> Result<(Option<u32>, Option<u32>), AdminRefusal> {
    let mut bad = Vec::new();
    let loans = typed_limit(&form.max_loans, "max_active_loans", &mut bad);
    let holds = typed_limit(&form.max_holds, "max_active_holds", &mut bad);
    match (loans, holds) {
        (Some(loans), Some(holds)) => Ok((loans, holds)),
        _ => Err(AdminRefusal::Invalid(bad)),
    }
}

/// Defines a patron category (as `POST /api/v1/patron-categories`).
pub async fn create_category(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form, me) = match admin_form::<CategoryForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let actor = Actor::api(me.user_id, &client);
    let code = form.code.trim().to_owned();
    let done = Lang::fill(t.types_created, &code);
    let outcome = match category_limits(&form) {
        Ok((max_active_loans, max_active_holds)) => {
            let new = admin::NewCategory {
                code,
                name: form.name,
                max_active_loans,
                max_active_holds,
            };
            admin::create_category(&state, &actor, new).await
        }
        Err(refused) => Err(refused),
    };
    after_types_change(&state, &web, outcome, done, t.categories_in_use).await
}

/// Changes a patron category's name and limits (as `PATCH
/// /api/v1/patron-categories/{code}`; an empty limit is no limit).
pub async fn update_category(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(code): Path<String>,
    request: Request,
) -> Response {
    let (web, form, me) = match admin_form::<CategoryForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let actor = Actor::api(me.user_id, &client);
    let outcome = match category_limits(&form) {
        Ok((loans, holds)) => {
            let update = admin::CategoryUpdate {
                name: Some(form.name),
                max_active_loans: Some(loans),
                max_active_holds: Some(holds),
            };
            admin::update_category(&state, &actor, &code, update).await
        }
        Err(refused) => Err(refused),
    };
    let done = Lang::fill(t.types_saved, &code);
    after_types_change(&state, &web, outcome, done, t.categories_in_use).await
}

/// Deletes a patron category (as `DELETE /api/v1/patron-categories/{code}`):
/// refused, and explained, for the default one and while users or rules name
/// it.
pub async fn delete_category(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(code): Path<String>,
    request: Request,
) -> Response {
    let (web, _, me) = match admin_form::<EmptyForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let actor = Actor::api(me.user_id, &client);
    let outcome = admin::delete_category(&state, &actor, &code).await;
    let done = Lang::fill(t.types_deleted, &code);
    after_types_change(&state, &web, outcome, done, t.categories_in_use).await
}

// ---------------------------------------------------------------------------
// Branches and their calendars.

#[derive(Debug)]
struct BranchRow {
    id: Uuid,
    code: String,
    name: String,
    timezone: String,
    address: String,
    calendar_set: bool,
}

#[derive(Template)]
#[template(path = "admin_branches.html")]
struct BranchesPage {
    page: PageCtx,
    branches: Vec<BranchRow>,
    library_zone: String,
    /// The create form as sent (after a refusal).
    form: BranchFields,
    notice: Option<String>,
    problem: Option<String>,
}

/// A branch's fields as the forms hold them.
#[derive(Debug, Default, Deserialize)]
pub struct BranchFields {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    address: String,
}

/// One weekday of the calendar form.
#[derive(Debug)]
struct DayField {
    key: &'static str,
    name: &'static str,
    hours: String,
}

#[derive(Template)]
#[template(path = "admin_branch.html")]
struct BranchPage {
    page: PageCtx,
    id: Uuid,
    heading: String,
    form: BranchFields,
    days: Vec<DayField>,
    closed_dates: String,
    library_zone: String,
    notice: Option<String>,
    problems: Vec<String>,
}

fn day_names(t: &Texts) -> [&'static str; 7] {
    [
        t.weekday_mon,
        t.weekday_tue,
        t.weekday_wed,
        t.weekday_thu,
        t.weekday_fri,
        t.weekday_sat,
        t.weekday_sun,
    ]
}

async fn branches_page(
    state: &AppState,
    web: &Web,
    status: StatusCode,
    form: BranchFields,
    notice: Option<String>,
    problem: Option<String>,
) -> Response {
    let branches = match state.store.list_branches(None, 1_000).await {
        Ok(branches) => branches,
        Err(error) => return web.api_problem(&ApiError::from(error)),
    };
    let mut branches: Vec<BranchRow> = branches
        .into_iter()
        .map(|b| BranchRow {
            id: b.id,
            code: b.code,
            name: b.name,
            timezone: b.timezone.unwrap_or_default(),
            address: b.address.unwrap_or_default(),
            calendar_set: b.calendar_set_at.is_some(),
        })
        .collect();
    branches.sort_by(|a, b| a.name.cmp(&b.name));
    web.render(
        status,
        &BranchesPage {
            page: web.page(),
            branches,
            library_zone: state.config.timezone.name().to_owned(),
            form,
            notice,
            problem,
        },
    )
}

/// `/admin/branches`: every branch, and a form to add one.
pub async fn branches(State(state): State<AppState>, request: Request) -> Response {
    match admin_page(&state, request).await {
        Ok(web) => {
            branches_page(
                &state,
                &web,
                StatusCode::OK,
                BranchFields::default(),
                None,
                None,
            )
            .await
        }
        Err(refused) => refused,
    }
}

/// A branch refusal, explained: a taken code, or the fields at fault.
fn branch_refusal(web: &Web, error: ApiError) -> (StatusCode, String) {
    (error.status(), web.describe(&error))
}

fn text_or_none(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// Adds a branch (as `POST /api/v1/branches`).
pub async fn create_branch(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form, me) = match admin_form::<BranchFields>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let checked = admin::check_new_branch(
        form.code.trim().to_owned(),
        &form.name,
        text_or_none(&form.timezone),
        text_or_none(&form.address),
    );
    let (status, why) = match checked {
        Ok(branch) => {
            let actor = Actor::api(me.user_id, &client);
            match admin::create_branch(&state, &actor, &branch).await {
                Ok(branch) => {
                    return web.redirect(&format!("/admin/branches/{}?created=1", branch.id));
                }
                Err(StoreError::Conflict { .. }) => {
                    (StatusCode::CONFLICT, t.types_code_taken.to_owned())
                }
                Err(error) => branch_refusal(&web, ApiError::from(error)),
            }
        }
        Err(fields) => branch_refusal(&web, ApiError::invalid_fields(fields)),
    };
    let problem = Lang::fill(t.desk_refused, why);
    branches_page(&state, &web, status, form, None, Some(problem)).await
}

#[derive(Debug, Default, Deserialize)]
struct BranchQuery {
    created: Option<String>,
    saved: Option<String>,
}

/// The page of one branch: its fields and its opening calendar.
async fn branch_page(
    state: &AppState,
    web: &Web,
    status: StatusCode,
    id: Uuid,
    sent: Option<(BranchFields, Vec<String>, String)>,
    notice: Option<String>,
    problems: Vec<String>,
) -> Response {
    let t = web.t();
    let stored = match state.store.branch_calendar(id).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return web.api_problem(&ApiError::not_found()),
        Err(error) => return web.api_problem(&ApiError::from(error)),
    };
    let branch = match state.store.find_branch(id).await {
        Ok(Some(branch)) => branch,
        Ok(None) => return web.api_problem(&ApiError::not_found()),
        Err(error) => return web.api_problem(&ApiError::from(error)),
    };
    let hours: Vec<String> = stored
        .calendar
        .weekly()
        .iter()
        .map(|day| {
            day.iter()
                .map(|h| {
                    format!(
                        "{}-{}",
                        carrel_core::calendar::format_clock(h.opens),
                        carrel_core::calendar::format_clock(h.closes)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let closed: String = stored
        .calendar
        .closed_dates()
        .map(carrel_core::calendar::format_date)
        .collect::<Vec<_>>()
        .join("\n");
    let (form, hours, closed) = match sent {
        Some(sent) => sent,
        None => (
            BranchFields {
                code: branch.code.clone(),
                name: branch.name.clone(),
                timezone: branch.timezone.clone().unwrap_or_default(),
                address: branch.address.clone().unwrap_or_default(),
            },
            hours,
            closed,
        ),
    };
    let days = carrel_core::calendar::WEEKDAY_NAMES
        .iter()
        .zip(day_names(t))
        .zip(hours)
        .map(|((key, name), hours)| DayField { key, name, hours })
        .collect();
    web.render(
        status,
        &BranchPage {
            page: web.page(),
            id,
            heading: Lang::fill(t.branches_edit_heading, &branch.name),
            form,
            days,
            closed_dates: closed,
            library_zone: state.config.timezone.name().to_owned(),
            notice,
            problems,
        },
    )
}

/// `/admin/branches/{id}`: one branch's fields and calendar.
pub async fn branch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let query: BranchQuery = query_of(&request);
    let web = match admin_page(&state, request).await {
        Ok(web) => web,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return web.api_problem(&ApiError::not_found());
    };
    let t = web.t();
    let notice = if query.created.is_some() {
        Some(t.branches_created.to_owned())
    } else {
        query.saved.map(|_| t.branches_saved.to_owned())
    };
    branch_page(&state, &web, StatusCode::OK, id, None, notice, Vec::new()).await
}

/// Changes a branch (as `PATCH /api/v1/branches/{id}`; an empty zone is the
/// library's, an empty address none). Loans already made keep their dates.
pub async fn update_branch(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, form, me) = match admin_form::<BranchFields>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return web.api_problem(&ApiError::not_found());
    };
    let t = web.t();
    let checked = admin::check_branch_changes(
        Some(form.code.trim().to_owned()),
        Some(&form.name),
        Some(text_or_none(&form.timezone)),
        Some(text_or_none(&form.address)),
    );
    let (status, why) = match checked {
        Ok(changes) => {
            let actor = Actor::api(me.user_id, &client);
            match admin::update_branch(&state, &actor, id, &changes).await {
                Ok(_) => return web.redirect(&format!("/admin/branches/{id}?saved=1")),
                Err(StoreError::Conflict { .. }) => {
                    (StatusCode::CONFLICT, t.types_code_taken.to_owned())
                }
                Err(error) => branch_refusal(&web, ApiError::from(error)),
            }
        }
        Err(fields) => branch_refusal(&web, ApiError::invalid_fields(fields)),
    };
    let problem = Lang::fill(t.desk_refused, why);
    branch_page(&state, &web, status, id, None, None, vec![problem]).await
}

#[derive(Debug, Default, Deserialize)]
pub struct CalendarForm {
    #[serde(default)]
    mon: String,
    #[serde(default)]
    tue: String,
    #[serde(default)]
    wed: String,
    #[serde(default)]
    thu: String,
    #[serde(default)]
    fri: String,
    #[serde(default)]
    sat: String,
    #[serde(default)]
    sun: String,
    #[serde(default)]
    closed_dates: String,
}

/// A day's hours as typed ("09:00-12:00, 14:00-18:00"; empty: closed) as
/// the API's intervals; a piece without a dash is an interval the
/// calendar's own check refuses.
fn typed_hours(text: &str) -> Vec<[String; 2]> {
    text.split([',', ';'])
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.split_once(['-', '–']) {
            Some((opens, closes)) => [opens.trim().to_owned(), closes.trim().to_owned()],
            None => [piece.to_owned(), String::new()],
        })
        .collect()
}

/// A calendar problem (`weekly.mon[0]`, `closed_dates[3]`, `closed_dates`)
/// named by its day or date, in the page's language.
fn calendar_problem(t: &Texts, field: &str, dates: &[String]) -> String {
    if let Some(rest) = field.strip_prefix("weekly.") {
        let key = rest.split('[').next().unwrap_or(rest);
        let index = carrel_core::calendar::WEEKDAY_NAMES
            .iter()
            .position(|d| *d == key)
            .unwrap_or(0);
        return Lang::fill(t.branches_bad_hours, day_names(t)[index]);
    }
    match field
        .strip_prefix("closed_dates[")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(n) => Lang::fill(
            t.branches_bad_date,
            dates.get(n).map(String::as_str).unwrap_or_default(),
        ),
        None => t.branches_too_many_dates.to_owned(),
    }
}

/// Replaces a branch's opening calendar (as `PUT
/// /api/v1/branches/{id}/calendar`): weekly hours and closed dates. A
/// refusal shows the form as sent, each problem named; nothing changes.
pub async fn set_calendar(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, form, me) = match admin_form::<CalendarForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return web.api_problem(&ApiError::not_found());
    };
    let t = web.t();
    let typed = [
        &form.mon, &form.tue, &form.wed, &form.thu, &form.fri, &form.sat, &form.sun,
    ];
    let weekly: [Vec<[String; 2]>; 7] = typed.map(|day| typed_hours(day));
    let dates: Vec<String> = form
        .closed_dates
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    let problems = match carrel_core::calendar::OpeningCalendar::parse(&weekly, &dates) {
        Ok(calendar) => {
            let actor = Actor::api(me.user_id, &client);
            match admin::set_calendar(&state, &actor, id, &calendar).await {
                Ok(_) => return web.redirect(&format!("/admin/branches/{id}?saved=1")),
                Err(error) => return web.api_problem(&ApiError::from(error)),
            }
        }
        Err(problems) => {
            let mut named: Vec<String> = problems
                .iter()
                .map(|(field, _)| calendar_problem(t, field, &dates))
                .collect();
            named.dedup();
            named
        }
    };
    let branch = match state.store.find_branch(id).await {
        Ok(Some(branch)) => branch,
        Ok(None) => return web.api_problem(&ApiError::not_found()),
        Err(error) => return web.api_problem(&ApiError::from(error)),
    };
    let fields = BranchFields {
        code: branch.code,
        name: branch.name,
        timezone: branch.timezone.unwrap_or_default(),
        address: branch.address.unwrap_or_default(),
    };
    let sent = (
        fields,
        typed.iter().map(|d| d.trim().to_owned()).collect(),
        form.closed_dates.trim().to_owned(),
    );
    let mut explained = vec![t.branches_calendar_refused.to_owned()];
    explained.extend(problems);
    branch_page(
        &state,
        &web,
        StatusCode::UNPROCESSABLE_ENTITY,
        id,
        Some(sent),
        None,
        explained,
    )
    .await
}

// ---------------------------------------------------------------------------
// MARC imports.

/// How many import jobs the page lists (the newest).
const IMPORT_ROWS: u32 = 50;

#[derive(Debug)]
struct ImportRowView {
    file: String,
    status: &'static str,
    progress: String,
    created: i64,
    updated: i64,
    skipped: i64,
    failed: i64,
    started: String,
    error: String,
}

#[derive(Template)]
#[template(path = "admin_imports.html")]
struct ImportsPage {
    page: PageCtx,
    imports: Vec<ImportRowView>,
    max_mib: u64,
    notice: Option<String>,
    problem: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ImportsQuery {
    started: Option<String>,
}

async fn imports_page(
    state: &AppState,
    web: &Web,
    status: StatusCode,
    notice: Option<String>,
    problem: Option<String>,
) -> Response {
    let t = web.t();
    let rows = match state.store.list_imports(IMPORT_ROWS).await {
        Ok(rows) => rows,
        Err(error) => return web.api_problem(&ApiError::from(error)),
    };
    let zone = &state.config.timezone;
    let imports = rows
        .into_iter()
        .map(|r| ImportRowView {
            file: r.file_name.clone().unwrap_or_default(),
            status: match r.status {
                ImportStatus::Queued => t.imports_queued,
                ImportStatus::Running => t.imports_running,
                ImportStatus::Done => t.imports_done,
                ImportStatus::Failed => t.imports_failed,
            },
            progress: match r.total {
                Some(total) if total > 0 => Lang::fill(
                    &Lang::fill(&Lang::fill(t.imports_progress, r.processed), total),
                    r.processed.saturating_mul(100) / total,
                ),
                _ => r.processed.to_string(),
            },
            created: r.created,
            updated: r.updated,
            skipped: r.skipped,
            failed: r.failed,
            started: web
                .lang
                .date_time(zone, r.started_at.unwrap_or(r.created_at)),
            error: r.error.unwrap_or_default(),
        })
        .collect();
    web.render(
        status,
        &ImportsPage {
            page: web.page(),
            imports,
            max_mib: state.config.import_max_bytes / (1024 * 1024),
            notice,
            problem,
        },
    )
}

/// `/admin/imports`: the newest MARC import jobs and their progress (as
/// `GET /api/v1/imports/{id}` shows each), and a form to start one.
pub async fn imports(State(state): State<AppState>, request: Request) -> Response {
    let query: ImportsQuery = query_of(&request);
    match admin_page(&state, request).await {
        Ok(web) => {
            let notice = query.started.map(|_| web.t().imports_started.to_owned());
            imports_page(&state, &web, StatusCode::OK, notice, None).await
        }
        Err(refused) => refused,
    }
}

/// Starts a MARC import from an uploaded file (as `POST /api/v1/imports`:
/// the same upload limit, fields, checks and audit entry); it runs in the
/// background and the list shows its progress.
pub async fn start_import(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let (web, me, mut multipart) = match Web::signed_in_multipart(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    if let Some(refused) = admin_only(&web) {
        return refused;
    }
    let t = web.t();
    match crate::http::routes::marc::receive_upload(
        &state,
        me.user_id,
        &client,
        &headers,
        &mut multipart,
    )
    .await
    {
        Ok(row) => web.redirect(&format!("/admin/imports?started={}", row.id)),
        Err(error) => {
            let problem = Lang::fill(t.desk_refused, web.describe(&error));
            imports_page(&state, &web, error.status(), None, Some(problem)).await
        }
    }
}
