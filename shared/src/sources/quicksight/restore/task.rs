//! The tasks of a QuickSight restore: a group, a user, a membership, or the day's imports.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::model::{Action, Outcome, Status};
use crate::pipeline::kind::{KindTask, TaskClass, TaskLine};
use crate::sources::quicksight::AssetType;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum QuickSightRestoreTask {
    Group {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    User(UserIdentity),
    Membership {
        user: String,
        group: String,
        /// Looks so far for a user or group that is not there yet.
        #[serde(default)]
        looks: u32,
    },
    /// Every bundle of the day, imported type by type (data sources first): one task, so the
    /// order holds however the queue delivers.
    Imports(Imports),
}

/// A user as the users table has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserIdentity {
    pub user_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_permissions_name: Option<String>,
}

/// A bundle of the backup, to import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleRef {
    pub asset_type: AssetType,
    pub bucket: String,
    pub key: String,
    pub assets: Vec<String>,
    /// The import job, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

impl BundleRef {
    pub fn name(&self) -> String {
        let file = self.key.rsplit('/').next().unwrap_or(&self.key);
        format!("{}/{}", self.asset_type, file.trim_end_matches(".zip"))
    }

    pub fn outcome(&self, status: Status) -> Outcome {
        Outcome {
            target_bucket: Some(self.bucket.clone()),
            target_key: Some(self.key.clone()),
            item: Some(json!({ "type": self.asset_type, "assets": self.assets, "import_job_id": self.job_id })),
            ..Outcome::new(Action::Restore, self.name(), status)
        }
    }
}

/// The day's bundles, grouped by type in import order; one group imports at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imports {
    pub stages: Vec<Vec<BundleRef>>,
}

impl KindTask for QuickSightRestoreTask {
    fn key(&self) -> &str {
        match self {
            QuickSightRestoreTask::Group { name, .. } => name,
            QuickSightRestoreTask::User(user) => &user.user_name,
            QuickSightRestoreTask::Membership { user, .. } => user,
            QuickSightRestoreTask::Imports(_) => "imports",
        }
    }

    fn class(&self) -> TaskClass {
        TaskClass::Transfer
    }

    fn describe(&self) -> TaskLine {
        match self {
            QuickSightRestoreTask::Group { name, .. } => TaskLine::new("create group", name),
            QuickSightRestoreTask::User(user) => TaskLine::new("register", &user.user_name)
                .tail(format!(" ({})", user.identity_type.as_deref().unwrap_or("?"))),
            QuickSightRestoreTask::Membership { user, group, .. } => {
                TaskLine::new("add member", format!("{user} to {group}"))
            }
            QuickSightRestoreTask::Imports(imports) => {
                let bundles: usize = imports.stages.iter().map(Vec::len).sum();
                let assets: usize = imports.stages.iter().flatten().map(|b| b.assets.len()).sum();
                TaskLine::new("import", format!("{bundles} bundle(s), {assets} asset(s)"))
                    .tail(" in order: datasources, datasets, analyses, dashboards")
            }
        }
    }

    fn outcome(&self, status: Status) -> Outcome {
        match self {
            QuickSightRestoreTask::Group { name, .. } => {
                Outcome::new(Action::Restore, format!("groups/{name}"), status)
            }
            QuickSightRestoreTask::User(user) => {
                Outcome::new(Action::Restore, format!("users/{}", user.user_name), status)
            }
            QuickSightRestoreTask::Membership { user, group, .. } => {
                Outcome::new(Action::Restore, format!("memberships/{user}#{group}"), status)
            }
            QuickSightRestoreTask::Imports(imports) => {
                let names: Vec<String> = imports.stages.iter().flatten().map(BundleRef::name).collect();
                Outcome::new(Action::Restore, "imports", status)
                    .with_detail(format!("bundles not imported: {}", names.join(", ")))
            }
        }
    }
}
