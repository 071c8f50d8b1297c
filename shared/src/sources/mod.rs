//! One folder per job kind.

pub mod filesystem;
pub mod s3;
