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
use carrel_store::{PinCounter, PinHolder, User};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::manage::may_manage;
use super::{AccountError, conflict_from};
use crate::audit;
use crate::auth::principal::Principal;
use crate::client::ClientInfo;
use crate::passwords::Verification;
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
        .set_pin(user_id, &hash, state.clock.now(), |_: &()| {
            vec![audit::event(
                state,
                client,
                "user.pin_changed",
                Some(actor),
                Some(user_id),
                json!({"by_staff": by_staff}),
            )]
        })
        .await
        .map_err(conflict_from)
}

/// `PUT /users/me/pin`: the owner sets a PIN after re-entering the password (a
/// wrong password counts toward the password lockout).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
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
#[tracing::instrument(skip_all, fields(actor = %actor.user_id, target = %id))]
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

fn to_state(counter: PinCounter) -> LockoutState {
    LockoutState {
        failed_attempts: u32::try_from(counter.failed_attempts).unwrap_or(0),
        in_flight: 0,
        locked_until: counter.locked_until,
    }
}

fn to_counter(state: LockoutState) -> PinCounter {
    PinCounter {
        failed_attempts: i32::try_from(state.failed_attempts).unwrap_or(i32::MAX),
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
            // PINs count each attempt as a failure before checking it (no
            // in-flight reservations), so the budget is never taken by attempts
            // in flight and `Wait` cannot arise; refuse it all the same.
            AttemptDecision::Refused { .. } | AttemptDecision::Wait => return Ok(None),
            AttemptDecision::Proceed => {
                let (reserved, locks_on_failure) = state
                    .lockout
                    .after_failure(&to_state(counter), state.clock.now());
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
#[tracing::instrument(skip_all, fields(actor = ?actor))]
pub async fn check_pin(
    state: &AppState,
    client: &ClientInfo,
    actor: Option<Uuid>,
    card: &str,
    pin: Option<&str>,
) -> Result<PinCheck, AccountError> {
    Ok(check_pin_hashed(state, client, actor, card, pin).await?.0)
}

/// [`check_pin`], with the stored hash the PIN verified against (when valid).
async fn check_pin_hashed(
    state: &AppState,
    client: &ClientInfo,
    actor: Option<Uuid>,
    card: &str,
    pin: Option<&str>,
) -> Result<(PinCheck, Option<String>), AccountError> {
    let candidate = SecretString::from(pin.unwrap_or_default().to_owned());
    let holder = match carrel_core::cards::normalize_card_number(card) {
        Ok(card) => state.store.find_pin_holder(&card).await?,
        Err(_) => None,
    };
    let Some(holder) = holder else {
        state.hasher.verify(candidate, None).await?;
        let check = PinCheck {
            holder: None,
            valid: false,
        };
        return Ok((check, None));
    };
    let Some(locks_on_failure) = reserve_pin_attempt(state, &holder).await? else {
        state.hasher.verify(candidate, None).await?;
        let check = PinCheck {
            holder: Some(holder.user),
            valid: false,
        };
        return Ok((check, None));
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
            let hash = if rehash {
                let upgraded = state.hasher.hash(candidate).await?;
                state
                    .store
                    // A stronger hash of the same PIN: not a change to audit.
                    .set_pin(holder.user.id, &upgraded, state.clock.now(), |_: &()| {
                        Vec::new()
                    })
                    .await?;
                upgraded
            } else {
                state.store.clear_pin_failures(holder.user.id).await?;
                holder.pin_hash.unwrap_or_default()
            };
            let check = PinCheck {
                holder: Some(holder.user),
                valid: true,
            };
            Ok((check, Some(hash)))
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
            let check = PinCheck {
                holder: Some(holder.user),
                valid: false,
            };
            Ok((check, None))
        }
    }
}

/// How long a [`PinMemo`] keeps a verified PIN after its last use.
pub const PIN_MEMO_IDLE: time::Duration = time::Duration::minutes(2);

/// The last PIN that verified on one SIP2 connection, so that the next messages
/// of the same patron session (a kiosk sends the card and PIN with every
/// message: 63, then one 11 per item) skip the hash. Only a digest of the PIN
/// is kept (SHA-256 with a per-memo random salt), with the stored PIN hash it
/// verified against. A remembered PIN is accepted only for the same card and
/// the same PIN, within [`PIN_MEMO_IDLE`] of its last use, and only while the
/// patron's stored PIN hash is unchanged and no PIN failure or lock is
/// recorded (one read); anything else takes the full check of [`check_pin`],
/// which counts the attempt. So a memo never lets through a PIN the full check
/// would refuse, and a wrong PIN always costs a hash and counts.
#[derive(Default)]
pub struct PinMemo {
    remembered: std::sync::Mutex<Option<Remembered>>,
}

impl std::fmt::Debug for PinMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinMemo").finish_non_exhaustive()
    }
}

