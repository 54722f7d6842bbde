//! `/desk`: the scanner-first circulation desk. Find a patron by card number
//! or name, then check out and return by barcode with the keyboard alone: the
//! scan field has the focus on every page (autofocus), each scan submits with
//! Enter, confirmations are in a `role=status` region and refusals, explained,
//! in a `role=alert` region.
//!
//! The desk works at one branch, chosen on the page and remembered in a
//! cookie (default: the librarian's home branch, else the main library):
//! checkouts lend from it, returns are scanned in there (so a copy from
//! elsewhere goes in transit), and the page lists its hold shelf and the
//! copies on their way to it (receive with one button).

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use carrel_store::{MAIN_BRANCH_ID, StoreError, UserQuery, UserStatus};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::account::{LoanRow, loan_rows, titles};
use super::i18n::Lang;
use super::session::{PageCtx, Web, signed_in};
use crate::accounts::manage;
use crate::app::Actor;
use crate::app::circulation::{self, PatronRef, ScanIn};
use crate::app::fines::{self, PayRefusal};
use crate::http::client::ClientInfo;
use crate::http::error::ApiError;
use crate::http::principal::Principal;
use crate::http::routes::fines::{check_amount, check_idempotency_key, fine_page, short_text};
use crate::state::AppState;

/// How many patrons a name search lists.
const MATCHES: u32 = 20;

/// How many hold-shelf and in-transit rows the page lists (the first due).
const LIST_ROWS: u32 = 100;

/// The cookie that remembers which branch this desk is at.
const DESK_BRANCH_COOKIE: &str = "carrel_desk_branch";

#[derive(Debug)]
struct BranchOption {
    id: Uuid,
    name: String,
    selected: bool,
}

#[derive(Debug)]
struct ShelfRow {
    title: String,
    barcode: String,
    patron: String,
    until: String,
}

#[derive(Debug)]
struct TransitRow {
    copy_id: Uuid,
    title: String,
    barcode: String,
    from: String,
    since: String,
    receive_label: String,
}

#[derive(Debug)]
struct PatronMatch {
    id: Uuid,
    name: String,
    card: Option<String>,
}

#[derive(Debug)]
struct PatronPanel {
    id: Uuid,
    checkout_heading: String,
    loans: Vec<LoanRow>,
    fines: Vec<DeskFine>,
}

/// An open fine of the chosen patron, with its payment and waiver forms.
#[derive(Debug)]
struct DeskFine {
    id: Uuid,
    reason: String,
    date: String,
    balance: String,
    /// The balance as the amount field's default ("2.50").
    amount: String,
    /// A fresh idempotency key per rendered form: a double submission (or
    /// a resent form) records one payment.
    key: String,
    pay_label: String,
    waive_label: String,
}

/// Which field has the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    Find,
    Checkout,
    Return,
}

#[derive(Template)]
#[template(path = "desk.html")]
struct DeskPage {
    page: PageCtx,
    branches: Vec<BranchOption>,
    shelf_heading: String,
    shelf: Vec<ShelfRow>,
    transit_heading: String,
    transits: Vec<TransitRow>,
    find: String,
    matches: Vec<PatronMatch>,
    no_match: bool,
    patron: Option<PatronPanel>,
    focus_find: bool,
    focus_checkout: bool,
    focus_return: bool,
    notice: Option<String>,
    problem: Option<String>,
}

fn display_name(user: &carrel_store::User) -> String {
    user.full_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| user.username.clone())
}

/// What the desk page shows besides its messages.
struct DeskView<'a> {
    find: &'a str,
    patron: Option<Uuid>,
    focus: Focus,
    notice: Option<String>,
    problem: Option<String>,
}

