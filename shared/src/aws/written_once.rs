//! Writes that must not land twice where a bucket keeps versions: a CopyObject or a
//! CompleteMultipartUpload whose answer was lost (the connection broke after S3 acted). The
//! SDK would send such a write again and leave a second, identical version. These writes go
//! without the SDK's retries instead. Before each new attempt, the target is checked: an object
//! of the write's size, written since the first attempt began (with the expected ETag where one
//! is known), is that write's.

use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::copy_object::CopyObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::types::ChecksumMode;
use chrono::Utc;

/// Attempts of one write, the first included.
const ATTEMPTS: u32 = 6;

/// For the write's own request: one attempt, the loop in [`write_once`] does the rest.
pub fn no_retries() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().retry_config(RetryConfig::standard().with_max_attempts(1))
}

/// Where a write lands, and what it will look like there.
pub struct Attempt<'a> {
    pub s3: &'a aws_sdk_s3::Client,
    pub bucket: &'a str,
    pub key: &'a str,
    pub size: u64,
    /// The ETag the written object will have, when the writer knows it.
    pub etag: Option<&'a str>,
}

/// What S3 says of a write: from its answer, or from HeadObject when the answer was lost.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Written {
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// The full-object CRC64NVME checksum, where S3 gives one.
    pub checksum: Option<String>,
}

/// An answer that says what was written.
pub trait Answer {
    fn written(&self) -> Written;
}

fn owned(text: Option<&str>) -> Option<String> {
    text.map(str::to_string)
}

impl Answer for CopyObjectOutput {
    fn written(&self) -> Written {
        let result = self.copy_object_result();
        Written {
            etag: owned(result.and_then(|r| r.e_tag())),
            version_id: owned(self.version_id()),
            checksum: owned(result.and_then(|r| r.checksum_crc64_nvme())),
        }
    }
}

impl Answer for PutObjectOutput {
    fn written(&self) -> Written {
        Written {
            etag: owned(self.e_tag()),
            version_id: owned(self.version_id()),
            checksum: owned(self.checksum_crc64_nvme()),
        }
    }
}

impl Answer for CompleteMultipartUploadOutput {
    fn written(&self) -> Written {
        Written {
            etag: owned(self.e_tag()),
            version_id: owned(self.version_id()),
            checksum: owned(self.checksum_crc64_nvme()),
        }
    }
}

impl Answer for HeadObjectOutput {
    fn written(&self) -> Written {
        Written {
            etag: owned(self.e_tag()),
            version_id: owned(self.version_id()),
            checksum: owned(self.checksum_crc64_nvme()),
        }
    }
}

/// Sends the write until it succeeds, the target shows that an attempt whose answer was lost
/// landed, or it fails for good.
pub async fn write_once<T, E, F, Fut>(
    target: &Attempt<'_>,
    operation: &str,
    send: F,
) -> Result<Written, SdkError<E, HttpResponse>>
where
    T: Answer,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata,
{
    let since = Utc::now().timestamp();
    let mut attempt = 1;
    loop {
        let err = match send().await {
            Ok(answer) => return Ok(answer.written()),
            Err(err) => err,
        };
        let retry = worth_retrying(&err);
        // After a failure that may hide a success, and whenever an earlier attempt may have
        // landed (a CompleteMultipartUpload sent again answers NoSuchUpload).
        if (retry || attempt > 1)
            && let Some(head) = landed(target, since).await
        {
            tracing::debug!(key = target.key, operation, attempt, "an attempt whose answer was lost had landed");
            return Ok(head.written());
        }
        if !retry || attempt >= ATTEMPTS {
            return Err(err);
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
        attempt += 1;
    }
}

/// Failures the SDK would have retried: no answer, a throttle or a server error.
fn worth_retrying<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => {
            let status = service.raw().status();
            status.is_server_error()
                || status.as_u16() == 429
                || matches!(
                    service.err().code(),
                    Some("SlowDown" | "RequestTimeout" | "Throttling" | "ThrottlingException" | "InternalError")
                )
        }
        _ => false,
    }
}

/// The target object if it is what this write makes: its size, its ETag where known, written
/// in or after the second the first attempt began.
async fn landed(target: &Attempt<'_>, since: i64) -> Option<HeadObjectOutput> {
    let head = target
        .s3
        .head_object()
        .bucket(target.bucket)
        .key(target.key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .ok()?;
    let written = head.last_modified()?.secs();
    let same_size = head.content_length() == Some(target.size as i64);
    let same_etag = target.etag.is_none_or(|etag| head.e_tag() == Some(etag));
    (same_size && same_etag && written >= since).then_some(head)
}
