//! The `s3` job's spec: which bucket to back up, and where.

use serde::{Deserialize, Serialize};

use crate::config::{BucketName, ByteSize, HumanDuration, StorageClass};

/// `kind = "s3"`: copy a bucket (or a prefix of it) into a backup bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Job {
    pub source: S3Source,
    pub target: S3Target,
    /// Only copy objects modified within this window (the "last 24 hours" mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_modified_within: Option<HumanDuration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Source {
    pub bucket: BucketName,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Target {
    pub bucket: BucketName,
    #[serde(default)]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Objects at or above this size are copied with parallel UploadPartCopy; smaller ones with
    /// one CopyObject (S3 copies up to 5 GiB in one request).
    #[serde(default = "default_copy_threshold")]
    pub multipart_threshold: ByteSize,
    /// Copy each object's tags. Off only for S3-compatible servers without tagging.
    #[serde(default = "default_true")]
    pub copy_tags: bool,
}

/// One CopyObject is one request and runs entirely inside S3; parts only pay off once a single
/// object takes long enough to copy that the run's parallelism across objects cannot hide it.
/// s5cmd always copies whole objects and rclone up to 4.6 GiB; see BENCHMARKS.md.
fn default_copy_threshold() -> ByteSize {
    ByteSize(ByteSize::GIB)
}

fn default_true() -> bool {
    true
}
