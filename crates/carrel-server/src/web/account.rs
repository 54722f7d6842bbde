//! `/account`: the patron's loans (renew), holds (cancel, pickup branch),
//! fines (pay online when a payment provider is configured), signed-in
//! devices (sign out), PIN, loan-history choice, data export and two-step
//! verification (`/account/mfa`).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carrel_core::statuses::FineReason;
use carrel_store::StoreError;
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use super::i18n::{Lang, Texts};
use super::session::{EmptyForm, PageCtx, Web, signed_in};
use crate::accounts::manage::{self, ProfileUpdate};
use crate::accounts::{mfa, pins, sessions};
use crate::app::fines::{self, PayRefusal};
use crate::app::holds::PickupRefusal;
use crate::app::{Actor, circulation, holds};
use crate::http::client::ClientInfo;
use crate::http::error::ApiError;
use crate::http::principal::Principal;
use crate::http::routes::fines::{check_idempotency_key, fine_page};
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
    /// Only a waiting hold's pickup branch can change.
    waiting: bool,
    pickup: String,
    pickup_id: Uuid,
    pickup_label: String,
    cancel_label: String,
}

#[derive(Debug)]
struct FineRow {
    id: Uuid,
    date: String,
    reason: String,
    amount: String,
    balance: String,
    /// The balance as the payment form's amount ("2.50").
    pay_amount: String,
    /// A fresh idempotency key per rendered form: a resent form (or a
    /// double click) records one payment.
    key: String,
    pay_label: String,
}

#[derive(Debug)]
struct SessionRow {
    id: Uuid,
    device: String,
    address: String,
    last_used: String,
    current: bool,
    revoke_label: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    page: PageCtx,
    greeting: String,
    loans: Vec<LoanRow>,
    holds: Vec<HoldRow>,
    /// (id, name) of every branch, by name: the pickup choices.
    branches: Vec<(Uuid, String)>,
    fines: Vec<FineRow>,
    fines_total: Option<String>,
    /// A payment provider is configured: each open fine has a pay form.
    pay_online: bool,
    sessions: Vec<SessionRow>,
    mfa_enabled: bool,
    keep_history: bool,
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

async fn hold_rows(
    state: &AppState,
    lang: Lang,
    patron: Uuid,
    branches: &HashMap<Uuid, String>,
) -> Result<Vec<HoldRow>, ApiError> {
    let t = lang.texts();
    let holds: Vec<HoldView> = hold_page(state, Some(patron), None, None, Some(LIST_LIMIT), None)
        .await?
        .data;
    let titles = titles(state, holds.iter().map(|h| h.item_id)).await?;
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
                waiting: hold.status == "waiting",
                pickup: branches
                    .get(&hold.pickup_branch_id)
                    .cloned()
                    .unwrap_or_default(),
                pickup_id: hold.pickup_branch_id,
                pickup_label: Lang::fill(t.change_pickup_label, &title),
                cancel_label: Lang::fill(t.cancel_hold_label, &title),
                title,
            }
        })
        .collect())
}

