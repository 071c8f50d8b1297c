//! The finalizer: gather the outcomes into the manifest and report, advance the state,
//! publish metrics, close the run in the ledger.

use chrono::Utc;

use super::kind::JobContext;
use super::{Engine, EngineError, resume};
use crate::config::Job;
use crate::model::{Counts, FinalizeMessage, Outcome, RunRef};
use crate::notify::{self, metrics};
use crate::store::{ControlStore, Manifest, render_report, report_url};

/// Parses a finalize-queue body and finalizes its run; returns the run id and its status.
pub async fn handle_body(engine: &Engine, body: &str) -> Result<String, EngineError> {
    let message: FinalizeMessage = serde_json::from_str(body)
        .map_err(|e| EngineError::Message(format!("not a Backline finalize message: {e}")))?;
    super::worker::check_version(message.version)?;
    let manifest = finalize(engine, &message).await?;
    Ok(format!("{} {}", manifest.run_id, manifest.status))
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
