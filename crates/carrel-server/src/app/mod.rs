//! Use cases shared by the front doors (the JSON API, the web pages, SIP2 and
//! the CLI): typed input and an [`Actor`] in, one store transaction (audit
//! entries and item history included) out, and a typed refusal on failure. A
//! front door only parses and answers, so a rule is never written twice
//! ("behaves differently at the kiosk").
//!
//! Layering: front doors (`http`, `web`, `sip2`, `cli`) → `app` → `carrel-core`,
//! `carrel-store`, `audit` and the helpers below (`catalog` for the catalog's
//! field rules, search terms and MARC). Nothing here imports a front door. For
//! the catalog: `app::catalog` checks items and copies with
//! `catalog::fields` (pure rules, shared with the MARC importer) plus what
//! needs the database, and writes them with their `item_events` history;
//! `app::covers` stores cover images; `app::imports` starts MARC imports.

pub mod admin;
pub mod catalog;
pub mod circulation;
pub mod covers;
pub mod fines;
pub mod holds;
pub mod imports;
pub mod outbox;

use serde_json::Value;
use uuid::Uuid;

use crate::client::ClientInfo;
use crate::state::AppState;

/// Which front door a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The JSON API (and the web pages built on it).
    Api,
    /// A SIP2 self-check terminal.
    Sip2,
}

/// Who acts: the user (or SIP2 terminal account) id recorded as the actor of
/// every change and audit entry, where the request came from, and through which
/// door.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Uuid,
    pub client: ClientInfo,
    pub channel: Channel,
    /// The SIP2 terminal's login, named in its audit entries.
    pub terminal: Option<String>,
}

impl Actor {
    /// A user acting through the JSON API.
    pub fn api(id: Uuid, client: &ClientInfo) -> Self {
        Self {
            id,
            client: client.clone(),
            channel: Channel::Api,
            terminal: None,
        }
    }

    /// One audit entry by this actor. SIP2 entries carry `details.channel =
    /// "sip2"` and the terminal's login.
    pub fn event(
        &self,
        state: &AppState,
        event_type: &'static str,
        subject_id: Option<Uuid>,
        mut details: Value,
    ) -> carrel_store::NewAuditEvent {
        if self.channel == Channel::Sip2
            && let Value::Object(map) = &mut details
        {
            map.insert("channel".into(), Value::from("sip2"));
            if let Some(login) = &self.terminal {
                map.insert("terminal".into(), Value::from(login.as_str()));
            }
        }
        crate::audit::event(
            state,
            &self.client,
            event_type,
            Some(self.id),
            subject_id,
            details,
        )
    }
}
