//! Executing restore tasks: copies out of the backup, after an archive retrieval where needed.

use super::{S3RestoreJob, S3RestoreTask};
use crate::aws::copy::{self, CopyFailure, CopyRequest, Tags, object_tags};
use crate::aws::error_text;
use crate::aws::glacier::{Retrieval, RetrievalRequest, retrieval};
use crate::model::{Outcome, Status};
use crate::pipeline::Engine;
use crate::pipeline::kind::{Executed, KindTask, Step, run_tasks};
use crate::sources::s3::copy_outcome;
use crate::sources::s3::tags::{DELETED, DELETED_AT};

/// Runs restore tasks; those whose object is still being retrieved wait.
pub async fn execute(engine: &Engine, spec: &S3RestoreJob, concurrency: usize, tasks: &[S3RestoreTask]) -> Executed {
    run_tasks(engine, tasks, concurrency, |task| async move {
        match task {
            S3RestoreTask::Restore { .. } => restore_one(engine, spec, task).await,
            S3RestoreTask::Skip { reason, size, .. } => {
                Step::Done(Outcome { bytes: *size, ..task.outcome(Status::Skipped).with_detail(reason.clone()) })
            }
        }
    })
    .await
}

/// Multipart ETags depend on the part size, so two copies of one object can differ in ETag.
fn same_object(size_a: u64, etag_a: &str, size_b: u64, etag_b: &str) -> bool {
    size_a == size_b && (etag_a == etag_b || (etag_a.contains('-') && etag_b.contains('-')))
}

async fn restore_one(engine: &Engine, spec: &S3RestoreJob, task: &S3RestoreTask) -> Step<S3RestoreTask> {
    let S3RestoreTask::Restore { key, version_id, target_key, size, etag, archived, deleted, restored_since } = task
    else {
        unreachable!("called for restore tasks")
    };
    let s3 = &engine.clients.s3;
    let base = task.outcome(Status::Ok);
    let backup_bucket = spec.backup.target.bucket.as_str();
    let to = spec.options.to_bucket.as_str();

    // Never overwrite what differs, unless asked; what is already there is done.
    match s3.head_object().bucket(to).key(target_key).send().await {
        Ok(head) => {
            let there = head.content_length().unwrap_or(0).max(0) as u64;
            if same_object(there, head.e_tag().unwrap_or_default(), *size, etag) {
                // S3 keeps whole seconds: a copy written in the second the stopped run started
                // in, or later, is that run's (the manifests count it once, here).
                let written = head.last_modified().map(|t| t.secs());
                let by_stopped_run = restored_since.is_some_and(|since| written >= Some(since.timestamp()));
                return Step::Done(if by_stopped_run {
                    Outcome { bytes: *size, target_etag: head.e_tag().map(str::to_string), ..base }
                        .with_detail("restored by a run that stopped before recording it")
                } else {
                    Outcome { status: Status::Skipped, bytes: *size, ..base }.with_detail("already restored")
                });
            }
            if !spec.options.overwrite {
                return Step::Done(Outcome { status: Status::Failed, ..base }.with_detail(
                    "exists in the target bucket and differs from the backup; not overwritten (pass --overwrite)",
                ));
            }
        }
        Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {}
        Err(err) => {
            return Step::Done(
                Outcome { status: Status::Failed, ..base }
                    .with_detail(format!("HeadObject on the target: {}", error_text(&err))),
            );
        }
    }

    let version = version_id.as_deref();
    let tags = match deleted {
        Some(false) => Tags::Copy,
        // A deleted object comes back with its own tags, without the deletion marks.
        Some(true) | None => match object_tags(s3, backup_bucket, key, version).await {
            Ok(tags) => {
                let is_deleted = tags.iter().any(|(k, v)| k == DELETED && v == "True");
                if is_deleted && !spec.options.include_deleted {
                    return Step::Done(
                        Outcome { status: Status::Skipped, ..base }
                            .with_detail("tagged Deleted=True in the backup (pass --include-deleted to restore it)"),
                    );
                }
                Tags::Set(tags.into_iter().filter(|(k, _)| k != DELETED && k != DELETED_AT).collect())
            }
            Err(failure) => return Step::Done(copy_outcome(base, Err(failure))),
        },
    };

    let mut note = None;
    if *archived {
        let request = RetrievalRequest {
            bucket: backup_bucket,
            key,
            version,
            tier: spec.options.tier,
            days: spec.options.restore_days,
        };
        match retrieval(s3, &request).await {
            Ok(Retrieval::Ready(tier_note)) => note = tier_note,
            Ok(Retrieval::Waiting) => return Step::Wait(task.clone(), spec.options.poll_interval.0),
            Err(message) => return Step::Done(Outcome { status: Status::Failed, ..base }.with_detail(message)),
        }
    }

    let request = CopyRequest {
        source_bucket: backup_bucket,
        source_key: key,
        source_version: version,
        if_match: None,
        target_bucket: to,
        target_key,
        size: *size,
        multipart_threshold: spec.backup.target.multipart_threshold.0,
        storage_class: None,
        kms_key_id: None,
        tags,
    };
    let result = copy::copy(s3, &request).await;
    if result == Err(CopyFailure::Archived) {
        // Archived since the plan looked, or the retrieval expired: ask for it on the next look.
        return Step::Wait(task.clone().archived(), spec.options.poll_interval.0);
    }
    let outcome = copy_outcome(base, result);
    Step::Done(match note {
        Some(note) if outcome.status == Status::Ok => outcome.with_detail(note),
        _ => outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etags_of_the_same_size_count_as_the_same_object() {
        assert!(same_object(5, "\"a\"", 5, "\"a\""));
        assert!(!same_object(5, "\"a\"", 5, "\"b\""));
        assert!(same_object(5, "\"a-2\"", 5, "\"b-3\""));
        assert!(!same_object(5, "\"a\"", 6, "\"a\""));
    }
}
