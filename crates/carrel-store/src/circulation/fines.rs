//! Fines, payments (with idempotency keys) and waivers. All money is integer
//! cents; `paid + waived <= amount` is a CHECK constraint, so no interleaving
//! of payments can take a balance below zero.

use time::OffsetDateTime;
use uuid::Uuid;

use carrel_core::decide::{FineFacts, PaymentFacts, WaiverFacts, decide_payment, decide_waiver};
use carrel_core::statuses::{FineReason, FineStatus, PaymentMethod};

use super::Refusal;
use crate::audit::append_audit_trail;
use crate::stored::Stored;
use crate::{AuditTrail, Store, StoreError};

macro_rules! fine_select {
    () => {
        "id, user_id, loan_id, reason, amount_cents, paid_cents, waived_cents, status, note, \
         days_late, grace_days, daily_fine_cents, max_fine_cents, capped, created_by, created_at, updated_at, closed_days_skipped"
    };
}
pub(crate) use fine_select;

/// Binds: id, user, loan, amount, days late, grace, rate, cap, capped, actor, now, closed days skipped.
pub(crate) const INSERT_OVERDUE: &str = concat!(
    "INSERT INTO fines (id, user_id, loan_id, reason, amount_cents, paid_cents, waived_cents, status, \
     days_late, grace_days, daily_fine_cents, max_fine_cents, capped, created_by, created_at, updated_at, closed_days_skipped) \
     VALUES ($1, $2, $3, 'overdue', $4, 0, 0, 'open', $5, $6, $7, $8, $9, $10, $11, $11, $12) RETURNING ",
    fine_select!()
);

/// A stored fine. The calculation columns are set for overdue fines only.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Fine {
    pub id: Uuid,
    pub user_id: Uuid,
    pub loan_id: Option<Uuid>,
    #[sqlx(try_from = "Stored<FineReason>")]
    pub reason: FineReason,
    pub amount_cents: i64,
    pub paid_cents: i64,
    pub waived_cents: i64,
    #[sqlx(try_from = "Stored<FineStatus>")]
    pub status: FineStatus,
    pub note: Option<String>,
    pub days_late: Option<i32>,
    pub grace_days: Option<i32>,
    pub daily_fine_cents: Option<i64>,
    pub max_fine_cents: Option<i64>,
    pub capped: Option<bool>,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Closed days of the lending branch not counted as late (overdue fines).
    pub closed_days_skipped: Option<i32>,
}

impl Fine {
    /// What is still owed.
    pub fn balance_cents(&self) -> i64 {
        self.amount_cents - self.paid_cents - self.waived_cents
    }

    /// What paying or waiving it decides on.
    pub fn facts(&self) -> FineFacts {
        FineFacts {
            owner: self.user_id,
            status: self.status,
            balance_cents: self.balance_cents(),
        }
    }
}

/// A manual or damage fine.
#[derive(Debug, Clone)]
pub struct NewFine {
    pub user_id: Uuid,
    pub amount_cents: i64,
    /// `Manual` or `Damage`.
    pub reason: FineReason,
    pub note: Option<String>,
    pub actor: Option<Uuid>,
    pub now: OffsetDateTime,
}

/// A stored payment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payment {
    pub id: Uuid,
    pub fine_id: Uuid,
    pub user_id: Uuid,
    pub amount_cents: i64,
    #[sqlx(try_from = "Stored<PaymentMethod>")]
    pub method: PaymentMethod,
    /// The payment provider's reference.
    pub reference: Option<String>,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
}

/// A stored waiver.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Waiver {
    pub id: Uuid,
    pub fine_id: Uuid,
    pub amount_cents: i64,
    pub reason: String,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
}

/// A payment towards a fine under an idempotency key.
#[derive(Debug, Clone)]
pub struct PaymentRequest<'a> {
    pub fine_id: Uuid,
    /// Must own the fine unless `staff`; staff may not pay their own.
    pub caller: Uuid,
    pub staff: bool,
    pub amount_cents: i64,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    /// The `Idempotency-Key`, scoped to `caller`.
    pub key: &'a str,
    /// A digest of everything that makes two requests "the same".
    pub request_hash: &'a [u8],
    pub now: OffsetDateTime,
}

