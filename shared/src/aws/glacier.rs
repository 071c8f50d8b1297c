//! Archived objects (GLACIER, DEEP_ARCHIVE): asking S3 to retrieve one, and checking whether it
//! is readable yet. Callers never wait here: a task that must wait goes back to the queue.

use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, Tier};

use super::error_text;
use crate::config::RestoreTier;

/// Whether an object of this storage class must be retrieved before it can be read. The one
/// place that decides it: listings, version listings and HEADs all pass the class they saw.
pub fn is_archived(storage_class: Option<&str>) -> bool {
    matches!(storage_class, Some("GLACIER" | "DEEP_ARCHIVE"))
}

pub enum Retrieval {
    /// Readable now; with a note when the tier asked for was not available.
    Ready(Option<String>),
    Waiting,
}

pub struct RetrievalRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version: Option<&'a str>,
    pub tier: RestoreTier,
    /// How long the retrieved copy stays readable.
    pub days: u32,
}

/// Checks an archived object's retrieval (`x-amz-restore`), asking for one if none is under way.
pub async fn retrieval(s3: &aws_sdk_s3::Client, request: &RetrievalRequest<'_>) -> Result<Retrieval, String> {
    let RetrievalRequest { bucket, key, version, .. } = *request;
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .send()
        .await
        .map_err(|e| format!("HeadObject: {}", error_text(&e)))?;
    let deep = head.storage_class().map(|c| c.as_str()) == Some("DEEP_ARCHIVE");
    let mut tier = request.tier;
    let mut note = None;
    if deep && tier == RestoreTier::Expedited {
        tier = RestoreTier::Standard;
        note = Some("DEEP_ARCHIVE has no Expedited retrieval; used Standard".to_string());
    }
    match head.restore() {
        Some(status) if status.contains("ongoing-request=\"false\"") => return Ok(Retrieval::Ready(note)),
        Some(_) => return Ok(Retrieval::Waiting),
        None => {}
    }
    if let Some(note) = &note {
        tracing::warn!(key, "{note}");
    }
    let parameters =
        GlacierJobParameters::builder().tier(Tier::from(tier.as_str())).build().map_err(|e| e.to_string())?;
    let restore = RestoreRequest::builder().days(request.days as i32).glacier_job_parameters(parameters).build();
    match s3
        .restore_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .restore_request(restore)
        .send()
        .await
    {
        Ok(_) => Ok(Retrieval::Waiting),
        Err(err) if aws_sdk_s3::error::ProvideErrorMetadata::code(&err) == Some("RestoreAlreadyInProgress") => {
            Ok(Retrieval::Waiting)
        }
        Err(err) => Err(format!("RestoreObject: {}", error_text(&err))),
    }
}

#[cfg(test)]
mod tests {
    use super::is_archived;

    #[test]
    fn only_the_archive_classes_need_a_retrieval() {
        for class in ["GLACIER", "DEEP_ARCHIVE"] {
            assert!(is_archived(Some(class)), "{class}");
        }
        for class in [None, Some("STANDARD"), Some("GLACIER_IR"), Some("STANDARD_IA"), Some("INTELLIGENT_TIERING")] {
            assert!(!is_archived(class), "{class:?}");
        }
    }
}
