//! Executing S3 backup tasks: server-side copies and deletion tags.

use aws_sdk_s3::types::{StorageClass, Tag, Tagging};
use chrono::{DateTime, Utc};

use super::tags::deleted_tags;
use super::{S3Job, S3Task};
use crate::aws::copy::{self, CopyFailure, CopyRequest, Tags, object_tags};
use crate::aws::error_text;
use crate::aws::s3::{MAX_KEY_BYTES, MAX_TAGS};
use crate::model::{Outcome, Status};
use crate::pipeline::Engine;
use crate::pipeline::kind::{Executed, KindTask, Step, run_tasks};

/// Runs `tasks` with at most `concurrency` in flight; every task yields an outcome.
pub async fn execute(engine: &Engine, spec: &S3Job, concurrency: usize, tasks: &[S3Task]) -> Executed {
    run_tasks(engine, tasks, concurrency, |task| async move {
        Step::Done(match task {
            S3Task::Copy { .. } => backup_copy(engine, spec, task).await,
            S3Task::MarkDeleted { target_key, untagged, .. } => {
                mark_deleted(engine, spec, task, target_key, *untagged).await
            }
            S3Task::Skip { reason, size, .. } => {
                Outcome { bytes: *size, ..task.outcome(Status::Skipped).with_detail(reason.clone()) }
            }
        })
    })
    .await
}

/// The outcome of a copy whose failure kinds mean the same for backup and restore.
pub fn copy_outcome(base: Outcome, result: Result<copy::Copied, CopyFailure>) -> Outcome {
    match result {
        Ok(copied) => Outcome {
            bytes: copied.bytes,
            target_etag: copied.target_etag,
            checksum: copied.checksum,
            method: Some(if copied.multipart { "multipart" } else { "copy" }.to_string()),
            ..base
        },
        Err(CopyFailure::Gone) => {
            Outcome { status: Status::Skipped, ..base }.with_detail("gone from the source during the run")
        }
        Err(CopyFailure::Archived) => Outcome { status: Status::Skipped, ..base }
            .with_detail("archived (GLACIER or DEEP_ARCHIVE) and not restored: restore it first"),
        Err(CopyFailure::Changed) => Outcome { status: Status::Failed, ..base }.with_detail("changed during the copy"),
        Err(CopyFailure::Other(message)) => Outcome { status: Status::Failed, ..base }.with_detail(message),
    }
}

async fn backup_copy(engine: &Engine, spec: &S3Job, task: &S3Task) -> Outcome {
    let S3Task::Copy { key, target_key, size, etag, replace_tags, copied_since } = task else {
        unreachable!("called for copies")
    };
    let base = task.outcome(Status::Ok);
    if let Some(since) = copied_since
        && let Some(copied) = already_copied(engine, spec, key, target_key, *size, etag, *since).await
    {
        return copy_outcome(base, Ok(copied))
            .with_detail("in the backup already: copied by a run that stopped before recording it");
    }
    if target_key.len() > MAX_KEY_BYTES {
        return Outcome { status: Status::Failed, ..base }
            .with_detail(format!("target key is {} bytes; S3 allows {MAX_KEY_BYTES}", target_key.len()));
    }
    let s3 = &engine.clients.s3;
    let source_bucket = spec.source.bucket.as_str();
    // COPY keeps the source's tags on S3, but some servers merge them into the old copy's;
    // an object coming back from deletion gets its tags set explicitly.
    let tags = match (spec.target.copy_tags, replace_tags) {
        (false, _) => Tags::Set(Vec::new()),
        (true, false) => Tags::Copy,
        (true, true) => match object_tags(s3, source_bucket, key, None).await {
            Ok(tags) => Tags::Set(tags),
            Err(failure) => return copy_outcome(base, Err(failure)),
        },
    };
    let mut request = CopyRequest {
        source_bucket,
        source_key: key,
        source_version: None,
        if_match: Some(etag),
        target_bucket: spec.target.bucket.as_str(),
        target_key,
        size: *size,
        multipart_threshold: spec.target.multipart_threshold.0,
        storage_class: spec.target.storage_class.map(|c| StorageClass::from(c.as_str())),
        kms_key_id: spec.target.kms_key_id.as_deref(),
        tags,
    };
    // Copy the version that was listed, so the size and ETag recorded are the ones copied; if
    // it changed since, copy (and record) the version there now.
    let mut result = copy::copy(s3, &request).await;
    let mut recorded_etag = etag.clone();
    if result == Err(CopyFailure::Changed) {
        match s3.head_object().bucket(source_bucket).key(key).send().await {
            Ok(head) => {
                recorded_etag = head.e_tag().unwrap_or_default().to_string();
                request.size = head.content_length().unwrap_or(0).max(0) as u64;
                request.if_match = Some(&recorded_etag);
                result = copy::copy(s3, &request).await;
            }
            Err(err) => result = Err(copy::classify("HeadObject", &err)),
        }
    }
    copy_outcome(Outcome { etag: Some(recorded_etag.clone()), ..base }, result)
}