/// A fine's reason, in words.
pub(super) fn fine_reason(t: &'static Texts, reason: FineReason) -> &'static str {
    match reason {
        FineReason::Overdue => t.fine_overdue,
        FineReason::Lost => t.fine_lost,
        FineReason::Damage => t.fine_damage,
        FineReason::Manual => t.fine_manual,
    }
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
        .map(|fine| {
            let balance = lang.money(fine.balance_cents, currency);
            FineRow {
                id: fine.id,
                date: lang.date(state.config.timezone.local_date(fine.created_at)),
                reason: fine_reason(t, fine.reason).to_owned(),
                amount: lang.money(fine.amount_cents, currency),
                pay_amount: format!(
                    "{}.{:02}",
                    fine.balance_cents / 100,
                    fine.balance_cents % 100
                ),
                key: format!("web-{}", Uuid::new_v4().simple()),
                pay_label: Lang::fill(t.pay_online_label, &balance),
                balance,
            }
        })
        .collect::<Vec<_>>();
    let total = (!rows.is_empty()).then(|| Lang::fill(t.fine_total, lang.money(total, currency)));
    Ok((rows, total))
}

/// The caller's live sessions (as `GET /api/v1/auth/sessions`), this one marked.
async fn session_rows(
    state: &AppState,
    lang: Lang,
    me: &Principal,
) -> Result<Vec<SessionRow>, ApiError> {
    let t = lang.texts();
    let zone = &state.config.timezone;
    Ok(sessions::list(state, me)
        .await?
        .into_iter()
        .map(|s| {
            let last_used = lang.date_time(zone, s.last_used_at);
            SessionRow {
                id: s.id,
                device: s
                    .device_name
                    .or(s.user_agent)
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or_else(|| t.session_unknown_device.to_owned()),
                address: s.ip_address.unwrap_or_default(),
                current: s.id == me.session_id,
                revoke_label: Lang::fill(t.session_revoke_label, &last_used),
                last_used,
            }
        })
        .collect())
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
        let names = super::public::branch_names(state).await?;
        let holds = hold_rows(state, web.lang, me.user_id, &names).await?;
        let mut branches: Vec<(Uuid, String)> = names.into_iter().collect();
        branches.sort_by(|a, b| a.1.cmp(&b.1));
        let fines = fine_rows(state, web.lang, me.user_id).await?;
        let sessions = session_rows(state, web.lang, me).await?;
        Ok::<_, ApiError>((loans, holds, branches, fines, sessions))
    };
    let (loans, holds, branches, (fines, fines_total), sessions) = match lists.await {
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
            branches,
            fines,
            fines_total,
            pay_online: state.payments.is_some(),
            sessions,
            mfa_enabled: me.user.mfa_enabled,
            keep_history: me.user.keep_loan_history,
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
    let (web, _, me) = match Web::signed_in_form::<EmptyForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
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

#[derive(Deserialize)]
pub struct PickupForm {
    #[serde(default)]
    pickup: String,
}

/// Moves one of the caller's waiting holds to another pickup branch
/// (`app::holds::change_pickup`; the API has no such route). Someone else's
/// hold is "not found"; a ready or closed hold, or an unknown branch, is
/// refused and explained.
pub async fn change_pickup(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, form, me) = match Web::signed_in_form::<PickupForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return web.api_problem(&ApiError::not_found());
    };
    let t = web.t();
    let refused = |status: StatusCode, why: &str| Err((status, Lang::fill(t.desk_refused, why)));
    let outcome = match Uuid::parse_str(form.pickup.trim()) {
        Err(_) => refused(StatusCode::UNPROCESSABLE_ENTITY, t.refused_unknown_branch),
        Ok(branch) => {
            let actor = Actor::api(me.user_id, &client);
            match holds::change_pickup(&state, &actor, me.is_staff(), id, branch).await {
                Ok(hold) => {
                    let name = state
                        .store
                        .find_branch(hold.pickup_branch_id)
                        .await
                        .ok()
                        .flatten()
                        .map(|b| b.name)
                        .unwrap_or_default();
                    Ok(Lang::fill(t.pickup_changed, name))
                }
                Err(PickupRefusal::HoldNotFound) => {
                    return web.api_problem(&ApiError::not_found());
                }
                Err(PickupRefusal::UnknownBranch) => {
                    refused(StatusCode::UNPROCESSABLE_ENTITY, t.refused_unknown_branch)
                }
                Err(PickupRefusal::Store(StoreError::Circulation(refusal))) => {
                    refused(StatusCode::CONFLICT, web.lang.refusal(&refusal))
                }
                Err(PickupRefusal::Store(error)) => return web.api_problem(&ApiError::from(error)),
            }
        }
    };
    after_outcome(&state, &web, &me, outcome).await
}

#[derive(Deserialize)]
pub struct PayOnlineForm {
    #[serde(default)]
    amount: String,
    /// What the payment provider's client-side flow produced. With the `test`
    /// provider (`CARREL_ENV=test` only) the patron types it (`tok_test_ok`
    /// is approved, `tok_test_declined` declined). A real provider's adapter
    /// fills this field from its own hosted card form (loaded from the
    /// provider's origin, which the CSP then allows); Carrel never sees card
    /// numbers, only the single-use token.
    #[serde(default)]
    token: String,
    #[serde(default)]
    key: String,
}

