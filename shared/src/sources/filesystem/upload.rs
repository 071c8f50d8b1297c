//! Executing filesystem tasks: uploads (whole, or streamed in parts) and deletions.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass};
use futures::{TryStreamExt, stream};

use tokio::io::AsyncReadExt;

use super::plan::mtime_ns;
use super::{FilesystemJob, FilesystemTask};
use crate::aws::s3::part_size;
use crate::aws::{error_text, uploads, written_once};
use crate::model::{Outcome, Status};
use crate::pipeline::Engine;
use crate::pipeline::kind::{Executed, KindTask, Step, run_tasks};

/// A file that changes while it is read is read again this often, then reported.
const READ_ATTEMPTS: usize = 3;
/// Parts in flight for one file: memory per file is this many parts.
const PART_CONCURRENCY: usize = 4;
const PREFERRED_PART_SIZE: u64 = 16 << 20;

pub async fn execute(engine: &Engine, spec: &FilesystemJob, concurrency: usize, tasks: &[FilesystemTask]) -> Executed {
    run_tasks(engine, tasks, concurrency, |task| async move {
        Step::Done(match task {
            FilesystemTask::Upload { .. } => upload(engine, spec, task).await,
            FilesystemTask::Delete { bucket, key } => delete(engine, task, bucket, key).await,
            FilesystemTask::Skip { reason, .. } => task.outcome(Status::Skipped).with_detail(reason.clone()),
            FilesystemTask::Unreadable { reason, .. } => task.outcome(Status::Failed).with_detail(reason.clone()),
        })
    })
    .await
}

/// The `mtime` metadata: seconds and nanoseconds since the epoch.
pub fn mtime_metadata(mtime_ns: i64) -> String {
    format!("{}.{:09}", mtime_ns.div_euclid(1_000_000_000), mtime_ns.rem_euclid(1_000_000_000))
}

/// The current object's ETag when it is this version of the file already (same size, same
/// `mtime` metadata); `None` when it is not, or cannot be read: the task uploads again.
async fn already_uploaded(
    engine: &Engine,
    bucket: &str,
    key: &str,
    size: u64,
    mtime_ns: i64,
) -> Option<Option<String>> {
    let head = engine.clients.s3.head_object().bucket(bucket).key(key).send().await.ok()?;
    let same = head.content_length() == Some(size as i64)
        && head.metadata().and_then(|m| m.get("mtime")).map(String::as_str) == Some(mtime_metadata(mtime_ns).as_str());
    same.then(|| head.e_tag().map(str::to_string))
}

enum Attempt {
    Uploaded {
        etag: Option<String>,
    },
    /// The file changed between the start and the end of the read: nothing was stored.
    Changed,
}

async fn upload(engine: &Engine, spec: &FilesystemJob, task: &FilesystemTask) -> Outcome {
    let FilesystemTask::Upload { path, bucket, key, size: planned_size, mtime_ns: planned_mtime, uploaded_since } =
        task
    else {
        unreachable!("called for uploads")
    };
    let base = task.outcome(Status::Ok);
    if uploaded_since.is_some()
        && let Some(etag) = already_uploaded(engine, bucket, key, *planned_size, *planned_mtime).await
    {
        return Outcome {
            bytes: *planned_size,
            mtime_ns: Some(*planned_mtime),
            target_etag: etag,
            method: Some(method(spec, *planned_size)),
            ..base
        }
        .with_detail("in the bucket already: uploaded by a run that stopped before recording it");
    }
    for _ in 0..READ_ATTEMPTS {
        let before = match tokio::fs::metadata(path).await {
            Ok(metadata) if metadata.is_file() => metadata,
            Ok(_) => return Outcome { status: Status::Failed, ..base }.with_detail("no longer a regular file"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Outcome { status: Status::Skipped, ..base }.with_detail("gone from disk during the run");
            }
            Err(e) => return Outcome { status: Status::Failed, ..base }.with_detail(format!("{path}: {e}")),
        };
        let (size, mtime) = (before.len(), mtime_ns(&before));
        let result = if size > 0 && size >= spec.target.multipart_threshold.0 {
            upload_parts(engine, spec, path, bucket, key, size, mtime).await
        } else {
            upload_whole(engine, spec, path, bucket, key, size, mtime).await
        };
        match result {
            Ok(Attempt::Uploaded { etag }) => {
                return Outcome {
                    bytes: size,
                    mtime_ns: Some(mtime),
                    target_etag: etag,
                    method: Some(method(spec, size)),
                    ..base
                };
            }
            Ok(Attempt::Changed) => tracing::info!(path, "file changed while being read; reading it again"),
            Err(message) => return Outcome { status: Status::Failed, ..base }.with_detail(message),
        }
    }
    Outcome { status: Status::Failed, ..base }
        .with_detail(format!("changed while being read, {READ_ATTEMPTS} times; not uploaded"))
}

fn method(spec: &FilesystemJob, size: u64) -> String {
    if size > 0 && size >= spec.target.multipart_threshold.0 { "multipart" } else { "put" }.to_string()
}

/// Whether the file is still the one whose size and mtime the upload started from.
async fn unchanged(path: &str, size: u64, mtime: i64) -> Result<bool, String> {
    let after = tokio::fs::metadata(path).await.map_err(|e| format!("{path}: {e}"))?;
    Ok(after.len() == size && mtime_ns(&after) == mtime)
}

fn read_error(path: &str, e: std::io::Error) -> String {
    format!("{path}: cannot read: {e}")
}

