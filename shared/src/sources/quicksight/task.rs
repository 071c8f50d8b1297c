//! The tasks of a `quicksight` run: a record for a table, or a bundle of assets to export.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::AssetType;
use super::client::Asset;
use crate::model::{Action, Outcome, Status};
use crate::pipeline::kind::{KindTask, TaskClass, TaskLine};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum QuickSightTask {
    Record(RecordTask),
    Bundle(BundleTask),
}

/// A user, group or membership, for one of the day's tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordTask {
    /// `users/alice`, `groups/analysts`, `memberships/alice#analysts`.
    pub key: String,
    /// The dated table.
    pub table: String,
    /// The table's key attribute.
    pub key_attribute: String,
    pub item: Map<String, Value>,
}

/// Assets of one type exported together as one zip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleTask {
    pub asset_type: AssetType,
    /// `dashboards_bundle_3` (the file name without its time): names the export job too.
    pub name: String,
    pub bucket: String,
    /// Where the zip goes.
    pub key: String,
    pub assets: Vec<Asset>,
    /// Made by splitting a failed bundle: a second failure for no asset's fault is final.
    #[serde(default)]
    pub split: bool,
    /// The export job, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Downloads tried after the job succeeded.
    #[serde(default)]
    pub downloads: u32,
    /// Set when a delivery that started then may have stored the zip and stopped before
    /// recording it: the key is looked at before exporting again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_since: Option<DateTime<Utc>>,
}

impl BundleTask {
    pub fn asset_ids(&self) -> Vec<&str> {
        self.assets.iter().map(|a| a.id.as_str()).collect()
    }

    /// What the manifest keeps of the bundle.
    pub fn item(&self) -> Value {
        json!({
            "type": self.asset_type.as_str(),
            "assets": self.asset_ids(),
            "export_job_id": self.job_id,
        })
    }
}

impl KindTask for QuickSightTask {
    fn key(&self) -> &str {
        match self {
            QuickSightTask::Record(record) => &record.key,
            QuickSightTask::Bundle(bundle) => &bundle.name,
        }
    }

    fn class(&self) -> TaskClass {
        TaskClass::Transfer
    }

    fn describe(&self) -> TaskLine {
        match self {
            QuickSightTask::Record(record) => {
                TaskLine::new("record", &record.key).tail(format!(" -> {}", record.table))
            }
            QuickSightTask::Bundle(bundle) => TaskLine::new("export", &bundle.name).tail(format!(
                ": {} {} -> s3://{}/{}",
                bundle.assets.len(),
                bundle.asset_type,
                bundle.bucket,
                bundle.key
            )),
        }
    }

    fn outcome(&self, status: Status) -> Outcome {
        match self {
            QuickSightTask::Record(record) => Outcome {
                target_key: Some(record.table.clone()),
                item: Some(json!({ "table": record.table })),
                ..Outcome::new(Action::Copy, &record.key, status)
            },
            QuickSightTask::Bundle(bundle) => Outcome {
                target_key: Some(bundle.key.clone()),
                target_bucket: Some(bundle.bucket.clone()),
                item: Some(bundle.item()),
                ..Outcome::new(Action::Upload, format!("{}/{}", bundle.asset_type, bundle.name), status)
            },
        }
    }

    /// A record is written again as it is (an item of the same key replaces itself); a bundle
    /// looks for its zip first, so a versioned bucket does not get a second version of it.
    fn in_doubt(mut self, since: DateTime<Utc>) -> Self {
        if let QuickSightTask::Bundle(bundle) = &mut self {
            bundle.stored_since = Some(bundle.stored_since.map_or(since, |earlier| earlier.min(since)));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_bundle_in_doubt_looks_for_its_zip_from_the_earliest_delivery_and_a_record_is_written_again() {
        let bundle = QuickSightTask::Bundle(BundleTask {
            asset_type: AssetType::Dashboards,
            name: "dashboards".into(),
            bucket: "b".into(),
            key: "quicksight-backups/2026/11/23/dashboards/dashboards-030000.zip".into(),
            assets: vec![],
            split: false,
            job_id: None,
            downloads: 0,
            stored_since: None,
        });
        let (first, second) = (Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).unwrap(), Utc::now());
        let QuickSightTask::Bundle(doubted) = bundle.in_doubt(first).in_doubt(second) else { panic!() };
        assert_eq!(doubted.stored_since, Some(first));
        // It travels in the queue and comes back the same.
        let back: QuickSightTask =
            serde_json::from_value(serde_json::to_value(QuickSightTask::Bundle(doubted.clone())).unwrap()).unwrap();
        assert_eq!(back, QuickSightTask::Bundle(doubted));
        let record = QuickSightTask::Record(RecordTask {
            key: "users/alice".into(),
            table: "users-2026-11-23".into(),
            key_attribute: "key".into(),
            item: Map::new(),
        });
        assert_eq!(record.clone().in_doubt(first), record);
    }
}
