//! TOTP multi-factor authentication (RFC 6238: SHA-1, 6 digits, 30 s, ±1 step).
//!
//! Secrets are sealed at rest under the secrets key and bound to the user.
//! Every accepted code's step is recorded, so a code is never accepted twice,
//! not even inside its window and not by two concurrent requests. Recovery codes
//! are single use and stored as keyed hashes. Wrong codes count toward lockout
//! like wrong passwords.

use carrel_crypto::{OpaqueToken, TokenHash};
use carrel_store::User;
use secrecy::SecretString;
use serde_json::json;
use totp_rs::{Algorithm, Builder, Totp};
use uuid::Uuid;

use super::AccountError;
use super::login::Attempt;
use super::manage::may_manage;
use crate::audit;
use crate::auth::principal::Principal;
use crate::auth::tokens::{IssuedTokens, PendingSession};
use crate::client::ClientInfo;
use crate::state::AppState;

const SEAL_PURPOSE: &str = "totp";
const ISSUER: &str = "Carrel";
pub const CHALLENGE_TTL: time::Duration = time::Duration::minutes(5);
pub const CHALLENGE_ATTEMPTS: i32 = 5;
pub const RECOVERY_CODES: usize = 10;
/// The session scope of users who must enrol before doing anything else.
pub const SCOPE_MFA_SETUP: &str = "mfa_setup";

fn totp(secret: Vec<u8>, account: &str) -> Result<Totp, AccountError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(account.to_owned())
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| AccountError::Internal(format!("TOTP set-up failed: {e}")))
}

/// What the authenticator app needs.
#[derive(Debug)]
pub struct TotpSetup {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// A QR code of `text` as a self-contained SVG (rendered here; nothing external).
fn qr_svg(text: &str) -> Result<String, AccountError> {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium)
        .map_err(|_| AccountError::Internal("QR code too long".into()))?;
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

fn now_secs(state: &AppState) -> u64 {
    u64::try_from(state.clock.now_precise().unix_timestamp()).unwrap_or(0)
}

async fn user(state: &AppState, id: Uuid) -> Result<User, AccountError> {
    state
        .store
        .find_user(id)
        .await?
        .filter(|u| u.deleted_at.is_none() && u.is_active)
        .ok_or(AccountError::Unauthorized)
}

/// The enrolled (or pending) TOTP of a user, unsealed.
async fn user_totp(
    state: &AppState,
    user: &User,
    confirmed: bool,
) -> Result<Option<Totp>, AccountError> {
    let Some(enrolment) = state.store.totp_enrolment(user.id).await? else {
        return Ok(None);
    };
    if enrolment.confirmed_at.is_some() != confirmed {
        return Ok(None);
    }
    let secret = state
        .secrets
        .open(SEAL_PURPOSE, &enrolment.secret_sealed, user.id.as_bytes())
        .map_err(|_| {
            AccountError::Internal(
                "a TOTP secret could not be unsealed (was CARREL_SECRETS_KEY_FILE replaced?)"
                    .into(),
            )
        })?;
    totp(secret, &user.email).map(Some)
}

/// Starts enrolment: a new secret, pending until confirmed with a code.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn setup(state: &AppState, principal: &Principal) -> Result<TotpSetup, AccountError> {
    let user = user(state, principal.user_id).await?;
    // 160 bits from a fresh 256-bit random token.
    let secret = TokenHash::of(OpaqueToken::generate().as_str()).0[..20].to_vec();
    let sealed = state
        .secrets
        .seal(SEAL_PURPOSE, &secret, user.id.as_bytes());
    state
        .store
        .begin_totp_enrolment(user.id, &sealed, state.clock.now())
        .await
        .map_err(|e| match e {
            carrel_store::StoreError::Refused(reason) => AccountError::Conflict(reason),
            other => AccountError::Store(other),
        })?;
    let totp = totp(secret.clone(), &user.email)?;
    let otpauth_uri = totp
        .to_url()
        .map_err(|e| AccountError::Internal(e.to_string()))?;
    Ok(TotpSetup {
        secret: base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &secret),
        qr_svg: qr_svg(&otpauth_uri)?,
        otpauth_uri,
    })
}

