//! `kind = "filesystem-restore"` as the pipeline sees it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{FilesystemRestoreJob, FilesystemRestoreTask, download, plan};
use crate::config::{BucketName, DEFAULT_CONCURRENCY, registry::KindEntry};
use crate::pipeline::EngineError;
use crate::pipeline::kind::{Executed, JobContext, Kind, decode_tasks, keys_of, parse_spec, tasks_in_doubt};
use crate::pipeline::planner::TaskSink;
use crate::sources::s3::restore::ARCHIVE_WAIT_LIMIT;

pub const ENTRY: KindEntry = KindEntry {
    name: "filesystem-restore",
    about: "a filesystem job's backup back into folders (original paths or under a folder)",
    parse: parse_spec::<FilesystemRestoreJob>,
    example: include_str!("example.toml"),
    default_concurrency: DEFAULT_CONCURRENCY,
    import: None,
};

#[async_trait]
impl Kind for FilesystemRestoreJob {
    crate::kind_identity!(ENTRY);

    fn control_bucket(&self) -> BucketName {
        self.backup.target.control_bucket()
    }

    fn endpoints(&self) -> (String, String) {
        let to = self.options.to_dir.as_ref().map(|d| d.as_str().to_string());
        (
            format!("s3://{}-*", self.backup.target.bucket_prefix.as_str()),
            to.unwrap_or_else(|| "/ (original paths)".into()),
        )
    }

    async fn plan(&self, cx: &JobContext<'_>, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
        plan::plan(cx.engine, cx.job, self, sink).await
    }

    async fn execute(&self, cx: &JobContext<'_>, tasks: Vec<Value>) -> Result<Executed, EngineError> {
        let tasks: Vec<FilesystemRestoreTask> = decode_tasks(ENTRY.name, tasks)?;
        Ok(download::execute(cx.engine, self, cx.job.concurrency, &tasks).await)
    }

    fn task_keys(&self, tasks: &[Value]) -> Vec<String> {
        keys_of::<FilesystemRestoreTask>(tasks)
    }

    fn in_doubt(&self, tasks: Vec<Value>, since: DateTime<Utc>) -> Vec<Value> {
        tasks_in_doubt::<FilesystemRestoreTask>(tasks, since)
    }

    fn wait_limit(&self) -> Duration {
        self.options.max_wait.map_or(ARCHIVE_WAIT_LIMIT, |limit| limit.0)
    }
}
