//! Carrel behind a SIP2 connection: every transaction calls the same use cases
//! as the JSON API (`crate::app`, `crate::accounts::pins`) and maps their
//! outcomes and refusals to SIP2 fields and screen messages.

use carrel_core::statuses::{CopyStatus, HoldStatus};
use std::net::SocketAddr;
use std::sync::Arc;

use carrel_sip2::{
    AcsStatusOutcome, CheckinOutcome, CheckinRequest, CheckoutRequest, CirculationStatus, Context,
    EndPatronSessionRequest, EndSessionOutcome, FeePaidOutcome, FeePaidRequest, FeeType,
    ItemCounts, ItemInformationOutcome, ItemInformationRequest, LoanOutcome, LoginRequest,
    MediaType, Password, PatronInformationOutcome, PatronInformationRequest, PatronStatusFlags,
    PatronStatusOutcome, PatronStatusRequest, PaymentType, RenewAllOutcome, RenewAllRequest,
    RenewRequest, ScStatusRequest, SecurityMarker, Sip2Backend, SipDateTime, Summary,
    format_amount, parse_amount,
};
use carrel_store::{CopyState, PatronSummary, PaymentOutcome, Sip2Terminal, StoreError, User};
use time::OffsetDateTime;
use uuid::Uuid;

use super::texts::Lang;
use super::{LoginGuard, terminals};
use crate::accounts::pins;
use crate::app::circulation::{self, ScanIn};
use crate::app::fines;
use crate::app::{Actor, Channel};
use crate::client::ClientInfo;
use crate::state::AppState;

/// One connection's view of the library.
pub struct Sip2Library {
    pub(super) state: AppState,
    pub(super) peer: SocketAddr,
    pub(super) guard: Arc<LoginGuard>,
    /// The PIN last verified on this connection (see [`pins::PinMemo`]).
    pub(super) pins: pins::PinMemo,
}

impl std::fmt::Debug for Sip2Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sip2Library")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// A logged-in terminal.
#[derive(Debug, Clone)]
pub struct Terminal {
    pub id: Uuid,
    pub login: String,
    pub institution: String,
    pub branch_code: Option<String>,
    /// The branch of `branch_code`, where this terminal's checkouts and
    /// checkins happen. None: no branch set (each copy counts at its home).
    pub branch_id: Option<Uuid>,
}

impl Terminal {
    fn new(t: Sip2Terminal, branch_id: Option<Uuid>) -> Self {
        Terminal {
            id: t.id,
            login: t.login,
            institution: t.institution,
            branch_code: t.branch_code,
            branch_id,
        }
    }
}

/// The patron of a request once the card and PIN were checked.
enum Patron {
    Valid(Box<User>),
    /// Unknown card, or a wrong, empty, unset or locked PIN (one answer for all).
    Invalid {
        card_known: bool,
    },
    /// The check itself failed (database down, hashing saturated).
    Failed,
}

fn date(at: OffsetDateTime) -> String {
    at.date().to_string()
}

impl Sip2Library {
    fn actor(&self, terminal: &Terminal) -> Actor {
        Actor {
            id: terminal.id,
            client: ClientInfo {
                ip: Some(self.peer.ip()),
                user_agent: Some(format!("sip2/{}", terminal.login)),
                request_id: Uuid::now_v7().to_string(),
            },
            channel: Channel::Sip2,
            terminal: Some(terminal.login.clone()),
        }
    }

    fn money(&self, cents: i64) -> String {
        format!("{} {}", self.state.config.currency, format_amount(cents))
    }

    /// Checks card and PIN; `None` or empty PIN is wrong and counts toward the
    /// PIN lockout.
    async fn patron(&self, actor: &Actor, card: &str, pin: Option<&Password>) -> Patron {
        match pins::check_pin_remembered(
            &self.state,
            &actor.client,
            Some(actor.id),
            card,
            pin.map(Password::expose),
            &self.pins,
        )
        .await
        {
            Ok(check) => match check.holder {
                Some(user) if check.valid => Patron::Valid(Box::new(user)),
                holder => Patron::Invalid {
                    card_known: holder.is_some(),
                },
            },
            Err(error) => {
                tracing::error!(target: "sip2", %error, "patron check failed");
                Patron::Failed
            }
        }
    }

