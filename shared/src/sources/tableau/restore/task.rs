//! The tasks of a `tableau-restore`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Action, Outcome, Status};
use crate::pipeline::kind::{KindTask, TaskClass, TaskLine};

// A chunk holds ten tasks at most (`chunk_tasks`): the size of a skip does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum TableauRestoreTask {
    /// Publish one backed-up workbook (one version of its object) to a site and project; the
    /// publish runs as a job on the server that later looks check on.
    Publish {
        /// What it was: `<site>/<project path>/<name>`.
        from: String,
        site: String,
        project: Vec<String>,
        name: String,
        bucket: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
        size: u64,
        /// The ETag of the backup's object: which copy of the workbook this is.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        etag: String,
        /// The workbook's owner when it was backed up, by name, to give it back.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        owner: String,
        /// The server's publish job, once started, and the project it publishes into.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project_id: Option<String>,
        /// Set when it may have been published since then without a record of it (by a run
        /// that stopped, or by a publish whose answer was lost): a workbook of its name in its
        /// project updated since then is that publish.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        published_since: Option<DateTime<Utc>>,
        /// Publishes of it that failed for a dropped connection or a server error so far.
        #[serde(default, skip_serializing_if = "is_zero")]
        tries: u32,
    },
    /// A workbook the restore leaves out, with the reason.
    Skip { from: String, reason: String },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TableauRestoreTask {
    /// The same publish, its job started.
    pub fn started(&self, id: String, project: &str) -> TableauRestoreTask {
        let mut task = self.clone();
        if let TableauRestoreTask::Publish { job_id, project_id, .. } = &mut task {
            *job_id = Some(id);
            *project_id = Some(project.to_string());
        }
        task
    }

    /// The same publish, to be tried again after one that may or may not have been made at
    /// `at`.
    pub fn tried(&self, at: DateTime<Utc>) -> TableauRestoreTask {
        let mut task = self.clone().in_doubt(at);
        if let TableauRestoreTask::Publish { tries, .. } = &mut task {
            *tries += 1;
        }
        task
    }
}

impl KindTask for TableauRestoreTask {
    fn key(&self) -> &str {
        match self {
            TableauRestoreTask::Publish { from, .. } | TableauRestoreTask::Skip { from, .. } => from,
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            TableauRestoreTask::Publish { size, .. } => *size,
            TableauRestoreTask::Skip { .. } => 0,
        }
    }

    fn class(&self) -> TaskClass {
        match self {
            TableauRestoreTask::Publish { .. } => TaskClass::Transfer,
            TableauRestoreTask::Skip { .. } => TaskClass::Skip,
        }
    }

    fn describe(&self) -> TaskLine {
        match self {
            TableauRestoreTask::Publish { from, site, project, name, size, .. } => {
                let site = if site.is_empty() { "Default" } else { site };
                TaskLine::new("publish", format!("{from:?}"))
                    .bytes(*size)
                    .tail(format!(" -> {site}/{}/{name}", project.join("/")))
            }
            TableauRestoreTask::Skip { from, reason } => {
                TaskLine::new("skip", format!("{from:?}")).tail(format!(": {reason}"))
            }
        }
    }

    fn outcome(&self, status: Status) -> Outcome {
        match self {
            TableauRestoreTask::Publish { from, site, project, name, bucket, size, etag, .. } => {
                let site = if site.is_empty() { "Default" } else { site };
                Outcome {
                    target_key: Some(format!("{site}/{}/{name}", project.join("/"))),
                    target_bucket: Some(bucket.clone()),
                    etag: Some(etag.clone()).filter(|e| !e.is_empty()),
                    bytes: *size,
                    ..Outcome::new(Action::Restore, from, status)
                }
            }
            TableauRestoreTask::Skip { from, .. } => Outcome::new(Action::Skip, from, status),
        }
    }

    fn in_doubt(mut self, since: DateTime<Utc>) -> Self {
        if let TableauRestoreTask::Publish { published_since, .. } = &mut self {
            *published_since = Some(published_since.map_or(since, |earlier| earlier.min(since)));
        }
        self
    }
}
