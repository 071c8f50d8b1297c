//! The tasks of an `s3` backup.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Action, Outcome, Status};
use crate::pipeline::kind::{KindTask, TaskClass, TaskLine};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum S3Task {
    /// Copy a new or changed object into the backup.
    Copy {
        key: String,
        target_key: String,
        size: u64,
        etag: String,
        /// The backup holds a copy marked deleted: its tags must be replaced by the source's,
        /// not merged.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        replace_tags: bool,
        /// A killed run that started then may have copied it without recording it: look at the
        /// backup first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        copied_since: Option<DateTime<Utc>>,
    },
    /// Tag the backup of an object deleted at the source.
    MarkDeleted {
        key: String,
        target_key: String,
        /// The state knows the backup has no tags of its own: set the deletion tags without
        /// reading them first.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        untagged: bool,
    },
    /// Report an object the run will not copy, with the reason.
    Skip { key: String, size: u64, etag: String, reason: String },
}

impl KindTask for S3Task {
    fn key(&self) -> &str {
        match self {
            S3Task::Copy { key, .. } | S3Task::MarkDeleted { key, .. } | S3Task::Skip { key, .. } => key,
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            S3Task::Copy { size, .. } => *size,
            _ => 0,
        }
    }

    fn class(&self) -> TaskClass {
        match self {
            S3Task::Copy { .. } => TaskClass::Transfer,
            S3Task::MarkDeleted { .. } => TaskClass::Removal,
            S3Task::Skip { .. } => TaskClass::Skip,
        }
    }

    fn describe(&self) -> TaskLine {
        match self {
            S3Task::Copy { key, size, .. } => TaskLine::new("copy", format!("{key:?}")).bytes(*size),
            S3Task::MarkDeleted { key, .. } => TaskLine::new("mark deleted", format!("{key:?}")),
            S3Task::Skip { key, reason, .. } => TaskLine::new("skip", format!("{key:?}")).tail(format!(": {reason}")),
        }
    }

    fn outcome(&self, status: Status) -> Outcome {
        match self {
            S3Task::Copy { key, target_key, etag, .. } => Outcome {
                target_key: Some(target_key.clone()),
                etag: Some(etag.clone()),
                ..Outcome::new(Action::Copy, key, status)
            },
            S3Task::MarkDeleted { key, target_key, .. } => {
                Outcome { target_key: Some(target_key.clone()), ..Outcome::new(Action::MarkDeleted, key, status) }
            }
            S3Task::Skip { key, etag, .. } => {
                Outcome { etag: Some(etag.clone()), ..Outcome::new(Action::Skip, key, status) }
            }
        }
    }

    fn in_doubt(mut self, since: DateTime<Utc>) -> Self {
        // A copy that replaces a deletion-marked backup must run: the old copy may have the
        // same ETag, and only the new one has the source's tags.
        if let S3Task::Copy { copied_since, replace_tags: false, .. } = &mut self {
            *copied_since = Some(copied_since.map_or(since, |earlier| earlier.min(since)));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_serialize_with_their_action() {
        let task = S3Task::MarkDeleted { key: "a b+c".into(), target_key: "x/a b+c".into(), untagged: false };
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(json["action"], "mark_deleted");
        assert_eq!(serde_json::from_value::<S3Task>(json).unwrap(), task);
    }

    #[test]
    fn another_kinds_task_does_not_decode() {
        let upload =
            serde_json::json!({"action": "upload", "path": "/a", "bucket": "b", "key": "a", "size": 1, "mtime_ns": 0});
        assert!(serde_json::from_value::<S3Task>(upload).is_err());
    }

    #[test]
    fn a_copy_in_doubt_looks_first_unless_it_replaces_a_deletion_marked_backup() {
        let since = chrono::Utc::now();
        let copy = |replace_tags| S3Task::Copy {
            key: "k".into(),
            target_key: "k".into(),
            size: 1,
            etag: "e".into(),
            replace_tags,
            copied_since: None,
        };
        assert!(matches!(copy(false).in_doubt(since), S3Task::Copy { copied_since: Some(s), .. } if s == since));
        assert!(matches!(copy(true).in_doubt(since), S3Task::Copy { copied_since: None, .. }));
    }
}