/// Pays (part of) one of the caller's fines online (as `POST
/// /api/v1/fines/{id}/payments` with `method: online` and the form's
/// idempotency key): charged through the payment provider before anything is
/// recorded. A declined charge records nothing; a resent form replays.
pub async fn pay_fine(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (web, form, me) = match Web::signed_in_form::<PayOnlineForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return web.api_problem(&ApiError::not_found());
    };
    let t = web.t();
    let refused = |status: StatusCode, why: &str| Err((status, Lang::fill(t.desk_refused, why)));
    let (Some(amount), Ok(key)) = (
        super::desk::parse_amount(&form.amount),
        check_idempotency_key(&form.key),
    ) else {
        let outcome = refused(StatusCode::UNPROCESSABLE_ENTITY, t.desk_amount_invalid);
        return after_outcome(&state, &web, &me, outcome).await;
    };
    let token = form.token.trim();
    let input = fines::PayInput {
        fine_id: id,
        amount_cents: amount,
        method: fines::Method::Online,
        payment_token: (!token.is_empty()).then_some(token),
        idempotency_key: key,
        staff: me.is_staff(),
    };
    let actor = Actor::api(me.user_id, &client);
    let outcome = match fines::pay(&state, &actor, input, |_, _| String::new()).await {
        // A resent form replays: the payment was recorded once.
        Ok(_) => Ok(Lang::fill(
            t.paid_online,
            web.lang.money(amount, &state.config.currency),
        )),
        Err(PayRefusal::Declined) => refused(StatusCode::PAYMENT_REQUIRED, t.payment_declined),
        Err(PayRefusal::OnlinePaymentsDisabled) => {
            refused(StatusCode::FORBIDDEN, t.online_payments_disabled)
        }
        Err(PayRefusal::ProviderUnavailable) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            t.payment_provider_unavailable,
        ),
        Err(PayRefusal::PaymentToken(_)) => {
            refused(StatusCode::UNPROCESSABLE_ENTITY, t.payment_token_invalid)
        }
        Err(PayRefusal::FineSettled) => refused(StatusCode::CONFLICT, t.refused_fine_settled),
        Err(PayRefusal::Store(StoreError::Circulation(refusal))) => {
            refused(StatusCode::CONFLICT, web.lang.refusal(&refusal))
        }
        Err(PayRefusal::Store(StoreError::NotFound)) => {
            return web.api_problem(&ApiError::not_found());
        }
        Err(other) => {
            let error = ApiError::from(other);
            Err((error.status(), web.describe(&error)))
        }
    };
    after_outcome(&state, &web, &me, outcome).await
}

/// The account page after a payment or pickup form: the notice, or the
/// refusal explained under its status.
async fn after_outcome(
    state: &AppState,
    web: &Web,
    me: &Principal,
    outcome: Result<String, (StatusCode, String)>,
) -> Response {
    match outcome {
        Ok(notice) => account_page(state, web, me, StatusCode::OK, Some(notice), None).await,
        Err((status, problem)) => account_page(state, web, me, status, None, Some(problem)).await,
    }
}

/// The account page after a form: the notice on success, the refusal as
/// the page's alert (with its status) otherwise.
async fn after_form(
    state: &AppState,
    web: &Web,
    me: &Principal,
    outcome: Result<String, ApiError>,
) -> Response {
    match outcome {
        Ok(notice) => account_page(state, web, me, StatusCode::OK, Some(notice), None).await,
        Err(error) => {
            let problem = web.describe(&error);
            account_page(state, web, me, error.status(), None, Some(problem)).await
        }
    }
}

/// Signs out one of the caller's other devices (as `DELETE /api/v1/auth/sessions/{id}`).
pub async fn revoke_session(
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
    let outcome = sessions::revoke(&state, &client, &me, id)
        .await
        .map(|()| web.t().session_revoked.to_owned())
        .map_err(ApiError::from);
    after_form(&state, &web, &me, outcome).await
}

#[derive(Deserialize)]
pub struct PinForm {
    pin: SecretString,
    password: SecretString,
}

/// Sets the caller's self-check PIN (as `PUT /api/v1/users/me/pin`).
pub async fn set_pin(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form, me) = match Web::signed_in_form::<PinForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let outcome = pins::set_own_pin(&state, &client, &me, form.password, form.pin)
        .await
        .map(|()| web.t().pin_saved.to_owned())
        .map_err(ApiError::from);
    after_form(&state, &web, &me, outcome).await
}

#[derive(Deserialize)]
pub struct HistoryForm {
    /// A checkbox: present when ticked.
    keep: Option<String>,
}

/// Keeps or stops keeping the caller's loan history (as `PATCH
/// /api/v1/users/me {keep_loan_history}`).
pub async fn set_history(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form, mut me) = match Web::signed_in_form::<HistoryForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let keep = form.keep.is_some();
    let update = ProfileUpdate {
        keep_loan_history: Some(keep),
        ..Default::default()
    };
    let t = web.t();
    let outcome = match manage::update_me(&state, &client, &me, update).await {
        Ok(user) => {
            // The page shows the account as it is now, not as read with the session.
            me.user = Arc::new(user);
            Ok(if keep { t.history_on } else { t.history_off }.to_owned())
        }
        Err(error) => Err(ApiError::from(error)),
    };
    after_form(&state, &web, &me, outcome).await
}

