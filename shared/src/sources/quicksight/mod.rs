//! `kind = "quicksight"`: an Amazon QuickSight account's users, groups and memberships into
//! DynamoDB tables named by date, and its assets as bundles into S3 under a date prefix.
//! `quicksight-restore` (in `restore/`) brings a day back.

mod client;
mod config;
mod export;
pub mod import;
mod kind;
mod plan;
mod records;
pub mod restore;
mod retention;
mod task;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use client::{Asset, QuickSight};
pub use config::{AccountId, BundleSize, DateFormat, Mode, QuickSightJob, QuickSightSource, QuickSightTarget, Region};
pub use kind::ENTRY;
pub use task::{BundleTask, QuickSightTask, RecordTask};

/// The asset types QuickSight exports, in the order a restore imports them (each needs the
/// ones before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetType {
    Datasources,
    Datasets,
    Analyses,
    Dashboards,
}

impl AssetType {
    pub const ALL: [AssetType; 4] =
        [AssetType::Datasources, AssetType::Datasets, AssetType::Analyses, AssetType::Dashboards];

    /// The folder and file name part: `datasources`, `datasets`, `analyses`, `dashboards`.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetType::Datasources => "datasources",
            AssetType::Datasets => "datasets",
            AssetType::Analyses => "analyses",
            AssetType::Dashboards => "dashboards",
        }
    }

    /// A type by its name, plural or singular (`dashboard`).
    pub fn parse(text: &str) -> Option<AssetType> {
        match text {
            "datasources" | "datasource" => Some(AssetType::Datasources),
            "datasets" | "dataset" => Some(AssetType::Datasets),
            "analyses" | "analysis" => Some(AssetType::Analyses),
            "dashboards" | "dashboard" => Some(AssetType::Dashboards),
            _ => None,
        }
    }
}

impl fmt::Display for AssetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
