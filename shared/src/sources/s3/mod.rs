//! `kind = "s3"`: back up a bucket into a backup bucket with server-side copies; and its
//! restore, `kind = "s3-restore"`.

mod config;
mod copy;
mod kind;
mod plan;
pub mod restore;
mod tags;
mod task;
pub mod verify;

pub use config::{S3Job, S3Source, S3Target};
pub use copy::copy_outcome;
pub use kind::{ENTRY, restore_job};
pub use tags::{deleted_tags, target_key};
pub use task::S3Task;