/// The backup of `key` when it is this version of the source already; `None` when that cannot
/// be shown, and the task copies again. It is when the backup has the size and either the
/// ETag (a single-part copy keeps it), or the full-object CRC64NVME checksum of the source (a
/// copy by parts gets a new ETag), or was written after `since` (the killed run's start) while
/// the source, unchanged since the plan, is older than that: the killed run copied this version.
async fn already_copied(
    engine: &Engine,
    spec: &S3Job,
    key: &str,
    target_key: &str,
    size: u64,
    etag: &str,
    since: DateTime<Utc>,
) -> Option<copy::Copied> {
    use aws_sdk_s3::types::ChecksumMode;
    let s3 = &engine.clients.s3;
    let head =
        |bucket: &str, key: &str| s3.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled).send();
    let target = head(spec.target.bucket.as_str(), target_key).await.ok()?;
    if target.content_length() != Some(size as i64) {
        return None;
    }
    let checksum = target.checksum_crc64_nvme().map(str::to_string);
    let same = target.e_tag() == Some(etag) || {
        let source = head(spec.source.bucket.as_str(), key).await.ok()?;
        let time = |t: Option<&aws_smithy_types::DateTime>| {
            t.and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
        };
        let same_checksum = checksum.is_some() && source.checksum_crc64_nvme() == checksum.as_deref();
        // S3 keeps whole seconds: the target may show the second the run started in, and the
        // source must be older than that second to be sure the run saw this version.
        let second = since.timestamp();
        let copied_then = time(target.last_modified()).is_some_and(|t| t.timestamp() >= second)
            && time(source.last_modified()).is_some_and(|t| t.timestamp() < second);
        source.e_tag() == Some(etag) && (same_checksum || copied_then)
    };
    same.then(|| copy::Copied {
        bytes: size,
        target_etag: target.e_tag().map(str::to_string),
        multipart: false,
        checksum,
    })
}

async fn mark_deleted(engine: &Engine, spec: &S3Job, task: &S3Task, target_key: &str, untagged: bool) -> Outcome {
    let base = task.outcome(Status::Ok);
    let s3 = &engine.clients.s3;
    let bucket = spec.target.bucket.as_str();
    let not_there =
        |base: Outcome| Outcome { status: Status::Skipped, ..base }.with_detail("not in the backup: nothing to mark");
    let existing = match if untagged { Ok(Vec::new()) } else { object_tags(s3, bucket, target_key, None).await } {
        Ok(tags) => tags,
        Err(CopyFailure::Gone) => return not_there(base),
        Err(CopyFailure::Other(message)) => return Outcome { status: Status::Failed, ..base }.with_detail(message),
        Err(other) => {
            return Outcome { status: Status::Failed, ..base }.with_detail(format!("GetObjectTagging: {other:?}"));
        }
    };
    let tags = deleted_tags(existing, Utc::now());
    if tags.len() > MAX_TAGS {
        return Outcome { status: Status::Failed, ..base }.with_detail(format!(
            "the backup object has {} tags of its own; S3 allows {MAX_TAGS} in all, so Deleted and DeletedAt do not fit",
            tags.len() - 2
        ));
    }
    let tag_set: Vec<Tag> = tags.into_iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect();
    let tagging = Tagging::builder().set_tag_set(Some(tag_set)).build().expect("tag set is given");
    match s3.put_object_tagging().bucket(bucket).key(target_key).tagging(tagging).send().await {
        Ok(_) => base,
        Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => not_there(base),
        Err(err) => {
            Outcome { status: Status::Failed, ..base }.with_detail(format!("PutObjectTagging: {}", error_text(&err)))
        }
    }
}
