//! The `s3-restore` job's spec: which backup, and how to restore it.

use serde::{Deserialize, Serialize};

use crate::config::{BucketName, HumanDuration, RestoreTier, default_poll_interval, default_restore_days};
use crate::sources::s3::S3Job;

/// `kind = "s3-restore"`: restore the backup of the `s3` job `backup_job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3RestoreJob {
    pub backup_job: String,
    /// The backup job as it was configured: where its backup and records are.
    pub backup: S3Job,
    pub options: RestoreOptions,
}

/// How to restore: the flags of `backline restore`, and the `restore` object of a planner request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreOptions {
    pub to_bucket: BucketName,
    /// Prepended to restored keys. Default: the backup job's source prefix, so keys come back
    /// as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_prefix: Option<String>,
    /// A run id, or a time (RFC 3339 or YYYY-MM-DD): restore what the backup held at the end of
    /// that run, or of the last run finished by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default)]
    pub include_deleted: bool,
    /// Restore only keys under this prefix (of the original keys).
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub tier: RestoreTier,
    /// Restore into a bucket that already holds objects (e.g. to continue an interrupted restore).
    #[serde(default)]
    pub allow_existing: bool,
    /// Replace objects in the target that differ from the backup.
    #[serde(default)]
    pub overwrite: bool,
    /// How long an archived object waits before it is checked again.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// Days a restored archive copy stays readable.
    #[serde(default = "default_restore_days")]
    pub restore_days: u32,
    /// How long archived objects may take in all before they are reported failed; default 96 h,
    /// twice what Deep Archive's slowest (Bulk) tier promises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<HumanDuration>,
}
