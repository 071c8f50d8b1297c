//! The `[infra]` section of a deployment config: what the CDK app in `infra/` builds around the
//! jobs. The engine does not read it; it is validated here so one command checks the whole file.

use serde::{Deserialize, Serialize};

use super::types::BucketName;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfraConfig {
    /// The CloudFormation stack name.
    #[serde(default = "default_stack_name")]
    pub stack_name: String,
    /// Where alarms are e-mailed (an SNS subscription to confirm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_email: Option<String>,
    /// Buckets the stack creates (versioned, encrypted, TLS-only, lifecycle rules); every other
    /// bucket a job names is used as it is.
    #[serde(default)]
    pub create_buckets: Vec<BucketName>,
    /// SSE-KMS for the buckets and queues the stack creates (default: S3- and SQS-managed keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// Old versions in created buckets expire after this many days.
    #[serde(default = "default_noncurrent_expiry_days")]
    pub noncurrent_expiry_days: u32,
    /// Objects tagged `Deleted=True` in created buckets expire after this many days (default: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_expiry_days: Option<u32>,
    #[serde(default = "default_worker_timeout")]
    pub worker_timeout_seconds: u32,
    #[serde(default = "default_worker_memory")]
    pub worker_memory_mb: u32,
    /// Workers running at once (the SQS event source's maximum concurrency).
    #[serde(default = "default_worker_concurrency")]
    pub worker_max_concurrency: u32,
    /// `arm64` or `x86_64`.
    #[serde(default = "default_architecture")]
    pub architecture: String,
    /// An EFS access point mounted into the worker, for folders on EFS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs: Option<EfsMount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfsMount {
    pub file_system_id: String,
    pub access_point_id: String,
    pub security_group_id: String,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub availability_zones: Vec<String>,
    /// Where the worker sees the file system.
    #[serde(default = "default_mount_path")]
    pub mount_path: String,
}

fn default_stack_name() -> String {
    "Backline".into()
}
fn default_noncurrent_expiry_days() -> u32 {
    180
}
fn default_worker_timeout() -> u32 {
    900
}
fn default_worker_memory() -> u32 {
    1024
}
fn default_worker_concurrency() -> u32 {
    10
}
fn default_architecture() -> String {
    "arm64".into()
}
fn default_mount_path() -> String {
    "/mnt/backline".into()
}

impl Default for InfraConfig {
    /// Every field at its default, as an `[infra]` section with nothing in it.
    fn default() -> InfraConfig {
        serde_json::from_value(serde_json::json!({})).expect("every field has a default")
    }
}

impl InfraConfig {
    pub fn check(&self) -> Result<(), (String, String)> {
        if !matches!(self.architecture.as_str(), "arm64" | "x86_64") {
            return Err(("architecture".into(), format!("`{}`: allowed: arm64, x86_64", self.architecture)));
        }
        if !(1..=900).contains(&self.worker_timeout_seconds) {
            return Err(("worker_timeout_seconds".into(), "allowed: 1 to 900 (Lambda's limit)".into()));
        }
        if !(128..=10_240).contains(&self.worker_memory_mb) {
            return Err(("worker_memory_mb".into(), "allowed: 128 to 10240".into()));
        }
        if !(2..=1000).contains(&self.worker_max_concurrency) {
            return Err(("worker_max_concurrency".into(), "allowed: 2 to 1000 (SQS event source limit)".into()));
        }
        if let Some(efs) = &self.efs
            && !efs.mount_path.starts_with("/mnt/")
        {
            return Err(("efs.mount_path".into(), "Lambda mounts file systems under /mnt/".into()));
        }
        Ok(())
    }
}
