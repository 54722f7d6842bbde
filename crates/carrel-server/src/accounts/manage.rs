//! Profiles (self-service) and staff management of accounts.
//!
//! Who may manage whom is decided in one place, [`may_manage`]: staff manage
//! patrons; only admins manage staff or change roles.

use carrel_core::identity;
use carrel_core::roles::Role;
use carrel_store::{StoreError, User, UserChanges, UserQuery};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::{AccountError, NewAccount, conflict_from};
use crate::audit;
use crate::auth::principal::Principal;
use crate::client::ClientInfo;
use crate::state::AppState;

/// Whether `actor` may change or delete `target`: admins may manage anyone;
/// librarians only patrons; patrons nobody (they use `/users/me`).
pub fn may_manage(actor: &Principal, target: &User) -> bool {
    match actor.role {
        Role::Admin => true,
        Role::Librarian => target.role == Role::Patron,
        Role::Patron => false,
    }
}

/// The caller's account, as read together with the session on this request:
/// no second query, and the session check has already refused inactive and
/// deleted accounts.
pub fn me(principal: &Principal) -> User {
    User::clone(&principal.user)
}

/// What a user may change about themselves.
#[derive(Debug, Default)]
pub struct ProfileUpdate {
    pub full_name: Option<Option<String>>,
    pub username: Option<String>,
    pub keep_loan_history: Option<bool>,
}

/// Updates the caller's own profile (the API's `PATCH /users/me` and the
/// account page's loan-history choice), under the per-user profile limit.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn update_me(
    state: &AppState,
    client: &ClientInfo,
    principal: &Principal,
    update: ProfileUpdate,
) -> Result<User, AccountError> {
    crate::limits::enforce(
        state,
        crate::limits::Limit::ProfileUpdate,
        &format!("user:{}", principal.user_id),
    )
    .await
    .map_err(AccountError::RateLimited)?;
    let mut bad = Vec::new();
    let mut changes = UserChanges {
        keep_loan_history: update.keep_loan_history,
        ..Default::default()
    };
    if let Some(username) = update.username {
        match identity::validate_username(&username) {
            Ok(u) => changes.username = Some((u.clone(), identity::username_key(&u))),
            Err(e) => bad.push(("username".to_owned(), e.to_owned())),
        }
    }
    if let Some(name) = update.full_name {
        match name
            .as_deref()
            .map(identity::normalize_full_name)
            .transpose()
        {
            Ok(n) => changes.full_name = Some(n.flatten()),
            Err(e) => bad.push(("full_name".to_owned(), e.to_owned())),
        }
    }
    if !bad.is_empty() {
        return Err(AccountError::InvalidFields(bad));
    }
    let me = principal.user_id;
    state
        .store
        .update_user(me, &changes, state.clock.now(), |_: &User| {
            vec![audit::event(
                state,
                client,
                "user.updated",
                Some(me),
                Some(me),
                json!({"self": true}),
            )]
        })
        .await
        .map_err(conflict_from)
}

/// Soft-deletes the caller's own account after re-entering the password.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn delete_me(
    state: &AppState,
    client: &ClientInfo,
    principal: &Principal,
    password: SecretString,
) -> Result<(), AccountError> {
    super::login::reauthenticate(state, client, principal.user_id, password).await?;
    state
        .store
        .soft_delete_user(
            principal.user_id,
            Some(principal.user_id),
            state.clock.now(),
            |_: &()| {
                let me = Some(principal.user_id);
                vec![audit::event(
                    state,
                    client,
                    "user.deleted",
                    me,
                    me,
                    json!({"self": true}),
                )]
            },
        )
        .await
        .map_err(conflict_from)
}

/// An account created by staff.
#[derive(Debug)]
pub struct StaffCreate {
    pub email: String,
    pub username: String,
    pub full_name: Option<String>,
    pub role: Option<Role>,
    pub password: Option<SecretString>,
    pub card_number: Option<String>,
    /// A patron category code; `None`: the default.
    pub category: Option<String>,
}

