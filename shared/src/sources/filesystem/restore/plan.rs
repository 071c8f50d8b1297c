//! Planning a folder restore: each backed-up file now (a listing of each folder's bucket), or
//! as it was at the end of a past run (the manifests folded, versions found by ETag).

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use super::{FilesystemRestoreJob, FilesystemRestoreTask};
use crate::aws::error_text;
use crate::aws::glacier::is_archived;
use crate::aws::s3::list_versions;
use crate::config::Job;
use crate::model::{Action, Status};
use crate::pipeline::planner::TaskSink;
use crate::pipeline::{Engine, EngineError};
use crate::sources::s3::restore::select_run;
use crate::store::ControlStore;

/// Where a key is restored: `/{key}`, or `{to_dir}/{key}`. A key that would land outside (a `..`
/// component, an absolute key, an empty component, a NUL) is refused.
pub fn destination(to_dir: Option<&str>, key: &str) -> Result<PathBuf, String> {
    let relative = Path::new(key);
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\0')
        || key.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        || relative.components().any(|c| !matches!(c, Component::Normal(_)));
    if bad {
        return Err(format!("refused: key {key:?} would escape the restore folder"));
    }
    let root = Path::new(to_dir.unwrap_or("/"));
    let dest = root.join(relative);
    if !dest.starts_with(root) {
        return Err(format!("refused: key {key:?} would escape the restore folder"));
    }
    Ok(dest)
}

/// The buckets the backup job has state for, from the control location (the folders need not
/// exist on this host).
async fn backup_buckets(store: &ControlStore, job: &str) -> Result<Vec<String>, EngineError> {
    let prefix = store.key(&format!("state/{job}/"));
    Ok(store
        .list(&format!("state/{job}/"))
        .await?
        .into_iter()
        .filter_map(|key| key.strip_prefix(&prefix).and_then(|n| n.strip_suffix(".jsonl")).map(str::to_string))
        .collect())
}

pub async fn plan(
    engine: &Engine,
    job: &Job,
    spec: &FilesystemRestoreJob,
    sink: &mut TaskSink<'_>,
) -> Result<(), EngineError> {
    let store = ControlStore::new(engine.clients.s3.clone(), &job.control());
    // What to restore, per bucket: key -> (size, the ETag of the version wanted if one is,
    // whether the current object is archived).
    let mut wanted: BTreeMap<(String, String), (u64, Option<String>, bool)> = BTreeMap::new();
    match &spec.options.as_of {
        None => {
            for bucket in backup_buckets(&store, &spec.backup_job).await? {
                let mut pages = engine.clients.s3.list_objects_v2().bucket(&bucket).into_paginator().send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| {
                        EngineError::service(format!("ListObjectsV2 on bucket `{bucket}`"), error_text(&e))
                    })?;
                    for object in page.contents() {
                        if let Some(key) = object.key() {
                            let size = object.size().unwrap_or(0).max(0) as u64;
                            let archived = is_archived(object.storage_class().map(|c| c.as_str()));
                            wanted.insert((bucket.clone(), key.to_string()), (size, None, archived));
                        }
                    }
                }
            }
        }
        Some(as_of) => {
            let manifests = store.manifests(&spec.backup_job).await?;
            let chosen = select_run(&manifests, as_of)?;
            for manifest in manifests.iter().take_while(|m| m.finished_at <= chosen.finished_at) {
                for outcome in manifest.tasks.iter().filter(|o| o.status == Status::Ok) {
                    let Some(bucket) = &outcome.target_bucket else { continue };
                    let at = (bucket.clone(), outcome.key.clone());
                    match outcome.action {
                        Action::Upload => {
                            wanted.insert(at, (outcome.bytes, outcome.target_etag.clone(), false));
                        }
                        Action::Delete => {
                            wanted.remove(&at);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let versions = match &spec.options.as_of {
        Some(_) => versions_by_etag(engine, wanted.keys().map(|(bucket, _)| bucket.as_str())).await?,
        None => HashMap::new(),
    };
    let to_dir = spec.options.to_dir.as_ref().map(|d| d.as_str());
    for ((bucket, key), (size, etag, current_archived)) in wanted {
        if !format!("/{key}").starts_with(&spec.options.prefix) {
            continue;
        }
        let dest = match destination(to_dir, &key) {
            Ok(dest) => dest,
            Err(reason) => {
                sink.push(FilesystemRestoreTask::Unreadable { key, reason }).await?;
                continue;
            }
        };
        let (version_id, archived) = match &etag {
            None => (None, current_archived),
            Some(etag) => match versions.get(&(bucket.clone(), key.clone(), etag.clone())) {
                Some(found) => found.clone(),
                None => {
                    let reason = "the version of that run is no longer in the bucket (expired)".to_string();
                    sink.push(FilesystemRestoreTask::Skip { key, size, etag: etag.clone(), reason }).await?;
                    continue;
                }
            },
        };
        let dest = dest.to_string_lossy().into_owned();
        let restored_since = None;
        sink.push(FilesystemRestoreTask::Download { bucket, key, version_id, size, archived, dest, restored_since })
            .await?;
    }
    Ok(())
}

/// (bucket, key, ETag) -> (version id, archived), for every version in the buckets.
async fn versions_by_etag<'a>(
    engine: &Engine,
    buckets: impl Iterator<Item = &'a str>,
) -> Result<HashMap<(String, String, String), (Option<String>, bool)>, EngineError> {
    let mut buckets: Vec<&str> = buckets.collect();
    buckets.dedup();
    let mut found = HashMap::new();
    for bucket in buckets {
        for version in list_versions(&engine.clients.s3, bucket, "")
            .await
            .map_err(|e| EngineError::service("ListObjectVersions", e))?
        {
            found.insert((bucket.to_string(), version.key, version.etag), (version.version_id, version.archived));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_would_escape_are_refused() {
        assert_eq!(destination(Some("/restore"), "srv/a.txt").unwrap(), PathBuf::from("/restore/srv/a.txt"));
        assert_eq!(destination(None, "srv/a.txt").unwrap(), PathBuf::from("/srv/a.txt"));
        for key in ["../etc/passwd", "srv/../../etc/passwd", "/etc/passwd", "srv//a", "./a", "srv/.", ""] {
            assert!(destination(Some("/restore"), key).is_err(), "{key}");
        }
    }
}
