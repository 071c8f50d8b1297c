//! `kind = "filesystem-restore"`: files back from their buckets, to their original paths or
//! under a folder, waiting out archive retrievals in the queue.

mod config;
mod download;
mod kind;
mod plan;
mod task;

pub use config::{FilesystemRestoreJob, FilesystemRestoreOptions};
pub use kind::ENTRY;
pub use plan::destination;
pub use task::FilesystemRestoreTask;
