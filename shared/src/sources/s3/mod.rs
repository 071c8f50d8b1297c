//! `kind = "s3"`: back up a bucket into a backup bucket with server-side copies.

mod copy;
mod plan;
pub mod restore;
mod tags;
pub mod verify;

pub use copy::execute;
pub use plan::{check_buckets, plan};
pub use tags::{deleted_tags, target_key};