/// The result of [`Store::pay_fine`].
#[derive(Debug, Clone)]
pub enum PaymentOutcome {
    /// A new payment; the rendered response has been stored under the key.
    Created {
        payment: Box<Payment>,
        fine: Box<Fine>,
        response: String,
    },
    /// The key was used before with the same request: its stored response.
    Replayed { status: u16, response: String },
}

/// A waiver of (part of) a fine.
#[derive(Debug, Clone)]
pub struct WaiverRequest {
    pub fine_id: Uuid,
    /// None waives the whole balance.
    pub amount_cents: Option<i64>,
    pub reason: String,
    pub actor: Uuid,
    pub now: OffsetDateTime,
}

/// Filters of a fine listing.
#[derive(Debug, Clone)]
pub struct FineQuery {
    pub user_id: Option<Uuid>,
    /// None: `Open`.
    pub status: Option<FineStatus>,
    pub after: Option<(OffsetDateTime, Uuid)>,
    pub limit: u32,
}

impl Store {
    /// Creates a manual or damage fine for a live user, with its audit entries.
    pub async fn create_fine(
        &self,
        fine: &NewFine,
        audit: impl AuditTrail<Fine>,
    ) -> Result<Fine, StoreError> {
        const USER: &str = "SELECT COUNT(*) FROM users WHERE id = $1 AND deleted_at IS NULL";
        const INSERT: &str = concat!(
            "INSERT INTO fines (id, user_id, reason, amount_cents, paid_cents, waived_cents, status, note, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 0, 0, 'open', $5, $6, $7, $7) RETURNING ",
            fine_select!()
        );
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let users: i64 = sqlx::query_scalar(USER).bind(fine.user_id).fetch_one(&mut *tx).await?;
            if users == 0 {
                return Err(StoreError::NotFound);
            }
            let created: Fine = sqlx::query_as(INSERT)
                .bind(Uuid::now_v7())
                .bind(fine.user_id)
                .bind(fine.reason.as_str())
                .bind(fine.amount_cents)
                .bind(fine.note.as_deref())
                .bind(fine.actor)
                .bind(fine.now)
                .fetch_one(&mut *tx)
                .await?;
            let events = append_audit_trail!(tx, audit, &created);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(created)
        })
    }

    /// A fine by id.
    pub async fn find_fine(&self, id: Uuid) -> Result<Option<Fine>, StoreError> {
        const SELECT: &str = concat!("SELECT ", fine_select!(), " FROM fines WHERE id = $1");
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(id).fetch_optional(pool).await?),
        )
    }

    /// Fines, newest first.
    pub async fn list_fines(&self, query: &FineQuery) -> Result<Vec<Fine>, StoreError> {
        const LIST: &str = concat!(
            "SELECT ",
            fine_select!(),
            " FROM fines WHERE ($1 IS NULL OR user_id = $1) AND status = $2 \
               AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST)
            .bind(query.user_id)
            .bind(query.status.unwrap_or(FineStatus::Open).as_str())
            .bind(query.after.map(|(at, _)| at))
            .bind(query.after.map(|(_, id)| id))
            .bind(i64::from(query.limit) + 1)
            .fetch_all(pool)
            .await?))
    }

    /// Every fine of a user (for the data export), oldest first.
    pub async fn user_fines(&self, user_id: Uuid) -> Result<Vec<Fine>, StoreError> {
        const LIST: &str = concat!(
            "SELECT ",
            fine_select!(),
            " FROM fines WHERE user_id = $1 ORDER BY created_at, id"
        );
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST).bind(user_id).fetch_all(pool).await?))
    }

    /// Every payment towards a user's fines (for the data export), oldest first.
    pub async fn user_payments(&self, user_id: Uuid) -> Result<Vec<Payment>, StoreError> {
        const LIST: &str = "SELECT id, fine_id, user_id, amount_cents, method, reference, created_by, created_at \
             FROM payments WHERE user_id = $1 ORDER BY created_at, id";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST).bind(user_id).fetch_all(pool).await?))
    }

    /// The payments and waivers of a fine, oldest first.
    pub async fn fine_history(
        &self,
        fine_id: Uuid,
    ) -> Result<(Vec<Payment>, Vec<Waiver>), StoreError> {
        const PAYMENTS: &str = "SELECT id, fine_id, user_id, amount_cents, method, reference, created_by, created_at \
             FROM payments WHERE fine_id = $1 ORDER BY created_at, id";
        const WAIVERS: &str = "SELECT id, fine_id, amount_cents, reason, created_by, created_at \
             FROM fine_waivers WHERE fine_id = $1 ORDER BY created_at, id";
        crate::on_pool!(self, pool => {
            let payments = sqlx::query_as(PAYMENTS).bind(fine_id).fetch_all(pool).await?;
            let waivers = sqlx::query_as(WAIVERS).bind(fine_id).fetch_all(pool).await?;
            Ok((payments, waivers))
        })
    }

    /// The stored response of an idempotency key, if the caller used it before:
    /// `(request hash, status, body)`.
    pub async fn idempotent_response(
        &self,
        caller: Uuid,
        key: &str,
    ) -> Result<Option<(Vec<u8>, u16, String)>, StoreError> {
        const SELECT: &str = "SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE caller_id = $1 AND key = $2";
        let row: Option<(Vec<u8>, i32, String)> = crate::on_pool!(self, pool =>
            sqlx::query_as(SELECT).bind(caller).bind(key).fetch_optional(pool).await?);
        Ok(row.map(|(hash, status, body)| (hash, u16::try_from(status).unwrap_or(500), body)))
    }

    /// Pays towards a fine under an idempotency key, in one transaction.
    ///
    /// The key row is inserted first: a concurrent duplicate blocks on it (the
    /// primary key) until this transaction ends, then finds the stored
    /// response, so concurrent duplicates produce one payment. The amount is
    /// added with a compare-and-set that keeps it within the balance.
    /// `render` turns the payment and the updated fine into the response body
    /// that is stored and replayed; `audit` makes the payment's audit entries,
    /// written in the same transaction (a payment never lacks its entry).
    pub async fn pay_fine(
        &self,
        request: &PaymentRequest<'_>,
        render: impl Fn(&Payment, &Fine) -> String,
        audit: impl FnOnce(&Payment, &Fine) -> Vec<crate::NewAuditEvent> + Send,
    ) -> Result<PaymentOutcome, StoreError> {
        const CLAIM_KEY: &str = "INSERT INTO idempotency_keys (caller_id, key, request_hash, response_status, response_body, created_at) \
             VALUES ($1, $2, $3, 0, '', $4)";
        const FINE: &str = concat!("SELECT ", fine_select!(), " FROM fines WHERE id = $1");
        const PAY: &str = concat!(
            "UPDATE fines SET paid_cents = paid_cents + $2, updated_at = $3, status = CASE WHEN paid_cents + $2 + waived_cents < amount_cents THEN 'open' \
             WHEN waived_cents > 0 THEN 'waived' ELSE 'paid' END \
             WHERE id = $1 AND status = 'open' AND paid_cents + waived_cents + $2 <= amount_cents RETURNING ",
            fine_select!()
        );
        const INSERT: &str = "INSERT INTO payments (id, fine_id, user_id, amount_cents, method, reference, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING id, fine_id, user_id, amount_cents, method, reference, created_by, created_at";
        const STORE_RESPONSE: &str = "UPDATE idempotency_keys SET response_status = 201, response_body = $3 WHERE caller_id = $1 AND key = $2";
        let r = request;
        // An async block, so that `?` ends the attempt (and its transaction)
        // rather than the method: a key conflict must reach the match below.
        let attempt: Result<PaymentOutcome, StoreError> = async { crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            sqlx::query(CLAIM_KEY).bind(r.caller).bind(r.key).bind(r.request_hash).bind(r.now).execute(&mut *tx).await?;
            let before: Fine = sqlx::query_as(FINE).bind(r.fine_id).fetch_optional(&mut *tx).await?
                .filter(|f: &Fine| r.staff || f.user_id == r.caller)
                .ok_or(StoreError::NotFound)?;
            decide_payment(&PaymentFacts {
                fine: before.facts(),
                payer: r.caller,
                staff: r.staff,
                amount_cents: r.amount_cents,
            })
            .map_err(|refusal| match refusal {
                // A settled fine's balance is zero: any amount exceeds it.
                Refusal::FineSettled => Refusal::ExceedsBalance,
                other => other,
            })?;
            // The compare-and-set keeps a concurrent payment from overdrawing it.
            let fine: Fine = sqlx::query_as(PAY).bind(r.fine_id).bind(r.amount_cents).bind(r.now)
                .fetch_optional(&mut *tx).await?.ok_or(StoreError::Circulation(Refusal::ExceedsBalance))?;
            let payment: Payment = sqlx::query_as(INSERT)
                .bind(Uuid::now_v7())
                .bind(r.fine_id)
                .bind(fine.user_id)
                .bind(r.amount_cents)
                .bind(r.method.as_str())
                .bind(r.reference.as_deref())
                .bind(r.caller)
                .bind(r.now)
                .fetch_one(&mut *tx)
                .await?;
            let response = render(&payment, &fine);
            sqlx::query(STORE_RESPONSE).bind(r.caller).bind(r.key).bind(&response).execute(&mut *tx).await?;
            let events = audit(&payment, &fine);
            for event in &events {
                crate::audit::insert_audit_event!(&mut *tx, event)?;
            }
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(PaymentOutcome::Created { payment: Box::new(payment), fine: Box::new(fine), response })
        })}
        .await;
        match attempt {
            // The key was used before, or a concurrent duplicate committed it
            // while this insert waited on the primary key: replay that answer.
            Err(StoreError::Conflict { constraint }) if constraint.contains("idempotency") => self
                .replay(r)
                .await?
                .ok_or(StoreError::Conflict { constraint }),
            other => other,
        }
    }

    async fn replay(&self, r: &PaymentRequest<'_>) -> Result<Option<PaymentOutcome>, StoreError> {
        match self.idempotent_response(r.caller, r.key).await? {
            None => Ok(None),
            Some((hash, _, _)) if hash != r.request_hash => {
                Err(Refusal::IdempotencyKeyReused.into())
            }
            Some((_, status, response)) => Ok(Some(PaymentOutcome::Replayed { status, response })),
        }
    }

    /// Waives (part of) the balance of an open fine; never the actor's own.
    /// The waiver's audit entries are committed with it.
    pub async fn waive_fine(
        &self,
        request: &WaiverRequest,
        audit: impl AuditTrail<Fine>,
    ) -> Result<Fine, StoreError> {
        const FINE: &str = concat!("SELECT ", fine_select!(), " FROM fines WHERE id = $1");
        const WAIVE: &str = concat!(
            "UPDATE fines SET waived_cents = waived_cents + $2, updated_at = $3, status = CASE WHEN paid_cents + waived_cents + $2 < amount_cents THEN 'open' \
             ELSE 'waived' END \
             WHERE id = $1 AND status = 'open' AND paid_cents + waived_cents + $2 <= amount_cents RETURNING ",
            fine_select!()
        );
        const INSERT: &str = "INSERT INTO fine_waivers (id, fine_id, amount_cents, reason, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
        let r = request;
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let before: Fine = sqlx::query_as(FINE).bind(r.fine_id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            let plan = decide_waiver(&WaiverFacts { fine: before.facts(), actor: r.actor, amount_cents: r.amount_cents })?;
            let amount = plan.amount_cents;
            let fine: Fine = sqlx::query_as(WAIVE).bind(r.fine_id).bind(amount).bind(r.now)
                .fetch_optional(&mut *tx).await?.ok_or(StoreError::Circulation(Refusal::ExceedsBalance))?;
            sqlx::query(INSERT).bind(Uuid::now_v7()).bind(r.fine_id).bind(amount).bind(&r.reason).bind(r.actor).bind(r.now)
                .execute(&mut *tx).await?;
            let events = append_audit_trail!(tx, audit, &fine);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(fine)
        })
    }
}
