//! The tasks of a `filesystem-restore`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Action, Outcome, Status};
use crate::pipeline::kind::{KindTask, TaskClass, TaskLine};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum FilesystemRestoreTask {
    /// Download a backed-up file (or one version of it) to `dest`, restoring it from an archive
    /// first when needed (the task then waits in the queue).
    Download {
        bucket: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
        size: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        archived: bool,
        dest: String,
        /// A run that started then may have written the file without recording it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restored_since: Option<DateTime<Utc>>,
    },
    /// A key that cannot be restored (it would land outside the folder): a failed task.
    Unreadable { key: String, reason: String },
    /// A file the restore leaves out, with the reason.
    Skip { key: String, size: u64, etag: String, reason: String },
}

impl FilesystemRestoreTask {
    /// The same download, known to need an archive retrieval first.
    pub fn archived(self) -> FilesystemRestoreTask {
        match self {
            FilesystemRestoreTask::Download { bucket, key, version_id, size, dest, restored_since, .. } => {
                FilesystemRestoreTask::Download { bucket, key, version_id, size, archived: true, dest, restored_since }
            }
            other => other,
        }
    }
}

impl KindTask for FilesystemRestoreTask {
    fn key(&self) -> &str {
        match self {
            FilesystemRestoreTask::Download { key, .. }
            | FilesystemRestoreTask::Unreadable { key, .. }
            | FilesystemRestoreTask::Skip { key, .. } => key,
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            FilesystemRestoreTask::Download { size, .. } => *size,
            _ => 0,
        }
    }

    fn class(&self) -> TaskClass {
        match self {
            FilesystemRestoreTask::Download { .. } => TaskClass::Transfer,
            FilesystemRestoreTask::Unreadable { .. } | FilesystemRestoreTask::Skip { .. } => TaskClass::Skip,
        }
    }

    fn describe(&self) -> TaskLine {
        match self {
            FilesystemRestoreTask::Download { dest, size, archived, .. } => {
                TaskLine::new("download", format!("{dest:?}")).bytes(*size).tail(if *archived {
                    " from archive"
                } else {
                    ""
                })
            }
            FilesystemRestoreTask::Unreadable { key, reason } => {
                TaskLine::new("unreadable", format!("/{key}")).tail(format!(": {reason}"))
            }
            FilesystemRestoreTask::Skip { key, reason, .. } => {
                TaskLine::new("skip", format!("{key:?}")).tail(format!(": {reason}"))
            }
        }
    }

    fn outcome(&self, status: Status) -> Outcome {
        match self {
            FilesystemRestoreTask::Download { bucket, key, dest, .. } => Outcome {
                target_key: Some(dest.clone()),
                target_bucket: Some(bucket.clone()),
                ..Outcome::new(Action::Restore, key, status)
            },
            FilesystemRestoreTask::Unreadable { key, .. } => Outcome::new(Action::Upload, key, status),
            FilesystemRestoreTask::Skip { key, etag, .. } => {
                Outcome { etag: Some(etag.clone()), ..Outcome::new(Action::Skip, key, status) }
            }
        }
    }

    fn in_doubt(mut self, since: DateTime<Utc>) -> Self {
        if let FilesystemRestoreTask::Download { restored_since, .. } = &mut self {
            *restored_since = Some(restored_since.map_or(since, |earlier| earlier.min(since)));
        }
        self
    }
}
