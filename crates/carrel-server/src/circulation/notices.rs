//! Mails to patrons about their holds and loans. Each notice is claimed in the
//! database before it is queued, so it goes out once.

use carrel_mail::messages;
use carrel_store::{Notice, NoticeKind};
use uuid::Uuid;

use crate::state::AppState;

/// The calendar day of an instant, for "due on …" lines.
fn day(at: time::OffsetDateTime) -> String {
    at.date().to_string()
}

/// Queues one notice.
pub fn send(state: &AppState, kind: NoticeKind, notice: &Notice) {
    let email = match kind {
        NoticeKind::HoldReady => messages::hold_ready(
            &notice.email,
            &notice.title,
            &crate::http::rfc3339(notice.at),
        ),
        NoticeKind::DueSoon => messages::due_soon(&notice.email, &notice.title, &day(notice.at)),
        NoticeKind::Overdue => messages::overdue(&notice.email, &notice.title, &day(notice.at)),
    };
    state.mailer.send_later(email);
}

/// Mails "ready for pickup" for holds just made ready (their notice was
/// claimed in the same transaction). A failure is logged: the hold is ready
/// whether or not the mail goes out.
pub async fn holds_ready(state: &AppState, holds: &[Uuid]) {
    if holds.is_empty() {
        return;
    }
    match state.store.hold_ready_notices(holds).await {
        Ok(notices) => {
            for notice in &notices {
                send(state, NoticeKind::HoldReady, notice);
            }
        }
        Err(error) => tracing::error!(%error, "cannot load hold-ready notices"),
    }
}
