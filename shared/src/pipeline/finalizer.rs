//! The finalizer: gather the outcomes into the manifest and report, advance the state,
//! publish metrics, close the run in the ledger.

use chrono::Utc;

use super::{Engine, EngineError};
use crate::config::JobSpec;
use crate::model::Outcome;
use crate::model::{Counts, FinalizeMessage};
use crate::notify::{self, metrics};
use crate::sources::filesystem;
use crate::store::{ControlStore, Manifest, State, render_report, report_url};

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
        JobSpec::Filesystem(fs) => {
            let folders: Vec<&str> = fs.folders.iter().chain(&fs.roots).map(|f| f.as_str()).collect();
            (folders.join(", "), format!("s3://{}-*", fs.target.bucket_prefix.as_str()))
        }
        JobSpec::FilesystemRestore(restore) => (
            format!("s3://{}-*", restore.backup.target.bucket_prefix.as_str()),
            restore
                .options
                .to_dir
                .as_ref()
                .map(|d| d.as_str().to_string())
                .unwrap_or_else(|| "/ (original paths)".into()),
        ),
    };

    // State first: if the run stops after this, the next plan still starts from the truth.
    // Only backups keep state; a restore's record is its manifest.
    match &job.spec {
        JobSpec::S3(_) => {
            let old = match store.read_state(&job.name).await? {
                Some(state) if state.source == source => state,
                _ => State { source: source.clone(), ..Default::default() },
            };
            store.write_state(&job.name, &old.apply(&run.run_id, &outcomes)).await?;
        }
        JobSpec::Filesystem(_) => write_folder_states(engine, &store, &job.name, &run.run_id, &outcomes).await?,
        JobSpec::S3Restore(_) | JobSpec::FilesystemRestore(_) => {}
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
    if counts.failed > 0 {
        let failure = notify::Failure::of_run(&manifest, report_url(&run.control, &job.name, &run.run_id));
        notify::webhook::send(&engine.clients, job, &failure).await;
    }
    engine.ledger.finish(&run.run_id, status).await?;
    tracing::info!(
        job = %job.name, run = %run.run_id, status, copied = counts.copied, bytes = counts.bytes_copied,
        tagged_deleted = counts.tagged_deleted, skipped = counts.skipped, failed = counts.failed, "finalized"
    );
    Ok(manifest)
}

/// Each folder's state advances with the outcomes in its bucket.
async fn write_folder_states(
    engine: &Engine,
    store: &ControlStore,
    job: &str,
    run_id: &str,
    outcomes: &[Outcome],
) -> Result<(), EngineError> {
    let mut by_bucket: std::collections::BTreeMap<&str, Vec<Outcome>> = Default::default();
    for outcome in outcomes {
        if let Some(bucket) = &outcome.target_bucket {
            by_bucket.entry(bucket).or_default().push(outcome.clone());
        }
    }
    for (bucket, outcomes) in by_bucket {
        let name = filesystem::state_name(job, bucket);
        let source = filesystem::state_source(bucket);
        let old = match store.read_state(&name).await? {
            Some(state) if state.source == source => state,
            _ => State { source, ..Default::default() },
        };
        let new = old.apply(run_id, &outcomes);
        let etag = store.write_state(&name, &new).await?;
        if let (Some(dir), Some(etag)) = (&engine.options.state_cache, etag) {
            filesystem::write_cache(dir, &name, &new, &etag);
        }
    }
    Ok(())
}
