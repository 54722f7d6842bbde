//! Issuing access and refresh tokens for a session, and exchanging refresh tokens.

use carrel_core::roles::Role;
use carrel_crypto::{AccessClaims, OpaqueToken, TokenHash};
use carrel_store::{NewSession, Refresh, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::audit;
use crate::client::ClientInfo;
use crate::config::{TOKEN_AUDIENCE, to_time};
use crate::state::AppState;

/// Why tokens could not be issued or exchanged (the account use cases map it
/// into `AccountError`).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Every refresh failure alike: unknown, expired, revoked or reused.
    #[error("authentication required")]
    Unauthorized,
    #[error("cannot sign an access token: {0}")]
    Signing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A session's fresh credentials.
#[derive(Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    /// Seconds.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds.
    pub refresh_expires_in: i64,
    pub session_id: Uuid,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// Signs an access token for a session.
pub fn sign_access_token(
    state: &AppState,
    user_id: Uuid,
    session_id: Uuid,
    role: Role,
) -> Result<(String, i64), TokenError> {
    let now = state.clock.now();
    let ttl = to_time(state.config.access_token_ttl);
    let claims = AccessClaims {
        sub: user_id,
        sid: session_id,
        role: role.as_str().to_owned(),
        iat: now.unix_timestamp(),
        exp: (now + ttl).unix_timestamp(),
        iss: state.config.token_issuer(),
        aud: TOKEN_AUDIENCE.to_owned(),
        scope: None,
    };
    let token = state
        .jwt
        .sign(&claims)
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    Ok((token, ttl.whole_seconds()))
}

/// A session prepared but not yet stored: the caller stores `new` inside the
/// transaction that completes a sign-in (with its audit entry) and then
/// [`PendingSession::issue`]s its tokens.
pub struct PendingSession {
    pub new: NewSession,
    refresh: OpaqueToken,
    refresh_ttl: time::Duration,
}

impl std::fmt::Debug for PendingSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSession")
            .field("session_id", &self.new.id)
            .finish_non_exhaustive()
    }
}

impl PendingSession {
    pub fn new(
        state: &AppState,
        user_id: Uuid,
        client: &ClientInfo,
        device_name: Option<String>,
        scope: Option<&str>,
    ) -> Self {
        let now = state.clock.now();
        let refresh_ttl = to_time(state.config.refresh_token_ttl);
        let refresh = OpaqueToken::generate();
        let new = NewSession {
            id: Uuid::now_v7(),
            user_id,
            device_name,
            user_agent: client.user_agent.clone(),
            ip_address: client.ip_string(),
            scope: scope.map(str::to_owned),
            refresh_hash: *refresh.hash().as_bytes(),
            now,
            expires_at: now + refresh_ttl,
        };
        Self {
            new,
            refresh,
            refresh_ttl,
        }
    }

    /// The stored session's tokens: its refresh token and a signed access token.
    pub fn issue(self, state: &AppState, role: Role) -> Result<IssuedTokens, TokenError> {
        let (access_token, expires_in) =
            sign_access_token(state, self.new.user_id, self.new.id, role)?;
        Ok(IssuedTokens {
            access_token,
            expires_in,
            refresh_token: self.refresh.as_str().to_owned(),
            refresh_expires_in: self.refresh_ttl.whole_seconds(),
            session_id: self.new.id,
        })
    }
}

/// Exchanges a refresh token. Reuse of an already-exchanged token revokes the
/// whole session and is audited; every failure is the same 401.
pub async fn exchange_refresh_token(
    state: &AppState,
    presented: &str,
    client: &ClientInfo,
) -> Result<IssuedTokens, TokenError> {
    let now = state.clock.now();
    let refresh_ttl = to_time(state.config.refresh_token_ttl);
    let replacement = OpaqueToken::generate();
    // Reuse revokes the session; its audit entry commits with the revocation.
    let on_reuse = |&(session_id, user_id): &(Uuid, Uuid)| {
        vec![audit::event(
            state,
            client,
            "auth.refresh_reuse_detected",
            None,
            Some(user_id),
            json!({"session_id": session_id}),
        )]
    };
    let outcome = state
        .store
        .rotate_refresh_token_audited(
            *TokenHash::of(presented).as_bytes(),
            *replacement.hash().as_bytes(),
            now,
            to_time(state.config.refresh_reuse_grace),
            now + refresh_ttl,
            on_reuse,
        )
        .await?;
    match outcome {
        Refresh::Rotated(session) => {
            let (access_token, expires_in) = sign_access_token(
                state,
                session.user.id,
                session.session_id,
                session.user.role,
            )?;
            Ok(IssuedTokens {
                access_token,
                expires_in,
                refresh_token: replacement.as_str().to_owned(),
                refresh_expires_in: refresh_ttl.whole_seconds(),
                session_id: session.session_id,
            })
        }
        Refresh::ReuseDetected { .. } | Refresh::Invalid => Err(TokenError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_session_debugs_without_its_refresh_token() {
        let refresh = OpaqueToken::generate();
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let pending = PendingSession {
            new: NewSession {
                id: Uuid::nil(),
                user_id: Uuid::nil(),
                device_name: None,
                user_agent: None,
                ip_address: None,
                scope: None,
                refresh_hash: *refresh.hash().as_bytes(),
                now,
                expires_at: now,
            },
            refresh_ttl: time::Duration::hours(1),
            refresh,
        };
        let shown = format!("{pending:?}");
        assert!(shown.contains(&Uuid::nil().to_string()), "{shown}");
        assert!(!shown.contains(pending.refresh.as_str()), "{shown}");
    }

    #[test]
    fn debug_shows_the_session_not_the_tokens() {
        let tokens = IssuedTokens {
            access_token: "eyJhbGciOiJFZERTQSJ9.access-secret.sig".to_owned(),
            expires_in: 900,
            refresh_token: "refresh-secret-43-chars".to_owned(),
            refresh_expires_in: 86_400,
            session_id: Uuid::nil(),
        };
        let shown = format!("{tokens:?}");
        assert!(shown.contains(&Uuid::nil().to_string()), "{shown}");
        assert!(
            !shown.contains("access-secret") && !shown.contains("refresh-secret"),
            "{shown}"
        );
    }
}
