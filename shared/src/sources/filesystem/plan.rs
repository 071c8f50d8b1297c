//! Planning a filesystem backup: a parallel walk of each folder, merged as a stream with the
//! folder's state streamed as it is read (both in key order), so a tree of millions of files
//! is planned in bounded memory.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use tokio::sync::mpsc;

use super::units::{Unit, units};
use super::{FilesystemJob, FilesystemTask, buckets, state};
use crate::config::Job;
use crate::pipeline::planner::TaskSink;
use crate::pipeline::{Engine, EngineError};
use crate::store::{ControlStore, StateEntry};

/// The order the walk yields keys in, and the state is stored in: byte order of the keys. A
/// folder sorts among its siblings as its name followed by `/`, which is where its files' keys
/// fall.
pub fn sort_name(name: &std::ffi::OsStr, is_folder: bool) -> String {
    let mut name = name.to_string_lossy().into_owned();
    if is_folder {
        name.push('/');
    }
    name
}

/// What the walk found at one path.
#[derive(Debug)]
pub enum Found {
    File {
        key: String,
        path: String,
        size: u64,
        mtime_ns: i64,
    },
    /// Not backed up, and not an error (special files, links to folders).
    Skip {
        key: String,
        reason: String,
    },
    /// Could not be read: reported as a failed task.
    Unreadable {
        key: String,
        reason: String,
    },
}

impl Found {
    fn key(&self) -> &str {
        match self {
            Found::File { key, .. } | Found::Skip { key, .. } | Found::Unreadable { key, .. } => key,
        }
    }
}

/// An object key is the file's absolute path without its leading `/`.
pub fn key_of(path: &str) -> String {
    path.trim_start_matches('/').to_string()
}

pub fn mtime_ns(metadata: &std::fs::Metadata) -> i64 {
    metadata.mtime().saturating_mul(1_000_000_000).saturating_add(metadata.mtime_nsec())
}

pub(super) fn classify(path: PathBuf, file_type: std::fs::FileType) -> Option<Found> {
    let display = path.to_string_lossy().into_owned();
    let key = key_of(&display);
    if file_type.is_dir() {
        return None;
    }
    if file_type.is_symlink() {
        return Some(match std::fs::metadata(&path) {
            Ok(target) if target.is_file() => {
                Found::File { key, size: target.len(), mtime_ns: mtime_ns(&target), path: display }
            }
            Ok(target) if target.is_dir() => {
                Found::Skip { key, reason: "symbolic link to a folder, not followed".into() }
            }
            Ok(_) => Found::Skip { key, reason: "symbolic link to a special file, not read".into() },
            Err(e) => Found::Skip { key, reason: format!("broken symbolic link: {e}") },
        });
    }
    let special = if file_type.is_fifo() {
        Some("FIFO")
    } else if file_type.is_socket() {
        Some("socket")
    } else if file_type.is_block_device() {
        Some("block device")
    } else if file_type.is_char_device() {
        Some("character device")
    } else {
        None
    };
    if let Some(kind) = special {
        return Some(Found::Skip { key, reason: format!("special file ({kind}), not read") });
    }
    Some(match std::fs::symlink_metadata(&path) {
        Ok(metadata) => Found::File { key, size: metadata.len(), mtime_ns: mtime_ns(&metadata), path: display },
        Err(e) => Found::Unreadable { key, reason: e.to_string() },
    })
}

/// Walks `folder` on a blocking thread (directory reads run in parallel, a bounded number ahead),
/// sending what it finds in key order through a bounded channel.
pub fn walk(folder: String) -> mpsc::Receiver<Found> {
    let (tx, rx) = mpsc::channel(1024);
    tokio::task::spawn_blocking(move || {
        super::walk::walk(std::path::Path::new(&folder), |found| tx.blocking_send(found).is_ok());
    });
    rx
}

pub async fn plan(
    engine: &Engine,
    job: &Job,
    spec: &FilesystemJob,
    dry_run: bool,
    sink: &mut TaskSink<'_>,
) -> Result<(), EngineError> {
    let units = units(spec).map_err(EngineError::Input)?;
    let s3 = &engine.clients.s3;
    let store = ControlStore::new(s3.clone(), &job.control());
    for unit in &units {
        if !std::path::Path::new(&unit.folder).is_dir() {
            return Err(EngineError::Input(format!("folder {} does not exist or is not a folder", unit.folder)));
        }
        if !dry_run {
            let changed = buckets::ensure(s3, &unit.bucket, &spec.target).await?;
            if !changed.is_empty() {
                tracing::info!(bucket = %unit.bucket, changed = ?changed, "bucket settings applied");
            }
        }
        sink.note(format!("folder {} -> bucket {}", unit.folder, unit.bucket));
        plan_unit(engine, job, &store, unit, dry_run, sink).await?;
    }
    Ok(())
}

async fn plan_unit(
    engine: &Engine,
    job: &Job,
    store: &ControlStore,
    unit: &Unit,
    dry_run: bool,
    sink: &mut TaskSink<'_>,
) -> Result<(), EngineError> {
    let name = state::name(&job.name, &unit.bucket);
    // The walk and the state come in the same key order: they merge as they are read.
    let mut known = if engine.options.reset_state {
        state::rebuild(engine, store, unit, &name, dry_run).await?
    } else {
        state::load(engine, store, &name, &unit.bucket).await?
    };
    let mut found = walk(unit.folder.clone());
    while let Some(item) = found.recv().await {
        while let Some(gone) = known.next_if(|e| e.key.as_str() < item.key()).await? {
            sink.push(FilesystemTask::Delete { bucket: unit.bucket.clone(), key: gone.key }).await?;
        }
        let previous = known.next_if(|e| e.key == item.key()).await?;
        match item {
            Found::File { key, path, size, mtime_ns } => {
                if previous.is_some_and(|p: StateEntry| p.size == size && p.mtime == Some(mtime_ns)) {
                    sink.unchanged();
                } else {
                    let bucket = unit.bucket.clone();
                    let upload = FilesystemTask::Upload { path, bucket, key, size, mtime_ns, uploaded_since: None };
                    sink.push(upload).await?;
                }
            }
            Found::Skip { key, reason } => {
                sink.push(FilesystemTask::Skip { key, size: 0, etag: String::new(), reason }).await?;
            }
            Found::Unreadable { key, reason } => sink.push(FilesystemTask::Unreadable { key, reason }).await?,
        }
    }
    while let Some(gone) = known.next_if(|_| true).await? {
        sink.push(FilesystemTask::Delete { bucket: unit.bucket.clone(), key: gone.key }).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_in_sort_name_order_yields_keys_in_byte_order() {
        use std::ffi::OsStr;
        let root = std::env::temp_dir().join(format!("backline-order-{}", std::process::id()));
        for dir in ["x/a", "x/a/b", "x/a-b"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in ["x/a.txt", "x/a/b/c", "x/a/z", "x/a-b/d", "x/a0"] {
            std::fs::write(root.join(file), b"1").unwrap();
        }
        let mut keys = Vec::new();
        super::super::walk::walk(&root, |found| {
            keys.push(found.key().to_string());
            true
        });
        std::fs::remove_dir_all(&root).unwrap();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "the walk's keys are in byte order, as the state is");
        assert_eq!(keys.len(), 5);
        assert!(sort_name(OsStr::new("a"), true) > sort_name(OsStr::new("a.txt"), false));
    }
}
