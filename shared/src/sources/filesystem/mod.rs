//! `kind = "filesystem"`: folders of files, each into its own versioned bucket.

mod buckets;
mod plan;
pub mod restore;
mod state;
mod units;
mod upload;
mod walk;

pub use buckets::{LIFECYCLE_RULE_ID, ensure as ensure_bucket};
pub use plan::{key_of, path_order, plan};
pub use state::{name as state_name, source as state_source, write_cache};
pub use units::{Unit, bucket_name, slug, units};
pub use upload::{execute, mtime_metadata};