/// Staff create accounts: librarians patrons only, admins any role. Without a
/// password the user is invited by email to set one.
#[tracing::instrument(skip_all, fields(actor = %actor.user_id))]
pub async fn create_by_staff(
    state: &AppState,
    client: &ClientInfo,
    actor: &Principal,
    req: StaffCreate,
) -> Result<User, AccountError> {
    let role = req.role.unwrap_or(Role::Patron);
    if role != Role::Patron && actor.role != Role::Admin {
        return Err(AccountError::Forbidden);
    }
    if let Some(category) = &req.category {
        check_category(state, category).await?;
    }
    let invite = req.password.is_none();
    let new = NewAccount {
        email: req.email,
        username: req.username,
        full_name: req.full_name,
        role,
        password: req.password,
        email_verified: !invite,
        card_number: req.card_number,
        category: req.category,
    };
    // An invited account and its invitation mail are committed together.
    let welcome = invite.then_some(super::recovery::Welcome::Invitation);
    let registered = |user: &User| {
        vec![audit::event(
            state,
            client,
            "user.registered",
            Some(actor.user_id),
            Some(user.id),
            json!({"by_staff": true, "role": role.as_str(), "invited": invite}),
        )]
    };
    super::create_account_with(state, new, welcome, &registered).await
}

/// A staff member's view of one account (deleted ones included).
#[tracing::instrument(skip_all, fields(target = %id))]
pub async fn get_by_staff(state: &AppState, id: Uuid) -> Result<User, AccountError> {
    state
        .store
        .find_user(id)
        .await?
        .ok_or(AccountError::NotFound)
}

/// What staff may change.
#[derive(Debug, Default)]
pub struct StaffUpdate {
    pub full_name: Option<Option<String>>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    /// `Some(None)` removes the card.
    pub card_number: Option<Option<String>>,
    /// `Some(None)` clears the home branch (checked to exist by the caller).
    pub home_branch_id: Option<Option<Uuid>>,
    /// A patron category code.
    pub category: Option<String>,
}

/// A category code staff may give a user: one that is defined.
async fn check_category(state: &AppState, category: &str) -> Result<(), AccountError> {
    if state.store.patron_category_exists(category).await? {
        Ok(())
    } else {
        Err(AccountError::InvalidFields(vec![(
            "category".to_owned(),
            "must be a defined patron category".to_owned(),
        )]))
    }
}

