//! Planning a restore: what the backup holds now (a listing), or held at the end of a past run
//! (the manifests folded, each key's version found by its ETag).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::{S3RestoreJob, S3RestoreTask};
use crate::aws::error_text;
use crate::aws::glacier::is_archived;
use crate::aws::s3::{ListedVersion, list_versions};
use crate::config::Job;
use crate::model::{Action, Status};
use crate::pipeline::planner::TaskSink;
use crate::pipeline::{Engine, EngineError};
use crate::store::{ControlStore, Manifest};

/// Where a backup key came from, and where it is restored to.
struct KeyMap<'a> {
    spec: &'a S3RestoreJob,
}

impl KeyMap<'_> {
    /// The original (source) key of a backup key, if the key belongs to the backup.
    fn original(&self, backup_key: &str) -> Option<String> {
        let backup = &self.spec.backup;
        let relative = backup_key.strip_prefix(backup.target.prefix.as_str())?;
        Some(format!("{}{relative}", backup.source.prefix))
    }

    fn restored(&self, original: &str) -> String {
        let backup = &self.spec.backup;
        let relative = original.strip_prefix(backup.source.prefix.as_str()).unwrap_or(original);
        let prefix = self.spec.options.to_prefix.as_deref().unwrap_or(backup.source.prefix.as_str());
        format!("{prefix}{relative}")
    }

    fn wanted(&self, original: &str) -> bool {
        original.starts_with(self.spec.options.prefix.as_str())
    }
}

/// Checks the backup bucket, and creates the target bucket or checks that it may be written.
pub async fn prepare(engine: &Engine, spec: &S3RestoreJob, dry_run: bool) -> Result<(), EngineError> {
    let s3 = &engine.clients.s3;
    let backup = spec.backup.target.bucket.as_str();
    if let Err(err) = s3.head_bucket().bucket(backup).send().await {
        return Err(match err.raw_response().map(|r| r.status().as_u16()) {
            Some(404) => EngineError::Input(format!("backup bucket `{backup}` does not exist (HeadBucket: 404)")),
            _ => EngineError::service(format!("HeadBucket on backup bucket `{backup}`"), error_text(&err)),
        });
    }
    let to = spec.options.to_bucket.as_str();
    match s3.head_bucket().bucket(to).send().await {
        Ok(_) => {
            if spec.options.allow_existing {
                return Ok(());
            }
            let listing =
                s3.list_objects_v2().bucket(to).max_keys(1).send().await.map_err(|e| {
                    EngineError::service(format!("ListObjectsV2 on target bucket `{to}`"), error_text(&e))
                })?;
            if !listing.contents().is_empty() {
                return Err(EngineError::Input(format!(
                    "target bucket `{to}` is not empty; restore into a new bucket, or pass --allow-existing \
                     (to continue an interrupted restore, or to add to it)"
                )));
            }
            Ok(())
        }
        Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
            if !dry_run {
                s3.create_bucket()
                    .bucket(to)
                    .send()
                    .await
                    .map_err(|e| EngineError::service(format!("CreateBucket `{to}`"), error_text(&e)))?;
            }
            Ok(())
        }
        Err(err) => Err(EngineError::service(format!("HeadBucket on target bucket `{to}`"), error_text(&err))),
    }
}

/// The run an `--as-of` names: its id, or the last run finished at or before a time.
pub fn select_run<'a>(manifests: &'a [Manifest], as_of: &str) -> Result<&'a Manifest, EngineError> {
    if let Some(run) = manifests.iter().find(|m| m.run_id == as_of) {
        return Ok(run);
    }
    let at: DateTime<Utc> = if let Ok(time) = DateTime::parse_from_rfc3339(as_of) {
        time.with_timezone(&Utc)
    } else if let Ok(day) = NaiveDate::parse_from_str(as_of, "%Y-%m-%d") {
        day.and_hms_opt(23, 59, 59).expect("valid time").and_utc()
    } else {
        let runs: Vec<&str> = manifests.iter().rev().take(5).map(|m| m.run_id.as_str()).collect();
        return Err(EngineError::Input(format!(
            "--as-of `{as_of}` is neither a run id nor a time (RFC 3339 or YYYY-MM-DD); latest runs: {}",
            runs.join(", ")
        )));
    };
    manifests
        .iter()
        .rev()
        .find(|m| m.finished_at <= at)
        .ok_or_else(|| EngineError::Input(format!("no backup run had finished by {at}")))
}

/// What the backup held, per original key, at the end of the last manifest given.
#[derive(Debug, Clone, PartialEq)]
struct Held {
    target_key: String,
    target_etag: Option<String>,
    size: u64,
    deleted: bool,
}

fn fold(manifests: &[Manifest]) -> BTreeMap<String, Held> {
    let mut held: BTreeMap<String, Held> = BTreeMap::new();
    for manifest in manifests {
        for outcome in manifest.tasks.iter().filter(|o| o.status == Status::Ok) {
            match outcome.action {
                Action::Copy => {
                    held.insert(
                        outcome.key.clone(),
                        Held {
                            target_key: outcome.target_key.clone().unwrap_or_else(|| outcome.key.clone()),
                            target_etag: outcome.target_etag.clone(),
                            size: outcome.bytes,
                            deleted: false,
                        },
                    );
                }
                Action::MarkDeleted => {
                    if let Some(entry) = held.get_mut(&outcome.key) {
                        entry.deleted = true;
                    }
                }
                Action::Skip | Action::Restore | Action::Upload | Action::Delete | Action::Refresh => {}
            }
        }
    }
    held
}

