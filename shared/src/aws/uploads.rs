//! Multipart uploads: the ones this process has open, so an interrupted run aborts them before
//! it exits, and the ones a killed run left behind, which the job's next run aborts. S3 bills
//! the parts of an unfinished upload until someone aborts it.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::error_text;

struct OpenUpload {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
}

static OPEN: Mutex<Vec<OpenUpload>> = Mutex::new(Vec::new());

/// Records an upload CreateMultipartUpload just started.
pub fn opened(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, upload_id: &str) {
    let upload = OpenUpload { s3: s3.clone(), bucket: bucket.into(), key: key.into(), upload_id: upload_id.into() };
    OPEN.lock().unwrap_or_else(|e| e.into_inner()).push(upload);
}

/// Forgets an upload once it is completed or aborted. A task cancelled in between leaves it
/// recorded, which is the point: [`abort_open`] then finds it.
pub fn closed(upload_id: &str) {
    OPEN.lock().unwrap_or_else(|e| e.into_inner()).retain(|u| u.upload_id != upload_id);
}

/// How many uploads are open in this process.
pub fn open_count() -> usize {
    OPEN.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Aborts every upload this process has open; returns how many were aborted and the errors.
pub async fn abort_open() -> (usize, Vec<String>) {
    let uploads: Vec<OpenUpload> = std::mem::take(&mut *OPEN.lock().unwrap_or_else(|e| e.into_inner()));
    let mut aborted = 0;
    let mut errors = Vec::new();
    for upload in uploads {
        let result = upload
            .s3
            .abort_multipart_upload()
            .bucket(&upload.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .send()
            .await;
        match result {
            Ok(_) => aborted += 1,
            Err(e) => errors.push(format!("s3://{}/{}: {}", upload.bucket, upload.key, error_text(&e))),
        }
    }
    (aborted, errors)
}

/// Aborts the uploads under `prefix` of `bucket` started before `before`: what a killed run of
/// the job left there (only Backline writes under a job's target prefix).
pub async fn abort_stale(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    before: DateTime<Utc>,
) -> Result<usize, String> {
    let mut aborted = 0;
    let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = s3
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .map_err(|e| format!("ListMultipartUploads s3://{bucket}/{prefix}: {}", error_text(&e)))?;
        for upload in page.uploads() {
            let started = upload.initiated().and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
            if started.is_none_or(|t| t >= before) {
                continue;
            }
            let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else { continue };
            s3.abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await
                .map_err(|e| format!("AbortMultipartUpload s3://{bucket}/{key}: {}", error_text(&e)))?;
            tracing::info!(bucket, key, "aborted a multipart upload an earlier run left unfinished");
            aborted += 1;
        }
        if page.is_truncated() != Some(true) {
            return Ok(aborted);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
        if key_marker.is_none() && id_marker.is_none() {
            return Ok(aborted);
        }
    }
}
