//! Rules a library writes: its item types, its patron categories and the
//! circulation rule matrix (migration 0014). Resolution itself is
//! [`carrel_core::rules::resolve`]; this module stores rows and loads the few
//! that can match one checkout.

use carrel_core::rules::{Rule, RuleKey, Specificity};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::append_audit_trail;
use crate::{AuditTrail, Store, StoreError};

/// The columns of a matrix row, in [`RuleRow`] order.
macro_rules! rule_columns {
    () => {
        "branch_id, patron_category, item_type, loan_days, max_renewals, daily_fine_cents, max_fine_cents, \
         grace_days, replacement_cost_cents, max_loans_of_type, holds_allowed"
    };
}

/// The rows that can match one key: those naming nothing, or only values of
/// the key (`$1` branch, `$2` category, `$3` type; a NULL key value matches
/// only rows that leave the column open). At most eight rows.
macro_rules! matching_rules_sql {
    () => {
        concat!(
            "SELECT ",
            rule_columns!(),
            " FROM circulation_rules WHERE (branch_id IS NULL OR branch_id = $1) \
             AND (patron_category IS NULL OR patron_category = $2) AND (item_type IS NULL OR item_type = $3)"
        )
    };
}

/// Loads the rows matching `$key` (a [`RuleKey`]) inside the caller's
/// transaction and resolves them; evaluates to `(Rule, Specificity)`. A
/// matrix always holds the default row, so no match is a broken database.
macro_rules! resolve_rule {
    ($tx:expr, $key:expr) => {{
        let key: &carrel_core::rules::RuleKey<'_> = $key;
        let rows: Vec<$crate::circulation::rules::RuleRow> =
            sqlx::query_as($crate::circulation::rules::MATCHING_RULES)
                .bind(key.branch_id)
                .bind(key.patron_category)
                .bind(key.item_type)
                .fetch_all(&mut *$tx)
                .await?;
        let rules: Vec<carrel_core::rules::Rule> = rows.into_iter().map(Into::into).collect();
        carrel_core::rules::resolve(&rules, key)
            .map(|(rule, level)| (rule.clone(), level))
            .ok_or($crate::StoreError::Refused(
                "the circulation rules have no default row",
            ))?
    }};
}
pub(crate) use resolve_rule;

pub(crate) const MATCHING_RULES: &str = matching_rules_sql!();

/// A stored matrix row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RuleRow {
    branch_id: Option<Uuid>,
    patron_category: Option<String>,
    item_type: Option<String>,
    loan_days: i32,
    max_renewals: i32,
    daily_fine_cents: i64,
    max_fine_cents: i64,
    grace_days: i32,
    replacement_cost_cents: i64,
    max_loans_of_type: Option<i32>,
    holds_allowed: bool,
}

impl From<RuleRow> for Rule {
    fn from(r: RuleRow) -> Rule {
        Rule {
            branch_id: r.branch_id,
            patron_category: r.patron_category,
            item_type: r.item_type,
            policy: super::policies::stored_policy(
                [r.loan_days, r.max_renewals, r.grace_days],
                [
                    r.daily_fine_cents,
                    r.max_fine_cents,
                    r.replacement_cost_cents,
                ],
            ),
            // A CHECK constraint keeps it non-negative.
            max_loans_of_type: r.max_loans_of_type.map(|n| u32::try_from(n).unwrap_or(0)),
            holds_allowed: r.holds_allowed,
        }
    }
}

/// An item type the library defines.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ItemType {
    pub code: String,
    pub name: String,
}

/// A patron category and its own limits (`None`: the global setting).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PatronCategory {
    pub code: String,
    pub name: String,
    pub max_active_loans: Option<i32>,
    pub max_active_holds: Option<i32>,
}

/// Changes to a patron category; `None` leaves a field alone, `Some(None)`
/// returns a limit to the global setting.
#[derive(Debug, Clone, Default)]
pub struct CategoryChanges {
    pub name: Option<String>,
    pub max_active_loans: Option<Option<u32>>,
    pub max_active_holds: Option<Option<u32>>,
}

/// The category every new user gets, which cannot be deleted.
pub const DEFAULT_CATEGORY: &str = "adult";

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Most specific first, then by branch, category and type.
fn sort_matrix(rules: &mut [Rule]) {
    rules.sort_by(|a, b| {
        (
            a.specificity(),
            a.branch_id,
            &a.patron_category,
            &a.item_type,
        )
            .cmp(&(
                b.specificity(),
                b.branch_id,
                &b.patron_category,
                &b.item_type,
            ))
    });
}