    async fn copy(&self, barcode: &str) -> Option<CopyState> {
        match self.state.store.copy_state(barcode).await {
            Ok(copy) => copy,
            Err(error) => {
                tracing::error!(target: "sip2", %error, "copy lookup failed");
                None
            }
        }
    }

    /// The screen message of a store error from a circulation use case.
    async fn refusal_text(&self, lang: Lang, error: &StoreError, patron: Option<Uuid>) -> String {
        match error {
            StoreError::NotFound => lang.unknown_item(),
            StoreError::Circulation(refusal) => {
                let owed = match (refusal, patron) {
                    (carrel_store::Refusal::PatronBlocked, Some(id)) => self
                        .state
                        .store
                        .balance(id)
                        .await
                        .ok()
                        .map(|c| self.money(c)),
                    _ => None,
                };
                lang.refusal(*refusal, owed.as_deref())
            }
            other => {
                tracing::error!(target: "sip2", error = %other, "circulation failed");
                lang.system_error()
            }
        }
    }

    fn patron_refused(lang: Lang, patron: &Patron) -> String {
        match patron {
            Patron::Failed => lang.system_error(),
            _ => lang.invalid_patron(),
        }
    }

    /// The common part of 24 and 64, plus the summary when the PIN was right.
    async fn standing(
        &self,
        terminal: &Terminal,
        lang: Lang,
        card: &str,
        pin: Option<&Password>,
    ) -> (PatronStatusOutcome, Option<(User, PatronSummary)>) {
        let denied = PatronStatusFlags {
            charge_privileges_denied: true,
            renewal_privileges_denied: true,
            hold_privileges_denied: true,
            ..Default::default()
        };
        // Without AD the terminal only asks whether the card exists.
        let Some(pin) = pin else {
            let known = match carrel_core::cards::normalize_card_number(card) {
                Ok(card) => self
                    .state
                    .store
                    .find_user_by_card(&card)
                    .await
                    .ok()
                    .flatten()
                    .is_some(),
                Err(_) => false,
            };
            return (
                PatronStatusOutcome {
                    flags: if known {
                        PatronStatusFlags::default()
                    } else {
                        denied
                    },
                    valid_patron: Some(known),
                    screen_message: if known {
                        Vec::new()
                    } else {
                        vec![lang.invalid_patron()]
                    },
                    ..Default::default()
                },
                None,
            );
        };
        let actor = self.actor(terminal);
        let user = match self.patron(&actor, card, Some(pin)).await {
            Patron::Valid(user) => *user,
            other => {
                let known = matches!(other, Patron::Invalid { card_known: true });
                return (
                    PatronStatusOutcome {
                        flags: denied,
                        valid_patron: Some(known),
                        valid_patron_password: Some(false),
                        screen_message: vec![Self::patron_refused(lang, &other)],
                        ..Default::default()
                    },
                    None,
                );
            }
        };
        let summary = match self.state.store.patron_summary(user.id).await {
            Ok(summary) => summary,
            Err(error) => {
                tracing::error!(target: "sip2", %error, "patron summary failed");
                return (
                    PatronStatusOutcome {
                        flags: denied,
                        valid_patron: Some(true),
                        valid_patron_password: Some(true),
                        screen_message: vec![lang.system_error()],
                        ..Default::default()
                    },
                    None,
                );
            }
        };
        let owed: i64 = summary.fines.iter().map(|f| f.balance_cents()).sum();
        let blocked = carrel_core::circulation::is_blocked(
            owed,
            self.state.config.fine_block_threshold_cents,
        );
        // The patron category's limits, else the global ones: the checkout's own.
        let loan_limit = summary
            .max_active_loans
            .unwrap_or(self.state.config.max_active_loans);
        let hold_limit = summary
            .max_active_holds
            .unwrap_or(self.state.config.max_active_holds);
        let at_limit = summary.loans.len() >= loan_limit as usize;
        let holds_full = summary.holds.len() >= hold_limit as usize;
        let mut screen_message = Vec::new();
        if blocked {
            screen_message.push(lang.refusal(
                carrel_store::Refusal::PatronBlocked,
                Some(&self.money(owed)),
            ));
        } else if !user.is_active {
            screen_message.push(lang.refusal(carrel_store::Refusal::PatronInactive, None));
        }
        let outcome = PatronStatusOutcome {
            flags: PatronStatusFlags {
                charge_privileges_denied: blocked || at_limit || !user.is_active,
                renewal_privileges_denied: blocked || !user.is_active,
                hold_privileges_denied: blocked || holds_full || !user.is_active,
                too_many_items_charged: at_limit,
                excessive_outstanding_fines: blocked,
                ..Default::default()
            },
            personal_name: user
                .full_name
                .clone()
                .unwrap_or_else(|| user.username.clone()),
            valid_patron: Some(true),
            valid_patron_password: Some(true),
            currency_type: Some(self.state.config.currency.clone()),
            fee_amount: Some(format_amount(owed)),
            screen_message,
            print_line: Vec::new(),
        };
        (outcome, Some((user, summary)))
    }
}

