//! A user's own sessions: listing them, signing one out, signing out
//! everywhere (the API's `/auth/sessions` and `/auth/logout-all` and the
//! account page all call these).

use carrel_store::Session;
use serde_json::json;
use uuid::Uuid;

use super::AccountError;
use crate::audit;
use crate::auth::principal::Principal;
use crate::client::ClientInfo;
use crate::state::AppState;

/// The caller's live sessions, newest first by (created_at, id).
pub async fn list(state: &AppState, principal: &Principal) -> Result<Vec<Session>, AccountError> {
    Ok(state
        .store
        .list_sessions(principal.user_id, state.clock.now())
        .await?)
}

/// Revokes one of the caller's own sessions; another user's (or an unknown
/// or already ended one) is [`AccountError::NotFound`], so ids are not probed.
pub async fn revoke(
    state: &AppState,
    client: &ClientInfo,
    principal: &Principal,
    id: Uuid,
) -> Result<(), AccountError> {
    let event = audit::event(
        state,
        client,
        "auth.session_revoked",
        Some(principal.user_id),
        Some(principal.user_id),
        json!({"session_id": id}),
    );
    let revoked = state
        .store
        .revoke_session_audited(
            principal.user_id,
            id,
            "revoked_by_user",
            state.clock.now(),
            move |revoked: &bool| if *revoked { vec![event] } else { Vec::new() },
        )
        .await?;
    if !revoked {
        return Err(AccountError::NotFound);
    }
    Ok(())
}

/// Ends every session of the caller (this one included) and audits
/// `auth.logout` with `all: true`; returns how many were live.
pub async fn revoke_all(
    state: &AppState,
    client: &ClientInfo,
    principal: &Principal,
) -> Result<u64, AccountError> {
    let logout = |revoked: &u64| {
        vec![audit::event(
            state,
            client,
            "auth.logout",
            Some(principal.user_id),
            Some(principal.user_id),
            json!({"all": true, "sessions": revoked}),
        )]
    };
    Ok(state
        .store
        .revoke_all_sessions(
            principal.user_id,
            "logout_all",
            state.clock.now(),
            None,
            logout,
        )
        .await?)
}
