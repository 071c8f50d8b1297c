//! The job schema. Every struct denies unknown fields so a typo is an error, not a silent default.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::size::{ByteSize, HumanDuration};

/// One named backup or restore, as written in the job file or carried inline in an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub name: String,
    /// Where manifests, reports, chunk claim-checks and state live. Defaults to the target
    /// bucket under `_backline/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlLocation>,
    /// Tasks in flight at once per chunk.
    pub concurrency: usize,
    /// An EventBridge Scheduler expression (`rate(1 day)`, `cron(0 3 * * ? *)`) for deployments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Where to say so when a run fails or has failed tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    #[serde(flatten)]
    pub spec: JobSpec,
}

/// `[jobs.notify]`: each a URL or a secret reference resolved at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// A Microsoft Teams incoming webhook (Workflows or connector): gets a card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_webhook: Option<SecretRef>,
    /// Any endpoint that takes a JSON POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<SecretRef>,
}

/// A URL, or where to find one: `env:NAME`, `ssm:/parameter/name`, `secretsmanager:secret-id`.
/// Never printed: webhook URLs are credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretRef(String);

impl SecretRef {
    pub fn reference(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once(':') {
            Some((scheme @ ("env" | "ssm" | "secretsmanager"), _)) => write!(f, "{scheme}:…"),
            _ => f.write_str("<url>"),
        }
    }
}

impl TryFrom<String> for SecretRef {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        let known = ["https://", "http://", "env:", "ssm:", "secretsmanager:"];
        if known.iter().any(|p| value.starts_with(p)) && value.len() > value.find(':').unwrap_or(0) + 1 {
            Ok(SecretRef(value))
        } else {
            Err("not a webhook; allowed: an https:// URL, env:NAME, ssm:/parameter/name or secretsmanager:secret-id"
                .into())
        }
    }
}

impl From<SecretRef> for String {
    fn from(value: SecretRef) -> String {
        value.0
    }
}

/// What a job backs up, chosen by its `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum JobSpec {
    S3(S3Job),
    /// Copy a backup made by an `s3` job into a bucket (made by `backline restore`, or written
    /// in a job file for scheduled restore drills).
    #[serde(rename = "s3-restore")]
    S3Restore(S3RestoreJob),
    /// Back up folders of files, each into its own versioned bucket.
    Filesystem(FilesystemJob),
    /// Restore a filesystem job's backup into folders.
    #[serde(rename = "filesystem-restore")]
    FilesystemRestore(FilesystemRestoreJob),
}

impl JobSpec {
    pub const KINDS: &'static [&'static str] = &["s3", "s3-restore", "filesystem", "filesystem-restore"];

    pub fn kind(&self) -> &'static str {
        match self {
            JobSpec::S3(_) => "s3",
            JobSpec::S3Restore(_) => "s3-restore",
            JobSpec::Filesystem(_) => "filesystem",
            JobSpec::FilesystemRestore(_) => "filesystem-restore",
        }
    }
}

/// `kind = "s3-restore"`: restore the backup of the `s3` job `backup_job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3RestoreJob {
    pub backup_job: String,
    /// The backup job as it was configured: where its backup and records are.
    pub backup: S3Job,
    pub options: RestoreOptions,
}

/// How to restore: the flags of `backline restore`, and the `restore` object of a planner request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreOptions {
    pub to_bucket: BucketName,
    /// Prepended to restored keys. Default: the backup job's source prefix, so keys come back
    /// as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_prefix: Option<String>,
    /// A run id, or a time (RFC 3339 or YYYY-MM-DD): restore what the backup held at the end of
    /// that run, or of the last run finished by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default)]
    pub include_deleted: bool,
    /// Restore only keys under this prefix (of the original keys).
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub tier: RestoreTier,
    /// Restore into a bucket that already holds objects (e.g. to continue an interrupted restore).
    #[serde(default)]
    pub allow_existing: bool,
    /// Replace objects in the target that differ from the backup.
    #[serde(default)]
    pub overwrite: bool,
    /// How long an archived object waits before it is checked again.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// Days a restored archive copy stays readable.
    #[serde(default = "default_restore_days")]
    pub restore_days: u32,
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(15 * 60))
}

fn default_restore_days() -> u32 {
    7
}

/// Glacier retrieval tiers. Deep Archive has no Expedited tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreTier {
    #[default]
    Standard,
    Bulk,
    Expedited,
}

impl RestoreTier {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreTier::Standard => "Standard",
            RestoreTier::Bulk => "Bulk",
            RestoreTier::Expedited => "Expedited",
        }
    }
}

pub const DEFAULT_CONCURRENCY: usize = 32;
pub const DEFAULT_CONTROL_PREFIX: &str = "_backline/";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlLocation {
    pub bucket: BucketName,
    #[serde(default = "default_control_prefix")]
    pub prefix: String,
}

fn default_control_prefix() -> String {
    DEFAULT_CONTROL_PREFIX.to_string()
}

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

fn default_upload_threshold() -> ByteSize {
    ByteSize(64 * ByteSize::MIB)
}

fn default_true() -> bool {
    true
}

