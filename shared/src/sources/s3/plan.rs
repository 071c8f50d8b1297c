//! Planning an S3 backup: list the source page by page and merge it with the state (both in
//! key order), so a change, an addition or a deletion is found without reading the target.
//! Neither side is held whole: memory stays flat at millions of keys.

use aws_sdk_s3::types::Object;
use chrono::Utc;

use super::tags::target_key;
use super::{S3Job, S3Task};
use crate::aws::glacier::is_archived;
use crate::aws::listing::{ListingOptions, OrderedListing};
use crate::config::Job;
use crate::model::RunRef;
use crate::pipeline::planner::TaskSink;
use crate::pipeline::{Engine, EngineError};
use crate::store::{ControlStore, KnownEntries, StateEntry};

/// Fails early, with the bucket's name, when the source or target cannot be reached.
pub async fn check_buckets(engine: &Engine, spec: &S3Job) -> Result<(), EngineError> {
    for (role, bucket) in [("source", &spec.source.bucket), ("target", &spec.target.bucket)] {
        crate::aws::s3::check_bucket(&engine.clients.s3, role, bucket.as_str()).await?;
    }
    Ok(())
}

pub async fn plan(
    engine: &Engine,
    job: &Job,
    spec: &S3Job,
    run: &RunRef,
    sink: &mut TaskSink<'_>,
) -> Result<(), EngineError> {
    let store = ControlStore::new(engine.clients.s3.clone(), &run.control);
    let source = spec.state_source();
    let state = match store.open_state(&job.name).await? {
        Some(state) if state.source == source => Some(state),
        Some(state) => {
            tracing::warn!(old = %state.source, new = %source, "the job's source changed; planning a full backup");
            None
        }
        None => None,
    };
    // Objects older than the window are left alone (but still count as present).
    let cutoff = spec
        .only_modified_within
        .map(|window| Utc::now() - chrono::Duration::from_std(window.0).unwrap_or(chrono::Duration::MAX));
    // The control records must not back themselves up when source and control share a bucket.
    let control_prefix = (store.bucket() == spec.source.bucket.as_str() && !store.prefix().is_empty())
        .then(|| store.prefix().to_string());

    let mut known = KnownEntries::streamed(state, store.bucket(), &store.key(&ControlStore::state_key(&job.name)));
    let mut previous_key: Option<String> = None;
    // Several folders at once: on S3 each page is a round trip, and a listing's pages are
    // otherwise sequential (see `aws::listing`).
    let mut pages = OrderedListing::start(
        engine.clients.s3.clone(),
        spec.source.bucket.as_str(),
        &spec.source.prefix,
        ListingOptions::default(),
    );
    while let Some(page) = pages.next_page().await {
        let page = page.map_err(|e| {
            EngineError::service(
                format!("ListObjectsV2 on source bucket `{}` under `{}`", spec.source.bucket, e.prefix),
                e.message,
            )
        })?;
        for object in &page {
            let Some(key) = object.key() else { continue };
            if control_prefix.as_deref().is_some_and(|p| key.starts_with(p)) {
                continue;
            }
            // The merge below is only right if S3 lists in key order; refuse rather than mark
            // live objects deleted.
            if previous_key.as_deref().is_some_and(|prev| prev >= key) {
                return Err(EngineError::service(
                    format!("ListObjectsV2 on source bucket `{}`", spec.source.bucket),
                    format!(
                        "listed `{key}` after `{}`: keys are not in order, cannot diff safely",
                        previous_key.unwrap_or_default()
                    ),
                ));
            }
            mark_deleted_before(spec, &mut known, key, sink).await?;
            let previous = known.next_if(|entry| entry.key == key).await?;
            plan_object(spec, object, key, previous, cutoff, sink).await?;
            previous_key = Some(key.to_string());
        }
    }
    while let Some(entry) = known.next_if(|_| true).await? {
        if !entry.deleted {
            let task = S3Task::MarkDeleted {
                target_key: target_key(spec, &entry.key),
                untagged: entry.untagged,
                key: entry.key,
            };
            sink.push(task).await?;
        }
    }
    Ok(())
}

/// Known keys that sort before `key` are gone from the source.
async fn mark_deleted_before(
    spec: &S3Job,
    known: &mut KnownEntries,
    key: &str,
    sink: &mut TaskSink<'_>,
) -> Result<(), EngineError> {
    while let Some(entry) = known.next_if(|entry| entry.key.as_str() < key).await? {
        if entry.deleted {
            continue;
        }
        let task =
            S3Task::MarkDeleted { target_key: target_key(spec, &entry.key), untagged: entry.untagged, key: entry.key };
        sink.push(task).await?;
    }
    Ok(())
}

async fn plan_object(
    spec: &S3Job,
    object: &Object,
    key: &str,
    previous: Option<StateEntry>,
    cutoff: Option<chrono::DateTime<Utc>>,
    sink: &mut TaskSink<'_>,
) -> Result<(), EngineError> {
    let size = object.size().unwrap_or(0).max(0) as u64;
    let etag = object.e_tag().unwrap_or_default().to_string();
    let reappeared = previous.as_ref().is_some_and(|p| p.deleted);
    if previous.is_some_and(|p| !p.deleted && p.size == size && p.etag == etag) {
        sink.unchanged();
        return Ok(());
    }
    let modified =
        object.last_modified().and_then(|t| chrono::DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
    if let (Some(cutoff), Some(modified)) = (cutoff, modified)
        && modified < cutoff
    {
        sink.unchanged();
        return Ok(());
    }
    let class = object.storage_class().map(|c| c.as_str());
    let task = match class {
        Some(class) if is_archived(Some(class)) => S3Task::Skip {
            key: key.to_string(),
            size,
            etag,
            reason: format!("in {class} at the source: restore it there first (backline restore)"),
        },
        _ => S3Task::Copy {
            key: key.to_string(),
            target_key: target_key(spec, key),
            size,
            copied_since: None,
            etag,
            replace_tags: reappeared,
        },
    };
    sink.push(task).await
}
