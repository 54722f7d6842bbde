//! Outbox administration: requeueing a dead-lettered message.

use carrel_store::{OutboxEntry, StoreError};
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use crate::state::AppState;

/// Requeues the dead message `id` (attempts start again from zero) and audits
/// `outbox.retried` in the same transaction; the sender is woken at once.
/// `NotFound` for an unknown id, `Refused` when the message is not dead.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, target = %id))]
pub async fn retry_message(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
) -> Result<OutboxEntry, StoreError> {
    state
        .store
        .retry_outbox_message(id, state.clock.now(), |entry: &OutboxEntry| {
            vec![actor.event(
                state,
                "outbox.retried",
                None,
                json!({"message_id": entry.id, "kind": entry.kind.as_str()}),
            )]
        })
        .await
}