async fn desk_page(
    state: &AppState,
    web: &Web,
    status: StatusCode,
    view: DeskView<'_>,
) -> Response {
    let t = web.t();
    let mut matches = Vec::new();
    let mut patron = view.patron;
    let find = view.find.trim();
    if patron.is_none() && !find.is_empty() {
        // A card number first (as scanned), else a name, email or username.
        match circulation::resolve_patron(state, PatronRef::Card(find)).await {
            Ok(id) => patron = Some(id),
            Err(StoreError::NotFound) => {
                let query = UserQuery {
                    q: Some(find.chars().take(100).collect()),
                    role: None,
                    status: Some(UserStatus::Active),
                    before: None,
                    limit: MATCHES,
                    ..Default::default()
                };
                match manage::list_for_staff(state, query).await {
                    Ok(users) => {
                        matches = users
                            .into_iter()
                            .take(MATCHES as usize)
                            .map(|u| PatronMatch {
                                id: u.id,
                                name: display_name(&u),
                                card: u.card_number.clone(),
                            })
                            .collect();
                    }
                    Err(error) => return web.api_problem(&ApiError::from(error)),
                }
                if let [only] = matches.as_slice() {
                    patron = Some(only.id);
                    matches.clear();
                }
            }
            Err(error) => return web.api_problem(&ApiError::from(error)),
        }
    }
    let no_match = !find.is_empty() && patron.is_none() && matches.is_empty();
    let panel = match patron {
        Some(id) => {
            let user = match manage::get_by_staff(state, id).await {
                Ok(user) => user,
                Err(error) => return web.api_problem(&ApiError::from(error)),
            };
            let loans = match loan_rows(state, web.lang, id).await {
                Ok(loans) => loans,
                Err(error) => return web.api_problem(&error),
            };
            let fines = match desk_fines(state, web, id).await {
                Ok(fines) => fines,
                Err(error) => return web.api_problem(&error),
            };
            let mut name = display_name(&user);
            if let Some(card) = &user.card_number {
                name = format!("{name} ({} {card})", t.desk_card);
            }
            Some(PatronPanel {
                id,
                checkout_heading: Lang::fill(t.desk_checkout_to, name),
                loans,
                fines,
            })
        }
        None => None,
    };
    let branch = desk_branch(state, web).await;
    let lists = async {
        let names = super::public::branch_names(state).await?;
        let shelf = state.store.hold_shelf(branch, LIST_ROWS).await?;
        let transits = state
            .store
            .list_transits(Some(branch), None, LIST_ROWS)
            .await?;
        Ok::<_, ApiError>((names, shelf, transits))
    };
    let (names, shelf, transits) = match lists.await {
        Ok(lists) => lists,
        Err(error) => return web.api_problem(&error),
    };
    let zone = &state.config.timezone;
    let name_of = |id: &Uuid| names.get(id).cloned().unwrap_or_default();
    let branch_name = name_of(&branch);
    let mut branches: Vec<BranchOption> = names
        .iter()
        .map(|(id, name)| BranchOption {
            id: *id,
            name: name.clone(),
            selected: *id == branch,
        })
        .collect();
    branches.sort_by(|a, b| a.name.cmp(&b.name));
    let shelf = shelf
        .into_iter()
        .map(|entry| ShelfRow {
            title: entry.title,
            barcode: entry.barcode.unwrap_or_default(),
            patron: match entry.card_number {
                Some(card) => format!("{} ({} {card})", entry.patron, t.desk_card),
                None => entry.patron,
            },
            until: entry
                .expires_at
                .map(|at| web.lang.date(zone.local_date(at)))
                .unwrap_or_default(),
        })
        .collect();
    let transits = transits
        .into_iter()
        .take(LIST_ROWS as usize)
        .map(|transit| TransitRow {
            copy_id: transit.copy_id,
            receive_label: Lang::fill(t.desk_receive_label, &transit.barcode),
            title: transit.title,
            barcode: transit.barcode,
            from: name_of(&transit.home_branch_id),
            since: web.lang.date(zone.local_date(transit.since)),
        })
        .collect();
    // The scan goes where the desk is: a chosen patron's checkout, else find.
    let focus = match (view.focus, panel.is_some()) {
        (Focus::Return, _) => Focus::Return,
        (_, true) => Focus::Checkout,
        (_, false) => Focus::Find,
    };
    web.render(
        status,
        &DeskPage {
            page: web.page(),
            shelf_heading: Lang::fill(t.desk_shelf, &branch_name),
            transit_heading: Lang::fill(t.desk_transits, &branch_name),
            branches,
            shelf,
            transits,
            find: if panel.is_some() {
                String::new()
            } else {
                find.to_owned()
            },
            matches,
            no_match,
            patron: panel,
            focus_find: focus == Focus::Find,
            focus_checkout: focus == Focus::Checkout,
            focus_return: focus == Focus::Return,
            notice: view.notice,
            problem: view.problem,
        },
    )
}

