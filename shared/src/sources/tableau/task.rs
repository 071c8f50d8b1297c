//! The tasks of a `tableau` backup.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::state::Item;
use crate::model::{Action, Outcome, Status};
use crate::pipeline::kind::{KindTask, TaskClass, TaskLine};

/// Where a workbook's object lives, and which workbook it is.
// No `deny_unknown_fields` here: serde does not support it together with `flatten`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placed {
    /// The site's content URL ("" for Default).
    pub site: String,
    pub id: String,
    pub name: String,
    pub updated_at: String,
    /// The project's path from the top (`Finance/Reports`; `Personal/<owner>` for a personal
    /// space), to publish it back into.
    #[serde(default)]
    pub project: String,
    /// The owner's name (or id, when the server did not say), to give a restore back its owner.
    #[serde(default)]
    pub owner: String,
    pub bucket: String,
    /// The object's key; for a download, without the extension the server decides
    /// (`.twbx` with an extract, `.twb` without).
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum TableauTask {
    /// Download a new or changed workbook into its bucket, with its metadata as tags.
    Download {
        #[serde(flatten)]
        at: Placed,
        tags: Vec<(String, String)>,
        /// An older revision the server keeps (with `revisions = true`), not the workbook now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<u32>,
        /// A run that started then may have stored it without recording it: look at the
        /// bucket first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        downloaded_since: Option<DateTime<Utc>>,
    },
    /// Copy an unchanged workbook's object onto itself (see `refresh_after`).
    Refresh {
        #[serde(flatten)]
        at: Placed,
    },
    /// Tag the object of a workbook gone from the server `Deleted=True`.
    MarkDeleted {
        #[serde(flatten)]
        at: Placed,
    },
    /// A site that could not be read: its workbooks are reported failed, the run goes on.
    Unreadable { site: String, reason: String },
}

impl TableauTask {
    pub fn placed(&self) -> Option<&Placed> {
        match self {
            TableauTask::Download { at, .. } | TableauTask::Refresh { at } | TableauTask::MarkDeleted { at } => {
                Some(at)
            }
            TableauTask::Unreadable { .. } => None,
        }
    }

    pub fn site(&self) -> &str {
        match self {
            TableauTask::Unreadable { site, .. } => site,
            other => &other.placed().expect("placed").site,
        }
    }
}

fn site_label(site: &str) -> &str {
    if site.is_empty() { "Default" } else { site }
}

impl KindTask for TableauTask {
    fn key(&self) -> &str {
        match self {
            TableauTask::Unreadable { site, .. } => site,
            other => &other.placed().expect("placed").key,
        }
    }

    fn class(&self) -> TaskClass {
        match self {
            TableauTask::Download { .. } => TaskClass::Transfer,
            TableauTask::MarkDeleted { .. } => TaskClass::Removal,
            TableauTask::Refresh { .. } | TableauTask::Unreadable { .. } => TaskClass::Skip,
        }
    }

    fn describe(&self) -> TaskLine {
        match self {
            TableauTask::Download { at, .. } => TaskLine::new("download", format!("{:?}", at.key)).tail(format!(
                " ({}/{})",
                site_label(&at.site),
                at.name
            )),
            TableauTask::Refresh { at } => TaskLine::new("refresh", format!("{:?}", at.key)),
            TableauTask::MarkDeleted { at } => TaskLine::new("mark deleted", format!("{:?}", at.key)),
            TableauTask::Unreadable { site, reason } => {
                TaskLine::new("unreadable", format!("site {}", site_label(site))).tail(format!(": {reason}"))
            }
        }
    }

    fn outcome(&self, status: Status) -> Outcome {
        let Some(at) = self.placed() else {
            return Outcome::new(Action::Copy, format!("site {}", site_label(self.site())), status);
        };
        let action = match self {
            TableauTask::Download { .. } => Action::Copy,
            TableauTask::Refresh { .. } => Action::Refresh,
            _ => Action::MarkDeleted,
        };
        let revision = match self {
            TableauTask::Download { revision, .. } => *revision,
            _ => None,
        };
        let item = Item {
            site: at.site.clone(),
            id: at.id.clone(),
            name: at.name.clone(),
            updated_at: at.updated_at.clone(),
            project: at.project.clone(),
            owner: at.owner.clone(),
            revision,
        };
        Outcome {
            target_key: Some(at.key.clone()),
            target_bucket: Some(at.bucket.clone()),
            item: Some(serde_json::to_value(item).expect("items serialize")),
            ..Outcome::new(action, format!("{}/{}", site_label(&at.site), at.name), status)
        }
    }

    fn in_doubt(mut self, since: DateTime<Utc>) -> Self {
        if let TableauTask::Download { downloaded_since, .. } = &mut self {
            *downloaded_since = Some(downloaded_since.map_or(since, |earlier| earlier.min(since)));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_travel_flat_and_come_back() {
        let at = Placed {
            site: "finance".into(),
            id: "w1".into(),
            name: "Sales".into(),
            updated_at: "2026-11-01T00:00:00Z".into(),
            project: "Reports".into(),
            owner: "admin".into(),
            bucket: "b-b-b".into(),
            key: "finance/Reports/Sales".into(),
        };
        let task = TableauTask::Download {
            at,
            tags: vec![("WorkbookId".into(), "w1".into())],
            revision: Some(2),
            downloaded_since: None,
        };
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!((json["action"].as_str(), json["id"].as_str()), (Some("download"), Some("w1")));
        assert_eq!(serde_json::from_value::<TableauTask>(json).unwrap(), task);
    }
}
