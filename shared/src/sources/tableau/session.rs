//! One session per personal access token across every worker and run: whoever signs in takes
//! the token's slot in the ledger first, leased so that a killed worker cannot keep it, and
//! hands it back when done. A password sign-in has no such rule and takes no slot.

use std::time::Duration;

use super::TableauJob;
use crate::pipeline::slots::Slot;
use crate::pipeline::{EngineError, JobContext};

/// How long a worker may hold the token's session before another may take it over.
const LEASE: Duration = Duration::from_secs(15 * 60);
/// How soon a chunk looks again when another worker holds the token.
pub const BUSY_WAIT: Duration = Duration::from_secs(2);

/// The slot's resource: the token on its server.
fn resource(spec: &TableauJob) -> Option<String> {
    spec.source.token_name.as_ref().map(|name| format!("tableau-token#{}#{name}", spec.source.server.as_str()))
}

/// The token's session, held (or not needed).
pub struct Held {
    resource: Option<String>,
    holder: String,
}

/// Takes the session for `holder`; `None` when another worker holds it.
pub async fn take(
    cx: &JobContext<'_>,
    spec: &TableauJob,
    holder: String,
    lease: Option<Duration>,
) -> Result<Option<Held>, EngineError> {
    let resource = resource(spec);
    if let Some(resource) = &resource {
        let slot = Slot { resource, limit: 1, holder: &holder, lease: lease.unwrap_or(LEASE) };
        if !cx.engine.ledger.acquire_slot(&slot).await? {
            return Ok(None);
        }
    }
    Ok(Some(Held { resource, holder }))
}

impl Held {
    pub async fn give_back(self, cx: &JobContext<'_>) -> Result<(), EngineError> {
        match &self.resource {
            Some(resource) => cx.engine.ledger.release_slot(resource, &self.holder).await,
            None => Ok(()),
        }
    }
}