fn media_type(item_type: &str) -> MediaType {
    match item_type {
        "book" => MediaType::Book,
        "magazine" => MediaType::Magazine,
        "audiobook" => MediaType::AudioTape,
        "dvd" => MediaType::VideoTape,
        "ebook" => MediaType::CdRom,
        _ => MediaType::OtherMedia,
    }
}

fn refused_loan(message: String, title: Option<&CopyState>) -> LoanOutcome {
    LoanOutcome {
        ok: false,
        title_identifier: title.map(|c| c.title.clone()).unwrap_or_default(),
        screen_message: vec![message],
        ..Default::default()
    }
}

impl Sip2Backend for Sip2Library {
    type Terminal = Terminal;

    fn now(&self) -> OffsetDateTime {
        self.state.clock.now()
    }

    async fn login(&self, request: &LoginRequest) -> Option<Terminal> {
        self.pins.forget();
        let ip = self.peer.ip();
        if self.guard.is_blocked(ip, self.state.clock.now()) {
            tracing::warn!(target: "sip2", peer = %self.peer, "login refused: too many failed logins from this address");
            return None;
        }
        match terminals::authenticate(
            &self.state,
            &request.login_user_id,
            request.login_password.expose(),
        )
        .await
        {
            Ok(Some(terminal)) => {
                // The code was checked when the account was added; a branch
                // that has gone since refuses the login rather than counting
                // the terminal's loans at the wrong desk.
                let branch_id = match terminal.branch_code.as_deref() {
                    None => None,
                    Some(code) => match self.state.store.find_branch_by_code(code).await {
                        Ok(Some(branch)) => Some(branch.id),
                        Ok(None) => {
                            tracing::error!(target: "sip2", login = %terminal.login, branch = %code,
                                "terminal login refused: its branch code names no branch");
                            return None;
                        }
                        Err(error) => {
                            tracing::error!(target: "sip2", %error, "terminal branch lookup failed");
                            return None;
                        }
                    },
                };
                Some(Terminal::new(terminal, branch_id))
            }
            Ok(None) => {
                self.guard.failed(&self.state, ip).await;
                None
            }
            Err(error) => {
                tracing::error!(target: "sip2", %error, "terminal login failed");
                None
            }
        }
    }

    async fn sc_status(
        &self,
        terminal: Option<&Terminal>,
        _request: &ScStatusRequest,
    ) -> AcsStatusOutcome {
        AcsStatusOutcome {
            online: true,
            checkin_ok: true,
            checkout_ok: true,
            renewal_policy: true,
            offline_ok: false,
            timeout_period: 0,
            retries_allowed: 999,
            institution_id: terminal.map(|t| t.institution.clone()).unwrap_or_default(),
            library_name: Some("Carrel".to_owned()),
            terminal_location: terminal
                .map(|t| t.branch_code.clone().unwrap_or_else(|| t.login.clone())),
            screen_message: Vec::new(),
            print_line: Vec::new(),
        }
    }

