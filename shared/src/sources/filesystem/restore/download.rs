//! Executing a folder restore: each file downloaded through a temporary file beside it, after an
//! archive retrieval where the object needs one.

use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;

use super::plan::destination;
use super::{FilesystemRestoreJob, FilesystemRestoreTask};
use crate::aws::error_text;
use crate::aws::glacier::{Retrieval, RetrievalRequest, retrieval};
use crate::model::{Outcome, Status};
use crate::pipeline::Engine;
use crate::pipeline::kind::{Executed, KindTask, Step, run_tasks};

pub async fn execute(
    engine: &Engine,
    spec: &FilesystemRestoreJob,
    concurrency: usize,
    tasks: &[FilesystemRestoreTask],
) -> Executed {
    run_tasks(engine, tasks, concurrency, |task| async move {
        match task {
            FilesystemRestoreTask::Download { .. } => download(engine, spec, task).await,
            FilesystemRestoreTask::Skip { reason, .. } => {
                Step::Done(task.outcome(Status::Skipped).with_detail(reason.clone()))
            }
            FilesystemRestoreTask::Unreadable { reason, .. } => {
                Step::Done(task.outcome(Status::Failed).with_detail(reason.clone()))
            }
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

async fn download(
    engine: &Engine,
    spec: &FilesystemRestoreJob,
    task: &FilesystemRestoreTask,
) -> Step<FilesystemRestoreTask> {
    let FilesystemRestoreTask::Download { bucket, key, version_id, size, archived, dest, restored_since } = task else {
        unreachable!("called for downloads")
    };
    let base = task.outcome(Status::Ok);
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
            // A restored file keeps its original mtime; its ctime is when it was written (the
            // rename), which says whether the run that stopped wrote it (and so this run
            // counts it, once).
            use std::os::unix::fs::MetadataExt;
            let by_stopped_run = restored_since.is_some_and(|since| existing.ctime() >= since.timestamp());
            return Step::Done(if by_stopped_run {
                Outcome { bytes: *size, ..base }.with_detail("restored by a run that stopped before recording it")
            } else {
                Outcome { status: Status::Skipped, bytes: *size, ..base }.with_detail("already restored")
            });
        }
        if !spec.options.overwrite {
            return failed(format!("{dest} exists and differs from the backup; not overwritten (pass --overwrite)"));
        }
    }
    let s3 = &engine.clients.s3;
    let version = version_id.as_deref();
    let request = RetrievalRequest { bucket, key, version, tier: spec.options.tier, days: spec.options.restore_days };
    let wait = |task: &FilesystemRestoreTask| Step::Wait(task.clone(), spec.options.poll_interval.0);
    let mut note = None;
    if *archived {
        match retrieval(s3, &request).await {
            Ok(Retrieval::Ready(tier_note)) => note = tier_note,
            Ok(Retrieval::Waiting) => return wait(task),
            Err(message) => return failed(message),
        }
    }
    let object = match s3.get_object().bucket(bucket).key(key).set_version_id(version_id.clone()).send().await {
        Ok(object) => object,
        Err(err) if aws_sdk_s3::error::ProvideErrorMetadata::code(&err) == Some("InvalidObjectState") => {
            // Archived since the plan looked (a lifecycle rule moved it): ask for it, and look
            // again later as an archived object.
            let archived_task = task.clone().archived();
            return match retrieval(s3, &request).await {
                Ok(_) => wait(&archived_task),
                Err(message) => failed(message),
            };
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
    fn mtime_metadata_parses_back() {
        let time = parse_mtime(&crate::sources::filesystem::mtime_metadata(1_700_000_000_123_456_789)).unwrap();
        assert_eq!(time.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos(), 1_700_000_000_123_456_789);
    }
}