async fn upload_whole(
    engine: &Engine,
    spec: &FilesystemJob,
    path: &str,
    bucket: &str,
    key: &str,
    size: u64,
    mtime: i64,
) -> Result<Attempt, String> {
    let body = tokio::fs::read(path).await.map_err(|e| read_error(path, e))?;
    if body.len() as u64 != size || !unchanged(path, size, mtime).await? {
        return Ok(Attempt::Changed);
    }
    let s3 = &engine.clients.s3;
    let send = || {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.clone()))
            .metadata("mtime", mtime_metadata(mtime))
            .storage_class(StorageClass::from(spec.target.storage_class.as_str()))
            .set_server_side_encryption(spec.target.kms_key_id.as_ref().map(|_| ServerSideEncryption::AwsKms))
            .set_ssekms_key_id(spec.target.kms_key_id.clone())
            .customize()
            .config_override(written_once::no_retries())
            .send()
    };
    let target = written_once::Attempt { s3, bucket, key, size, etag: None };
    let written = written_once::write_once(&target, "PutObject", send)
        .await
        .map_err(|e| format!("PutObject: {}", error_text(&e)))?;
    Ok(Attempt::Uploaded { etag: written.etag })
}

/// Streams the file in parts, a few in flight; the upload completes only if the file did not
/// change while it was read, so no half-written version is ever stored.
async fn upload_parts(
    engine: &Engine,
    spec: &FilesystemJob,
    path: &str,
    bucket: &str,
    key: &str,
    size: u64,
    mtime: i64,
) -> Result<Attempt, String> {
    let s3 = &engine.clients.s3;
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .metadata("mtime", mtime_metadata(mtime))
        .storage_class(StorageClass::from(spec.target.storage_class.as_str()))
        .set_server_side_encryption(spec.target.kms_key_id.as_ref().map(|_| ServerSideEncryption::AwsKms))
        .set_ssekms_key_id(spec.target.kms_key_id.clone())
        .send()
        .await
        .map_err(|e| format!("CreateMultipartUpload: {}", error_text(&e)))?;
    let upload_id = upload.upload_id().unwrap_or_default().to_string();
    uploads::opened(s3, bucket, key, &upload_id);
    let result = send_parts(s3, path, bucket, key, &upload_id, size).await;
    let result = match result {
        Ok(parts) => match unchanged(path, size, mtime).await {
            Ok(true) => {
                let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
                let send = || {
                    s3.complete_multipart_upload()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .multipart_upload(done.clone())
                        .customize()
                        .config_override(written_once::no_retries())
                        .send()
                };
                let target = written_once::Attempt { s3, bucket, key, size, etag: None };
                written_once::write_once(&target, "CompleteMultipartUpload", send)
                    .await
                    .map(|written| Attempt::Uploaded { etag: written.etag })
                    .map_err(|e| format!("CompleteMultipartUpload: {}", error_text(&e)))
            }
            Ok(false) => Ok(Attempt::Changed),
            Err(message) => Err(message),
        },
        Err(message) => Err(message),
    };
    if matches!(result, Ok(Attempt::Uploaded { .. })) {
        uploads::closed(&upload_id);
    } else {
        match s3.abort_multipart_upload().bucket(bucket).key(key).upload_id(&upload_id).send().await {
            Ok(_) => uploads::closed(&upload_id),
            Err(err) => tracing::warn!(key, error = %error_text(&err), "could not abort the multipart upload"),
        }
    }
    result
}

async fn send_parts(
    s3: &aws_sdk_s3::Client,
    path: &str,
    bucket: &str,
    key: &str,
    upload_id: &str,
    size: u64,
) -> Result<Vec<CompletedPart>, String> {
    let part = part_size(size, PREFERRED_PART_SIZE);
    let file = tokio::fs::File::open(path).await.map_err(|e| read_error(path, e))?;
    // Parts are read in order from one file handle and uploaded a few at a time. The closures
    // own what they use: borrowed captures would keep the future from being `Send`.
    let path = path.to_string();
    let reads = stream::try_unfold((file, 0u64), move |(mut file, index)| {
        let path = path.clone();
        async move {
            if index * part >= size {
                return Ok(None);
            }
            let mut buffer = vec![0u8; part.min(size - index * part) as usize];
            file.read_exact(&mut buffer).await.map_err(|e| read_error(&path, e))?;
            Ok::<_, String>(Some(((index as i32 + 1, buffer), (file, index + 1))))
        }
    });
    let mut parts: Vec<CompletedPart> = reads
        .map_ok(move |(number, buffer)| {
            let request = s3
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(buffer));
            async move {
                let output = request.send().await.map_err(|e| format!("UploadPart: {}", error_text(&e)))?;
                Ok(CompletedPart::builder().part_number(number).set_e_tag(output.e_tag().map(str::to_string)).build())
            }
        })
        .try_buffer_unordered(PART_CONCURRENCY)
        .try_collect()
        .await?;
    parts.sort_by_key(|p| p.part_number());
    Ok(parts)
}

/// Deletes the object; in the versioned bucket this leaves a delete marker, and the old version
/// stays until the lifecycle rule expires it.
async fn delete(engine: &Engine, task: &FilesystemTask, bucket: &str, key: &str) -> Outcome {
    let base = task.outcome(Status::Ok);
    match engine.clients.s3.delete_object().bucket(bucket).key(key).send().await {
        Ok(_) => base,
        Err(err) => {
            Outcome { status: Status::Failed, ..base }.with_detail(format!("DeleteObject: {}", error_text(&err)))
        }
    }
}
