//! Shared application state handed to every handler.

use std::sync::Arc;

use carrel_core::Clock;
use carrel_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Arc<Clock>,
    pub metrics: PrometheusHandle,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}