/// Everything stored about the caller as a JSON download (the document of
/// `GET /api/v1/users/me/export`).
pub async fn export(State(state): State<AppState>, request: Request) -> Response {
    let web = match signed_in(&state, request).await {
        Ok(web) => web,
        Err(to_login) => return to_login,
    };
    let Some(me) = web.principal.clone() else {
        return web.to_login();
    };
    match crate::http::routes::users::export_document(&state, &me).await {
        Ok(document) => (
            [(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"carrel-export.json\""),
            )],
            axum::Json(document),
        )
            .into_response(),
        Err(error) => web.api_problem(&error),
    }
}

/// A pending enrolment: the QR code to scan and the key to type.
struct Enrolment {
    secret: String,
    qr_svg: String,
}

#[derive(Template)]
#[template(path = "account_mfa.html")]
struct MfaSettingsPage {
    page: PageCtx,
    enabled: bool,
    enrolment: Option<Enrolment>,
    recovery_codes: Vec<String>,
    notice: Option<String>,
    problem: Option<String>,
}

impl MfaSettingsPage {
    /// The page again with the refusal explained, under its status.
    fn refused(mut self, web: &Web, error: &ApiError) -> Response {
        self.problem = Some(web.describe(error));
        web.render(error.status(), &self)
    }

    fn new(web: &Web, enabled: bool) -> Self {
        Self {
            page: web.page(),
            enabled,
            enrolment: None,
            recovery_codes: Vec::new(),
            notice: None,
            problem: None,
        }
    }
}

/// `/account/mfa`: turn two-step verification on (QR code, then a code) or off.
pub async fn mfa_settings(State(state): State<AppState>, request: Request) -> Response {
    let web = match signed_in(&state, request).await {
        Ok(web) => web,
        Err(to_login) => return to_login,
    };
    let Some(me) = web.principal.clone() else {
        return web.to_login();
    };
    web.render(
        StatusCode::OK,
        &MfaSettingsPage::new(&web, me.user.mfa_enabled),
    )
}

/// Starts enrolment (as `POST /api/v1/auth/mfa/totp/setup`): a new key, shown
/// as a QR code and as text, pending until a code confirms it.
pub async fn mfa_setup(State(state): State<AppState>, request: Request) -> Response {
    let (web, _, me) = match Web::signed_in_form::<EmptyForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let mut page = MfaSettingsPage::new(&web, me.user.mfa_enabled);
    match mfa::setup(&state, &me).await {
        Ok(setup) => {
            page.enrolment = Some(Enrolment {
                secret: setup.secret,
                qr_svg: setup.qr_svg,
            });
            web.render(StatusCode::OK, &page)
        }
        Err(error) => page.refused(&web, &ApiError::from(error)),
    }
}

#[derive(Deserialize)]
pub struct MfaCodeForm {
    code: String,
}

/// Confirms enrolment with a code (as `POST /api/v1/auth/mfa/totp/confirm`)
/// and shows the recovery codes, once.
pub async fn mfa_confirm(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form, me) = match Web::signed_in_form::<MfaCodeForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let mut page = MfaSettingsPage::new(&web, me.user.mfa_enabled);
    match mfa::confirm(&state, &client, &me, form.code.trim()).await {
        Ok(codes) => {
            page.enabled = true;
            page.recovery_codes = codes;
            page.notice = Some(web.t().mfa_enabled_notice.to_owned());
            web.render(StatusCode::OK, &page)
        }
        Err(error) => page.refused(&web, &ApiError::from(error)),
    }
}

#[derive(Deserialize)]
pub struct MfaDisableForm {
    password: SecretString,
    code: String,
}

/// Turns two-step verification off after the password and a code (as `POST
/// /api/v1/auth/mfa/totp/disable`).
pub async fn mfa_disable(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form, me) = match Web::signed_in_form::<MfaDisableForm>(&state, request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let mut page = MfaSettingsPage::new(&web, me.user.mfa_enabled);
    match mfa::disable(&state, &client, &me, form.password, form.code.trim()).await {
        Ok(()) => {
            page.enabled = false;
            page.notice = Some(web.t().mfa_disabled_notice.to_owned());
            web.render(StatusCode::OK, &page)
        }
        Err(error) => page.refused(&web, &ApiError::from(error)),
    }
}
