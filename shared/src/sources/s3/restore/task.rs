//! The tasks of an `s3-restore`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Action, Outcome, Status};
use crate::pipeline::kind::{KindTask, TaskClass, TaskLine};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum S3RestoreTask {
    /// Copy an object (or one version of it) out of a backup; an archived one is first
    /// restored from GLACIER or DEEP_ARCHIVE, and the task waits in the queue until it is.
    Restore {
        /// The key in the backup.
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
        target_key: String,
        size: u64,
        etag: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        archived: bool,
        /// Whether the backup copy is tagged `Deleted=True`; `None` when the plan could not
        /// tell and the worker must look.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deleted: Option<bool>,
        /// A run that started then may have restored it without recording it: a same object
        /// written since then in the target is that run's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restored_since: Option<DateTime<Utc>>,
    },
    /// Report an object the restore leaves out, with the reason.
    Skip { key: String, size: u64, etag: String, reason: String },
}

impl S3RestoreTask {
    /// The same restore, known to need an archive retrieval first.
    pub fn archived(self) -> S3RestoreTask {
        match self {
            S3RestoreTask::Restore { key, version_id, target_key, size, etag, deleted, restored_since, .. } => {
                S3RestoreTask::Restore {
                    key,
                    version_id,
                    target_key,
                    size,
                    etag,
                    archived: true,
                    deleted,
                    restored_since,
                }
            }
            other => other,
        }
    }
}

impl KindTask for S3RestoreTask {
    fn key(&self) -> &str {
        match self {
            S3RestoreTask::Restore { key, .. } | S3RestoreTask::Skip { key, .. } => key,
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            S3RestoreTask::Restore { size, .. } => *size,
            S3RestoreTask::Skip { .. } => 0,
        }
    }

    fn class(&self) -> TaskClass {
        match self {
            S3RestoreTask::Restore { .. } => TaskClass::Transfer,
            S3RestoreTask::Skip { .. } => TaskClass::Skip,
        }
    }

    fn describe(&self) -> TaskLine {
        match self {
            S3RestoreTask::Restore { key, size, archived, .. } => TaskLine::new("restore", format!("{key:?}"))
                .bytes(*size)
                .tail(if *archived { " from archive" } else { "" }),
            S3RestoreTask::Skip { key, reason, .. } => {
                TaskLine::new("skip", format!("{key:?}")).tail(format!(": {reason}"))
            }
        }
    }

    fn outcome(&self, status: Status) -> Outcome {
        match self {
            S3RestoreTask::Restore { key, target_key, etag, .. } => Outcome {
                target_key: Some(target_key.clone()),
                etag: Some(etag.clone()),
                ..Outcome::new(Action::Restore, key, status)
            },
            S3RestoreTask::Skip { key, etag, .. } => {
                Outcome { etag: Some(etag.clone()), ..Outcome::new(Action::Skip, key, status) }
            }
        }
    }

    fn in_doubt(mut self, since: DateTime<Utc>) -> Self {
        if let S3RestoreTask::Restore { restored_since, .. } = &mut self {
            *restored_since = Some(restored_since.map_or(since, |earlier| earlier.min(since)));
        }
        self
    }
}
