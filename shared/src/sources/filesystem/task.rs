//! The tasks of a `filesystem` backup.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Action, Outcome, Status};
use crate::pipeline::kind::{KindTask, TaskClass, TaskLine};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum FilesystemTask {
    /// Upload a file (new, or changed since the last run) into its folder's bucket.
    Upload {
        path: String,
        bucket: String,
        key: String,
        size: u64,
        mtime_ns: i64,
        /// A killed run that started then may have uploaded it without recording it: look at
        /// the bucket first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uploaded_since: Option<DateTime<Utc>>,
    },
    /// Delete the object of a file gone from disk (the versioned bucket keeps the old version).
    Delete { bucket: String, key: String },
    /// A path the walk could not read: reported as a failed task.
    Unreadable { key: String, reason: String },
    /// A path the run leaves alone (a special file, a link to a folder), with the reason.
    Skip { key: String, size: u64, etag: String, reason: String },
}

impl KindTask for FilesystemTask {
    fn key(&self) -> &str {
        match self {
            FilesystemTask::Upload { key, .. }
            | FilesystemTask::Delete { key, .. }
            | FilesystemTask::Unreadable { key, .. }
            | FilesystemTask::Skip { key, .. } => key,
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            FilesystemTask::Upload { size, .. } => *size,
            _ => 0,
        }
    }

    fn class(&self) -> TaskClass {
        match self {
            FilesystemTask::Upload { .. } => TaskClass::Transfer,
            FilesystemTask::Delete { .. } => TaskClass::Removal,
            FilesystemTask::Unreadable { .. } | FilesystemTask::Skip { .. } => TaskClass::Skip,
        }
    }

    fn describe(&self) -> TaskLine {
        match self {
            FilesystemTask::Upload { path, size, .. } => TaskLine::new("upload", format!("{path:?}")).bytes(*size),
            FilesystemTask::Delete { bucket, key } => TaskLine::new("delete", format!("s3://{bucket}/{key}")),
            FilesystemTask::Unreadable { key, reason } => {
                TaskLine::new("unreadable", format!("/{key}")).tail(format!(": {reason}"))
            }
            FilesystemTask::Skip { key, reason, .. } => {
                TaskLine::new("skip", format!("{key:?}")).tail(format!(": {reason}"))
            }
        }
    }

    fn outcome(&self, status: Status) -> Outcome {
        match self {
            FilesystemTask::Upload { path, bucket, key, .. } => Outcome {
                target_key: Some(path.clone()),
                target_bucket: Some(bucket.clone()),
                ..Outcome::new(Action::Upload, key, status)
            },
            FilesystemTask::Delete { bucket, key } => {
                Outcome { target_bucket: Some(bucket.clone()), ..Outcome::new(Action::Delete, key, status) }
            }
            FilesystemTask::Unreadable { key, .. } => Outcome::new(Action::Upload, key, status),
            FilesystemTask::Skip { key, etag, .. } => {
                Outcome { etag: Some(etag.clone()), ..Outcome::new(Action::Skip, key, status) }
            }
        }
    }

    fn in_doubt(mut self, since: DateTime<Utc>) -> Self {
        if let FilesystemTask::Upload { uploaded_since, .. } = &mut self {
            *uploaded_since = Some(uploaded_since.map_or(since, |earlier| earlier.min(since)));
        }
        self
    }
}
