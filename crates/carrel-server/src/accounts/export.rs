//! A user's own data, gathered for the export (`GET /users/me/export` and the
//! account page's download both call [`records`]).

use carrel_store::{AuditEvent, AuditQuery, Fine, Hold, Loan, Payment, Session, User};
use time::OffsetDateTime;

use super::AccountError;
use crate::auth::principal::Principal;
use crate::state::AppState;

/// Everything held about one account.
#[derive(Debug)]
pub struct AccountRecords {
    pub exported_at: OffsetDateTime,
    pub user: User,
    pub sessions: Vec<Session>,
    /// Events about the account or caused by it, newest first, each once;
    /// events someone else caused carry no IP address or user agent.
    pub audit_events: Vec<AuditEvent>,
    pub loans: Vec<Loan>,
    pub holds: Vec<Hold>,
    pub fines: Vec<Fine>,
    pub payments: Vec<Payment>,
}

/// Gathers the caller's records.
pub async fn records(state: &AppState, me: &Principal) -> Result<AccountRecords, AccountError> {
    let now = state.clock.now();
    let sessions = state.store.list_sessions(me.user_id, now).await?;
    let mut events = Vec::new();
    for query in [
        AuditQuery {
            subject_id: Some(me.user_id),
            limit: 10_000,
            ..Default::default()
        },
        AuditQuery {
            actor_id: Some(me.user_id),
            limit: 10_000,
            ..Default::default()
        },
    ] {
        events.extend(state.store.list_audit_events(&query).await?);
    }
    events.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
    events.dedup_by_key(|e| e.id);
    // The network details of an event belong to whoever caused it: events
    // that staff (or anyone else, or nobody signed in) caused keep their
    // actor_id and lose the IP address and user agent.
    for event in &mut events {
        if event.actor_id != Some(me.user_id) {
            event.ip_address = None;
            event.user_agent = None;
        }
    }
    Ok(AccountRecords {
        exported_at: now,
        user: super::manage::me(me),
        sessions,
        audit_events: events,
        loans: state.store.user_loans(me.user_id).await?,
        holds: state.store.user_holds(me.user_id).await?,
        fines: state.store.user_fines(me.user_id).await?,
        payments: state.store.user_payments(me.user_id).await?,
    })
}
