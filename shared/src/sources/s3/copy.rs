//! Executing S3 backup tasks: server-side copies (single or by parts) and deletion tags.

use aws_sdk_s3::operation::copy_object::CopyObjectError;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, MetadataDirective, ServerSideEncryption, StorageClass,
    Tag, Tagging, TaggingDirective,
};
use chrono::Utc;
use futures::{StreamExt, TryStreamExt, stream};

use super::tags::deleted_tags;
use crate::aws::error_text;
use crate::aws::s3::{
    MAX_KEY_BYTES, MAX_SINGLE_COPY, MAX_TAGS, copy_source, encode_tagging, part_ranges, part_size,
};
use crate::config::S3Job;
use crate::model::{Outcome, Status, Task};
use crate::pipeline::Engine;

/// Parts copied at once for one multipart copy.
const PART_CONCURRENCY: usize = 8;
const PREFERRED_PART_SIZE: u64 = 16 << 20;

/// Runs `tasks` with at most `concurrency` in flight; every task yields an outcome.
pub async fn execute(
    engine: &Engine,
    spec: &S3Job,
    concurrency: usize,
    tasks: &[Task],
) -> Vec<Outcome> {
    stream::iter(tasks)
        .map(|task| async move {
            let outcome = match task {
                Task::Copy {
                    key,
                    target_key,
                    size,
                    etag,
                    replace_tags,
                } => {
                    let whole = WholeCopy {
                        key,
                        target_key,
                        etag,
                        replace_tags: *replace_tags,
                    };
                    copy(engine, spec, task, whole, *size).await
                }
                Task::MarkDeleted { target_key, .. } => {
                    mark_deleted(engine, spec, task, target_key).await
                }
                Task::Skip { reason, size, .. } => Outcome {
                    bytes: *size,
                    ..Outcome::for_task(task, Status::Skipped).with_detail(reason.clone())
                },
            };
            engine.progress.finished(&outcome);
            outcome
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// What a single-request copy needs to know about its task.
struct WholeCopy<'a> {
    key: &'a str,
    target_key: &'a str,
    etag: &'a str,
    replace_tags: bool,
}

async fn copy(
    engine: &Engine,
    spec: &S3Job,
    task: &Task,
    whole: WholeCopy<'_>,
    size: u64,
) -> Outcome {
    let target_key = whole.target_key;
    let base = Outcome::for_task(task, Status::Ok);
    if target_key.len() > MAX_KEY_BYTES {
        return Outcome {
            status: Status::Failed,
            ..base
        }
        .with_detail(format!(
            "target key is {} bytes; S3 allows {MAX_KEY_BYTES}",
            target_key.len()
        ));
    }
    let multipart =
        size > 0 && (size >= spec.target.multipart_threshold.0 || size > MAX_SINGLE_COPY);
    let result = if multipart {
        copy_by_parts(engine, spec, whole.key, target_key).await
    } else {
        copy_whole(engine, spec, &whole, size).await
    };
    match result {
        Ok(copied) => Outcome {
            bytes: copied.bytes,
            etag: Some(copied.source_etag),
            target_etag: copied.target_etag,
            method: Some(if multipart { "multipart" } else { "copy" }.to_string()),
            ..base
        },
        Err(CopyFailure::Gone) => Outcome {
            status: Status::Skipped,
            ..base
        }
        .with_detail("deleted at the source during the run"),
        Err(CopyFailure::Archived) => Outcome {
            status: Status::Skipped,
            ..base
        }
        .with_detail("archived at the source (GLACIER or DEEP_ARCHIVE): restore it there first"),
        Err(CopyFailure::Other(message)) => Outcome {
            status: Status::Failed,
            ..base
        }
        .with_detail(message),
    }
}

/// What was copied: the source version's size and ETag (the state records these) and the
/// backup's ETag.
struct Copied {
    bytes: u64,
    source_etag: String,
    target_etag: Option<String>,
}

enum CopyFailure {
    Gone,
    Archived,
    Other(String),
}

fn classify<E, R>(operation: &str, err: &aws_sdk_s3::error::SdkError<E, R>) -> CopyFailure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    match err.code() {
        Some("NoSuchKey" | "NotFound") => CopyFailure::Gone,
        Some("InvalidObjectState") => CopyFailure::Archived,
        _ => CopyFailure::Other(format!("{operation}: {}", error_text(err))),
    }
}

fn storage_class(spec: &S3Job) -> Option<StorageClass> {
    spec.target
        .storage_class
        .map(|c| StorageClass::from(c.as_str()))
}

async fn source_tagging(
    engine: &Engine,
    spec: &S3Job,
    key: &str,
) -> Result<Option<String>, CopyFailure> {
    let tags = engine
        .clients
        .s3
        .get_object_tagging()
        .bucket(spec.source.bucket.as_str())
        .key(key)
        .send()
        .await
        .map_err(|e| classify("GetObjectTagging", &e))?;
    let pairs: Vec<(String, String)> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    Ok((!pairs.is_empty()).then(|| encode_tagging(&pairs)))
}

async fn copy_whole(
    engine: &Engine,
    spec: &S3Job,
    whole: &WholeCopy<'_>,
    listed_size: u64,
) -> Result<Copied, CopyFailure> {
    let WholeCopy {
        key,
        target_key,
        etag,
        replace_tags,
    } = *whole;
    // COPY keeps the source's tags on S3, but some servers merge them into the old copy's;
    // an object coming back from deletion gets its tags set explicitly.
    let (directive, tagging) = match (spec.target.copy_tags, replace_tags) {
        (false, _) => (TaggingDirective::Replace, None),
        (true, false) => (TaggingDirective::Copy, None),
        (true, true) => (
            TaggingDirective::Replace,
            source_tagging(engine, spec, key).await?,
        ),
    };
    let request = engine
        .clients
        .s3
        .copy_object()
        .bucket(spec.target.bucket.as_str())
        .key(target_key)
        .copy_source(copy_source(spec.source.bucket.as_str(), key))
        .metadata_directive(MetadataDirective::Copy)
        .tagging_directive(directive)
        .set_tagging(tagging)
        .set_storage_class(storage_class(spec))
        .set_server_side_encryption(
            spec.target
                .kms_key_id
                .as_ref()
                .map(|_| ServerSideEncryption::AwsKms),
        )
        .set_ssekms_key_id(spec.target.kms_key_id.clone());
    // Copy the version that was listed, so the size and ETag recorded are the ones copied.
    let (output, bytes, source_etag) = match request.clone().copy_source_if_match(etag).send().await
    {
        Ok(output) => (output, listed_size, etag.to_string()),
        Err(err) if is_precondition_failed(&err) => {
            // Changed since the listing: copy the version there now, and record that one.
            let head = engine
                .clients
                .s3
                .head_object()
                .bucket(spec.source.bucket.as_str())
                .key(key)
                .send()
                .await
                .map_err(|e| classify("HeadObject", &e))?;
            let current = head.e_tag().unwrap_or_default().to_string();
            let output = request
                .copy_source_if_match(&current)
                .send()
                .await
                .map_err(|e| classify("CopyObject", &e))?;
            (
                output,
                head.content_length().unwrap_or(0).max(0) as u64,
                current,
            )
        }
        Err(err) => return Err(classify("CopyObject", &err)),
    };
    let target_etag = output
        .copy_object_result()
        .and_then(|r| r.e_tag())
        .map(str::to_string);
    Ok(Copied {
        bytes,
        source_etag,
        target_etag,
    })
}

fn is_precondition_failed(
    err: &aws_sdk_s3::error::SdkError<CopyObjectError, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    err.raw_response()
        .is_some_and(|r| r.status().as_u16() == 412)
}

/// Copies by parts, carrying metadata, content headers and tags over explicitly (UploadPartCopy
/// copies bytes only). Every part is pinned to the ETag read at the start.
async fn copy_by_parts(
    engine: &Engine,
    spec: &S3Job,
    key: &str,
    target_key: &str,
) -> Result<Copied, CopyFailure> {
    let s3 = &engine.clients.s3;
    let source_bucket = spec.source.bucket.as_str();
    let head = s3
        .head_object()
        .bucket(source_bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| classify("HeadObject", &e))?;
    let size = head.content_length().unwrap_or(0).max(0) as u64;
    let source_etag = head.e_tag().unwrap_or_default().to_string();
    let tagging = if spec.target.copy_tags {
        source_tagging(engine, spec, key).await?
    } else {
        None
    };
    let upload = s3
        .create_multipart_upload()
        .bucket(spec.target.bucket.as_str())
        .key(target_key)
        .set_metadata(head.metadata().cloned())
        .set_content_type(head.content_type().map(str::to_string))
        .set_content_encoding(head.content_encoding().map(str::to_string))
        .set_content_disposition(head.content_disposition().map(str::to_string))
        .set_content_language(head.content_language().map(str::to_string))
        .set_cache_control(head.cache_control().map(str::to_string))
        .set_tagging(tagging)
        .set_storage_class(storage_class(spec))
        .set_server_side_encryption(
            spec.target
                .kms_key_id
                .as_ref()
                .map(|_| ServerSideEncryption::AwsKms),
        )
        .set_ssekms_key_id(spec.target.kms_key_id.clone())
        .send()
        .await
        .map_err(|e| classify("CreateMultipartUpload", &e))?;
    let upload_id = upload.upload_id().unwrap_or_default().to_string();
    let source = copy_source(source_bucket, key);
    let ranges = part_ranges(size, part_size(size, PREFERRED_PART_SIZE));
    let parts: Result<Vec<CompletedPart>, CopyFailure> =
        stream::iter(ranges.into_iter().enumerate())
            .map(|(index, (first, last))| {
                let (source, upload_id, source_etag) = (&source, &upload_id, &source_etag);
                async move {
                    let number = index as i32 + 1;
                    let output = s3
                        .upload_part_copy()
                        .bucket(spec.target.bucket.as_str())
                        .key(target_key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={first}-{last}"))
                        .copy_source_if_match(source_etag)
                        .send()
                        .await
                        .map_err(|e| classify("UploadPartCopy", &e))?;
                    let etag = output
                        .copy_part_result()
                        .and_then(|r| r.e_tag())
                        .map(str::to_string);
                    Ok(CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(etag)
                        .build())
                }
            })
            .buffer_unordered(PART_CONCURRENCY)
            .try_collect()
            .await;
    let completed = match parts {
        Ok(mut parts) => {
            parts.sort_by_key(|p| p.part_number());
            s3.complete_multipart_upload()
                .bucket(spec.target.bucket.as_str())
                .key(target_key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| classify("CompleteMultipartUpload", &e))
        }
        Err(failure) => Err(failure),
    };
    match completed {
        Ok(output) => Ok(Copied {
            bytes: size,
            source_etag,
            target_etag: output.e_tag().map(str::to_string),
        }),
        Err(failure) => {
            // An abandoned upload costs storage until a lifecycle rule removes it.
            let abort = s3
                .abort_multipart_upload()
                .bucket(spec.target.bucket.as_str())
                .key(target_key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(err) = abort {
                tracing::warn!(key = target_key, error = %error_text(&err), "could not abort the multipart upload");
            }
            Err(failure)
        }
    }
}

async fn mark_deleted(engine: &Engine, spec: &S3Job, task: &Task, target_key: &str) -> Outcome {
    let base = Outcome::for_task(task, Status::Ok);
    let s3 = &engine.clients.s3;
    let bucket = spec.target.bucket.as_str();
    let existing = match s3
        .get_object_tagging()
        .bucket(bucket)
        .key(target_key)
        .send()
        .await
    {
        Ok(output) => output
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(err) => {
            return match classify("GetObjectTagging", &err) {
                CopyFailure::Gone => Outcome {
                    status: Status::Skipped,
                    ..base
                }
                .with_detail("not in the backup: nothing to mark"),
                CopyFailure::Archived | CopyFailure::Other(_) => Outcome {
                    status: Status::Failed,
                    ..base
                }
                .with_detail(format!("GetObjectTagging: {}", error_text(&err))),
            };
        }
    };
    let tags = deleted_tags(existing, Utc::now());
    if tags.len() > MAX_TAGS {
        return Outcome { status: Status::Failed, ..base }.with_detail(format!(
            "the backup object has {} tags of its own; S3 allows {MAX_TAGS} in all, so Deleted and DeletedAt do not fit",
            tags.len() - 2
        ));
    }
    let tag_set: Vec<Tag> = tags
        .into_iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    let tagging = Tagging::builder()
        .set_tag_set(Some(tag_set))
        .build()
        .expect("tag set is given");
    match s3
        .put_object_tagging()
        .bucket(bucket)
        .key(target_key)
        .tagging(tagging)
        .send()
        .await
    {
        Ok(_) => base,
        Err(err) => Outcome {
            status: Status::Failed,
            ..base
        }
        .with_detail(format!("PutObjectTagging: {}", error_text(&err))),
    }
}
