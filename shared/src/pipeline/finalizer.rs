//! The finalizer: gather the outcomes into the manifest and report, advance the state,
//! publish metrics, close the run in the ledger.

use chrono::{DateTime, Utc};

use super::kind::JobContext;
use super::lease::{self, Lease};
use super::{Engine, EngineError, resume};
use crate::config::Job;
use crate::model::{Counts, FinalizeMessage, Outcome, RunRef};
use crate::notify::{self, metrics};
use crate::store::{ControlStore, Manifest, render_report, report_url};

const LEASE: &str = "finalize";

/// Parses a finalize-queue body and finalizes its run; returns the run id and its status.
pub async fn handle_body(engine: &Engine, body: &str) -> Result<String, EngineError> {
    handle_body_until(engine, body, lease::until_deadline(0)).await
}

/// [`handle_body`] holding the run's finalize lease until `until` (the Lambda's deadline). A
/// message delivered twice finalizes once: the second delivery finds the run finished (or,
/// while the first is at work, comes back later). One that finds an earlier delivery stopped
/// mid-way finalizes again, which is safe: the state merge, the manifest and the report may be
/// written twice.
pub async fn handle_body_until(engine: &Engine, body: &str, until: DateTime<Utc>) -> Result<String, EngineError> {
    let message: FinalizeMessage = serde_json::from_str(body)
        .map_err(|e| EngineError::Message(format!("not a Backline finalize message: {e}")))?;
    super::worker::check_version(message.version)?;
    let run_id = &message.run.run_id;
    if let Some(progress) = engine.ledger.progress(run_id).await?
        && progress.is_finished()
    {
        tracing::info!(run = %run_id, status = %progress.status, "run finalized before; duplicate delivery ignored");
        return Ok(format!("{run_id} {} (finalized before; nothing done again)", progress.status));
    }
    if let Lease::Busy { until } = engine.ledger.take_lease(run_id, LEASE, until).await? {
        return Err(EngineError::InProgress(format!(
            "run {run_id} is being finalized by another delivery until {until}; this delivery comes back later"
        )));
    }
    match finalize(engine, &message).await {
        Ok(manifest) => Ok(format!("{} {}", manifest.run_id, manifest.status)),
        Err(err) => {
            if let Err(error) = engine.ledger.end_lease(run_id, LEASE).await {
                tracing::warn!(run = %run_id, %error, "could not end the finalize lease");
            }
            Err(err)
        }
    }
}

pub async fn finalize(engine: &Engine, message: &FinalizeMessage) -> Result<Manifest, EngineError> {
    let FinalizeMessage { run, job, .. } = message;
    let store = ControlStore::new(engine.clients.s3.clone(), &run.control);
    let outcomes = store.read_outcomes(run).await?;

    // State first: if the run stops after this, the next plan still starts from the truth.
    let cx = JobContext { engine, job, run, dry_run: false };
    job.spec.finalize(&cx, &outcomes).await?;

    let manifest = record(engine, job, run, outcomes, None).await?;
    let counts = &manifest.counts;
    let mut run_metrics = metrics::run_metrics(counts, metrics::objects_to_back_up(&manifest.tasks));
    run_metrics.extend(job.spec.metrics(&manifest.tasks));
    if engine.options.emf_metrics {
        println!("{}", metrics::emf_line(&job.name, &run_metrics, Utc::now()));
    } else {
        metrics::publish(&engine.clients.cloudwatch, &job.name, &run_metrics).await;
    }
    notify::run_finished(engine, job, &manifest, report_url(&run.control, &job.name, &run.run_id)).await;
    engine.ledger.finish(&run.run_id, &manifest.status).await?;
    resume::close(&store, run).await;
    tracing::info!(
        job = %job.name, run = %run.run_id, status = %manifest.status, copied = counts.copied,
        bytes = counts.bytes_copied, tagged_deleted = counts.tagged_deleted, skipped = counts.skipped,
        failed = counts.failed, "finalized"
    );
    Ok(manifest)
}

/// Writes a run's manifest and report from its outcomes. The status is `succeeded` when no
/// task failed, else `failed`, unless `status` says otherwise (`interrupted`).
pub async fn record(
    engine: &Engine,
    job: &Job,
    run: &RunRef,
    outcomes: Vec<Outcome>,
    status: Option<&str>,
) -> Result<Manifest, EngineError> {
    let store = ControlStore::new(engine.clients.s3.clone(), &run.control);
    let mut counts = Counts::default();
    outcomes.iter().for_each(|o| counts.add(o));
    let (source, target) = job.spec.endpoints();
    let status = status.unwrap_or(if counts.failed == 0 { "succeeded" } else { "failed" });
    let manifest = Manifest {
        version: 1,
        job: job.name.clone(),
        kind: job.spec.kind().to_string(),
        run_id: run.run_id.clone(),
        source,
        target,
        scheduled_at: run.scheduled_at,
        started_at: run.started_at,
        finished_at: Utc::now(),
        status: status.to_string(),
        counts,
        tasks: outcomes,
    };
    let dir = ControlStore::run_dir(run);
    store.put_json(&format!("{dir}manifest.json"), &manifest).await?;
    store
        .put(&format!("{dir}report.md"), render_report(&manifest).into_bytes(), "text/markdown; charset=utf-8")
        .await?;
    Ok(manifest)
}