/// The branch this desk works at: the remembered choice (if it still names a
/// branch: the cookie is the browser's), else the signed-in librarian's home
/// branch, else the main library.
async fn desk_branch(state: &AppState, web: &Web) -> Uuid {
    let remembered = web
        .cookie(DESK_BRANCH_COOKIE)
        .and_then(|v| Uuid::parse_str(&v).ok());
    if let Some(id) = remembered
        && matches!(state.store.find_branch(id).await, Ok(Some(_)))
    {
        return id;
    }
    web.principal
        .as_ref()
        .and_then(|p| p.user.home_branch_id)
        .unwrap_or(MAIN_BRANCH_ID)
}

/// The patron's open fines (as `GET /api/v1/fines?user_id=`), with forms.
async fn desk_fines(state: &AppState, web: &Web, patron: Uuid) -> Result<Vec<DeskFine>, ApiError> {
    let t = web.t();
    let currency = &state.config.currency;
    let fines = fine_page(state, Some(patron), None, Some(LIST_ROWS), None)
        .await?
        .data;
    Ok(fines
        .into_iter()
        .map(|fine| {
            let balance = web.lang.money(fine.balance_cents, currency);
            DeskFine {
                id: fine.id,
                reason: super::account::fine_reason(t, fine.reason).to_owned(),
                date: web
                    .lang
                    .date(state.config.timezone.local_date(fine.created_at)),
                amount: format!(
                    "{}.{:02}",
                    fine.balance_cents / 100,
                    fine.balance_cents % 100
                ),
                key: format!("desk-{}", Uuid::new_v4().simple()),
                pay_label: Lang::fill(t.desk_take_payment_label, &balance),
                waive_label: Lang::fill(t.desk_waive_label, &balance),
                balance,
            }
        })
        .collect())
}

