//! Server-side copies of one object, whole (CopyObject) or by parts (UploadPartCopy), shared by
//! backup and restore.

use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, MetadataDirective, ServerSideEncryption, StorageClass,
    TaggingDirective,
};
use futures::{StreamExt, TryStreamExt, stream};

use super::error_text;
use super::s3::{MAX_SINGLE_COPY, copy_source, encode_tagging, part_ranges, part_size};
use super::written_once::{Attempt, write_once};

/// Parts copied at once for one multipart copy.
const PART_CONCURRENCY: usize = 8;
const PREFERRED_PART_SIZE: u64 = 16 << 20;

/// What the copy does with tags.
#[derive(Debug, Clone, PartialEq)]
pub enum Tags {
    /// The source object's tags.
    Copy,
    /// Exactly these (possibly none).
    Set(Vec<(String, String)>),
}

/// One copy from `source_bucket/source_key` (optionally a version) to `target_bucket/target_key`.
#[derive(Debug, Clone)]
pub struct CopyRequest<'a> {
    pub source_bucket: &'a str,
    pub source_key: &'a str,
    pub source_version: Option<&'a str>,
    /// Copy only if the source still has this ETag.
    pub if_match: Option<&'a str>,
    pub target_bucket: &'a str,
    pub target_key: &'a str,
    /// The size the caller knows; objects at or above `multipart_threshold` go by parts.
    pub size: u64,
    pub multipart_threshold: u64,
    pub storage_class: Option<StorageClass>,
    pub kms_key_id: Option<&'a str>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Copied {
    pub bytes: u64,
    pub target_etag: Option<String>,
    pub multipart: bool,
    /// The backup's full-object CRC64NVME checksum, where the server computed one.
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CopyFailure {
    /// The source object (or version) does not exist.
    Gone,
    /// The source is in GLACIER or DEEP_ARCHIVE and not restored.
    Archived,
    /// The source's ETag is no longer `if_match`.
    Changed,
    Other(String),
}

pub fn classify<E>(
    operation: &str,
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> CopyFailure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let status = err.raw_response().map(|r| r.status().as_u16());
    match (err.code(), status) {
        (Some("NoSuchKey" | "NotFound" | "NoSuchVersion"), _) | (None, Some(404)) => CopyFailure::Gone,
        (Some("InvalidObjectState" | "ObjectNotInActiveTierError"), _) => CopyFailure::Archived,
        (Some("PreconditionFailed"), _) | (None, Some(412)) => CopyFailure::Changed,
        _ => CopyFailure::Other(format!("{operation}: {}", error_text(err))),
    }
}

impl CopyRequest<'_> {
    fn copy_source(&self) -> String {
        let source = copy_source(self.source_bucket, self.source_key);
        match self.source_version {
            Some(version) => format!("{source}?versionId={version}"),
            None => source,
        }
    }

    fn multipart(&self) -> bool {
        self.size > 0 && (self.size >= self.multipart_threshold || self.size > MAX_SINGLE_COPY)
    }

    fn sse(&self) -> Option<ServerSideEncryption> {
        self.kms_key_id.map(|_| ServerSideEncryption::AwsKms)
    }
}

pub async fn copy(s3: &aws_sdk_s3::Client, request: &CopyRequest<'_>) -> Result<Copied, CopyFailure> {
    if request.multipart() { copy_by_parts(s3, request).await } else { copy_whole(s3, request).await }
}

async fn copy_whole(s3: &aws_sdk_s3::Client, request: &CopyRequest<'_>) -> Result<Copied, CopyFailure> {
    let (directive, tagging) = match &request.tags {
        Tags::Copy => (TaggingDirective::Copy, None),
        Tags::Set(tags) => (TaggingDirective::Replace, (!tags.is_empty()).then(|| encode_tagging(tags))),
    };
    let send = || {
        s3.copy_object()
            .bucket(request.target_bucket)
            .key(request.target_key)
            .copy_source(request.copy_source())
            .set_copy_source_if_match(request.if_match.map(str::to_string))
            .metadata_directive(MetadataDirective::Copy)
            .tagging_directive(directive.clone())
            .set_tagging(tagging.clone())
            .set_storage_class(request.storage_class.clone())
            .set_server_side_encryption(request.sse())
            .set_ssekms_key_id(request.kms_key_id.map(str::to_string))
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .customize()
            .config_override(super::written_once::no_retries())
            .send()
    };
    // A copy keeps the source's ETag unless KMS encrypts it.
    let etag = request.if_match.filter(|_| request.kms_key_id.is_none());
    let target = Attempt { s3, bucket: request.target_bucket, key: request.target_key, size: request.size, etag };
    let written = write_once(&target, "CopyObject", send).await.map_err(|e| classify("CopyObject", &e))?;
    Ok(Copied { bytes: request.size, target_etag: written.etag, multipart: false, checksum: written.checksum })
}

