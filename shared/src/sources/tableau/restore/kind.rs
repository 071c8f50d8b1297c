//! `kind = "tableau-restore"` as the pipeline sees it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{TableauRestoreJob, TableauRestoreTask, plan, publish};
use crate::config::{BucketName, registry::KindEntry};
use crate::pipeline::EngineError;
use crate::pipeline::kind::{Executed, JobContext, Kind, decode_tasks, keys_of, parse_spec, tasks_in_doubt};
use crate::pipeline::planner::TaskSink;

pub const ENTRY: KindEntry = KindEntry {
    name: "tableau-restore",
    about: "a tableau job's workbooks published back to a site, now or as of a past run",
    parse: parse_spec::<TableauRestoreJob>,
    example: include_str!("example.toml"),
    default_concurrency: 2,
    import: None,
};

#[async_trait]
impl Kind for TableauRestoreJob {
    crate::kind_identity!(ENTRY);

    fn validate(&self) -> Result<(), (String, String)> {
        self.backup.check().map_err(|(field, message)| (format!("backup.{field}"), message))
    }

    fn control_bucket(&self) -> BucketName {
        self.backup.records_bucket()
    }

    fn endpoints(&self) -> (String, String) {
        let to_site = self.options.to_site.as_deref().unwrap_or(&self.options.site);
        let from: Vec<String> = self.backup.buckets().iter().map(|b| format!("s3://{b}/")).collect();
        (from.join(", "), format!("{} site {to_site:?}", self.backup.source.server.as_str()))
    }

    async fn plan(&self, cx: &JobContext<'_>, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
        plan::plan(cx, self, sink).await
    }

    /// Publishes are jobs of a few seconds to minutes; each chunk stays small.
    fn chunk_tasks(&self) -> usize {
        10
    }

    async fn execute(&self, cx: &JobContext<'_>, tasks: Vec<Value>) -> Result<Executed, EngineError> {
        let tasks: Vec<TableauRestoreTask> = decode_tasks(ENTRY.name, tasks)?;
        publish::execute(cx, self, &tasks).await
    }

    fn task_keys(&self, tasks: &[Value]) -> Vec<String> {
        keys_of::<TableauRestoreTask>(tasks)
    }

    fn in_doubt(&self, tasks: Vec<Value>, since: DateTime<Utc>) -> Vec<Value> {
        tasks_in_doubt::<TableauRestoreTask>(tasks, since)
    }

    /// A publish job that has not finished in six hours has failed.
    fn wait_limit(&self) -> Duration {
        Duration::from_secs(6 * 3600)
    }
}
