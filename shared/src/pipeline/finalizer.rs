//! The finalizer: gather the outcomes into the manifest and report, advance the state,
//! publish metrics, close the run in the ledger.

use chrono::Utc;

use super::{Engine, EngineError};
use crate::config::JobSpec;
use crate::model::{Counts, FinalizeMessage};
use crate::notify::metrics;
use crate::store::{ControlStore, Manifest, State, render_report};

pub async fn finalize(engine: &Engine, message: &FinalizeMessage) -> Result<Manifest, EngineError> {
    let FinalizeMessage { run, job, .. } = message;
    let store = ControlStore::new(engine.clients.s3.clone(), &run.control);
    let outcomes = store.read_outcomes(run).await?;
    let mut counts = Counts::default();
    outcomes.iter().for_each(|o| counts.add(o));
    let (source, target) = match &job.spec {
        JobSpec::S3(s3) => (
            format!("s3://{}/{}", s3.source.bucket, s3.source.prefix),
            format!("s3://{}/{}", s3.target.bucket, s3.target.prefix),
        ),
        JobSpec::S3Restore(restore) => (
            format!("s3://{}/{}", restore.backup.target.bucket, restore.backup.target.prefix),
            format!("s3://{}/{}", restore.options.to_bucket, restore.options.to_prefix.as_deref().unwrap_or("")),
        ),
    };

    // State first: if the run stops after this, the next plan still starts from the truth.
    // Only backups keep state; a restore's record is its manifest.
    if let JobSpec::S3(_) = &job.spec {
        let old = match store.read_state(&job.name).await? {
            Some(state) if state.source == source => state,
            _ => State { source: source.clone(), ..Default::default() },
        };
        store.write_state(&job.name, &old.apply(&run.run_id, &outcomes)).await?;
    }

    let status = if counts.failed == 0 { "succeeded" } else { "failed" };
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
        counts: counts.clone(),
        tasks: outcomes,
    };
    let dir = ControlStore::run_dir(run);
    store.put_json(&format!("{dir}manifest.json"), &manifest).await?;
    store
        .put(&format!("{dir}report.md"), render_report(&manifest).into_bytes(), "text/markdown; charset=utf-8")
        .await?;

    let planned_copies = manifest
        .tasks
        .iter()
        .filter(|o| matches!(o.action, crate::model::Action::Copy | crate::model::Action::Restore))
        .count() as u64;
    metrics::publish_run(&engine.clients.cloudwatch, &job.name, &counts, planned_copies).await;
    engine.ledger.finish(&run.run_id, status).await?;
    tracing::info!(
        job = %job.name, run = %run.run_id, status, copied = counts.copied, bytes = counts.bytes_copied,
        tagged_deleted = counts.tagged_deleted, skipped = counts.skipped, failed = counts.failed, "finalized"
    );
    Ok(manifest)
}
