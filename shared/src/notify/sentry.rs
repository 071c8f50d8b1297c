//! A failed run (or one that could not start) as one Sentry event: the job, run id, kind and
//! counts as tags and extra data, the first failed items as breadcrumbs. The event and its
//! envelope are the `sentry` crate's; it goes out with Backline's own HTTP client and a short
//! time-out, so a dead Sentry never stalls a run.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sentry::protocol::{Breadcrumb, Event, Level, Map, Values};
use sentry::types::Dsn;
use serde_json::Value;

use super::Failure;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Failed items sent as breadcrumbs.
pub const BREADCRUMBS: usize = 20;

/// The event for `failure`, with the items that failed as breadcrumbs.
pub fn event(failure: &Failure, kind: &str, environment: &str) -> Event<'static> {
    let breadcrumbs: Vec<Breadcrumb> = failure
        .errors
        .iter()
        .take(BREADCRUMBS)
        .map(|error| {
            let (key, reason) = error.split_once(": ").unwrap_or((error.as_str(), ""));
            let mut data = Map::new();
            data.insert("key".into(), Value::String(key.to_string()));
            data.insert("error".into(), Value::String(reason.to_string()));
            Breadcrumb {
                timestamp: SystemTime::now(),
                ty: "error".into(),
                category: Some("task".into()),
                level: Level::Error,
                message: Some(error.clone()),
                data,
            }
        })
        .collect();
    let mut tags = Map::new();
    tags.insert("job".into(), failure.job.clone());
    tags.insert("run_id".into(), failure.run_id.clone());
    tags.insert("kind".into(), kind.to_string());
    tags.insert("status".into(), failure.status.clone());
    let mut extra = Map::new();
    if let Some(counts) = &failure.counts {
        extra.insert("counts".into(), serde_json::to_value(counts).unwrap_or(Value::Null));
    }
    if let Some(report) = &failure.report {
        extra.insert("report".into(), Value::String(report.clone()));
    }
    let what = if failure.status == "plan_failed" { "could not run" } else { "finished with failed tasks" };
    Event {
        level: Level::Error,
        message: Some(format!("Backline job {} {what}", failure.job)),
        logger: Some("backline".into()),
        fingerprint: Cow::Owned(vec![Cow::Owned(failure.job.clone()), Cow::Owned(failure.status.clone())]),
        release: Some(Cow::Owned(format!("backline@{}", env!("CARGO_PKG_VERSION")))),
        environment: Some(Cow::Owned(environment.to_string())),
        breadcrumbs: Values::from(breadcrumbs),
        tags,
        extra,
        ..Default::default()
    }
}

/// Sends `event` to the project of `dsn`; what went wrong, if anything.
pub async fn send(dsn: &str, event: Event<'static>) -> Result<(), String> {
    // The DSN holds a key: errors never repeat it.
    let dsn = Dsn::from_str(dsn).map_err(|_| "the Sentry DSN is not a DSN".to_string())?;
    let envelope = sentry::Envelope::from(event);
    let mut body = Vec::new();
    envelope.to_writer(&mut body).map_err(|e| format!("envelope: {e}"))?;
    let auth = dsn.to_auth(Some(&format!("backline/{}", env!("CARGO_PKG_VERSION"))));
    let client = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| e.to_string())?;
    let response = client
        .post(dsn.envelope_api_url().as_str())
        .header("X-Sentry-Auth", auth.to_string())
        .header("Content-Type", "application/x-sentry-envelope")
        .body(body)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if response.status().is_success() { Ok(()) } else { Err(format!("Sentry answered {}", response.status())) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Counts;

    #[test]
    fn a_failed_run_is_one_event_with_its_failed_items_as_breadcrumbs() {
        let failure = Failure {
            job: "photos".into(),
            run_id: "photos-20261123T020000Z".into(),
            status: "failed".into(),
            counts: Some(Counts { failed: 2, ..Default::default() }),
            errors: vec!["a.jpg: AccessDenied: no".into(), "b.jpg: timed out".into()],
            report: Some("s3://b/_backline/runs/photos/x/report.md".into()),
        };
        let event = event(&failure, "s3", "staging");
        assert_eq!(event.environment.as_deref(), Some("staging"));
        assert!(event.release.as_deref().unwrap().starts_with("backline@"));
        assert_eq!(event.tags["run_id"], "photos-20261123T020000Z");
        assert_eq!(event.breadcrumbs.values.len(), 2);
        assert_eq!(event.breadcrumbs.values[0].data["key"], "a.jpg");
        assert_eq!(event.breadcrumbs.values[0].data["error"], "AccessDenied: no");
        assert_eq!(event.extra["counts"]["failed"], 2);
    }
}
