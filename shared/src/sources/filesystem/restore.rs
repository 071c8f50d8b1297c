//! `kind = "filesystem-restore"`: files back from their buckets, to their original paths or
//! under a folder, waiting out archive retrievals in the queue.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;

use crate::aws::error_text;
use crate::aws::glacier::{Retrieval, RetrievalRequest, retrieval};
use crate::aws::s3::list_versions;
use crate::config::{FilesystemRestoreJob, Job, StorageClass};
use crate::model::{Action, Outcome, Status, Task};
use crate::pipeline::planner::TaskSink;
use crate::pipeline::{Engine, EngineError};
use crate::sources::s3::restore::select_run;
use crate::sources::{Step, run_tasks};
use crate::store::ControlStore;

/// Where a key is restored: `/{key}`, or `{to_dir}/{key}`. A key that would land outside (a `..`
/// component, an absolute key, an empty component) is refused.
pub fn destination(to_dir: Option<&str>, key: &str) -> Result<PathBuf, String> {
    let relative = Path::new(key);
    let bad = key.is_empty()
        || key.starts_with('/')
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

fn archived(spec: &FilesystemRestoreJob) -> bool {
    matches!(spec.backup.target.storage_class, StorageClass::Glacier | StorageClass::DeepArchive)
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
    // What to restore, per bucket: key -> (size, the ETag of the version wanted, if one is).
    let mut wanted: BTreeMap<(String, String), (u64, Option<String>)> = BTreeMap::new();
    match &spec.options.as_of {
        None => {
            for bucket in backup_buckets(&store, &spec.backup_job).await? {
                let mut pages = engine.clients.s3.list_objects_v2().bucket(&bucket).into_paginator().send();
                while let Some(page) = pages.next().await {
                    let page =
                        page.map_err(|e| EngineError::Input(format!("listing bucket `{bucket}`: {}", error_text(&e))))?;
                    for object in page.contents() {
                        if let Some(key) = object.key() {
                            let size = object.size().unwrap_or(0).max(0) as u64;
                            wanted.insert((bucket.clone(), key.to_string()), (size, None));
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
                            wanted.insert(at, (outcome.bytes, outcome.target_etag.clone()));
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
    for ((bucket, key), (size, etag)) in wanted {
        if !format!("/{key}").starts_with(&spec.options.prefix) {
            continue;
        }
        let dest = match destination(to_dir, &key) {
            Ok(dest) => dest,
            Err(reason) => {
                sink.push(Task::Unreadable { key, reason }).await?;
                continue;
            }
        };
        let version_id = match &etag {
            None => None,
            Some(etag) => match versions.get(&(bucket.clone(), key.clone(), etag.clone())) {
                Some(id) => id.clone(),
                None => {
                    let reason = "the version of that run is no longer in the bucket (expired)".to_string();
                    sink.push(Task::Skip { key, size, etag: etag.clone(), reason }).await?;
                    continue;
                }
            },
        };
        let dest = dest.to_string_lossy().into_owned();
        sink.push(Task::Download { bucket, key, version_id, size, archived: archived(spec), dest }).await?;
    }
    Ok(())
}

/// (bucket, key, ETag) -> version id, for every version in the buckets.
async fn versions_by_etag<'a>(
    engine: &Engine,
    buckets: impl Iterator<Item = &'a str>,
) -> Result<HashMap<(String, String, String), Option<String>>, EngineError> {
    let mut buckets: Vec<&str> = buckets.collect();
    buckets.dedup();
    let mut found = HashMap::new();
    for bucket in buckets {
        for version in list_versions(&engine.clients.s3, bucket, "").await.map_err(EngineError::Input)? {
            found.insert((bucket.to_string(), version.key, version.etag), version.version_id);
        }
    }
    Ok(found)
}

pub async fn execute(
    engine: &Engine,
    spec: &FilesystemRestoreJob,
    concurrency: usize,
    tasks: &[Task],
) -> (Vec<Outcome>, Vec<Task>) {
    run_tasks(engine, tasks, concurrency, |task| async move {
        match task {
            Task::Download { .. } => download(engine, spec, task).await,
            Task::Skip { reason, .. } => {
                Step::Done(Outcome::for_task(task, Status::Skipped).with_detail(reason.clone()))
            }
            Task::Unreadable { reason, .. } => {
                Step::Done(Outcome::for_task(task, Status::Failed).with_detail(reason.clone()))
            }
            _ => Step::Done(Outcome::for_task(task, Status::Failed).with_detail("not a filesystem restore task")),
        }
    })
    .await
}

/// `secs.nanos` (the `mtime` metadata uploads carry) as a time.
fn parse_mtime(text: &str) -> Option<SystemTime> {
    let (secs, nanos) = text.split_once('.')?;
    let since_epoch = Duration::new(secs.parse().ok()?, nanos.parse().ok()?);
    Some(SystemTime::UNIX_EPOCH + since_epoch)
}

async fn download(engine: &Engine, spec: &FilesystemRestoreJob, task: &Task) -> Step {
    let Task::Download { bucket, key, version_id, size, archived, dest } = task else {
        unreachable!("called for downloads")
    };
    let base = Outcome::for_task(task, Status::Ok);
    let failed = |detail: String| Step::Done(Outcome { status: Status::Failed, ..base.clone() }.with_detail(detail));
    // The plan checked the key; a message could have been altered since, so check again.
    let to_dir = spec.options.to_dir.as_ref().map(|d| d.as_str());
    match destination(to_dir, key) {
        Ok(expected) if expected == Path::new(dest) => {}
        Ok(_) => return failed(format!("refused: destination {dest} is not where key {key:?} belongs")),
        Err(reason) => return failed(reason),
    }
    if let Ok(existing) = tokio::fs::symlink_metadata(dest).await {
        if existing.is_file() && existing.len() == *size && !spec.options.overwrite {
            return Step::Done(
                Outcome { status: Status::Skipped, bytes: *size, ..base }.with_detail("already restored"),
            );
        }
        if !spec.options.overwrite {
            return failed(format!("{dest} exists and differs from the backup; not overwritten (pass --overwrite)"));
        }
    }
    let s3 = &engine.clients.s3;
    let version = version_id.as_deref();
    let mut note = None;
    if *archived {
        let request =
            RetrievalRequest { bucket, key, version, tier: spec.options.tier, days: spec.options.restore_days };
        match retrieval(s3, &request).await {
            Ok(Retrieval::Ready(tier_note)) => note = tier_note,
            Ok(Retrieval::Waiting) => return Step::Waiting(task.clone()),
            Err(message) => return failed(message),
        }
    }
    let object = match s3.get_object().bucket(bucket).key(key).set_version_id(version_id.clone()).send().await {
        Ok(object) => object,
        Err(err) if aws_sdk_s3::error::ProvideErrorMetadata::code(&err) == Some("InvalidObjectState") => {
            return Step::Waiting(task.clone());
        }
        Err(err) => return failed(format!("GetObject: {}", error_text(&err))),
    };
    let mtime = object.metadata().and_then(|m| m.get("mtime")).and_then(|m| parse_mtime(m));
    match write_file(Path::new(dest), object.body, mtime).await {
        Ok(bytes) => Step::Done(Outcome { bytes, ..base }.with_detail(note.unwrap_or_else(|| "restored".into()))),
        Err(message) => failed(message),
    }
}

/// Streams the body into `dest` through a temporary file beside it, so a failed download never
/// leaves a half-written file under the real name.
async fn write_file(
    dest: &Path,
    body: aws_sdk_s3::primitives::ByteStream,
    mtime: Option<SystemTime>,
) -> Result<u64, String> {
    let parent = dest.parent().ok_or_else(|| format!("{}: no parent folder", dest.display()))?;
    tokio::fs::create_dir_all(parent).await.map_err(|e| format!("{}: {e}", parent.display()))?;
    let partial = dest.with_file_name(format!(
        ".{}.backline-partial",
        dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let mut file = tokio::fs::File::create(&partial).await.map_err(|e| format!("{}: {e}", partial.display()))?;
    let mut written = 0u64;
    let mut body = body.into_async_read();
    let copied = tokio::io::copy(&mut body, &mut file).await;
    let result = async {
        written = copied.map_err(|e| format!("downloading to {}: {e}", partial.display()))?;
        file.flush().await.map_err(|e| e.to_string())?;
        let file = file.into_std().await;
        file.sync_all().map_err(|e| e.to_string())?;
        if let Some(mtime) = mtime {
            file.set_times(std::fs::FileTimes::new().set_modified(mtime)).map_err(|e| e.to_string())?;
        }
        tokio::fs::rename(&partial, dest).await.map_err(|e| format!("{}: {e}", dest.display()))
    }
    .await;
    if let Err(message) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(message);
    }
    Ok(written)
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

    #[test]
    fn mtime_metadata_parses_back() {
        let time = parse_mtime(&crate::sources::filesystem::mtime_metadata(1_700_000_000_123_456_789)).unwrap();
        assert_eq!(time.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos(), 1_700_000_000_123_456_789);
    }
}