    async fn patron_status(
        &self,
        context: Context<'_, Terminal>,
        request: &PatronStatusRequest,
    ) -> PatronStatusOutcome {
        let lang = Lang::of(context.language);
        self.standing(
            context.terminal,
            lang,
            &request.patron_identifier,
            request.patron_password.as_ref(),
        )
        .await
        .0
    }

    async fn patron_information(
        &self,
        context: Context<'_, Terminal>,
        request: &PatronInformationRequest,
    ) -> PatronInformationOutcome {
        let lang = Lang::of(context.language);
        let (patron, details) = self
            .standing(
                context.terminal,
                lang,
                &request.patron_identifier,
                request.patron_password.as_ref(),
            )
            .await;
        let Some((user, summary)) = details else {
            return PatronInformationOutcome {
                patron,
                ..Default::default()
            };
        };
        let now = self.state.clock.now();
        let overdue: Vec<String> = summary
            .loans
            .iter()
            .filter(|l| l.due_at < now)
            .map(|l| l.barcode.clone())
            .collect();
        let ready: Vec<String> = summary
            .holds
            .iter()
            .filter(|h| h.status == HoldStatus::Ready)
            .map(|h| h.title.clone())
            .collect();
        let waiting: Vec<String> = summary
            .holds
            .iter()
            .filter(|h| h.status == HoldStatus::Waiting)
            .map(|h| h.title.clone())
            .collect();
        let counts = ItemCounts {
            hold_items: count(ready.len()),
            overdue_items: count(overdue.len()),
            charged_items: count(summary.loans.len()),
            fine_items: count(summary.fines.len()),
            recall_items: 0,
            unavailable_holds: count(waiting.len()),
        };
        let items = match request.summary {
            Summary::HoldItems => ready,
            Summary::OverdueItems => overdue,
            Summary::ChargedItems => summary.loans.iter().map(|l| l.barcode.clone()).collect(),
            Summary::FineItems => summary
                .fines
                .iter()
                .map(|f| format!("{} {} {}", f.id, self.money(f.balance_cents()), f.reason))
                .collect(),
            Summary::UnavailableHolds => waiting,
            Summary::RecallItems | Summary::None => Vec::new(),
        };
        PatronInformationOutcome {
            patron,
            counts,
            items,
            charged_items_limit: Some(
                summary
                    .max_active_loans
                    .unwrap_or(self.state.config.max_active_loans),
            ),
            fee_limit: Some(format_amount(self.state.config.fine_block_threshold_cents)),
            email_address: Some(user.email),
            ..Default::default()
        }
    }

    async fn checkout(
        &self,
        context: Context<'_, Terminal>,
        request: &CheckoutRequest,
    ) -> LoanOutcome {
        let lang = Lang::of(context.language);
        let barcode = request.item_identifier.trim();
        if request.cancel == Some(true) {
            let copy = self.copy(barcode).await;
            return refused_loan(lang.unsupported(), copy.as_ref());
        }
        let actor = self.actor(context.terminal);
        // The copy (for the answer's title and media type) while the PIN is checked.
        let (copy, patron) = tokio::join!(
            self.copy(barcode),
            self.patron(
                &actor,
                &request.patron_identifier,
                request.patron_password.as_ref(),
            )
        );
        let user = match patron {
            Patron::Valid(user) => user,
            other => return refused_loan(Self::patron_refused(lang, &other), copy.as_ref()),
        };
        if barcode.is_empty() || copy.is_none() {
            return refused_loan(lang.unknown_item(), None);
        }
        match circulation::checkout(
            &self.state,
            &actor,
            barcode,
            user.id,
            context.terminal.branch_id,
        )
        .await
        {
            Ok(outcome) => LoanOutcome {
                ok: true,
                renewal_ok: false,
                desensitize: Some(true),
                title_identifier: copy.as_ref().map(|c| c.title.clone()).unwrap_or_default(),
                due_date: Some(SipDateTime::from_offset(outcome.loan.due_at)),
                media_type: copy.as_ref().map(|c| media_type(&c.item_type)),
                transaction_id: Some(outcome.loan.id.to_string()),
                screen_message: vec![lang.checked_out(&date(outcome.loan.due_at))],
                ..Default::default()
            },
            Err(error) => {
                let text = self.refusal_text(lang, &error, Some(user.id)).await;
                refused_loan(text, copy.as_ref())
            }
        }
    }