struct Remembered {
    card: String,
    salt: [u8; 16],
    digest: [u8; 32],
    pin_hash: String,
    last_used: time::OffsetDateTime,
}

fn pin_digest(salt: &[u8; 16], pin: &str) -> [u8; 32] {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(salt);
    hasher.update(pin.as_bytes());
    hasher.finalize().into()
}

impl PinMemo {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Remembered>> {
        self.remembered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the remembered PIN (end of the patron session).
    pub fn forget(&self) {
        *self.slot() = None;
    }

    /// The stored hash `pin` verified against, if `card` and `pin` are the ones
    /// remembered and the memo is fresh.
    fn recall(&self, card: &str, pin: &str, now: time::OffsetDateTime) -> Option<String> {
        let slot = self.slot();
        let remembered = slot.as_ref()?;
        (remembered.card == card
            && now - remembered.last_used <= PIN_MEMO_IDLE
            && carrel_crypto::constant_time_eq(
                &pin_digest(&remembered.salt, pin),
                &remembered.digest,
            ))
        .then(|| remembered.pin_hash.clone())
    }

    fn remember(&self, card: String, pin: &str, pin_hash: String, now: time::OffsetDateTime) {
        let salt = *Uuid::new_v4().as_bytes();
        *self.slot() = Some(Remembered {
            digest: pin_digest(&salt, pin),
            card,
            salt,
            pin_hash,
            last_used: now,
        });
    }
}

/// [`check_pin`] for one SIP2 connection: a PIN remembered by `memo` (see
/// [`PinMemo`]) is accepted with one read instead of a hash; every other check
/// is the full one, and a valid PIN is remembered.
#[tracing::instrument(skip_all, fields(actor = ?actor))]
pub async fn check_pin_remembered(
    state: &AppState,
    client: &ClientInfo,
    actor: Option<Uuid>,
    card: &str,
    pin: Option<&str>,
    memo: &PinMemo,
) -> Result<PinCheck, AccountError> {
    let now = state.clock.now();
    let card = carrel_core::cards::normalize_card_number(card).ok();
    let pin = pin.filter(|p| !p.is_empty());
    if let (Some(card), Some(pin)) = (card.as_deref(), pin)
        && let Some(pin_hash) = memo.recall(card, pin, now)
        && let Some(holder) = state.store.find_pin_holder(card).await?
        && holder.pin_hash.as_deref() == Some(pin_hash.as_str())
        && holder.counter.failed_attempts == 0
        && holder.counter.locked_until.is_none()
    {
        memo.remember(card.to_owned(), pin, pin_hash, now);
        return Ok(PinCheck {
            holder: Some(holder.user),
            valid: true,
        });
    }
    memo.forget();
    let (check, verified) = check_pin_hashed(
        state,
        client,
        actor,
        card.as_deref().unwrap_or_default(),
        pin,
    )
    .await?;
    if let (Some(card), Some(pin), Some(pin_hash)) = (card, pin, verified) {
        memo.remember(card, pin, pin_hash, now);
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_recalls_only_the_same_card_and_pin_while_fresh() {
        let memo = PinMemo::default();
        let now = time::OffsetDateTime::UNIX_EPOCH;
        assert_eq!(memo.recall("ANN-1", "2468", now), None);
        memo.remember("ANN-1".to_owned(), "2468", "$hash".to_owned(), now);
        assert_eq!(
            memo.recall("ANN-1", "2468", now + PIN_MEMO_IDLE).as_deref(),
            Some("$hash")
        );
        assert_eq!(memo.recall("ANN-1", "2469", now), None);
        assert_eq!(memo.recall("ANN-2", "2468", now), None);
        let later = now + PIN_MEMO_IDLE + time::Duration::seconds(1);
        assert_eq!(memo.recall("ANN-1", "2468", later), None);
        memo.forget();
        assert_eq!(memo.recall("ANN-1", "2468", now), None);
    }
}