impl Store {
    /// Every item type, by code.
    pub async fn list_item_types(&self) -> Result<Vec<ItemType>, StoreError> {
        const LIST: &str = "SELECT code, name FROM item_types ORDER BY code";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST).fetch_all(pool).await?))
    }

    /// Whether `code` is a defined item type.
    pub async fn item_type_exists(&self, code: &str) -> Result<bool, StoreError> {
        const COUNT: &str = "SELECT COUNT(*) FROM item_types WHERE code = $1";
        let n: i64 = crate::on_pool!(self, pool => sqlx::query_scalar(COUNT).bind(code).fetch_one(pool).await?);
        Ok(n > 0)
    }

    /// Defines an item type; an existing code is a [`StoreError::Conflict`].
    pub async fn create_item_type(
        &self,
        item_type: &ItemType,
        audit: impl AuditTrail<ItemType>,
    ) -> Result<ItemType, StoreError> {
        const INSERT: &str =
            "INSERT INTO item_types (code, name) VALUES ($1, $2) RETURNING code, name";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let created: ItemType = sqlx::query_as(INSERT).bind(&item_type.code).bind(&item_type.name)
                .fetch_one(&mut *tx).await?;
            let events = append_audit_trail!(tx, audit, &created);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(created)
        })
    }

    /// Renames an item type.
    pub async fn rename_item_type(
        &self,
        code: &str,
        name: &str,
        audit: impl AuditTrail<ItemType>,
    ) -> Result<ItemType, StoreError> {
        const UPDATE: &str = "UPDATE item_types SET name = $2 WHERE code = $1 RETURNING code, name";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let updated: ItemType = sqlx::query_as(UPDATE).bind(code).bind(name)
                .fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            let events = append_audit_trail!(tx, audit, &updated);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(updated)
        })
    }

    /// Deletes an item type. Refused while an item (deleted ones included) or
    /// a rule names it; the foreign keys refuse it too if a write races this.
    pub async fn delete_item_type(
        &self,
        code: &str,
        audit: impl AuditTrail<ItemType>,
    ) -> Result<(), StoreError> {
        const IN_USE: &str = "SELECT (SELECT COUNT(*) FROM items WHERE item_type = $1) \
             + (SELECT COUNT(*) FROM circulation_rules WHERE item_type = $1)";
        const DELETE: &str = "DELETE FROM item_types WHERE code = $1 RETURNING code, name";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let uses: i64 = sqlx::query_scalar(IN_USE).bind(code).fetch_one(&mut *tx).await?;
            if uses > 0 {
                return Err(StoreError::Refused("the item type is used by items or circulation rules"));
            }
            let deleted: ItemType = sqlx::query_as(DELETE).bind(code).fetch_optional(&mut *tx).await?
                .ok_or(StoreError::NotFound)?;
            let events = append_audit_trail!(tx, audit, &deleted);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(())
        })
    }

    /// Every patron category, by code.
    pub async fn list_patron_categories(&self) -> Result<Vec<PatronCategory>, StoreError> {
        const LIST: &str = "SELECT code, name, max_active_loans, max_active_holds FROM patron_categories ORDER BY code";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST).fetch_all(pool).await?))
    }

    /// Whether `code` is a defined patron category.
    pub async fn patron_category_exists(&self, code: &str) -> Result<bool, StoreError> {
        const COUNT: &str = "SELECT COUNT(*) FROM patron_categories WHERE code = $1";
        let n: i64 = crate::on_pool!(self, pool => sqlx::query_scalar(COUNT).bind(code).fetch_one(pool).await?);
        Ok(n > 0)
    }

    /// Defines a patron category; an existing code is a [`StoreError::Conflict`].
    pub async fn create_patron_category(
        &self,
        category: &PatronCategory,
        audit: impl AuditTrail<PatronCategory>,
    ) -> Result<PatronCategory, StoreError> {
        const INSERT: &str = "INSERT INTO patron_categories (code, name, max_active_loans, max_active_holds) \
             VALUES ($1, $2, $3, $4) RETURNING code, name, max_active_loans, max_active_holds";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let created: PatronCategory = sqlx::query_as(INSERT).bind(&category.code).bind(&category.name)
                .bind(category.max_active_loans).bind(category.max_active_holds)
                .fetch_one(&mut *tx).await?;
            let events = append_audit_trail!(tx, audit, &created);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(created)
        })
    }

    /// Changes a patron category's name or limits.
    pub async fn update_patron_category(
        &self,
        code: &str,
        changes: &CategoryChanges,
        audit: impl AuditTrail<PatronCategory>,
    ) -> Result<PatronCategory, StoreError> {
        const UPDATE: &str = "UPDATE patron_categories SET name = COALESCE($2, name), \
             max_active_loans = CASE WHEN $3 THEN $4 ELSE max_active_loans END, \
             max_active_holds = CASE WHEN $5 THEN $6 ELSE max_active_holds END \
             WHERE code = $1 RETURNING code, name, max_active_loans, max_active_holds";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let updated: PatronCategory = sqlx::query_as(UPDATE).bind(code).bind(changes.name.as_deref())
                .bind(changes.max_active_loans.is_some()).bind(changes.max_active_loans.flatten().map(to_i32))
                .bind(changes.max_active_holds.is_some()).bind(changes.max_active_holds.flatten().map(to_i32))
                .fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            let events = append_audit_trail!(tx, audit, &updated);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(updated)
        })
    }

    /// Deletes a patron category. Refused for the default category and while
    /// a user (deleted ones included) or a rule names it.
    pub async fn delete_patron_category(
        &self,
        code: &str,
        audit: impl AuditTrail<PatronCategory>,
    ) -> Result<(), StoreError> {
        const IN_USE: &str = "SELECT (SELECT COUNT(*) FROM users WHERE category = $1) \
             + (SELECT COUNT(*) FROM circulation_rules WHERE patron_category = $1)";
        const DELETE: &str = "DELETE FROM patron_categories WHERE code = $1 \
             RETURNING code, name, max_active_loans, max_active_holds";
        if code == DEFAULT_CATEGORY {
            return Err(StoreError::Refused(
                "the default patron category cannot be deleted",
            ));
        }
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let uses: i64 = sqlx::query_scalar(IN_USE).bind(code).fetch_one(&mut *tx).await?;
            if uses > 0 {
                return Err(StoreError::Refused("the patron category is used by users or circulation rules"));
            }
            let deleted: PatronCategory = sqlx::query_as(DELETE).bind(code).fetch_optional(&mut *tx).await?
                .ok_or(StoreError::NotFound)?;
            let events = append_audit_trail!(tx, audit, &deleted);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(())
        })
    }

    /// The whole matrix, most specific rows first.
    pub async fn list_rules(&self) -> Result<Vec<Rule>, StoreError> {
        const LIST: &str = concat!("SELECT ", rule_columns!(), " FROM circulation_rules");
        let rows: Vec<RuleRow> =
            crate::on_pool!(self, pool => sqlx::query_as(LIST).fetch_all(pool).await?);
        let mut rules: Vec<Rule> = rows.into_iter().map(Into::into).collect();
        sort_matrix(&mut rules);
        Ok(rules)
    }

    /// The rule in force for `key`, and how it matched.
    pub async fn resolve_rule(&self, key: &RuleKey<'_>) -> Result<(Rule, Specificity), StoreError> {
        crate::on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            Ok(resolve_rule!(conn, key))
        })
    }

    /// Replaces the whole matrix in one transaction (the caller validated it
    /// with [`carrel_core::rules::validate_matrix`] and checked its codes; the
    /// foreign keys and the unique key index refuse anything that slipped
    /// through). Loans already out keep the rule frozen at their checkout.
    pub async fn replace_rules(
        &self,
        rules: &[Rule],
        actor: Option<Uuid>,
        now: OffsetDateTime,
        audit: impl AuditTrail<Vec<Rule>>,
    ) -> Result<Vec<Rule>, StoreError> {
        const DELETE: &str = "DELETE FROM circulation_rules";
        const INSERT: &str = concat!(
            "INSERT INTO circulation_rules (",
            rule_columns!(),
            ", updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        const LIST: &str = concat!("SELECT ", rule_columns!(), " FROM circulation_rules");
        if !rules
            .iter()
            .any(|r| r.specificity() == Specificity::Default)
        {
            return Err(StoreError::Refused(
                "the circulation rules need a default row",
            ));
        }
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            sqlx::query(DELETE).execute(&mut *tx).await?;
            for rule in rules {
                let p = &rule.policy;
                sqlx::query(INSERT)
                    .bind(rule.branch_id)
                    .bind(rule.patron_category.as_deref())
                    .bind(rule.item_type.as_deref())
                    .bind(to_i32(p.loan_days))
                    .bind(to_i32(p.max_renewals))
                    .bind(p.daily_fine_cents)
                    .bind(p.max_fine_cents)
                    .bind(to_i32(p.grace_days))
                    .bind(p.replacement_cost_cents)
                    .bind(rule.max_loans_of_type.map(to_i32))
                    .bind(rule.holds_allowed)
                    .bind(now)
                    .bind(actor)
                    .execute(&mut *tx)
                    .await?;
            }
            let rows: Vec<RuleRow> = sqlx::query_as(LIST).fetch_all(&mut *tx).await?;
            let mut stored: Vec<Rule> = rows.into_iter().map(Into::into).collect();
            sort_matrix(&mut stored);
            let events = append_audit_trail!(tx, audit, &stored);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(stored)
        })
    }
}
