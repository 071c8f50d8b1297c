//! `kind = "quicksight-restore"`: a day of a `quicksight` job's backup brought back: groups,
//! users that do not exist and memberships from the day's tables, and the day's bundles
//! imported in dependency order, each import a job the queue checks on.

mod config;
mod identities;
mod imports;
mod kind;
mod plan;
mod task;

pub use config::{QuickSightRestoreJob, QuickSightRestoreOptions};
pub use kind::ENTRY;
pub use task::QuickSightRestoreTask;
