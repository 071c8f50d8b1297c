//! Telling people and systems how a run went.

pub mod metrics;
pub mod sentry;
pub mod webhook;
pub mod zabbix;

use serde::Serialize;

use crate::config::Job;
use crate::model::{Counts, RunRef, Status};
use crate::pipeline::{Engine, EngineError};
use crate::store::Manifest;

/// A run has started: Zabbix gets its heartbeat.
pub async fn run_started(engine: &Engine, job: &Job, run: &RunRef) {
    let Some(zabbix) = job.notify.as_ref().and_then(|n| n.zabbix.as_ref()) else { return };
    let items = [(zabbix::key(zabbix, "heartbeat", &job.name), run.started_at.timestamp().to_string())];
    zabbix::send(zabbix, &items, engine.options.zabbix_stub).await;
}

/// A run has finished: Zabbix gets its exit code, counts and duration; a failed run goes to
/// Sentry and the webhooks.
pub async fn run_finished(engine: &Engine, job: &Job, manifest: &Manifest, report: String) {
    let exit_code = if manifest.counts.failed > 0 { 1 } else { 0 };
    let seconds = (manifest.finished_at - manifest.started_at).num_milliseconds().max(0) as f64 / 1000.0;
    outcome_to_zabbix(engine, job, exit_code, Some(&manifest.counts), seconds).await;
    if manifest.counts.failed > 0 {
        let failure = Failure::of_run(manifest, report);
        to_sentry(engine, job, &failure).await;
        webhook::send(&engine.clients, job, &failure).await;
    }
}

/// A run could not start (or stopped while planning): everyone who listens hears of it.
pub async fn run_failed_to_start(engine: &Engine, job: &Job, run: &RunRef, error: &EngineError) {
    let seconds = (chrono::Utc::now() - run.started_at).num_milliseconds().max(0) as f64 / 1000.0;
    outcome_to_zabbix(engine, job, error.exit_code(), None, seconds).await;
    let failure = Failure::of_plan(run, error);
    to_sentry(engine, job, &failure).await;
    webhook::send(&engine.clients, job, &failure).await;
}

async fn outcome_to_zabbix(engine: &Engine, job: &Job, exit_code: u8, counts: Option<&Counts>, seconds: f64) {
    let Some(zabbix) = job.notify.as_ref().and_then(|n| n.zabbix.as_ref()) else { return };
    let key = |name: &str| zabbix::key(zabbix, name, &job.name);
    let mut items = vec![(key("exit_code"), exit_code.to_string())];
    if let Some(counts) = counts {
        items.push((key("copied"), counts.copied.to_string()));
        items.push((key("failed"), counts.failed.to_string()));
    }
    items.push((key("duration"), format!("{seconds:.1}")));
    zabbix::send(zabbix, &items, engine.options.zabbix_stub).await;
}

async fn to_sentry(engine: &Engine, job: &Job, failure: &Failure) {
    let Some(notify) = &job.notify else { return };
    let Some(reference) = &notify.sentry_dsn else { return };
    let dsn = match crate::secrets::resolve(&engine.clients, reference.reference()).await {
        Ok(dsn) => dsn,
        Err(err) => {
            tracing::warn!(reference = ?reference, error = %err, "cannot resolve the Sentry DSN; no event sent");
            return;
        }
    };
    let environment = notify.sentry_environment.as_deref().unwrap_or("production");
    let event = sentry::event(failure, job.spec.kind(), environment);
    match sentry::send(&dsn, event).await {
        Ok(()) => tracing::info!("Sentry event sent"),
        Err(err) => tracing::warn!(error = %err, "Sentry event not sent"),
    }
}

/// What a failure notification says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub job: String,
    pub run_id: String,
    /// `failed` (finished with failed tasks) or `plan_failed` (could not run).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// The first errors, `key: what went wrong`.
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

const FIRST_ERRORS: usize = 10;

impl Failure {
    pub fn of_run(manifest: &Manifest, report: String) -> Failure {
        let errors = manifest
            .tasks
            .iter()
            .filter(|o| o.status == Status::Failed)
            .take(FIRST_ERRORS)
            .map(|o| format!("{}: {}", o.key, o.detail.as_deref().unwrap_or("failed")))
            .collect();
        Failure {
            job: manifest.job.clone(),
            run_id: manifest.run_id.clone(),
            status: manifest.status.clone(),
            counts: Some(manifest.counts.clone()),
            errors,
            report: Some(report),
        }
    }

    pub fn of_plan(run: &RunRef, error: &EngineError) -> Failure {
        Failure {
            job: run.job.clone(),
            run_id: run.run_id.clone(),
            status: "plan_failed".into(),
            counts: None,
            errors: vec![error.to_string()],
            report: None,
        }
    }
}