/// Checks a code (or recovery code) for an enrolled user, counting toward
/// lockout; the code's step (or the recovery code) is spent on success.
/// `completes_sign_in`: a right code completes a sign-in (`/mfa/verify`) and
/// clears the failure count; otherwise (disabling MFA) the count is unchanged.
async fn check_second_factor(
    state: &AppState,
    client: &ClientInfo,
    user: &User,
    code: Option<&str>,
    recovery: Option<&str>,
    completes_sign_in: bool,
) -> Result<(), AccountError> {
    let Some(attempt) = Attempt::begin(state, client, user).await? else {
        return Err(AccountError::InvalidCredentials);
    };
    let accepted = match (code, recovery) {
        (Some(code), _) => match user_totp(state, user, true).await? {
            Some(totp) => match totp.check(code.trim(), now_secs(state)) {
                Some(step) => {
                    state
                        .store
                        .claim_totp_step(user.id, i64::try_from(step).unwrap_or(i64::MAX))
                        .await?
                }
                None => false,
            },
            None => false,
        },
        (None, Some(recovery)) => {
            let hash = state.secrets.mac(
                "recovery",
                carrel_crypto::normalize_recovery_code(recovery).as_bytes(),
            );
            let used = audit::event(
                state,
                client,
                "auth.recovery_code_used",
                Some(user.id),
                Some(user.id),
                json!({}),
            );
            state
                .store
                .use_recovery_code(user.id, hash, state.clock.now(), move |_: &()| vec![used])
                .await?
        }
        (None, None) => false,
    };
    if accepted {
        attempt.passed(completes_sign_in, None).await?;
        Ok(())
    } else {
        attempt.failed().await?;
        audit::record(
            state,
            client,
            "auth.mfa_failed",
            None,
            Some(user.id),
            json!({"method": if code.is_some() { "totp" } else { "recovery_code" }}),
        )
        .await;
        Err(AccountError::InvalidCredentials)
    }
}

/// Confirms enrolment with a current code; returns the recovery codes (shown once).
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn confirm(
    state: &AppState,
    client: &ClientInfo,
    principal: &Principal,
    code: &str,
) -> Result<Vec<String>, AccountError> {
    let user = user(state, principal.user_id).await?;
    let Some(totp) = user_totp(state, &user, false).await? else {
        return Err(AccountError::Conflict(
            "there is no pending enrolment: call setup first",
        ));
    };
    let Some(attempt) = Attempt::begin(state, client, &user).await? else {
        return Err(AccountError::InvalidCredentials);
    };
    let codes = carrel_crypto::generate_recovery_codes(RECOVERY_CODES);
    let hashes: Vec<[u8; 32]> = codes
        .iter()
        .map(|c| {
            state.secrets.mac(
                "recovery",
                carrel_crypto::normalize_recovery_code(c).as_bytes(),
            )
        })
        .collect();
    let enabled = audit::event(
        state,
        client,
        "auth.mfa_enabled",
        Some(user.id),
        Some(user.id),
        json!({}),
    );
    let confirmed = match totp.check(code.trim(), now_secs(state)) {
        Some(step) => {
            state
                .store
                .confirm_totp(
                    user.id,
                    i64::try_from(step).unwrap_or(i64::MAX),
                    &hashes,
                    state.clock.now(),
                    move |_: &()| vec![enabled],
                )
                .await?
        }
        None => false,
    };
    if !confirmed {
        attempt.failed().await?;
        audit::record(
            state,
            client,
            "auth.mfa_failed",
            Some(user.id),
            Some(user.id),
            json!({"method": "totp", "step": "confirm"}),
        )
        .await;
        return Err(AccountError::InvalidCredentials);
    }
    // A right code here is not a sign-in: the failure count stays as it is.
    attempt.passed(false, None).await?;
    Ok(codes)
}

/// Starts the second step of a login: a short-lived, single-use challenge,
/// stored with `events` (the login's `auth.mfa_challenged`).
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn challenge(
    state: &AppState,
    user: &User,
    device_name: Option<&str>,
    use_cookies: bool,
    events: Vec<carrel_store::NewAuditEvent>,
) -> Result<String, AccountError> {
    let token = OpaqueToken::generate();
    let now = state.clock.now();
    state
        .store
        .create_mfa_challenge(
            *token.hash().as_bytes(),
            user.id,
            device_name,
            use_cookies,
            now,
            now + CHALLENGE_TTL,
            move |_: &()| events,
        )
        .await?;
    Ok(token.as_str().to_owned())
}