    async fn checkin(
        &self,
        context: Context<'_, Terminal>,
        request: &CheckinRequest,
    ) -> CheckinOutcome {
        let lang = Lang::of(context.language);
        let barcode = request.item_identifier.trim();
        let actor = self.actor(context.terminal);
        let result = if barcode.is_empty() {
            Err(StoreError::NotFound)
        } else {
            // A return scan: a copy in transit to this branch is received.
            circulation::scan_in(&self.state, &actor, barcode, context.terminal.branch_id).await
        };
        // The copy (for the answer) and the borrower (for AA) at once.
        let borrower = async {
            let borrower = match &result {
                Ok(ScanIn::Returned(returned)) => returned.loan.user_id,
                _ => None,
            };
            match borrower {
                Some(id) => self.state.store.find_user(id).await.ok().flatten(),
                None => None,
            }
        };
        let (copy, borrower) = tokio::join!(self.copy(barcode), borrower);
        let mut outcome = CheckinOutcome {
            permanent_location: copy
                .as_ref()
                .and_then(|c| c.location.clone())
                .unwrap_or_default(),
            title_identifier: copy.as_ref().map(|c| c.title.clone()),
            media_type: copy.as_ref().map(|c| media_type(&c.item_type)),
            call_number: copy.as_ref().and_then(|c| c.call_number.clone()),
            ..Default::default()
        };
        match result {
            Ok(scan) => {
                let (fine, hold, transit_to) = match &scan {
                    ScanIn::Returned(r) => {
                        (r.fine.as_ref(), r.hold.as_ref(), r.transit_to_branch_id)
                    }
                    ScanIn::Received(r) => (None, r.hold.as_ref(), r.copy.transit_to_branch_id),
                };
                outcome.ok = true;
                outcome.resensitize = hold.is_none();
                outcome.screen_message.push(lang.checked_in());
                if let Some(user) = borrower {
                    outcome.patron_identifier = user.card_number;
                }
                if let Some(fine) = fine {
                    outcome
                        .screen_message
                        .push(lang.fine_charged(&self.money(fine.amount_cents)));
                }
                // CV: 01 hold shelf here, 02 travels for a hold, 04 goes home.
                match (hold, transit_to) {
                    (Some(_), None) => {
                        outcome.alert_type = Some(carrel_sip2::AlertType::HoldHere);
                        outcome.screen_message.push(lang.hold_shelf());
                    }
                    (Some(_), Some(_)) => {
                        outcome.alert_type = Some(carrel_sip2::AlertType::HoldElsewhere);
                        outcome.screen_message.push(lang.transit_for_hold());
                    }
                    (None, Some(_)) => {
                        outcome.alert_type = Some(carrel_sip2::AlertType::SendHome);
                        outcome.screen_message.push(lang.transit_home());
                    }
                    (None, None) => {}
                }
                if let Some(holder) = hold.and_then(|h| h.user_id)
                    && let Ok(Some(user)) = self.state.store.find_user(holder).await
                {
                    outcome.hold_patron_id = user.card_number;
                    outcome.hold_patron_name = Some(user.full_name.unwrap_or(user.username));
                }
            }
            Err(error) => {
                outcome.ok = false;
                outcome.resensitize = false;
                outcome
                    .screen_message
                    .push(self.refusal_text(lang, &error, None).await);
            }
        }
        outcome
    }

