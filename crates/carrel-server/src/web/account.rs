//! `/account`: the patron's loans (renew) and holds (cancel).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use uuid::Uuid;

use super::i18n::Lang;
use super::session::{EmptyForm, PageCtx, Web, signed_in};
use crate::app::{Actor, circulation, holds};
use crate::http::client::ClientInfo;
use crate::http::error::ApiError;
use crate::http::principal::Principal;
use crate::http::routes::fines::fine_page;
use crate::http::routes::holds::{HoldView, hold_page, visible_hold};
use crate::http::routes::loans::{LoanView, loan_page};
use crate::state::AppState;

/// The most open loans or holds a page lists (the API's page limit).
const LIST_LIMIT: u32 = 100;

#[derive(Debug)]
pub(super) struct LoanRow {
    pub id: Uuid,
    pub item_id: Uuid,
    pub title: String,
    pub due: String,
    pub status: String,
    pub overdue: bool,
    pub renewals: String,
    pub renew_label: String,
}

#[derive(Debug)]
struct HoldRow {
    id: Uuid,
    item_id: Uuid,
    title: String,
    status: String,
    ready: bool,
    pickup: String,
    cancel_label: String,
}

#[derive(Debug)]
struct FineRow {
    date: String,
    reason: String,
    amount: String,
    balance: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    page: PageCtx,
    greeting: String,
    loans: Vec<LoanRow>,
    holds: Vec<HoldRow>,
    fines: Vec<FineRow>,
    fines_total: Option<String>,
    notice: Option<String>,
    problem: Option<String>,
}

/// Item id → title, for the items a list names (deleted items included: a
/// loan outlives its catalog record), in one query.
pub(super) async fn titles(
    state: &AppState,
    ids: impl Iterator<Item = Uuid>,
) -> Result<HashMap<Uuid, String>, ApiError> {
    let mut ids: Vec<Uuid> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(state.store.item_titles(&ids).await?.into_iter().collect())
}

/// A patron's open loans as rows (the API's `/users/me/loans` listing).
pub(super) async fn loan_rows(
    state: &AppState,
    lang: Lang,
    patron: Uuid,
) -> Result<Vec<LoanRow>, ApiError> {
    let t = lang.texts();
    let loans: Vec<LoanView> = loan_page(state, Some(patron), None, Some(LIST_LIMIT), None)
        .await?
        .data;
    let titles = titles(state, loans.iter().map(|l| l.item_id)).await?;
    Ok(loans
        .into_iter()
        .map(|loan| {
            let title = titles.get(&loan.item_id).cloned().unwrap_or_default();
            let overdue = loan.status == "overdue";
            LoanRow {
                id: loan.id,
                item_id: loan.item_id,
                due: carrel_core::calendar::parse_date(&loan.due_date)
                    .map_or(loan.due_date.clone(), |d| lang.date(d)),
                status: if overdue {
                    t.status_overdue
                } else {
                    t.status_active
                }
                .to_owned(),
                overdue,
                renewals: format!("{} / {}", loan.renewals, loan.max_renewals),
                renew_label: Lang::fill(t.renew_label, &title),
                title,
            }
        })
        .collect())
}

async fn hold_rows(state: &AppState, lang: Lang, patron: Uuid) -> Result<Vec<HoldRow>, ApiError> {
    let t = lang.texts();
    let holds: Vec<HoldView> = hold_page(state, Some(patron), None, None, Some(LIST_LIMIT), None)
        .await?
        .data;
    let titles = titles(state, holds.iter().map(|h| h.item_id)).await?;
    let branches = super::public::branch_names(state).await?;
    Ok(holds
        .into_iter()
        .map(|hold| {
            let title = titles.get(&hold.item_id).cloned().unwrap_or_default();
            let ready = hold.status == "ready";
            let status = match (ready, hold.expires_at) {
                (true, Some(until)) => {
                    Lang::fill(t.hold_ready, lang.date_time(&state.config.timezone, until))
                }
                _ => Lang::fill(t.hold_waiting, hold.position.unwrap_or(1)),
            };
            HoldRow {
                id: hold.id,
                item_id: hold.item_id,
                status,
                ready,
                pickup: branches
                    .get(&hold.pickup_branch_id)
                    .cloned()
                    .unwrap_or_default(),
                cancel_label: Lang::fill(t.cancel_hold_label, &title),
                title,
            }
        })
        .collect())
}

