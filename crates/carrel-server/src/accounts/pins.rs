//! PINs for self-check machines and SIP2.
//!
//! A PIN is hashed like a password (same hasher, same bounded pool) and has its
//! own failure counter and lock: the same `carrel_core::lockout` policy
//! (threshold and duration as for passwords), applied by compare-and-swap on the
//! PIN columns, so a kiosk guesser locks the PIN and never the web account, and
//! vice versa. Every attempt is counted before the hash is checked, so parallel
//! guesses never get more than the threshold verified. An unknown card, a wrong
//! PIN, a locked PIN and an account without a PIN give the same answer after
//! the same work (a dummy hash stands in where there is nothing to check).

use carrel_core::lockout::{AttemptDecision, LockoutState};
use carrel_store::{FailureCounter, PinHolder, User};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::manage::may_manage;
use super::{AccountError, conflict_from};
use crate::audit;
use crate::auth::passwords::Verification;
use crate::auth::principal::Principal;
use crate::http::client::ClientInfo;
use crate::state::AppState;

/// How often a lost compare-and-swap race is retried before giving up.
const MAX_CAS_RETRIES: usize = 16;

fn checked_pin(pin: &SecretString) -> Result<(), AccountError> {
    carrel_core::cards::validate_pin(pin.expose_secret())
        .map_err(|e| AccountError::InvalidFields(vec![("pin".to_owned(), e.to_owned())]))
}

async fn store_pin(
    state: &AppState,
    client: &ClientInfo,
    actor: Uuid,
    user_id: Uuid,
    pin: SecretString,
    by_staff: bool,
) -> Result<(), AccountError> {
    let hash = state.hasher.hash(pin).await?;
    state
        .store
        .set_pin(user_id, &hash, state.clock.now())
        .await
        .map_err(conflict_from)?;
    audit::record(
        state,
        client,
        "user.pin_changed",
        Some(actor),
        Some(user_id),
        json!({"by_staff": by_staff}),
    )
    .await;
    Ok(())
}

/// `PUT /users/me/pin`: the owner sets a PIN after re-entering the password (a
/// wrong password counts toward the password lockout).
pub async fn set_own_pin(
    state: &AppState,
    client: &ClientInfo,
    principal: &Principal,
    password: SecretString,
    pin: SecretString,
) -> Result<(), AccountError> {
    checked_pin(&pin)?;
    super::login::reauthenticate(state, client, principal.user_id, password).await?;
    store_pin(
        state,
        client,
        principal.user_id,
        principal.user_id,
        pin,
        false,
    )
    .await
}

/// `PUT /users/{id}/pin`: staff set a patron's PIN (the same may-manage rule as
/// every staff edit); the PIN's lock is cleared.
pub async fn set_pin_by_staff(
    state: &AppState,
    client: &ClientInfo,
    actor: &Principal,
    id: Uuid,
    pin: SecretString,
) -> Result<(), AccountError> {
    let target = state
        .store
        .find_user(id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AccountError::NotFound)?;
    if !may_manage(actor, &target) {
        return Err(AccountError::Forbidden);
    }
    checked_pin(&pin)?;
    store_pin(state, client, actor.user_id, id, pin, true).await
}

/// The result of a PIN check. Only `valid` says anything about the PIN: an
/// unset, wrong or locked PIN is `valid: false` in every case.
#[derive(Debug)]
pub struct PinCheck {
    /// The live account holding the card (`None`: no such card).
    pub holder: Option<User>,
    pub valid: bool,
}

fn to_state(counter: FailureCounter) -> LockoutState {
    LockoutState {
        failed_attempts: u32::try_from(counter.failed_logins).unwrap_or(0),
        locked_until: counter.locked_until,
    }
}

fn to_counter(state: LockoutState) -> FailureCounter {
    FailureCounter {
        failed_logins: i32::try_from(state.failed_attempts).unwrap_or(i32::MAX),
        locked_until: state.locked_until,
    }
}

/// Counts a PIN attempt before it is checked. `None`: locked (refuse without
/// checking); `Some(locks)`: go ahead, and a wrong PIN now locks if `locks`.
async fn reserve_pin_attempt(
    state: &AppState,
    holder: &PinHolder,
) -> Result<Option<bool>, AccountError> {
    let mut counter = holder.counter;
    for _ in 0..MAX_CAS_RETRIES {
        match state
            .lockout
            .begin_attempt(&to_state(counter), state.clock.now())
        {
            AttemptDecision::Refused { .. } => return Ok(None),
            AttemptDecision::Proceed {
                reserved,
                locks_on_failure,
            } => {
                if state
                    .store
                    .swap_pin_failure_counter(holder.user.id, counter, to_counter(reserved))
                    .await?
                {
                    return Ok(Some(locks_on_failure));
                }
                counter = state.store.pin_failure_counter(holder.user.id).await?;
            }
        }
    }
    Ok(None)
}

/// Checks the PIN of the patron holding `card` (as typed). `pin` `None` or empty
/// is a wrong PIN (and counts). `actor` is who asked (a SIP2 terminal), for the
/// `auth.pin_locked` audit entry written when this attempt locks the PIN.
pub async fn check_pin(
    state: &AppState,
    client: &ClientInfo,
    actor: Option<Uuid>,
    card: &str,
    pin: Option<&str>,
) -> Result<PinCheck, AccountError> {
    let candidate = SecretString::from(pin.unwrap_or_default().to_owned());
    let holder = match carrel_core::cards::normalize_card_number(card) {
        Ok(card) => state.store.find_pin_holder(&card).await?,
        Err(_) => None,
    };
    let Some(holder) = holder else {
        state.hasher.verify(candidate, None).await?;
        return Ok(PinCheck {
            holder: None,
            valid: false,
        });
    };
    let Some(locks_on_failure) = reserve_pin_attempt(state, &holder).await? else {
        state.hasher.verify(candidate, None).await?;
        return Ok(PinCheck {
            holder: Some(holder.user),
            valid: false,
        });
    };
    let verification = if candidate.expose_secret().is_empty() {
        state.hasher.verify(candidate.clone(), None).await?
    } else {
        state
            .hasher
            .verify(candidate.clone(), holder.pin_hash.clone())
            .await?
    };
    match verification {
        Verification::Valid { rehash } => {
            if rehash {
                let upgraded = state.hasher.hash(candidate).await?;
                state
                    .store
                    .set_pin(holder.user.id, &upgraded, state.clock.now())
                    .await?;
            } else {
                state.store.clear_pin_failures(holder.user.id).await?;
            }
            Ok(PinCheck {
                holder: Some(holder.user),
                valid: true,
            })
        }
        Verification::Invalid => {
            if locks_on_failure {
                let until = state.clock.now() + state.lockout.duration;
                audit::record(
                    state,
                    client,
                    "auth.pin_locked",
                    actor,
                    Some(holder.user.id),
                    json!({"locked_until": until.format(&Rfc3339).ok(), "channel": "sip2"}),
                )
                .await;
            }
            Ok(PinCheck {
                holder: Some(holder.user),
                valid: false,
            })
        }
    }
}