/// Completes a login with a code or a recovery code. An unknown, used or
/// expired challenge (or one past its attempts) is `Unauthorized`; a wrong
/// code is `InvalidCredentials`. Returns the tokens and whether cookies were asked for.
#[tracing::instrument(skip_all)]
pub async fn verify(
    state: &AppState,
    client: &ClientInfo,
    mfa_token: &str,
    code: Option<&str>,
    recovery: Option<&str>,
) -> Result<(IssuedTokens, bool), AccountError> {
    let hash = *TokenHash::of(mfa_token).as_bytes();
    let now = state.clock.now();
    let challenge = state
        .store
        .attempt_mfa_challenge(hash, now, CHALLENGE_ATTEMPTS)
        .await?
        .ok_or(AccountError::Unauthorized)?;
    let user = user(state, challenge.user_id).await?;
    if let Err(error) = check_second_factor(state, client, &user, code, recovery, true).await {
        super::login::count_login(false);
        return Err(error);
    }
    // The challenge is spent, the session opened and the sign-in audited in
    // one transaction.
    let session = PendingSession::new(state, user.id, client, challenge.device_name, None);
    let succeeded = audit::event(
        state,
        client,
        "auth.login_succeeded",
        Some(user.id),
        Some(user.id),
        json!({"session_id": session.new.id, "mfa": true}),
    );
    if !state
        .store
        .complete_mfa_challenge(hash, state.clock.now(), &session.new, move |_: &()| {
            vec![succeeded]
        })
        .await?
    {
        return Err(AccountError::Unauthorized);
    }
    let tokens = session.issue(state, user.role)?;
    super::login::count_login(true);
    Ok((tokens, challenge.use_cookies))
}

/// Turns MFA off after the password and a current code.
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn disable(
    state: &AppState,
    client: &ClientInfo,
    principal: &Principal,
    password: SecretString,
    code: &str,
) -> Result<(), AccountError> {
    let user = super::login::reauthenticate(state, client, principal.user_id, password).await?;
    if !user.mfa_enabled {
        return Err(AccountError::Conflict(
            "multi-factor authentication is not enabled",
        ));
    }
    check_second_factor(state, client, &user, Some(code), None, false).await?;
    let disabled = audit::event(
        state,
        client,
        "auth.mfa_disabled",
        Some(user.id),
        Some(user.id),
        json!({}),
    );
    state
        .store
        .disable_mfa(user.id, state.clock.now(), None, move |_: &()| {
            vec![disabled]
        })
        .await?;
    Ok(())
}

/// Staff reset of a user's MFA (lost device); ends the user's sessions.
#[tracing::instrument(skip_all, fields(actor = %actor.user_id, target = %target))]
pub async fn reset_by_staff(
    state: &AppState,
    client: &ClientInfo,
    actor: &Principal,
    target: Uuid,
) -> Result<(), AccountError> {
    let user = state
        .store
        .find_user(target)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AccountError::NotFound)?;
    if !may_manage(actor, &user) {
        return Err(AccountError::Forbidden);
    }
    let disabled = audit::event(
        state,
        client,
        "auth.mfa_disabled",
        Some(actor.user_id),
        Some(user.id),
        json!({"by_staff": true}),
    );
    state
        .store
        .disable_mfa(
            user.id,
            state.clock.now(),
            Some("mfa_reset"),
            move |_: &()| vec![disabled],
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The codes `check` may accept at `time`: the previous, current and next step.
    fn window(totp: &Totp, time: u64) -> Vec<(u64, String)> {
        let step = time / 30;
        (step.saturating_sub(1)..=step + 1)
            .map(|s| (s, totp.generate(s * 30).to_string()))
            .collect()
    }

    /// A typed code: anything, six digits, or the current code slightly changed.
    fn typed_code() -> impl Strategy<Value = (u8, String)> {
        prop_oneof![
            "\\PC{0,12}".prop_map(|s| (0, s)),
            "[0-9]{6}".prop_map(|s| (0, s)),
            "[ \t]{0,2}[+-]?[0-9 ]{5,7}[ \t\n]{0,2}".prop_map(|s| (0, s)),
            (0u8..=6).prop_map(|edit| (edit + 1, String::new())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A typed code is accepted exactly when, trimmed, it is the code of the previous,
        /// current or next 30-second step, and the step it matched is the one claimed
        /// (so it cannot be used twice); anything else is refused, never a panic.
        #[test]
        fn only_a_current_code_is_accepted(
            secret in any::<[u8; 20]>(),
            time in 0u64..=1u64 << 40,
            (edit, raw) in typed_code(),
            digit in 0u32..10,
            step in 0usize..3,
            pad in "[ \t]{0,2}",
        ) {
            let totp = totp(secret.to_vec(), "reader@example.org").unwrap();
            let window = window(&totp, time);
            let step = step % window.len();
            let typed = match edit {
                0 => raw,
                // One of the accepted codes, padded, and with one digit replaced (edit 1..=6)
                // or as it is (edit 7).
                _ => {
                    let mut code: Vec<char> = window[step].1.chars().collect();
                    if let Some(c) = code.get_mut(usize::from(edit - 1)) {
                        *c = char::from_digit(digit, 10).unwrap();
                    }
                    format!("{pad}{}{pad}", code.into_iter().collect::<String>())
                }
            };
            let candidate = typed.trim();
            let expected = window.iter().find(|(_, code)| code == candidate).map(|(s, _)| *s);
            prop_assert_eq!(totp.check(candidate, time), expected);
            prop_assert_eq!(window[step].1.len(), 6);
        }
    }
}