    async fn item_information(
        &self,
        context: Context<'_, Terminal>,
        request: &ItemInformationRequest,
    ) -> ItemInformationOutcome {
        let lang = Lang::of(context.language);
        let Some(copy) = self.copy(request.item_identifier.trim()).await else {
            return ItemInformationOutcome {
                screen_message: vec![lang.unknown_item()],
                ..Default::default()
            };
        };
        let now = self.state.clock.now();
        let circulation_status = match copy.status {
            CopyStatus::Available => CirculationStatus::Available,
            CopyStatus::OnLoan => CirculationStatus::Charged,
            CopyStatus::OnHoldShelf => CirculationStatus::WaitingOnHoldShelf,
            CopyStatus::Lost => CirculationStatus::Lost,
            CopyStatus::Withdrawn => CirculationStatus::Missing,
            CopyStatus::InTransit | CopyStatus::Damaged => CirculationStatus::OtherStatus,
        };
        ItemInformationOutcome {
            circulation_status,
            security_marker: SecurityMarker::OtherMarker,
            fee_type: FeeType::OtherUnknown,
            hold_queue_length: Some(u32::try_from(copy.holds_waiting).unwrap_or(u32::MAX)),
            due_date: copy.due_at.map(SipDateTime::from_offset),
            hold_pickup_date: copy
                .hold_expires_at
                .filter(|at| *at > now)
                .map(SipDateTime::from_offset),
            title_identifier: copy.title.clone(),
            media_type: Some(media_type(&copy.item_type)),
            permanent_location: copy.location.clone(),
            current_location: copy.location.clone(),
            ..Default::default()
        }
    }

    async fn renew(&self, context: Context<'_, Terminal>, request: &RenewRequest) -> LoanOutcome {
        let lang = Lang::of(context.language);
        let barcode = request
            .item_identifier
            .as_deref()
            .unwrap_or_default()
            .trim();
        let copy = self.copy(barcode).await;
        let actor = self.actor(context.terminal);
        let user = match self
            .patron(
                &actor,
                &request.patron_identifier,
                request.patron_password.as_ref(),
            )
            .await
        {
            Patron::Valid(user) => user,
            other => return refused_loan(Self::patron_refused(lang, &other), copy.as_ref()),
        };
        let loan = match self.state.store.patron_summary(user.id).await {
            Ok(summary) => summary.loans.into_iter().find(|l| l.barcode == barcode),
            Err(error) => {
                return refused_loan(self.refusal_text(lang, &error, None).await, copy.as_ref());
            }
        };
        let Some(loan) = loan else {
            return refused_loan(
                lang.refusal(carrel_store::Refusal::NotOnLoan, None),
                copy.as_ref(),
            );
        };
        match circulation::renew(&self.state, &actor, loan.loan_id, Some(user.id)).await {
            Ok((renewed, fine)) => {
                let mut screen_message = vec![lang.renewed(&date(renewed.due_at))];
                if let Some(fine) = &fine {
                    screen_message.push(lang.fine_charged(&self.money(fine.amount_cents)));
                }
                LoanOutcome {
                    ok: true,
                    renewal_ok: true,
                    desensitize: Some(true),
                    title_identifier: loan.title,
                    due_date: Some(SipDateTime::from_offset(renewed.due_at)),
                    fee_type: fine.as_ref().map(|_| FeeType::Overdue),
                    currency_type: fine.as_ref().map(|_| self.state.config.currency.clone()),
                    fee_amount: fine.as_ref().map(|f| format_amount(f.amount_cents)),
                    media_type: copy.as_ref().map(|c| media_type(&c.item_type)),
                    transaction_id: Some(renewed.id.to_string()),
                    screen_message,
                    ..Default::default()
                }
            }
            Err(error) => {
                let text = self.refusal_text(lang, &error, Some(user.id)).await;
                refused_loan(text, copy.as_ref())
            }
        }
    }

    async fn renew_all(
        &self,
        context: Context<'_, Terminal>,
        request: &RenewAllRequest,
    ) -> RenewAllOutcome {
        let lang = Lang::of(context.language);
        let actor = self.actor(context.terminal);
        let user = match self
            .patron(
                &actor,
                &request.patron_identifier,
                request.patron_password.as_ref(),
            )
            .await
        {
            Patron::Valid(user) => user,
            other => {
                return RenewAllOutcome {
                    ok: false,
                    screen_message: vec![Self::patron_refused(lang, &other)],
                    ..Default::default()
                };
            }
        };
        let loans = match self.state.store.patron_summary(user.id).await {
            Ok(summary) => summary.loans,
            Err(error) => {
                return RenewAllOutcome {
                    ok: false,
                    screen_message: vec![self.refusal_text(lang, &error, None).await],
                    ..Default::default()
                };
            }
        };
        let mut outcome = RenewAllOutcome {
            ok: true,
            ..Default::default()
        };
        for loan in loans {
            match circulation::renew(&self.state, &actor, loan.loan_id, Some(user.id)).await {
                Ok(_) => outcome.renewed_items.push(loan.barcode),
                Err(_) => outcome.unrenewed_items.push(loan.barcode),
            }
        }
        outcome
    }

