//! The `tableau-restore` job's spec: which backup, which workbooks, and where they go.

use serde::{Deserialize, Serialize};

use crate::config::HumanDuration;
use crate::sources::tableau::TableauJob;

/// `kind = "tableau-restore"`: publish workbooks of the `tableau` job `backup_job` back to a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableauRestoreJob {
    pub backup_job: String,
    /// The backup job as it was configured: its server, credentials and buckets.
    pub backup: TableauJob,
    pub options: TableauRestoreOptions,
}

/// The flags of `backline restore` for a Tableau job, and a planner request's `restore` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableauRestoreOptions {
    /// The backed-up site: its content URL, or `Default`.
    pub site: String,
    /// Only this project (a name, or a path from the top) and its sub-projects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Only this workbook (its name or id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workbook: Option<String>,
    /// One older revision the backup holds (from a job with `revisions = true`), not the
    /// workbook as it was at the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// A run id, or a time: the workbooks as the backup held them after that run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// Publish to this site instead (its content URL, or `Default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_site: Option<String>,
    /// Publish under this project path instead of the original one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_project: Option<String>,
    /// Replace a workbook of the same name in the target project.
    #[serde(default)]
    pub overwrite: bool,
    /// How often a publish job is looked at.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
