//! `kind = "filesystem"` as the pipeline sees it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::restore::{FilesystemRestoreJob, FilesystemRestoreOptions};
use super::{FilesystemJob, FilesystemTask, buckets, plan, state, upload};
use crate::config::{BucketName, DEFAULT_CONCURRENCY, Job, JobError, registry::KindEntry, restore_options};
use crate::model::Outcome;
use crate::pipeline::EngineError;
use crate::pipeline::kind::{Executed, JobContext, Kind, decode_tasks, keys_of, parse_spec, tasks_in_doubt};
use crate::pipeline::planner::TaskSink;
use crate::store::{ControlStore, State};

pub const ENTRY: KindEntry = KindEntry {
    name: "filesystem",
    about: "folders of files, each into its own versioned (Deep Archive) bucket",
    parse: parse_spec::<FilesystemJob>,
    example: include_str!("example.toml"),
    default_concurrency: DEFAULT_CONCURRENCY,
    import: None,
};

#[async_trait]
impl Kind for FilesystemJob {
    crate::kind_identity!(ENTRY);

    fn validate(&self) -> Result<(), (String, String)> {
        if self.folders.is_empty() && self.roots.is_empty() {
            return Err(("folders".into(), "give at least one folder in `folders` or `roots`".into()));
        }
        Ok(())
    }

    fn control_bucket(&self) -> BucketName {
        self.target.control_bucket()
    }

    /// Each folder's bucket is Backline's alone.
    fn upload_targets(&self) -> Vec<(String, String)> {
        super::units(self).unwrap_or_default().into_iter().map(|unit| (unit.bucket, String::new())).collect()
    }

    /// The control bucket is the job's own: made here, before the run writes any record.
    async fn check(&self, cx: &JobContext<'_>) -> Result<(), EngineError> {
        if !cx.dry_run {
            buckets::ensure(&cx.engine.clients.s3, cx.run.control.bucket.as_str(), &self.target).await?;
        }
        Ok(())
    }

    fn endpoints(&self) -> (String, String) {
        let folders: Vec<&str> = self.folders.iter().chain(&self.roots).map(|f| f.as_str()).collect();
        (folders.join(", "), format!("s3://{}-*", self.target.bucket_prefix.as_str()))
    }

    async fn plan(&self, cx: &JobContext<'_>, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
        plan::plan(cx.engine, cx.job, self, cx.dry_run, sink).await
    }

    async fn execute(&self, cx: &JobContext<'_>, tasks: Vec<Value>) -> Result<Executed, EngineError> {
        let tasks: Vec<FilesystemTask> = decode_tasks(ENTRY.name, tasks)?;
        Ok(upload::execute(cx.engine, self, cx.job.concurrency, &tasks).await)
    }

    /// Each folder's state advances with the outcomes in its bucket.
    fn task_keys(&self, tasks: &[Value]) -> Vec<String> {
        keys_of::<FilesystemTask>(tasks)
    }

    fn in_doubt(&self, tasks: Vec<Value>, since: DateTime<Utc>) -> Vec<Value> {
        tasks_in_doubt::<FilesystemTask>(tasks, since)
    }

    async fn finalize(&self, cx: &JobContext<'_>, outcomes: &[Outcome]) -> Result<(), EngineError> {
        let store = ControlStore::new(cx.engine.clients.s3.clone(), &cx.run.control);
        let mut by_bucket: BTreeMap<&str, Vec<Outcome>> = BTreeMap::new();
        for outcome in outcomes {
            if let Some(bucket) = &outcome.target_bucket {
                by_bucket.entry(bucket).or_default().push(outcome.clone());
            }
        }
        for (bucket, outcomes) in by_bucket {
            let name = state::name(&cx.job.name, bucket);
            let source = state::source(bucket);
            let old = match store.read_state(&name).await? {
                Some(state) if state.source == source => state,
                _ => State { source, ..Default::default() },
            };
            let new = old.apply(&cx.run.run_id, &outcomes);
            let etag = store.write_state(&name, &new).await?;
            if let (Some(dir), Some(etag)) = (&cx.engine.options.state_cache, etag) {
                state::write_cache(dir, &name, &new, &etag);
            }
        }
        Ok(())
    }

    fn restore_job(&self, backup: &Job, options: Value) -> Option<Result<Job, JobError>> {
        Some(restore_options::<FilesystemRestoreOptions>(options).map(|options| restore_job(backup, self, options)))
    }
}

/// The `filesystem-restore` job that restores `backup` (a `filesystem` job) with `options`.
pub fn restore_job(backup: &Job, spec: &FilesystemJob, options: FilesystemRestoreOptions) -> Job {
    backup.restore_with(FilesystemRestoreJob { backup_job: backup.name.clone(), backup: spec.clone(), options })
}
