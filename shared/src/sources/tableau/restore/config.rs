//! The `tableau-restore` job's spec: which backup, which workbooks, and where they go.

use serde::{Deserialize, Serialize};

use crate::config::{HumanDuration, Secret};
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
    /// Credentials for the workbooks' data connections (downloads never contain passwords),
    /// each password a secret reference resolved when the workbook is published.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<ConnectionSecret>,
}

/// `[[jobs.options.connections]]`: credentials embedded in the published workbooks' connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSecret {
    /// The database server the connection points at, as the workbook names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_port: Option<String>,
    pub username: String,
    pub password: Secret,
    /// Keep the credentials in the workbook (else viewers are asked).
    #[serde(default = "default_true")]
    pub embed: bool,
}

fn default_true() -> bool {
    true
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
