//! A folder's state: what the last run uploaded, by key, with size and mtime. It lives in the
//! control location (so another host, or a Lambda on EFS, can continue), optionally cached on
//! local disk (`--cache DIR`), and can be rebuilt from the bucket (`--reset`).

use std::path::{Path, PathBuf};

use super::units::Unit;
use crate::aws::error_text;
use crate::pipeline::{Engine, EngineError};
use crate::store::{ControlStore, KnownEntries, State, StateEntry, StateReader};

/// The state's name in the control location: `state/{job}/{bucket}.jsonl`.
pub fn name(job: &str, bucket: &str) -> String {
    format!("{job}/{bucket}")
}

fn cache_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let base = dir.join(name);
    (base.with_extension("jsonl"), base.with_extension("etag"))
}

/// The state's entries in key order, read as the plan walks: from the local cache when it is
/// the same version as the stored one (a stale cache is first brought up to date on disk),
/// else streamed from the control location. Never the whole state in memory.
pub async fn load(
    engine: &Engine,
    store: &ControlStore,
    name: &str,
    bucket: &str,
) -> Result<KnownEntries, EngineError> {
    let key = store.key(&ControlStore::state_key(name));
    let etag = match engine.clients.s3.head_object().bucket(store.bucket()).key(&key).send().await {
        Ok(head) => head.e_tag().map(str::to_string),
        Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
            return Ok(KnownEntries::listed(Vec::new()));
        }
        Err(err) => {
            return Err(EngineError::service(
                format!("HeadObject on state s3://{}/{key}", store.bucket()),
                error_text(&err),
            ));
        }
    };
    let reader = match (&engine.options.state_cache, &etag) {
        (Some(dir), Some(etag)) => cached(engine, store, dir, name, &key, etag).await,
        _ => None,
    };
    let reader = match reader {
        Some(reader) => Some(reader),
        None => store.open_state(name).await?,
    };
    Ok(KnownEntries::streamed(reader.and_then(|reader| matching(reader, bucket)), store.bucket(), &key))
}

/// The state read from the local cache, downloaded into it first when the cache is not of
/// version `etag`; `None` when the cache cannot be used (then the state streams from S3).
async fn cached(
    engine: &Engine,
    store: &ControlStore,
    dir: &Path,
    name: &str,
    key: &str,
    etag: &str,
) -> Option<StateReader> {
    let (state_path, etag_path) = cache_paths(dir, name);
    if std::fs::read_to_string(&etag_path).ok().as_deref() != Some(etag) {
        let response =
            engine.clients.s3.get_object().bucket(store.bucket()).key(key).if_match(etag).send().await.ok()?;
        let stored = response.e_tag().map(str::to_string);
        if let Err(err) = download(response.body, &state_path).await {
            tracing::warn!(path = %state_path.display(), error = %err, "could not write the state cache");
            return None;
        }
        std::fs::write(&etag_path, stored.as_deref().unwrap_or(etag)).ok()?;
    } else {
        tracing::debug!(name, "state from the local cache");
    }
    StateReader::from_file(&state_path).await.ok()
}

/// Streams `body` into `path`, through a temporary file so a reader never sees half of it.
async fn download(mut body: aws_sdk_s3::primitives::ByteStream, path: &Path) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let partial = path.with_extension("jsonl.partial");
    let mut file = tokio::fs::File::create(&partial).await?;
    while let Some(bytes) = body.next().await {
        file.write_all(&bytes.map_err(std::io::Error::other)?).await?;
    }
    file.flush().await?;
    drop(file);
    tokio::fs::rename(&partial, path).await
}

fn matching(reader: StateReader, bucket: &str) -> Option<StateReader> {
    if reader.source == source(bucket) {
        Some(reader)
    } else {
        tracing::warn!(old = %reader.source, bucket, "the state is of another bucket; planning a full backup");
        None
    }
}

/// The `source` a folder's state records: its bucket, whose name derives from the folder.
pub fn source(bucket: &str) -> String {
    format!("s3://{bucket}")
}

/// Keeps a copy of the state on local disk, keyed by the stored object's ETag. Best effort: a
/// cache that cannot be written only costs a download next time.
pub fn write_cache(dir: &Path, name: &str, state: &State, etag: &str) {
    let (state_path, etag_path) = cache_paths(dir, name);
    let written = state_path
        .parent()
        .map(std::fs::create_dir_all)
        .unwrap_or(Ok(()))
        .and_then(|_| std::fs::write(&state_path, state.encode()))
        .and_then(|_| std::fs::write(&etag_path, etag));
    if let Err(err) = written {
        tracing::warn!(path = %state_path.display(), error = %err, "could not write the state cache");
    }
}

/// Rebuilds the state from the bucket: a file whose key is in the bucket with the same size
/// counts as backed up (with its mtime now), so nothing is uploaded again. It is held in memory
/// (a `--reset` is rare).
pub async fn rebuild(
    engine: &Engine,
    store: &ControlStore,
    unit: &Unit,
    name: &str,
    dry_run: bool,
) -> Result<KnownEntries, EngineError> {
    let mut entries = Vec::new();
    let mut pages = engine.clients.s3.list_objects_v2().bucket(&unit.bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|e| EngineError::service(format!("ListObjectsV2 on bucket `{}`", unit.bucket), error_text(&e)))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let size = object.size().unwrap_or(0).max(0) as u64;
            let on_disk = std::fs::metadata(format!("/{key}")).ok().filter(|m| m.is_file() && m.len() == size);
            let mtime = on_disk.map(|m| super::plan::mtime_ns(&m));
            let etag = object.e_tag().unwrap_or_default().to_string();
            entries.push(StateEntry { key: key.to_string(), size, etag, deleted: false, mtime, untagged: false });
        }
    }
    if !dry_run {
        let state = State { source: source(&unit.bucket), run_id: "reset".into(), entries: entries.clone() };
        let etag = store.write_state(name, &state).await?;
        if let (Some(dir), Some(etag)) = (&engine.options.state_cache, etag) {
            write_cache(dir, name, &state, &etag);
        }
    }
    tracing::info!(bucket = %unit.bucket, objects = entries.len(), "state rebuilt from the bucket");
    Ok(KnownEntries::listed(entries))
}