/// An amount typed at the desk ("2.50", "2,50", "2") in cents, within the
/// API's bounds; `None` for anything else.
pub(super) fn parse_amount(text: &str) -> Option<i64> {
    let text = text.trim();
    let (units, fraction) = match text.split_once(['.', ',']) {
        Some((units, fraction)) => (units, fraction),
        None => (text, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(units) || !(fraction.is_empty() || (fraction.len() <= 2 && digits(fraction))) {
        return None;
    }
    let cents = units.parse::<i64>().ok()? * 100
        + match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().ok()? * 10,
            _ => fraction.parse::<i64>().ok()?,
        };
    check_amount(cents).ok()
}

/// A desk form POST: read with its CSRF check, staff only; the page, the
/// form and the librarian.
async fn staff_form<T: DeserializeOwned>(
    state: &AppState,
    request: Request,
) -> Result<(Web, T, Principal), Response> {
    let (web, form, me) = Web::signed_in_form::<T>(state, request).await?;
    match staff_only(&web) {
        Some(refused) => Err(refused),
        None => Ok((web, form, me)),
    }
}

/// Refuses anyone but staff.
fn staff_only(web: &Web) -> Option<Response> {
    match &web.principal {
        Some(me) if me.is_staff() => None,
        Some(_) => Some(web.api_problem(&crate::http::principal::forbidden())),
        None => Some(web.to_login()),
    }
}

#[derive(Debug, Default, Deserialize)]
struct DeskQuery {
    #[serde(default)]
    find: String,
    patron: Option<Uuid>,
}

/// `/desk` (librarian): `?find=` a card number or a name, `?patron=` an id.
pub async fn desk(State(state): State<AppState>, request: Request) -> Response {
    let query: DeskQuery = request
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let web = match signed_in(&state, request).await {
        Ok(web) => web,
        Err(to_login) => return to_login,
    };
    if let Some(refused) = staff_only(&web) {
        return refused;
    }
    let view = DeskView {
        find: &query.find,
        patron: query.patron,
        focus: Focus::Find,
        notice: None,
        problem: None,
    };
    desk_page(&state, &web, StatusCode::OK, view).await
}

#[derive(Deserialize)]
pub struct ScanForm {
    #[serde(default)]
    barcode: String,
    patron: Option<Uuid>,
}

/// The title of the item `item_id`, for a confirmation.
async fn title_of(state: &AppState, item_id: Uuid) -> String {
    titles(state, std::iter::once(item_id))
        .await
        .ok()
        .and_then(|mut t| t.remove(&item_id))
        .unwrap_or_default()
}

/// Checks a copy out to the chosen patron (as `POST /api/v1/loans`, lent
/// from the desk's branch).
pub async fn checkout(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form, me) = match staff_form::<ScanForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let refused = |text: &str| DeskView {
        find: "",
        patron: form.patron,
        focus: Focus::Checkout,
        notice: None,
        problem: Some(Lang::fill(t.desk_refused, text)),
    };
    let Some(patron) = form.patron else {
        return desk_page(
            &state,
            &web,
            StatusCode::UNPROCESSABLE_ENTITY,
            refused(t.desk_no_match),
        )
        .await;
    };
    let Some(barcode) = circulation::scanned_barcode(&form.barcode) else {
        return desk_page(
            &state,
            &web,
            StatusCode::UNPROCESSABLE_ENTITY,
            refused(t.error_invalid),
        )
        .await;
    };
    let actor = Actor::api(me.user_id, &client);
    let branch = Some(desk_branch(&state, &web).await);
    match circulation::checkout(&state, &actor, barcode, patron, branch).await {
        Ok(outcome) => {
            let title = title_of(&state, outcome.loan.item_id).await;
            let due = web.lang.date(outcome.loan.due_day());
            let notice = Lang::fill(&Lang::fill(t.desk_checked_out, title), due);
            let view = DeskView {
                find: "",
                patron: Some(patron),
                focus: Focus::Checkout,
                notice: Some(notice),
                problem: None,
            };
            desk_page(&state, &web, StatusCode::OK, view).await
        }
        Err(StoreError::Circulation(refusal)) => {
            desk_page(
                &state,
                &web,
                StatusCode::CONFLICT,
                refused(web.lang.refusal(&refusal)),
            )
            .await
        }
        Err(StoreError::NotFound) => {
            desk_page(
                &state,
                &web,
                StatusCode::NOT_FOUND,
                refused(t.error_not_found),
            )
            .await
        }
        Err(error) => web.api_problem(&ApiError::from(error)),
    }
}

/// A return scan at the desk's branch (as `POST /api/v1/loans/return`):
/// returns a loaned copy, or receives one in transit to this branch; says
/// where the copy goes next.
pub async fn return_copy(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form, me) = match staff_form::<ScanForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let view = |notice: Option<String>, problem: Option<String>| DeskView {
        find: "",
        patron: form.patron,
        focus: Focus::Return,
        notice,
        problem,
    };
    let Some(barcode) = circulation::scanned_barcode(&form.barcode) else {
        let problem = Lang::fill(t.desk_refused, t.error_invalid);
        return desk_page(
            &state,
            &web,
            StatusCode::UNPROCESSABLE_ENTITY,
            view(None, Some(problem)),
        )
        .await;
    };
    let actor = Actor::api(me.user_id, &client);
    match circulation::scan_in(
        &state,
        &actor,
        barcode,
        Some(desk_branch(&state, &web).await),
    )
    .await
    {
        Ok(ScanIn::Returned(outcome)) => {
            let title = title_of(&state, outcome.loan.item_id).await;
            let mut notice = Lang::fill(t.desk_returned, title);
            if let Some(fine) = &outcome.fine {
                let amount = web.lang.money(fine.amount_cents, &state.config.currency);
                notice = format!("{notice} {}", Lang::fill(t.desk_fine, amount));
            }
            if outcome.transit_to_branch_id.is_some() {
                notice = format!("{notice} {}", t.desk_to_transit);
            } else if outcome
                .hold
                .as_ref()
                .is_some_and(|h| h.status == carrel_core::statuses::HoldStatus::Ready)
            {
                notice = format!("{notice} {}", t.desk_to_hold_shelf);
            }
            desk_page(&state, &web, StatusCode::OK, view(Some(notice), None)).await
        }
        Ok(ScanIn::Received(outcome)) => {
            let mut notice = Lang::fill(t.desk_received, &outcome.copy.barcode);
            if outcome.copy.transit_to_branch_id.is_some() {
                notice = format!("{notice} {}", t.desk_to_transit);
            } else if outcome.hold.is_some() {
                notice = format!("{notice} {}", t.desk_to_hold_shelf);
            }
            desk_page(&state, &web, StatusCode::OK, view(Some(notice), None)).await
        }
        Err(StoreError::Circulation(refusal)) => {
            let problem = Lang::fill(t.desk_refused, web.lang.refusal(&refusal));
            desk_page(
                &state,
                &web,
                StatusCode::CONFLICT,
                view(None, Some(problem)),
            )
            .await
        }
        Err(StoreError::NotFound) => {
            let problem = Lang::fill(t.desk_refused, t.error_not_found);
            desk_page(
                &state,
                &web,
                StatusCode::NOT_FOUND,
                view(None, Some(problem)),
            )
            .await
        }
        Err(error) => web.api_problem(&ApiError::from(error)),
    }
}

