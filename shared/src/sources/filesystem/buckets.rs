//! A folder's bucket: created on first use, versioned, old versions expiring, public access
//! blocked, encrypted by default. An existing bucket's settings are checked and fixed.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};

use super::FilesystemTarget;
use crate::aws::error_text;
use crate::pipeline::EngineError;

pub const LIFECYCLE_RULE_ID: &str = "backline-noncurrent-expiry";

fn failed(bucket: &str, operation: &str, message: String) -> EngineError {
    EngineError::service(format!("{operation} on bucket `{bucket}`"), message)
}

/// Makes sure `bucket` exists with Backline's settings; returns what it changed.
pub async fn ensure(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    target: &FilesystemTarget,
) -> Result<Vec<&'static str>, EngineError> {
    let mut changed = Vec::new();
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
            let region = s3.config().region().map(|r| r.to_string()).unwrap_or_default();
            let configuration = (!region.is_empty() && region != "us-east-1").then(|| {
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build()
            });
            s3.create_bucket()
                .bucket(bucket)
                .set_create_bucket_configuration(configuration)
                .send()
                .await
                .map_err(|e| failed(bucket, "CreateBucket", error_text(&e)))?;
            changed.push("created");
        }
        Err(err) => return Err(failed(bucket, "HeadBucket", error_text(&err))),
    }

    // Enabling versioning is idempotent: when the answer cannot be read (moto answers a bucket
    // that was never versioned with a root element S3 does not use), set it; a real refusal
    // shows up as the Put's error.
    let enabled = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .is_ok_and(|v| v.status() == Some(&BucketVersioningStatus::Enabled));
    if !enabled {
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .map_err(|e| failed(bucket, "PutBucketVersioning", error_text(&e)))?;
        changed.push("versioning");
    }

    let existing: Vec<LifecycleRule> = match s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
        Ok(output) => output.rules().to_vec(),
        Err(err) if err.code() == Some("NoSuchLifecycleConfiguration") => Vec::new(),
        Err(err) => return Err(failed(bucket, "GetBucketLifecycleConfiguration", error_text(&err))),
    };
    let ours = LifecycleRule::builder()
        .id(LIFECYCLE_RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder().noncurrent_days(target.noncurrent_expiry_days as i32).build(),
        )
        .abort_incomplete_multipart_upload(AbortIncompleteMultipartUpload::builder().days_after_initiation(7).build())
        .build()
        .map_err(|e| failed(bucket, "lifecycle rule", e.to_string()))?;
    let current = existing.iter().find(|r| r.id() == Some(LIFECYCLE_RULE_ID));
    let up_to_date = current.is_some_and(|rule| {
        rule.noncurrent_version_expiration().and_then(|e| e.noncurrent_days())
            == Some(target.noncurrent_expiry_days as i32)
            && rule.status() == &ExpirationStatus::Enabled
    });
    if !up_to_date {
        // Other rules stay as they are; ours is replaced, never added twice.
        let mut rules: Vec<LifecycleRule> =
            existing.into_iter().filter(|r| r.id() != Some(LIFECYCLE_RULE_ID)).collect();
        rules.push(ours);
        s3.put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .set_rules(Some(rules))
                    .build()
                    .map_err(|e| failed(bucket, "lifecycle", e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| failed(bucket, "PutBucketLifecycleConfiguration", error_text(&e)))?;
        changed.push("lifecycle");
    }

    let blocked = match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(output) => output.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(err) if err.code() == Some("NoSuchPublicAccessBlockConfiguration") => false,
        Err(err) => return Err(failed(bucket, "GetPublicAccessBlock", error_text(&err))),
    };
    if !blocked {
        let all = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        s3.put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(all)
            .send()
            .await
            .map_err(|e| failed(bucket, "PutPublicAccessBlock", error_text(&e)))?;
        changed.push("public access block");
    }

    let encrypted = match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(output) => output.server_side_encryption_configuration().is_some_and(|c| !c.rules().is_empty()),
        Err(err) if err.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => false,
        Err(err) => return Err(failed(bucket, "GetBucketEncryption", error_text(&err))),
    };
    if !encrypted {
        let default = match &target.kms_key_id {
            Some(key) => ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(key),
            None => ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256),
        }
        .build()
        .map_err(|e| failed(bucket, "encryption", e.to_string()))?;
        let configuration = ServerSideEncryptionConfiguration::builder()
            .rules(ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).build())
            .build()
            .map_err(|e| failed(bucket, "encryption", e.to_string()))?;
        s3.put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(configuration)
            .send()
            .await
            .map_err(|e| failed(bucket, "PutBucketEncryption", error_text(&e)))?;
        changed.push("encryption");
    }
    Ok(changed)
}