/// The patron's open fines (the API's `/users/me/fines`), with the total owed.
async fn fine_rows(
    state: &AppState,
    lang: Lang,
    patron: Uuid,
) -> Result<(Vec<FineRow>, Option<String>), ApiError> {
    let t = lang.texts();
    let currency = &state.config.currency;
    let fines = fine_page(state, Some(patron), None, Some(LIST_LIMIT), None)
        .await?
        .data;
    let total: i64 = fines.iter().map(|f| f.balance_cents).sum();
    let rows = fines
        .into_iter()
        .map(|fine| FineRow {
            date: lang.date(state.config.timezone.local_date(fine.created_at)),
            reason: match fine.reason.as_str() {
                "overdue" => t.fine_overdue,
                "lost" => t.fine_lost,
                "damage" => t.fine_damage,
                _ => t.fine_manual,
            }
            .to_owned(),
            amount: lang.money(fine.amount_cents, currency),
            balance: lang.money(fine.balance_cents, currency),
        })
        .collect::<Vec<_>>();
    let total = (!rows.is_empty()).then(|| Lang::fill(t.fine_total, lang.money(total, currency)));
    Ok((rows, total))
}

async fn account_page(
    state: &AppState,
    web: &Web,
    me: &Principal,
    status: StatusCode,
    notice: Option<String>,
    problem: Option<String>,
) -> Response {
    let lists = async {
        let loans = loan_rows(state, web.lang, me.user_id).await?;
        let holds = hold_rows(state, web.lang, me.user_id).await?;
        let fines = fine_rows(state, web.lang, me.user_id).await?;
        Ok::<_, ApiError>((loans, holds, fines))
    };
    let (loans, holds, (fines, fines_total)) = match lists.await {
        Ok(lists) => lists,
        Err(error) => return web.api_problem(&error),
    };
    let page = web.page();
    web.render(
        status,
        &AccountPage {
            greeting: page.signed_in_as(page.user.as_deref().unwrap_or_default()),
            page,
            loans,
            holds,
            fines,
            fines_total,
            notice,
            problem,
        },
    )
}

/// `/account`.
pub async fn overview(State(state): State<AppState>, request: Request) -> Response {
    let web = match signed_in(&state, request).await {
        Ok(web) => web,
        Err(to_login) => return to_login,
    };
    let Some(me) = web.principal.clone() else {
        return web.to_login();
    };
    account_page(&state, &web, &me, StatusCode::OK, None, None).await
}

/// Renews one of the caller's loans (as `POST /api/v1/loans/{id}/renew`).
pub async fn renew(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, _) = match Web::form::<EmptyForm>(&state, request, true).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let (Some(me), Ok(id)) = (web.principal.clone(), Uuid::parse_str(&id)) else {
        return web.api_problem(&ApiError::not_found());
    };
    let t = web.t();
    let actor = Actor::api(me.user_id, &client);
    match circulation::renew(&state, &actor, id, Some(me.user_id)).await {
        Ok((loan, _fine)) => {
            let due = web.lang.date(loan.due_day());
            let notice = Lang::fill(t.renewed, due);
            account_page(&state, &web, &me, StatusCode::OK, Some(notice), None).await
        }
        Err(carrel_store::StoreError::Circulation(refusal)) => {
            let problem = Lang::fill(t.desk_refused, web.lang.refusal(&refusal));
            account_page(&state, &web, &me, StatusCode::CONFLICT, None, Some(problem)).await
        }
        Err(error) => web.api_problem(&ApiError::from(error)),
    }
}

/// Cancels one of the caller's holds (as `DELETE /api/v1/holds/{id}`).
pub async fn cancel_hold(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, _) = match Web::form::<EmptyForm>(&state, request, true).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Some(me) = web.principal.clone() else {
        return web.to_login();
    };
    let hold = match visible_hold(&state, &me, &id).await {
        Ok(hold) => hold,
        Err(error) => return web.api_problem(&error),
    };
    let t = web.t();
    match holds::cancel(&state, &Actor::api(me.user_id, &client), &hold).await {
        Ok(()) => {
            let notice = t.hold_cancelled.to_owned();
            account_page(&state, &web, &me, StatusCode::OK, Some(notice), None).await
        }
        Err(carrel_store::StoreError::Circulation(refusal)) => {
            let problem = Lang::fill(t.desk_refused, web.lang.refusal(&refusal));
            account_page(&state, &web, &me, StatusCode::CONFLICT, None, Some(problem)).await
        }
        Err(error) => web.api_problem(&ApiError::from(error)),
    }
}