#[derive(Deserialize)]
pub struct BranchForm {
    branch: Uuid,
}

/// Chooses the branch this desk works at (remembered in a cookie).
pub async fn choose_branch(State(state): State<AppState>, request: Request) -> Response {
    let (mut web, form, _) = match staff_form::<BranchForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    match state.store.find_branch(form.branch).await {
        Ok(Some(branch)) => {
            web.remember(DESK_BRANCH_COOKIE, branch.id.to_string());
            web.redirect("/desk")
        }
        Ok(None) => web.api_problem(&ApiError::not_found()),
        Err(error) => web.api_problem(&ApiError::from(error)),
    }
}

#[derive(Deserialize)]
pub struct ReceiveForm {
    copy: Uuid,
}

/// Receives a copy in transit to this desk's branch (as `POST
/// /api/v1/copies/{id}/receive`): it goes on the hold shelf, on the shelf
/// here, or on to its home.
pub async fn receive(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form, me) = match staff_form::<ReceiveForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    let actor = Actor::api(me.user_id, &client);
    let (status, notice, problem) = match circulation::receive(
        &state,
        &actor,
        form.copy,
        desk_branch(&state, &web).await,
    )
    .await
    {
        Ok(outcome) => {
            let mut notice = Lang::fill(t.desk_received, &outcome.copy.barcode);
            if outcome.copy.transit_to_branch_id.is_some() {
                notice = format!("{notice} {}", t.desk_to_transit);
            } else if outcome.hold.is_some() {
                notice = format!("{notice} {}", t.desk_to_hold_shelf);
            }
            (StatusCode::OK, Some(notice), None)
        }
        Err(StoreError::Circulation(refusal)) => {
            let problem = Lang::fill(t.desk_refused, web.lang.refusal(&refusal));
            (StatusCode::CONFLICT, None, Some(problem))
        }
        Err(StoreError::NotFound) => {
            let problem = Lang::fill(t.desk_refused, t.error_not_found);
            (StatusCode::NOT_FOUND, None, Some(problem))
        }
        Err(error) => return web.api_problem(&ApiError::from(error)),
    };
    let view = DeskView {
        find: "",
        patron: None,
        focus: Focus::Return,
        notice,
        problem,
    };
    desk_page(&state, &web, status, view).await
}

#[derive(Deserialize)]
pub struct PayForm {
    patron: Uuid,
    #[serde(default)]
    amount: String,
    method: String,
    #[serde(default)]
    key: String,
}

/// The desk page for a patron after a fine form: the notice, or the refusal
/// explained (with its status).
async fn after_fine_form(
    state: &AppState,
    web: &Web,
    patron: Uuid,
    outcome: Result<String, (StatusCode, String)>,
) -> Response {
    let t = web.t();
    let (status, notice, problem) = match outcome {
        Ok(notice) => (StatusCode::OK, Some(notice), None),
        Err((status, why)) => (status, None, Some(Lang::fill(t.desk_refused, why))),
    };
    let view = DeskView {
        find: "",
        patron: Some(patron),
        focus: Focus::Checkout,
        notice,
        problem,
    };
    desk_page(state, web, status, view).await
}

