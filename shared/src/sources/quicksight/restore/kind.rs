//! `kind = "quicksight-restore"` as the pipeline sees it.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::task::QuickSightRestoreTask;
use super::{QuickSightRestoreJob, identities, imports, plan};
use crate::config::{BucketName, registry::KindEntry};
use crate::pipeline::EngineError;
use crate::pipeline::kind::{Executed, JobContext, Kind, decode_tasks, parse_spec, run_tasks};
use crate::pipeline::planner::TaskSink;
use crate::sources::quicksight::QuickSight;

pub const ENTRY: KindEntry = KindEntry {
    name: "quicksight-restore",
    about: "a day of a quicksight job's backup: groups, users, memberships, and bundles imported in order",
    parse: parse_spec::<QuickSightRestoreJob>,
    example: include_str!("example.toml"),
    default_concurrency: 4,
    import: None,
};

#[async_trait]
impl Kind for QuickSightRestoreJob {
    crate::kind_identity!(ENTRY);

    fn validate(&self) -> Result<(), (String, String)> {
        self.backup.check().map_err(|(field, message)| (format!("backup.{field}"), message))?;
        self.options.check().map_err(|(field, message)| (format!("options.{field}"), message))
    }

    fn control_bucket(&self) -> BucketName {
        self.backup.target.bucket.clone()
    }

    fn endpoints(&self) -> (String, String) {
        let (from, _) = self.backup.endpoints();
        let to =
            format!("quicksight://{}/{} (identity region {})", self.account(), self.region(), self.identity_region());
        (from.replacen("quicksight://", "backup of quicksight://", 1), to)
    }

    async fn plan(&self, cx: &JobContext<'_>, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
        plan::plan(cx, self, sink).await
    }

    async fn execute(&self, cx: &JobContext<'_>, tasks: Vec<Value>) -> Result<Executed, EngineError> {
        let tasks: Vec<QuickSightRestoreTask> = decode_tasks(ENTRY.name, tasks)?;
        let identity = QuickSight::new(&cx.engine.clients, self.account(), self.identity_region());
        let assets = QuickSight::new(&cx.engine.clients, self.account(), self.region());
        let namespace = self.backup.source.namespace.as_str();
        let poll = self.options.poll_interval.0;
        Ok(run_tasks(cx.engine, &tasks, cx.job.concurrency, |task| {
            let (identity, assets) = (&identity, &assets);
            async move {
                match task {
                    QuickSightRestoreTask::Group { name, description } => {
                        identities::group(identity, namespace, task, name, description.as_deref()).await
                    }
                    QuickSightRestoreTask::User(user) => identities::user(identity, namespace, task, user).await,
                    QuickSightRestoreTask::Membership { user, group, looks } => {
                        identities::membership(identity, namespace, task, user, group, *looks).await
                    }
                    QuickSightRestoreTask::Imports(list) => imports::step(cx, assets, list, poll).await,
                }
            }
        })
        .await)
    }

    /// An import that has not finished in six hours has failed.
    fn wait_limit(&self) -> Duration {
        Duration::from_secs(6 * 3600)
    }
}