    async fn end_patron_session(
        &self,
        context: Context<'_, Terminal>,
        _request: &EndPatronSessionRequest,
    ) -> EndSessionOutcome {
        self.pins.forget();
        EndSessionOutcome {
            end_session: true,
            screen_message: vec![Lang::of(context.language).session_ended()],
            print_line: Vec::new(),
        }
    }

    async fn fee_paid(
        &self,
        context: Context<'_, Terminal>,
        request: &FeePaidRequest,
    ) -> FeePaidOutcome {
        let lang = Lang::of(context.language);
        let refused = |message: String| FeePaidOutcome {
            payment_accepted: false,
            screen_message: vec![message],
            ..Default::default()
        };
        let actor = self.actor(context.terminal);
        let user = match self
            .patron(
                &actor,
                &request.patron_identifier,
                request.patron_password.as_ref(),
            )
            .await
        {
            Patron::Valid(user) => user,
            other => return refused(Self::patron_refused(lang, &other)),
        };
        let method = match request.payment_type {
            PaymentType::Cash => fines::Method::Cash,
            PaymentType::Visa | PaymentType::CreditCard => fines::Method::Card,
            PaymentType::Other(_) => return refused(lang.unsupported()),
        };
        let currency = request.currency_type.trim();
        let amount = parse_amount(&request.fee_amount).filter(|a| *a > 0);
        let Some(amount) =
            amount.filter(|_| currency.is_empty() || currency == self.state.config.currency)
        else {
            return refused(lang.bad_amount());
        };
        let open = match self.state.store.patron_summary(user.id).await {
            Ok(summary) => summary.fines,
            Err(error) => return refused(self.refusal_text(lang, &error, None).await),
        };
        let fine = match request
            .fee_identifier
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(id) => open
                .iter()
                .find(|f| f.id.to_string().eq_ignore_ascii_case(id)),
            None if open.len() == 1 => open.first(),
            None if open.is_empty() => None,
            None => return refused(lang.fee_ambiguous()),
        };
        let Some(fine) = fine else {
            return refused(lang.fee_not_found());
        };
        if amount > fine.balance_cents() {
            return refused(lang.refusal(carrel_store::Refusal::ExceedsBalance, None));
        }
        // A terminal's retry of the same transaction (BK) records one payment.
        let key = match request
            .transaction_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(bk) => format!("sip2:{}", bk.chars().take(200).collect::<String>()),
            None => format!("sip2:{}", Uuid::now_v7()),
        };
        let input = fines::PayInput {
            fine_id: fine.id,
            amount_cents: amount,
            method,
            payment_token: None,
            idempotency_key: &key,
            staff: true,
        };
        match fines::pay(&self.state, &actor, input, |payment, _| {
            payment.id.to_string()
        })
        .await
        {
            Ok(
                PaymentOutcome::Created { response, .. }
                | PaymentOutcome::Replayed { response, .. },
            ) => FeePaidOutcome {
                payment_accepted: true,
                transaction_id: Some(response),
                screen_message: vec![lang.payment_received(&self.money(amount))],
                print_line: Vec::new(),
            },
            Err(fines::PayRefusal::Store(error)) => {
                refused(self.refusal_text(lang, &error, None).await)
            }
            // A fine settled meanwhile: its balance is 0. (A terminal pays
            // cash or card as staff, so no other refusal can come back.)
            Err(_) => refused(lang.refusal(carrel_store::Refusal::ExceedsBalance, None)),
        }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
