//! `kind = "quicksight"` as the pipeline sees it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::client::QuickSight;
use super::records::{attributes, write};
use super::restore::{QuickSightRestoreJob, QuickSightRestoreOptions};
use super::task::{QuickSightTask, RecordTask};
use super::{QuickSightJob, export, plan, retention};
use crate::config::registry::{ConfigImport, KindEntry};
use crate::config::{BucketName, Job, JobError, restore_options};
use crate::model::{Outcome, Status};
use crate::pipeline::EngineError;
use crate::pipeline::kind::{
    Executed, JobContext, Kind, KindTask, Step, decode_tasks, parse_spec, run_tasks, tasks_in_doubt,
};
use crate::pipeline::planner::TaskSink;

pub const ENTRY: KindEntry = KindEntry {
    name: "quicksight",
    about: "Amazon QuickSight: users, groups and memberships into dated DynamoDB tables, assets as bundles into S3",
    parse: parse_spec::<QuickSightJob>,
    example: include_str!("example.toml"),
    // Bundles in flight per worker; QuickSight itself runs 5 exports per account at once.
    default_concurrency: 8,
    import: Some(ConfigImport { tool: super::import::TOOL, convert: super::import::import }),
};

#[async_trait]
impl Kind for QuickSightJob {
    crate::kind_identity!(ENTRY);

    fn validate(&self) -> Result<(), (String, String)> {
        self.check()
    }

    fn control_bucket(&self) -> BucketName {
        self.target.bucket.clone()
    }

    fn endpoints(&self) -> (String, String) {
        let source = &self.source;
        let from = format!(
            "quicksight://{}/{} (identity region {}, namespace {})",
            source.account_id.as_str(),
            source.region,
            source.identity_region(),
            source.namespace
        );
        let mut to = Vec::new();
        if self.mode.assets() {
            to.push(format!("s3://{}/{}/", self.target.bucket, self.target.prefix.trim_end_matches('/')));
        }
        if self.mode.users() {
            to.push(format!(
                "DynamoDB YYYY-MM-DD-{{{}, {}, {}}}",
                self.target.users_table.as_str(),
                self.target.groups_table.as_str(),
                self.target.memberships_table.as_str()
            ));
        }
        (from, to.join(", "))
    }

    /// The bundle bucket must exist (it also holds the job's records).
    async fn check(&self, cx: &JobContext<'_>) -> Result<(), EngineError> {
        crate::aws::s3::check_bucket(&cx.engine.clients.s3, "target", self.target.bucket.as_str()).await
    }

    fn chunk_tasks(&self) -> usize {
        100
    }

    async fn plan(&self, cx: &JobContext<'_>, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
        plan::plan(cx, self, sink).await
    }

    async fn execute(&self, cx: &JobContext<'_>, tasks: Vec<Value>) -> Result<Executed, EngineError> {
        let tasks: Vec<QuickSightTask> = decode_tasks(ENTRY.name, tasks)?;
        let (records, bundles): (Vec<QuickSightTask>, Vec<QuickSightTask>) =
            tasks.into_iter().partition(|t| matches!(t, QuickSightTask::Record(_)));
        let mut outcomes = write_records(cx, records).await;
        let qs = QuickSight::new(&cx.engine.clients, self.source.account_id.as_str(), self.source.region.as_str());
        let executed = run_tasks(cx.engine, &bundles, cx.job.concurrency, |task| {
            let qs = &qs;
            async move {
                match task {
                    QuickSightTask::Bundle(bundle) => export::step(cx, self, qs, bundle).await,
                    QuickSightTask::Record(_) => Step::Done(task.outcome(Status::Failed)),
                }
            }
        })
        .await;
        outcomes.extend(executed.outcomes);
        Ok(Executed { outcomes, waiting: executed.waiting })
    }

    fn in_doubt(&self, tasks: Vec<Value>, since: DateTime<Utc>) -> Vec<Value> {
        tasks_in_doubt::<QuickSightTask>(tasks, since)
    }

    fn restore_job(&self, backup: &Job, options: Value) -> Option<Result<Job, JobError>> {
        Some(restore_options::<QuickSightRestoreOptions>(options).and_then(|options| {
            options.check().map_err(|(field, message)| JobError {
                job: None,
                field: format!("restore.{field}"),
                message,
            })?;
            Ok(backup.restore_with(QuickSightRestoreJob {
                backup_job: backup.name.clone(),
                backup: self.clone(),
                options,
            }))
        }))
    }

    /// Users, groups and memberships written; bundles stored and the assets in them.
    fn metrics(&self, outcomes: &[Outcome]) -> Vec<crate::notify::metrics::Metric> {
        use aws_sdk_cloudwatch::types::StandardUnit;
        let ok = |prefix: &str| outcomes.iter().filter(|o| o.status == Status::Ok && o.key.starts_with(prefix)).count();
        let bundles: Vec<&Outcome> =
            outcomes.iter().filter(|o| o.status == Status::Ok && o.action == crate::model::Action::Upload).collect();
        let assets: usize =
            bundles.iter().filter_map(|o| o.item.as_ref()?.get("assets")?.as_array().map(Vec::len)).sum();
        let count = |name, n: usize| (name, n as f64, StandardUnit::Count);
        vec![
            count("Users", ok("users/")),
            count("Groups", ok("groups/")),
            count("Memberships", ok("memberships/")),
            count("Bundles", bundles.len()),
            count("AssetsExported", assets),
        ]
    }

    /// Retention, after a run in which nothing failed.
    async fn finalize(&self, cx: &JobContext<'_>, outcomes: &[Outcome]) -> Result<(), EngineError> {
        if self.keep_tables.is_none() || !self.mode.users() || outcomes.iter().any(|o| o.status == Status::Failed) {
            return Ok(());
        }
        let today = cx.run.scheduled_at.date_naive();
        let deleted = retention::apply(&cx.engine.clients.dynamodb, self, &cx.job.name, today).await?;
        if !deleted.is_empty() {
            tracing::info!(tables = ?deleted, "deleted tables past keep_tables");
        }
        Ok(())
    }
}

/// Writes a chunk's records, table by table, each ending in its outcome.
async fn write_records(cx: &JobContext<'_>, records: Vec<QuickSightTask>) -> Vec<Outcome> {
    let mut by_table: BTreeMap<(String, String), Vec<RecordTask>> = BTreeMap::new();
    for task in records {
        if let QuickSightTask::Record(record) = task {
            by_table.entry((record.table.clone(), record.key_attribute.clone())).or_default().push(record);
        }
    }
    let mut outcomes = Vec::new();
    for ((table, key), records) in by_table {
        let items = records.iter().map(|r| attributes(&r.item)).collect();
        let results = write(&cx.engine.clients.dynamodb, &table, &key, items).await;
        for (record, result) in records.into_iter().zip(results) {
            let task = QuickSightTask::Record(record);
            let outcome = match result {
                None => task.outcome(Status::Ok),
                Some(reason) => task.outcome(Status::Failed).with_detail(reason),
            };
            cx.engine.progress.finished(&outcome);
            outcomes.push(outcome);
        }
    }
    outcomes
}
