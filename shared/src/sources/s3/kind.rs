//! `kind = "s3"` as the pipeline sees it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::restore::{RestoreOptions, S3RestoreJob};
use super::{S3Job, S3Task, copy, plan, verify};
use crate::config::{BucketName, DEFAULT_CONCURRENCY, Job, JobError, registry::KindEntry, restore_options};
use crate::model::{Action, Outcome, Status};
use crate::pipeline::kind::{Executed, JobContext, Kind, Verified, decode_tasks, keys_of, parse_spec, tasks_in_doubt};
use crate::pipeline::planner::TaskSink;
use crate::pipeline::{Engine, EngineError};
use crate::store::{ControlStore, State};

pub const ENTRY: KindEntry = KindEntry {
    name: "s3",
    about: "a bucket (or a prefix of it) into a backup bucket, by server-side copies",
    parse: parse_spec::<S3Job>,
    example: include_str!("example.toml"),
    default_concurrency: DEFAULT_CONCURRENCY,
    import: None,
};

impl S3Job {
    /// The state records which source it describes; another source means a full backup.
    pub fn state_source(&self) -> String {
        format!("s3://{}/{}", self.source.bucket, self.source.prefix)
    }
}

#[async_trait]
impl Kind for S3Job {
    crate::kind_identity!(ENTRY);

    fn control_bucket(&self) -> BucketName {
        self.target.bucket.clone()
    }

    fn upload_targets(&self) -> Vec<(String, String)> {
        vec![(self.target.bucket.to_string(), self.target.prefix.clone())]
    }

    fn endpoints(&self) -> (String, String) {
        (self.state_source(), format!("s3://{}/{}", self.target.bucket, self.target.prefix))
    }

    async fn check(&self, cx: &JobContext<'_>) -> Result<(), EngineError> {
        plan::check_buckets(cx.engine, self).await
    }

    async fn plan(&self, cx: &JobContext<'_>, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
        plan::plan(cx.engine, cx.job, self, cx.run, sink).await
    }

    async fn execute(&self, cx: &JobContext<'_>, tasks: Vec<Value>) -> Result<Executed, EngineError> {
        let tasks: Vec<S3Task> = decode_tasks(ENTRY.name, tasks)?;
        Ok(copy::execute(cx.engine, self, cx.job.concurrency, &tasks).await)
    }

    fn task_keys(&self, tasks: &[Value]) -> Vec<String> {
        keys_of::<S3Task>(tasks)
    }

    fn in_doubt(&self, tasks: Vec<Value>, since: DateTime<Utc>) -> Vec<Value> {
        tasks_in_doubt::<S3Task>(tasks, since)
    }

    async fn finalize(&self, cx: &JobContext<'_>, outcomes: &[Outcome]) -> Result<(), EngineError> {
        let store = ControlStore::new(cx.engine.clients.s3.clone(), &cx.run.control);
        let source = self.state_source();
        let old = match store.read_state(&cx.job.name).await? {
            Some(state) if state.source == source => state,
            _ => State { source, ..Default::default() },
        };
        let mut new = old.apply(&cx.run.run_id, outcomes);
        if !self.target.copy_tags {
            // Copies without tags: a later deletion mark can set its tags without reading them.
            let copied: std::collections::HashSet<&str> = outcomes
                .iter()
                .filter(|o| o.action == Action::Copy && o.status == Status::Ok)
                .map(|o| o.key.as_str())
                .collect();
            new.entries.iter_mut().filter(|e| copied.contains(e.key.as_str())).for_each(|e| e.untagged = true);
        }
        store.write_state(&cx.job.name, &new).await?;
        Ok(())
    }

    fn restore_job(&self, backup: &Job, options: Value) -> Option<Result<Job, JobError>> {
        Some(restore_options::<RestoreOptions>(options).map(|options| restore_job(backup, self, options)))
    }

    async fn verify(&self, engine: &Engine, job: &Job, deep: bool) -> Option<Result<Verified, EngineError>> {
        Some(
            verify::verify(&engine.clients.s3, job, self, deep)
                .await
                .map(|drift| Verified { report: drift.report(&job.name, deep), clean: drift.is_clean() }),
        )
    }
}

/// The `s3-restore` job that restores `backup` (an `s3` job) with `options`.
pub fn restore_job(backup: &Job, spec: &S3Job, options: RestoreOptions) -> Job {
    backup.restore_with(S3RestoreJob { backup_job: backup.name.clone(), backup: spec.clone(), options })
}