/// Takes a cash or card payment towards a fine (as `POST
/// /api/v1/fines/{id}/pay` with the form's idempotency key).
pub async fn pay_fine(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, form, me) = match staff_form::<PayForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return web.api_problem(&ApiError::not_found());
    };
    let t = web.t();
    let method = match form.method.as_str() {
        "cash" => fines::Method::Cash,
        "card" => fines::Method::Card,
        _ => return web.problem(StatusCode::UNPROCESSABLE_ENTITY, t.error_invalid),
    };
    let (Some(amount), Ok(key)) = (parse_amount(&form.amount), check_idempotency_key(&form.key))
    else {
        let outcome = Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            t.desk_amount_invalid.to_owned(),
        ));
        return after_fine_form(&state, &web, form.patron, outcome).await;
    };
    let input = fines::PayInput {
        fine_id: id,
        amount_cents: amount,
        method,
        payment_token: None,
        idempotency_key: key,
        staff: true,
    };
    let actor = Actor::api(me.user_id, &client);
    let outcome = match fines::pay(&state, &actor, input, |_, _| String::new()).await {
        // A resent form replays: the payment was recorded once.
        Ok(_) => Ok(Lang::fill(
            t.desk_paid,
            web.lang.money(amount, &state.config.currency),
        )),
        Err(PayRefusal::FineSettled) => {
            Err((StatusCode::CONFLICT, t.refused_fine_settled.to_owned()))
        }
        Err(PayRefusal::Store(StoreError::Circulation(refusal))) => {
            Err((StatusCode::CONFLICT, web.lang.refusal(&refusal).to_owned()))
        }
        Err(PayRefusal::Store(StoreError::NotFound)) => {
            Err((StatusCode::NOT_FOUND, t.error_not_found.to_owned()))
        }
        Err(other) => return web.api_problem(&ApiError::from(other)),
    };
    after_fine_form(&state, &web, form.patron, outcome).await
}

#[derive(Deserialize)]
pub struct WaiveForm {
    patron: Uuid,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

/// Waives (part of) a fine, with a reason (as `POST /api/v1/fines/{id}/waive`).
pub async fn waive_fine(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, form, me) = match staff_form::<WaiveForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return web.api_problem(&ApiError::not_found());
    };
    let t = web.t();
    let amount = match form.amount.trim() {
        "" => None,
        typed => match parse_amount(typed) {
            Some(cents) => Some(cents),
            None => {
                let outcome = Err((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    t.desk_amount_invalid.to_owned(),
                ));
                return after_fine_form(&state, &web, form.patron, outcome).await;
            }
        },
    };
    let reason = match short_text("reason", Some(form.reason), true) {
        Ok(reason) => reason.unwrap_or_default(),
        Err(error) => {
            let outcome = Err((error.status(), web.describe(&error)));
            return after_fine_form(&state, &web, form.patron, outcome).await;
        }
    };
    let input = fines::WaiveInput {
        fine_id: id,
        amount_cents: amount,
        reason,
    };
    let actor = Actor::api(me.user_id, &client);
    let outcome = match fines::waive(&state, &actor, input).await {
        Ok(fine) => Ok(Lang::fill(
            t.desk_waived,
            web.lang.money(fine.balance_cents(), &state.config.currency),
        )),
        Err(StoreError::Circulation(refusal)) => {
            Err((StatusCode::CONFLICT, web.lang.refusal(&refusal).to_owned()))
        }
        Err(StoreError::NotFound) => Err((StatusCode::NOT_FOUND, t.error_not_found.to_owned())),
        Err(error) => return web.api_problem(&ApiError::from(error)),
    };
    after_fine_form(&state, &web, form.patron, outcome).await
}

#[cfg(test)]
mod tests {
    use super::parse_amount;

    #[test]
    fn desk_amounts_are_cents_within_bounds() {
        assert_eq!(parse_amount("2.50"), Some(250));
        assert_eq!(parse_amount(" 2,5 "), Some(250));
        assert_eq!(parse_amount("7"), Some(700));
        assert_eq!(parse_amount("0.01"), Some(1));
        for bad in ["", "0", "0.00", "-1", "2.505", "1e3", ".5", "€2", "100001"] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
        assert_eq!(parse_amount("100000"), Some(10_000_000));
    }
}
