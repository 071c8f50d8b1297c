//! `upload_state.json`: per site and bucket, what the last runs stored of each workbook, so an
//! unchanged workbook is not downloaded and a removed one is noticed without reading the tags
//! of thousands of objects.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Action, Outcome, Status};
use crate::pipeline::EngineError;
use crate::store::ControlStore;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UploadState {
    pub site: String,
    pub bucket: String,
    pub run_id: String,
    /// By workbook id.
    pub workbooks: BTreeMap<String, Stored>,
    /// Older revisions backed up (with `revisions = true`): by workbook id, number -> key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revisions: BTreeMap<String, BTreeMap<u32, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub name: String,
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub owner: String,
    pub updated_at: String,
    pub key: String,
    pub size: u64,
    #[serde(default)]
    pub etag: String,
    /// When the object was last written (downloaded, or refreshed onto itself).
    pub stored_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// What a task records in its outcome's `item`, for the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub site: String,
    pub id: String,
    pub name: String,
    pub updated_at: String,
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub owner: String,
    /// Set for an older revision's download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
}

/// `state/<job>/<site>/<bucket>/upload_state.json` under the control prefix.
pub fn state_path(job: &str, site: &str, bucket: &str) -> String {
    let site = if site.is_empty() { "Default" } else { site };
    format!("state/{job}/{site}/{bucket}/upload_state.json")
}

pub async fn load(store: &ControlStore, job: &str, site: &str, bucket: &str) -> Result<UploadState, EngineError> {
    let key = store.key(&state_path(job, site, bucket));
    Ok(store.get_json::<UploadState>(&key).await?.unwrap_or_else(|| UploadState {
        site: site.to_string(),
        bucket: bucket.to_string(),
        ..Default::default()
    }))
}

impl UploadState {
    /// The state after a run's outcomes for this site and bucket.
    pub fn apply(mut self, run_id: &str, outcomes: &[(Item, &Outcome)], now: DateTime<Utc>) -> UploadState {
        for (item, outcome) in outcomes {
            if outcome.status != Status::Ok {
                continue;
            }
            match outcome.action {
                Action::Copy if item.revision.is_some() => {
                    let key = outcome.target_key.clone().unwrap_or_default();
                    self.revisions.entry(item.id.clone()).or_default().insert(item.revision.unwrap_or_default(), key);
                }
                Action::Copy => {
                    self.workbooks.insert(
                        item.id.clone(),
                        Stored {
                            name: item.name.clone(),
                            project: item.project.clone(),
                            owner: item.owner.clone(),
                            updated_at: item.updated_at.clone(),
                            key: outcome.target_key.clone().unwrap_or_default(),
                            size: outcome.bytes,
                            etag: outcome.target_etag.clone().unwrap_or_default(),
                            stored_at: now,
                            deleted: false,
                        },
                    );
                }
                Action::MarkDeleted => {
                    if let Some(stored) = self.workbooks.get_mut(&item.id) {
                        stored.deleted = true;
                    }
                }
                Action::Refresh => {
                    if let Some(stored) = self.workbooks.get_mut(&item.id) {
                        stored.stored_at = now;
                    }
                }
                _ => {}
            }
        }
        self.run_id = run_id.to_string();
        self
    }
}
