//! Loan policies per item type: a view of the rule matrix's type-only rows
//! (no branch, no category; see [`super::rules`]), kept for the
//! `/circulation-policies` endpoints.

use carrel_core::circulation::LoanPolicy;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::append_audit_trail;
use crate::{AuditTrail, Store, StoreError};

/// A stored policy.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyRow {
    pub item_type: String,
    pub loan_days: i32,
    pub max_renewals: i32,
    pub daily_fine_cents: i64,
    pub max_fine_cents: i64,
    pub grace_days: i32,
    pub replacement_cost_cents: i64,
    /// None until an admin first edits the seeded default.
    pub updated_at: Option<OffsetDateTime>,
    pub updated_by: Option<Uuid>,
}

impl PolicyRow {
    /// The rules of this row. CHECK constraints keep every column in range.
    pub fn policy(&self) -> LoanPolicy {
        stored_policy(
            [self.loan_days, self.max_renewals, self.grace_days],
            [
                self.daily_fine_cents,
                self.max_fine_cents,
                self.replacement_cost_cents,
            ],
        )
    }
}

/// A policy from its stored columns: `[loan_days, max_renewals, grace_days]`
/// and `[daily_fine_cents, max_fine_cents, replacement_cost_cents]`. CHECK
/// constraints keep the day counts non-negative.
pub(crate) fn stored_policy(days: [i32; 3], cents: [i64; 3]) -> LoanPolicy {
    let [loan_days, max_renewals, grace_days] = days.map(|d| u32::try_from(d).unwrap_or(0));
    let [daily_fine_cents, max_fine_cents, replacement_cost_cents] = cents;
    LoanPolicy {
        loan_days,
        max_renewals,
        daily_fine_cents,
        max_fine_cents,
        grace_days,
        replacement_cost_cents,
    }
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

impl Store {
    /// Every type-only rule as a policy, in item-type order.
    pub async fn list_policies(&self) -> Result<Vec<PolicyRow>, StoreError> {
        const LIST: &str = "SELECT item_type, loan_days, max_renewals, daily_fine_cents, max_fine_cents, grace_days, \
             replacement_cost_cents, updated_at, updated_by FROM circulation_rules \
             WHERE branch_id IS NULL AND patron_category IS NULL AND item_type IS NOT NULL ORDER BY item_type";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST).fetch_all(pool).await?))
    }

    /// Replaces the loan values of an item type's type-only rule (creating the
    /// row, holds allowed and no per-type limit, if the type has none). Loans
    /// already out keep the policy recorded at their checkout.
    pub async fn put_policy(
        &self,
        item_type: &str,
        policy: &LoanPolicy,
        actor: Option<Uuid>,
        now: OffsetDateTime,
        audit: impl AuditTrail<PolicyRow>,
    ) -> Result<PolicyRow, StoreError> {
        const UPDATE: &str = "UPDATE circulation_rules SET loan_days = $2, max_renewals = $3, daily_fine_cents = $4, \
             max_fine_cents = $5, grace_days = $6, replacement_cost_cents = $7, updated_at = $8, updated_by = $9 \
             WHERE branch_id IS NULL AND patron_category IS NULL AND item_type = $1 \
             RETURNING item_type, loan_days, max_renewals, daily_fine_cents, max_fine_cents, \
             grace_days, replacement_cost_cents, updated_at, updated_by";
        const INSERT: &str = "INSERT INTO circulation_rules (item_type, loan_days, max_renewals, daily_fine_cents, \
             max_fine_cents, grace_days, replacement_cost_cents, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING item_type, loan_days, max_renewals, daily_fine_cents, max_fine_cents, \
             grace_days, replacement_cost_cents, updated_at, updated_by";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let mut row: Option<PolicyRow> = None;
            for sql in [UPDATE, INSERT] {
                row = sqlx::query_as(sql)
                    .bind(item_type)
                    .bind(to_i32(policy.loan_days))
                    .bind(to_i32(policy.max_renewals))
                    .bind(policy.daily_fine_cents)
                    .bind(policy.max_fine_cents)
                    .bind(to_i32(policy.grace_days))
                    .bind(policy.replacement_cost_cents)
                    .bind(now)
                    .bind(actor)
                    .fetch_optional(&mut *tx)
                    .await?;
                if row.is_some() {
                    break;
                }
            }
            let row = row.ok_or(StoreError::NotFound)?;
            let events = append_audit_trail!(tx, audit, &row);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(row)
        })
    }
}
