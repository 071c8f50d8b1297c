//! One folder per job kind.

pub mod s3;