async fn source_tags(s3: &aws_sdk_s3::Client, request: &CopyRequest<'_>) -> Result<Vec<(String, String)>, CopyFailure> {
    let output = s3
        .get_object_tagging()
        .bucket(request.source_bucket)
        .key(request.source_key)
        .set_version_id(request.source_version.map(str::to_string))
        .send()
        .await
        .map_err(|e| classify("GetObjectTagging", &e))?;
    Ok(output.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
}

/// The tags an object has, for callers that need to look before they copy.
pub async fn object_tags(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Vec<(String, String)>, CopyFailure> {
    let request = CopyRequest {
        source_bucket: bucket,
        source_key: key,
        source_version: version,
        if_match: None,
        target_bucket: "",
        target_key: "",
        size: 0,
        multipart_threshold: 0,
        storage_class: None,
        kms_key_id: None,
        tags: Tags::Copy,
    };
    source_tags(s3, &request).await
}

/// Copies by parts, carrying metadata, content headers and tags over explicitly (UploadPartCopy
/// copies bytes only). Every part is pinned to the ETag read at the start.
async fn copy_by_parts(s3: &aws_sdk_s3::Client, request: &CopyRequest<'_>) -> Result<Copied, CopyFailure> {
    let head = s3
        .head_object()
        .bucket(request.source_bucket)
        .key(request.source_key)
        .set_version_id(request.source_version.map(str::to_string))
        .set_if_match(request.if_match.map(str::to_string))
        .send()
        .await
        .map_err(|e| classify("HeadObject", &e))?;
    let size = head.content_length().unwrap_or(0).max(0) as u64;
    let pinned_etag = head.e_tag().unwrap_or_default().to_string();
    let tags = match &request.tags {
        Tags::Copy => source_tags(s3, request).await?,
        Tags::Set(tags) => tags.clone(),
    };
    let upload = s3
        .create_multipart_upload()
        .bucket(request.target_bucket)
        .key(request.target_key)
        .set_metadata(head.metadata().cloned())
        .set_content_type(head.content_type().map(str::to_string))
        .set_content_encoding(head.content_encoding().map(str::to_string))
        .set_content_disposition(head.content_disposition().map(str::to_string))
        .set_content_language(head.content_language().map(str::to_string))
        .set_cache_control(head.cache_control().map(str::to_string))
        .set_tagging((!tags.is_empty()).then(|| encode_tagging(&tags)))
        .set_storage_class(request.storage_class.clone())
        .set_server_side_encryption(request.sse())
        .set_ssekms_key_id(request.kms_key_id.map(str::to_string))
        .send()
        .await
        .map_err(|e| classify("CreateMultipartUpload", &e))?;
    let upload_id = upload.upload_id().unwrap_or_default().to_string();
    super::uploads::opened(s3, request.target_bucket, request.target_key, &upload_id);
    let source = request.copy_source();
    let ranges = part_ranges(size, part_size(size, PREFERRED_PART_SIZE));
    let parts: Result<Vec<CompletedPart>, CopyFailure> = stream::iter(ranges.into_iter().enumerate())
        .map(|(index, (first, last))| {
            let (source, upload_id, pinned_etag) = (&source, &upload_id, &pinned_etag);
            async move {
                let number = index as i32 + 1;
                let output = s3
                    .upload_part_copy()
                    .bucket(request.target_bucket)
                    .key(request.target_key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .copy_source(source)
                    .copy_source_range(format!("bytes={first}-{last}"))
                    .copy_source_if_match(pinned_etag)
                    .send()
                    .await
                    .map_err(|e| classify("UploadPartCopy", &e))?;
                let etag = output.copy_part_result().and_then(|r| r.e_tag()).map(str::to_string);
                Ok(CompletedPart::builder().part_number(number).set_e_tag(etag).build())
            }
        })
        .buffer_unordered(PART_CONCURRENCY)
        .try_collect()
        .await;
    let completed = match parts {
        Ok(mut parts) => {
            parts.sort_by_key(|p| p.part_number());
            let send = || {
                s3.complete_multipart_upload()
                    .bucket(request.target_bucket)
                    .key(request.target_key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts.clone())).build())
                    .customize()
                    .config_override(super::written_once::no_retries())
                    .send()
            };
            let target = Attempt { s3, bucket: request.target_bucket, key: request.target_key, size, etag: None };
            write_once(&target, "CompleteMultipartUpload", send)
                .await
                .map(|written| written.etag)
                .map_err(|e| classify("CompleteMultipartUpload", &e))
        }
        Err(failure) => Err(failure),
    };
    match completed {
        Ok(target_etag) => {
            super::uploads::closed(&upload_id);
            Ok(Copied { bytes: size, target_etag, multipart: true, checksum: None })
        }
        Err(failure) => {
            // An abandoned upload costs storage until a lifecycle rule removes it.
            let abort = s3
                .abort_multipart_upload()
                .bucket(request.target_bucket)
                .key(request.target_key)
                .upload_id(&upload_id)
                .send()
                .await;
            match abort {
                Ok(_) => super::uploads::closed(&upload_id),
                Err(err) => {
                    tracing::warn!(key = request.target_key, error = %error_text(&err), "could not abort the multipart upload")
                }
            }
            Err(failure)
        }
    }
}
