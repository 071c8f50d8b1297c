//! The `filesystem-restore` job's spec: which backup, and where the files go.

use serde::{Deserialize, Serialize};

use crate::config::{AbsolutePath, HumanDuration, RestoreTier, default_poll_interval, default_restore_days};
use crate::sources::filesystem::FilesystemJob;

/// `kind = "filesystem-restore"`: restore the backup of the `filesystem` job `backup_job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemRestoreJob {
    pub backup_job: String,
    pub backup: FilesystemJob,
    pub options: FilesystemRestoreOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemRestoreOptions {
    /// Restore under this folder (a file /a/b.txt lands in DIR/a/b.txt). Default: the files'
    /// original paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_dir: Option<AbsolutePath>,
    /// A run id or a time: what the backup held at the end of that run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// Restore only files whose original path starts with this.
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub tier: RestoreTier,
    /// Replace files that exist and differ from the backup.
    #[serde(default)]
    pub overwrite: bool,
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    #[serde(default = "default_restore_days")]
    pub restore_days: u32,
    /// How long archived objects may take in all before they are reported failed; default 96 h,
    /// twice what Deep Archive's slowest (Bulk) tier promises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<HumanDuration>,
}
