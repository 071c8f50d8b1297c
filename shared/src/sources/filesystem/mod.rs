//! `kind = "filesystem"`: folders of files, each into its own versioned bucket; and its
//! restore, `kind = "filesystem-restore"`.

mod buckets;
mod config;
mod kind;
mod plan;
pub mod restore;
mod state;
mod task;
mod units;
mod upload;
mod walk;

pub use buckets::{LIFECYCLE_RULE_ID, ensure as ensure_bucket};
pub use config::{FilesystemJob, FilesystemTarget};
pub use kind::{ENTRY, restore_job};
pub use plan::key_of;
pub use state::{name as state_name, source as state_source};
pub use task::FilesystemTask;
pub use units::{Unit, bucket_name, slug, units};
pub use upload::mtime_metadata;
