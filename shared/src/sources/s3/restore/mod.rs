//! `kind = "s3-restore"`: copy a backup (as it is now, or as it was at the end of a past run)
//! into a bucket, waiting out GLACIER and DEEP_ARCHIVE retrievals in the queue.

mod config;
mod execute;
mod kind;
mod plan;
mod task;

pub use config::{RestoreOptions, S3RestoreJob};
pub use kind::{ARCHIVE_WAIT_LIMIT, ENTRY};
pub use plan::select_run;
pub use task::S3RestoreTask;