pub async fn plan(engine: &Engine, job: &Job, spec: &S3RestoreJob, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
    let store = ControlStore::new(engine.clients.s3.clone(), &job.control());
    match &spec.options.as_of {
        None => plan_current(engine, spec, &store, sink).await,
        Some(as_of) => {
            let manifests = store.manifests(&spec.backup_job).await?;
            let chosen = select_run(&manifests, as_of)?;
            let upto = manifests.iter().position(|m| m.run_id == chosen.run_id).expect("chosen from the list");
            tracing::info!(run = %chosen.run_id, finished = %chosen.finished_at, "restoring as of this run");
            plan_as_of(engine, spec, &store, fold(&manifests[..=upto]), &chosen.run_id, sink).await
        }
    }
}

fn deleted_skip(original: &str, size: u64, etag: &str) -> S3RestoreTask {
    S3RestoreTask::Skip {
        key: original.to_string(),
        size,
        etag: etag.to_string(),
        reason: "tagged Deleted=True in the backup (pass --include-deleted to restore it)".into(),
    }
}

async fn plan_current(
    engine: &Engine,
    spec: &S3RestoreJob,
    store: &ControlStore,
    sink: &mut TaskSink<'_>,
) -> Result<(), EngineError> {
    let keys = KeyMap { spec };
    let backup = &spec.backup;
    // The backup job's state knows which keys it tagged deleted; without it, the worker looks.
    let source = format!("s3://{}/{}", backup.source.bucket, backup.source.prefix);
    let tombstones: Option<std::collections::HashSet<String>> = match store.read_state(&spec.backup_job).await? {
        Some(state) if state.source == source => {
            Some(state.entries.into_iter().filter(|e| e.deleted).map(|e| e.key).collect())
        }
        _ => None,
    };
    let mut pages = engine
        .clients
        .s3
        .list_objects_v2()
        .bucket(backup.target.bucket.as_str())
        .prefix(&backup.target.prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            EngineError::service(format!("ListObjectsV2 on backup bucket `{}`", backup.target.bucket), error_text(&e))
        })?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            if key.starts_with(store.prefix()) && store.bucket() == backup.target.bucket.as_str() {
                continue;
            }
            let Some(original) = keys.original(key).filter(|o| keys.wanted(o)) else { continue };
            let size = object.size().unwrap_or(0).max(0) as u64;
            let etag = object.e_tag().unwrap_or_default().to_string();
            let deleted = tombstones.as_ref().map(|t| t.contains(&original));
            if deleted == Some(true) && !spec.options.include_deleted {
                sink.push(deleted_skip(&original, size, &etag)).await?;
                continue;
            }
            let archived = is_archived(object.storage_class().map(|c| c.as_str()));
            sink.push(S3RestoreTask::Restore {
                target_key: keys.restored(&original),
                key: key.to_string(),
                version_id: None,
                size,
                etag,
                archived,
                deleted,
                restored_since: None,
            })
            .await?;
        }
    }
    Ok(())
}

async fn plan_as_of(
    engine: &Engine,
    spec: &S3RestoreJob,
    store: &ControlStore,
    held: BTreeMap<String, Held>,
    run_id: &str,
    sink: &mut TaskSink<'_>,
) -> Result<(), EngineError> {
    let keys = KeyMap { spec };
    let backup = &spec.backup;
    // Every version of every backed-up key, to find the one each run wrote (by its ETag).
    let mut versions: HashMap<String, Vec<ListedVersion>> = HashMap::new();
    for version in list_versions(&engine.clients.s3, backup.target.bucket.as_str(), &backup.target.prefix)
        .await
        .map_err(|e| EngineError::service("ListObjectVersions", e))?
    {
        if !version.key.starts_with(store.prefix()) {
            versions.entry(version.key.clone()).or_default().push(version);
        }
    }
    for (original, entry) in held.into_iter().filter(|(original, _)| keys.wanted(original)) {
        let etag = entry.target_etag.clone().unwrap_or_default();
        if entry.deleted && !spec.options.include_deleted {
            sink.push(deleted_skip(&original, entry.size, &etag)).await?;
            continue;
        }
        let version = versions.get(&entry.target_key).and_then(|all| all.iter().find(|v| v.etag == etag));
        let task = match version {
            Some(version) => S3RestoreTask::Restore {
                target_key: keys.restored(&original),
                key: entry.target_key.clone(),
                version_id: version.version_id.clone(),
                size: entry.size,
                etag,
                archived: version.archived,
                deleted: Some(entry.deleted),
                restored_since: None,
            },
            None => S3RestoreTask::Skip {
                key: original.clone(),
                size: entry.size,
                etag,
                reason: format!(
                    "the copy run {run_id} made is no longer in the backup (overwritten in an unversioned bucket, or expired)"
                ),
            },
        };
        sink.push(task).await?;
    }
    Ok(())
}