/// The storage classes S3 accepts on a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    Standard,
    StandardIa,
    OnezoneIa,
    IntelligentTiering,
    GlacierIr,
    Glacier,
    DeepArchive,
    ReducedRedundancy,
}

impl StorageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::GlacierIr => "GLACIER_IR",
            StorageClass::Glacier => "GLACIER",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
            StorageClass::ReducedRedundancy => "REDUCED_REDUNDANCY",
        }
    }
}

/// An S3 bucket name, checked against S3's naming rules when the job file is read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BucketName(String);

impl BucketName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BucketName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let allowed = "3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit";
        let valid_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        let edges_ok = name
            .bytes()
            .next()
            .zip(name.bytes().last())
            .is_some_and(|(first, last)| first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric());
        if (3..=63).contains(&name.len()) && valid_chars && edges_ok && !name.contains("..") {
            Ok(BucketName(name))
        } else {
            Err(format!("`{name}` is not a valid bucket name; allowed: {allowed}"))
        }
    }
}

impl From<BucketName> for String {
    fn from(name: BucketName) -> String {
        name.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Job {
    /// The control location: explicit, or the job's target bucket under `_backline/`.
    pub fn control(&self) -> ControlLocation {
        if let Some(control) = &self.control {
            return control.clone();
        }
        let bucket = match &self.spec {
            JobSpec::S3(s3) => s3.target.bucket.clone(),
            JobSpec::S3Restore(restore) => restore.backup.target.bucket.clone(),
            JobSpec::Filesystem(fs) => fs.target.control_bucket(),
            JobSpec::FilesystemRestore(restore) => restore.backup.target.control_bucket(),
        };
        ControlLocation { bucket, prefix: DEFAULT_CONTROL_PREFIX.to_string() }
    }

    /// The restore of this (`filesystem`) job's backup into folders.
    pub fn restore_files(&self, options: FilesystemRestoreOptions) -> Option<Job> {
        let JobSpec::Filesystem(backup) = &self.spec else { return None };
        Some(Job {
            name: format!("{}-restore", self.name),
            control: Some(self.control()),
            concurrency: self.concurrency,
            schedule: None,
            notify: self.notify.clone(),
            spec: JobSpec::FilesystemRestore(FilesystemRestoreJob {
                backup_job: self.name.clone(),
                backup: backup.clone(),
                options,
            }),
        })
    }

    /// The restore of this (`s3`) job's backup; its runs are recorded beside the backup's.
    pub fn restore(&self, options: RestoreOptions) -> Option<Job> {
        let JobSpec::S3(backup) = &self.spec else { return None };
        Some(Job {
            name: format!("{}-restore", self.name),
            control: Some(self.control()),
            concurrency: self.concurrency,
            schedule: None,
            notify: self.notify.clone(),
            spec: JobSpec::S3Restore(S3RestoreJob { backup_job: self.name.clone(), backup: backup.clone(), options }),
        })
    }
}

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
        BucketName(format!("{}-backline", self.bucket_prefix.0))
    }
}

fn deep_archive() -> StorageClass {
    StorageClass::DeepArchive
}

fn default_noncurrent_expiry_days() -> u32 {
    180
}

/// An absolute path, without `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AbsolutePath(String);

impl AbsolutePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AbsolutePath {
    type Error = String;

    fn try_from(path: String) -> Result<Self, String> {
        if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
            return Err(format!("`{path}` is not an absolute path without `..`"));
        }
        let trimmed = path.trim_end_matches('/');
        Ok(AbsolutePath(if trimmed.is_empty() { "/".into() } else { trimmed.to_string() }))
    }
}

impl From<AbsolutePath> for String {
    fn from(path: AbsolutePath) -> String {
        path.0
    }
}

/// The start of bucket names: lowercase letters, digits and `-`, short enough for a slug to follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BucketPrefix(String);

impl BucketPrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BucketPrefix {
    type Error = String;

    fn try_from(prefix: String) -> Result<Self, String> {
        let ok = (3..=40).contains(&prefix.len())
            && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && prefix.as_bytes()[0].is_ascii_alphanumeric()
            && !prefix.ends_with('-');
        if ok {
            Ok(BucketPrefix(prefix))
        } else {
            Err(format!("`{prefix}`: allowed: 3 to 40 characters of a-z, 0-9 and '-', not starting or ending with '-'"))
        }
    }
}

impl From<BucketPrefix> for String {
    fn from(prefix: BucketPrefix) -> String {
        prefix.0
    }
}

/// `kind = "filesystem-restore"`: restore the backup of the `filesystem` job `backup_job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemRestoreJob {
    pub backup_job: String,
    pub backup: FilesystemJob,
    pub options: FilesystemRestoreOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemRestoreOptions {
    /// Restore under this folder (a file /a/b.txt lands in DIR/a/b.txt). Default: the files'
    /// original paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_dir: Option<AbsolutePath>,
    /// A run id or a time: what the backup held at the end of that run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// Restore only files whose original path starts with this.
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub tier: RestoreTier,
    /// Replace files that exist and differ from the backup.
    #[serde(default)]
    pub overwrite: bool,
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    #[serde(default = "default_restore_days")]
    pub restore_days: u32,
}
