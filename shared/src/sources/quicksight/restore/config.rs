//! The `quicksight-restore` job's spec: which backup, which day, what, and where to.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::config::HumanDuration;
use crate::sources::quicksight::{AccountId, AssetType, QuickSightJob, Region};

/// `kind = "quicksight-restore"`: a day of the `quicksight` job `backup_job` restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickSightRestoreJob {
    pub backup_job: String,
    /// The backup job as it was configured: its account, regions, bucket and tables.
    pub backup: QuickSightJob,
    pub options: QuickSightRestoreOptions,
}

/// The flags of `backline restore` for a QuickSight job, and a planner request's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickSightRestoreOptions {
    /// The day whose backup to restore; default: the day of the job's last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// Groups, users and memberships (with neither `users` nor `assets`: both).
    #[serde(default)]
    pub users: bool,
    /// The asset bundles.
    #[serde(default)]
    pub assets: bool,
    /// Only these: `users/NAME`, `groups/NAME`, `dashboards/ID` (and the other asset types).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// Restore into this account instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_account: Option<AccountId>,
    /// Import assets into this region instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_region: Option<Region>,
    /// Create users and groups in this identity region; default: the backup's, or `to_region`
    /// with `to_account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_identity_region: Option<Region>,
    /// How often an import job is looked at.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

/// One `--only` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Only {
    User(String),
    Group(String),
    Asset(AssetType, String),
}

impl QuickSightRestoreOptions {
    /// `(field, what is wrong)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        self.filters().map(|_| ())
    }

    pub fn filters(&self) -> Result<Vec<Only>, (String, String)> {
        self.only
            .iter()
            .map(|entry| {
                let (kind, name) = entry.split_once('/').filter(|(_, n)| !n.is_empty()).ok_or_else(|| {
                    ("only".to_string(), format!("`{entry}` is not TYPE/ID; e.g. users/alice, dashboards/sales"))
                })?;
                match kind {
                    "users" | "user" => Ok(Only::User(name.into())),
                    "groups" | "group" => Ok(Only::Group(name.into())),
                    other => AssetType::parse(other).map(|t| Only::Asset(t, name.into())).ok_or_else(|| {
                        (
                            "only".to_string(),
                            format!(
                                "`{entry}`: unknown type `{other}`; allowed: users, groups, datasources, datasets, analyses, dashboards"
                            ),
                        )
                    }),
                }
            })
            .collect()
    }

    /// What to restore: both unless one is asked for.
    pub fn parts(&self) -> (bool, bool) {
        if self.users || self.assets { (self.users, self.assets) } else { (true, true) }
    }
}

impl QuickSightRestoreJob {
    pub fn account(&self) -> &str {
        self.options.to_account.as_ref().unwrap_or(&self.backup.source.account_id).as_str()
    }

    pub fn region(&self) -> &str {
        self.options.to_region.as_ref().unwrap_or(&self.backup.source.region).as_str()
    }

    pub fn identity_region(&self) -> &str {
        if let Some(region) = &self.options.to_identity_region {
            return region.as_str();
        }
        match (&self.options.to_account, &self.options.to_region) {
            (Some(_), Some(region)) => region.as_str(),
            _ => self.backup.source.identity_region().as_str(),
        }
    }
}
