//! `kind = "s3-restore"` as the pipeline sees it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{S3RestoreJob, S3RestoreTask, execute, plan};
use crate::config::{BucketName, DEFAULT_CONCURRENCY, registry::KindEntry};
use crate::pipeline::EngineError;
use crate::pipeline::kind::{Executed, JobContext, Kind, decode_tasks, keys_of, parse_spec, tasks_in_doubt};
use crate::pipeline::planner::TaskSink;

pub const ENTRY: KindEntry = KindEntry {
    name: "s3-restore",
    about: "an s3 job's backup, now or as of a past run, into a bucket (waits out archive retrievals)",
    parse: parse_spec::<S3RestoreJob>,
    example: include_str!("example.toml"),
    default_concurrency: DEFAULT_CONCURRENCY,
    import: None,
};

/// Deep Archive's slowest tier (Bulk) promises 48 hours; a retrieval gets twice that.
pub const ARCHIVE_WAIT_LIMIT: Duration = Duration::from_secs(96 * 3600);

#[async_trait]
impl Kind for S3RestoreJob {
    crate::kind_identity!(ENTRY);

    fn control_bucket(&self) -> BucketName {
        self.backup.target.bucket.clone()
    }

    fn task_keys(&self, tasks: &[Value]) -> Vec<String> {
        keys_of::<S3RestoreTask>(tasks)
    }

    fn in_doubt(&self, tasks: Vec<Value>, since: DateTime<Utc>) -> Vec<Value> {
        tasks_in_doubt::<S3RestoreTask>(tasks, since)
    }

    fn upload_targets(&self) -> Vec<(String, String)> {
        vec![(self.options.to_bucket.to_string(), self.options.to_prefix.clone().unwrap_or_default())]
    }

    fn endpoints(&self) -> (String, String) {
        (
            format!("s3://{}/{}", self.backup.target.bucket, self.backup.target.prefix),
            format!("s3://{}/{}", self.options.to_bucket, self.options.to_prefix.as_deref().unwrap_or("")),
        )
    }

    async fn check(&self, cx: &JobContext<'_>) -> Result<(), EngineError> {
        plan::prepare(cx.engine, self, cx.dry_run).await
    }

    async fn plan(&self, cx: &JobContext<'_>, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
        plan::plan(cx.engine, cx.job, self, sink).await
    }

    async fn execute(&self, cx: &JobContext<'_>, tasks: Vec<Value>) -> Result<Executed, EngineError> {
        let tasks: Vec<S3RestoreTask> = decode_tasks(ENTRY.name, tasks)?;
        Ok(execute::execute(cx.engine, self, cx.job.concurrency, &tasks).await)
    }

    fn wait_limit(&self) -> Duration {
        self.options.max_wait.map_or(ARCHIVE_WAIT_LIMIT, |limit| limit.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Format};

    #[test]
    fn the_default_wait_covers_deep_archive_bulk_with_margin() {
        let config = Config::parse(ENTRY.example, Format::Toml, "s3-restore.toml").unwrap();
        let limit = config.jobs[0].spec.wait_limit();
        let bulk = Duration::from_secs(48 * 3600);
        assert!(limit >= bulk + bulk / 2, "{limit:?}");
    }
}
