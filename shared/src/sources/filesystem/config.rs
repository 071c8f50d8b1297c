//! The `filesystem` job's spec: which folders, and how their buckets are made.

use serde::{Deserialize, Serialize};

use crate::config::{AbsolutePath, BucketName, BucketPrefix, ByteSize, StorageClass};

/// `kind = "filesystem"`: each folder, and each direct subfolder of each root, is backed up into
/// its own bucket `{bucket_prefix}-{slug}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemJob {
    #[serde(default)]
    pub folders: Vec<AbsolutePath>,
    #[serde(default)]
    pub roots: Vec<AbsolutePath>,
    pub target: FilesystemTarget,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemTarget {
    /// Buckets are named `{bucket_prefix}-{slug of the folder}`.
    pub bucket_prefix: BucketPrefix,
    #[serde(default = "deep_archive")]
    pub storage_class: StorageClass,
    /// Old versions (overwritten or deleted files) expire after this many days.
    #[serde(default = "default_noncurrent_expiry_days")]
    pub noncurrent_expiry_days: u32,
    /// Files this large or larger are uploaded in parts, streamed from disk.
    #[serde(default = "default_upload_threshold")]
    pub multipart_threshold: ByteSize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

impl FilesystemTarget {
    /// Where the job's records live unless `[jobs.control]` says otherwise.
    pub fn control_bucket(&self) -> BucketName {
        BucketName::derived(format!("{}-backline", self.bucket_prefix.as_str()))
    }
}

fn deep_archive() -> StorageClass {
    StorageClass::DeepArchive
}

fn default_noncurrent_expiry_days() -> u32 {
    180
}

fn default_upload_threshold() -> ByteSize {
    ByteSize(64 * ByteSize::MIB)
}