#[tracing::instrument(skip_all, fields(actor = %actor.user_id, target = %id))]
pub async fn update_by_staff(
    state: &AppState,
    client: &ClientInfo,
    actor: &Principal,
    id: Uuid,
    update: StaffUpdate,
) -> Result<User, AccountError> {
    let target = state
        .store
        .find_user(id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AccountError::NotFound)?;
    if !may_manage(actor, &target) || update.role.is_some() && actor.role != Role::Admin {
        return Err(AccountError::Forbidden);
    }
    // Staff cannot demote or deactivate themselves through the staff endpoint: a
    // stolen staff token must not be able to lock the last admin out silently.
    let demotes_self = update.role.is_some_and(|r| r != target.role);
    if id == actor.user_id && (demotes_self || update.is_active == Some(false)) {
        return Err(AccountError::Forbidden);
    }
    let mut bad = Vec::new();
    let mut changes = UserChanges {
        is_active: update.is_active,
        role: update.role,
        home_branch_id: update.home_branch_id,
        ..Default::default()
    };
    if let Some(email) = update.email {
        match identity::normalize_email(&email) {
            Ok(e) => changes.email = Some((e.clone(), identity::email_key(&e))),
            Err(reason) => bad.push(("email".to_owned(), reason.to_owned())),
        }
    }
    if let Some(name) = update.full_name {
        match name
            .as_deref()
            .map(identity::normalize_full_name)
            .transpose()
        {
            Ok(n) => changes.full_name = Some(n.flatten()),
            Err(reason) => bad.push(("full_name".to_owned(), reason.to_owned())),
        }
    }
    if let Some(card) = update.card_number {
        match card
            .as_deref()
            .map(carrel_core::cards::normalize_card_number)
            .transpose()
        {
            Ok(card) => changes.card_number = Some(card),
            Err(reason) => bad.push(("card_number".to_owned(), reason.to_owned())),
        }
    }
    if let Some(category) = update.category {
        match check_category(state, &category).await {
            Ok(()) => changes.category = Some(category),
            Err(AccountError::InvalidFields(mut fields)) => bad.append(&mut fields),
            Err(other) => return Err(other),
        }
    }
    if !bad.is_empty() {
        return Err(AccountError::InvalidFields(bad));
    }
    let mut events = Vec::new();
    if let Some(role) = update.role.filter(|r| *r != target.role) {
        events.push(audit::event(
            state,
            client,
            "user.role_changed",
            Some(actor.user_id),
            Some(id),
            json!({"from": target.role.as_str(), "to": role.as_str()}),
        ));
    }
    let fields: Vec<&str> = [
        changes.email.as_ref().map(|_| "email"),
        changes.full_name.as_ref().map(|_| "full_name"),
        changes.is_active.map(|_| "is_active"),
        changes.card_number.as_ref().map(|_| "card_number"),
        changes.home_branch_id.as_ref().map(|_| "home_branch_id"),
        changes.category.as_ref().map(|_| "category"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !fields.is_empty() {
        events.push(audit::event(
            state,
            client,
            "user.updated",
            Some(actor.user_id),
            Some(id),
            json!({"fields": fields}),
        ));
    }
    state
        .store
        .update_user(id, &changes, state.clock.now(), |_: &User| events)
        .await
        .map_err(conflict_from)
}

#[tracing::instrument(skip_all, fields(actor = %actor.user_id, target = %id))]
pub async fn delete_by_staff(
    state: &AppState,
    client: &ClientInfo,
    actor: &Principal,
    id: Uuid,
) -> Result<(), AccountError> {
    let target = state
        .store
        .find_user(id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AccountError::NotFound)?;
    // Deleting one's own account takes the password (`DELETE /users/me`); the
    // staff endpoint never does it on a token alone.
    if !may_manage(actor, &target) || id == actor.user_id {
        return Err(AccountError::Forbidden);
    }
    state
        .store
        .soft_delete_user(id, Some(actor.user_id), state.clock.now(), |_: &()| {
            vec![audit::event(
                state,
                client,
                "user.deleted",
                Some(actor.user_id),
                Some(id),
                json!({}),
            )]
        })
        .await
        .map_err(conflict_from)
}

#[tracing::instrument(skip_all, fields(actor = %actor.user_id, target = %id))]
pub async fn restore_by_staff(
    state: &AppState,
    client: &ClientInfo,
    actor: &Principal,
    id: Uuid,
) -> Result<User, AccountError> {
    let target = state
        .store
        .find_user(id)
        .await?
        .ok_or(AccountError::NotFound)?;
    if !may_manage(actor, &target) {
        return Err(AccountError::Forbidden);
    }
    state
        .store
        .restore_user(id, state.clock.now(), |_: &User| {
            vec![audit::event(
                state,
                client,
                "user.restored",
                Some(actor.user_id),
                Some(id),
                json!({}),
            )]
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AccountError::Conflict("the account is not deleted"),
            other => AccountError::Store(other),
        })
}

#[tracing::instrument(skip_all, fields(actor = %actor.user_id, target = %id))]
pub async fn unlock_by_staff(
    state: &AppState,
    client: &ClientInfo,
    actor: &Principal,
    id: Uuid,
) -> Result<User, AccountError> {
    let target = state
        .store
        .find_user(id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AccountError::NotFound)?;
    if !may_manage(actor, &target) {
        return Err(AccountError::Forbidden);
    }
    state
        .store
        .unlock_user(id, state.clock.now(), |_: &()| {
            vec![audit::event(
                state,
                client,
                "user.unlocked",
                Some(actor.user_id),
                Some(id),
                json!({}),
            )]
        })
        .await?;
    state
        .store
        .find_user(id)
        .await?
        .ok_or(AccountError::NotFound)
}

#[tracing::instrument(skip_all)]
pub async fn list_for_staff(
    state: &AppState,
    mut query: UserQuery,
) -> Result<Vec<User>, AccountError> {
    query.now = Some(state.clock.now());
    Ok(state.store.list_users(&query).await?)
}
