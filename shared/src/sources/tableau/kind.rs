//! `kind = "tableau"` as the pipeline sees it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::restore::{TableauRestoreJob, TableauRestoreOptions};
use super::state::{self, Item};
use super::{TableauJob, TableauTask, download, plan};
use crate::aws::error_text;
use crate::config::registry::{ConfigImport, KindEntry};
use crate::config::{BucketName, Job, JobError, restore_options};
use crate::model::Outcome;
use crate::pipeline::EngineError;
use crate::pipeline::kind::{Executed, JobContext, Kind, decode_tasks, keys_of, parse_spec, tasks_in_doubt};
use crate::pipeline::planner::TaskSink;
use crate::store::ControlStore;

pub const ENTRY: KindEntry = KindEntry {
    name: "tableau",
    about: "Tableau Server workbooks (every site, or some) into S3, with their metadata as tags",
    parse: parse_spec::<TableauJob>,
    example: include_str!("example.toml"),
    // Tableau serves about 20 long downloads per site; a few per worker is polite.
    default_concurrency: 4,
    import: Some(ConfigImport { tool: super::import::TOOL, convert: super::import::import }),
};

impl TableauJob {
    /// Where the job's records live unless `[jobs.control]` says otherwise: the target bucket,
    /// or the first project's bucket when only projects are backed up.
    pub fn records_bucket(&self) -> BucketName {
        match (&self.target, self.projects.first()) {
            (Some(target), _) => target.bucket.clone(),
            (None, Some(project)) => project.bucket.clone(),
            (None, None) => unreachable!("validated: a target or a project"),
        }
    }

    /// The default bucket and every project's bucket.
    pub fn buckets(&self) -> Vec<&BucketName> {
        let mut buckets: Vec<&BucketName> =
            self.target.iter().map(|t| &t.bucket).chain(self.projects.iter().map(|p| &p.bucket)).collect();
        buckets.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        buckets.dedup();
        buckets
    }
}

#[async_trait]
impl Kind for TableauJob {
    crate::kind_identity!(ENTRY);

    fn validate(&self) -> Result<(), (String, String)> {
        self.check()
    }

    fn control_bucket(&self) -> BucketName {
        self.records_bucket()
    }

    fn endpoints(&self) -> (String, String) {
        let buckets: Vec<String> = self.buckets().iter().map(|b| format!("s3://{b}/")).collect();
        (self.source.server.as_str().to_string(), buckets.join(", "))
    }

    /// Every target bucket must exist; each is versioned so a changed workbook is a new version.
    async fn check(&self, cx: &JobContext<'_>) -> Result<(), EngineError> {
        let s3 = &cx.engine.clients.s3;
        for bucket in self.buckets() {
            crate::aws::s3::check_bucket(s3, "target", bucket.as_str()).await?;
            if cx.dry_run {
                continue;
            }
            let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
            s3.put_bucket_versioning()
                .bucket(bucket.as_str())
                .versioning_configuration(enabled)
                .send()
                .await
                .map_err(|e| EngineError::service(format!("PutBucketVersioning on `{bucket}`"), error_text(&e)))?;
        }
        Ok(())
    }

    /// Downloads are long (a workbook can be gigabytes): small chunks end well inside a
    /// worker's time-out.
    fn chunk_tasks(&self) -> usize {
        25
    }

    async fn plan(&self, cx: &JobContext<'_>, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
        plan::plan(cx, self, sink).await
    }

    async fn execute(&self, cx: &JobContext<'_>, tasks: Vec<Value>) -> Result<Executed, EngineError> {
        let tasks: Vec<TableauTask> = decode_tasks(ENTRY.name, tasks)?;
        download::execute(cx, self, &tasks).await
    }

    fn restore_job(&self, backup: &Job, options: Value) -> Option<Result<Job, JobError>> {
        Some(restore_options::<TableauRestoreOptions>(options).map(|options| {
            backup.restore_with(TableauRestoreJob { backup_job: backup.name.clone(), backup: self.clone(), options })
        }))
    }

    /// Workbooks (and revisions) downloaded into S3.
    fn metrics(&self, outcomes: &[Outcome]) -> Vec<crate::notify::metrics::Metric> {
        let stored = outcomes
            .iter()
            .filter(|o| o.status == crate::model::Status::Ok && o.action == crate::model::Action::Copy)
            .count();
        vec![("WorkbooksBackedUp", stored as f64, aws_sdk_cloudwatch::types::StandardUnit::Count)]
    }

    /// Workbooks go by multipart upload under the target's and each project's prefix.
    fn upload_targets(&self) -> Vec<(String, String)> {
        let target = self.target.iter().map(|t| (t.bucket.to_string(), t.prefix.clone()));
        let projects = self.projects.iter().map(|p| (p.bucket.to_string(), p.prefix.clone()));
        let mut targets: Vec<(String, String)> = target.chain(projects).collect();
        targets.sort();
        targets.dedup();
        targets
    }

    fn task_keys(&self, tasks: &[Value]) -> Vec<String> {
        keys_of::<TableauTask>(tasks)
    }

    fn in_doubt(&self, tasks: Vec<Value>, since: DateTime<Utc>) -> Vec<Value> {
        tasks_in_doubt::<TableauTask>(tasks, since)
    }

    /// Each site's and bucket's `upload_state.json` advances with its outcomes.
    async fn finalize(&self, cx: &JobContext<'_>, outcomes: &[Outcome]) -> Result<(), EngineError> {
        let store = ControlStore::new(cx.engine.clients.s3.clone(), &cx.run.control);
        let mut by_state: BTreeMap<(String, String), Vec<(Item, &Outcome)>> = BTreeMap::new();
        for outcome in outcomes {
            let (Some(item), Some(bucket)) = (&outcome.item, &outcome.target_bucket) else { continue };
            let Ok(item) = serde_json::from_value::<Item>(item.clone()) else { continue };
            by_state.entry((item.site.clone(), bucket.clone())).or_default().push((item, outcome));
        }
        let now = Utc::now();
        for ((site, bucket), outcomes) in by_state {
            let old = state::load(&store, &cx.job.name, &site, &bucket).await?;
            let new = old.apply(&cx.run.run_id, &outcomes, now);
            store.put_json(&state::state_path(&cx.job.name, &site, &bucket), &new).await?;
        }
        Ok(())
    }
}
