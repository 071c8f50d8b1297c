//! Executing Tableau tasks: downloads streamed into S3 with the workbook's tags, refreshes,
//! and deletion marks.
//!
//! A personal access token holds one session at a time, so a worker first takes the token's
//! slot in the ledger (one holder across every worker and run) and its tasks wait in the queue
//! while another worker holds it. All of a chunk's tasks on one site share one session.

use std::time::Duration;

use aws_sdk_s3::types::{MetadataDirective, Tag, Tagging, TaggingDirective};
use chrono::Utc;
use futures::TryStreamExt;

use super::client::{Connection, Login, TableauClient, TableauError};
use super::config::TableauJob;
use super::plan::login;
use super::session;
use super::task::{Placed, TableauTask};
use crate::aws::copy::object_tags;
use crate::aws::error_text;
use crate::aws::s3::copy_source;
use crate::aws::stream_upload::{Destination, PART_SIZE, stream_to_s3};
use crate::model::{Outcome, Status};
use crate::pipeline::kind::{Executed, KindTask, Step, Waiting, run_tasks};
use crate::pipeline::{Engine, EngineError, JobContext};
use crate::sources::s3::deleted_tags;

fn waiting(task: &TableauTask, after: Duration) -> Waiting {
    Waiting {
        task: serde_json::to_value(task).expect("tasks serialize"),
        after,
        abandoned: task.outcome(Status::Failed).with_detail("waited for the Tableau session or the server"),
    }
}

fn failed(task: &TableauTask, detail: impl Into<String>) -> Outcome {
    task.outcome(Status::Failed).with_detail(detail)
}

pub async fn execute(cx: &JobContext<'_>, spec: &TableauJob, tasks: &[TableauTask]) -> Result<Executed, EngineError> {
    let holder = format!("{}#{}", cx.run.run_id, tasks.first().map(|t| t.key()).unwrap_or_default());
    let Some(session) = session::take(cx, spec, holder, None).await? else {
        tracing::info!(tasks = tasks.len(), "another worker holds the Tableau session; waiting");
        let waiting = tasks.iter().map(|t| waiting(t, session::BUSY_WAIT)).collect();
        return Ok(Executed { outcomes: vec![], waiting });
    };
    let executed = execute_holding(cx, spec, tasks).await;
    session.give_back(cx).await?;
    Ok(executed)
}

async fn execute_holding(cx: &JobContext<'_>, spec: &TableauJob, tasks: &[TableauTask]) -> Executed {
    let all_failed = |detail: String| Executed {
        outcomes: tasks.iter().map(|t| failed(t, detail.clone())).collect(),
        waiting: vec![],
    };
    let login = match login(&cx.engine.clients, spec).await {
        Ok(login) => login,
        Err(message) => return all_failed(message),
    };
    let client = match TableauClient::connect(spec.source.server.as_str(), spec.source.api_version.as_deref()).await {
        Ok(client) => client,
        Err(err) => return all_failed(err.to_string()),
    };
    let mut executed = Executed::default();
    // Tasks arrive site by site; each site gets one session.
    let mut start = 0;
    while start < tasks.len() {
        let site = tasks[start].site().to_string();
        let end = start + tasks[start..].iter().take_while(|t| t.site() == site).count();
        let group = &tasks[start..end];
        let done = execute_site(cx, spec, &client, &login, &site, group).await;
        executed.outcomes.extend(done.outcomes);
        executed.waiting.extend(done.waiting);
        start = end;
    }
    executed
}

async fn execute_site(
    cx: &JobContext<'_>,
    spec: &TableauJob,
    client: &TableauClient,
    login: &Login,
    site: &str,
    tasks: &[TableauTask],
) -> Executed {
    // Downloads return a long 429 to the queue rather than waiting here.
    let connection = match Connection::open(client, login, site, Duration::ZERO).await {
        Ok(connection) => connection,
        Err(TableauError::Throttled { retry_after, .. }) => {
            return Executed { outcomes: vec![], waiting: tasks.iter().map(|t| waiting(t, retry_after)).collect() };
        }
        Err(err) => {
            let detail = format!("site could not be read: {err}");
            return Executed { outcomes: tasks.iter().map(|t| failed(t, detail.clone())).collect(), waiting: vec![] };
        }
    };
    let connection = &connection;
    let executed = run_tasks(cx.engine, tasks, cx.job.concurrency, |task| async move {
        match task {
            TableauTask::Download { at, tags, revision, downloaded_since } => {
                if downloaded_since.is_some()
                    && let Some(found) = already_downloaded(cx.engine, task, at, tags).await
                {
                    return Step::Done(found);
                }
                download(cx.engine, spec, connection, task, at, tags, *revision).await
            }
            TableauTask::Refresh { at } => Step::Done(refresh(cx.engine, task, at).await),
            TableauTask::MarkDeleted { at } => Step::Done(mark_deleted(cx.engine, task, at).await),
            TableauTask::Unreadable { reason, .. } => Step::Done(failed(task, reason.clone())),
        }
    })
    .await;
    connection.sign_out().await;
    executed
}

/// The object a run that stopped may have stored without recording it: the workbook's key
/// (`.twbx` or `.twb`) with every tag of this download and no deletion mark. The tags carry the
/// workbook's `UpdatedAt`, and an object and its tags are written in one request, so a match
/// is this very version, whole.
async fn already_downloaded(
    engine: &Engine,
    task: &TableauTask,
    at: &Placed,
    tags: &[(String, String)],
) -> Option<Outcome> {
    let s3 = &engine.clients.s3;
    for extension in ["twbx", "twb"] {
        let key = format!("{}.{extension}", at.key);
        let Ok(head) = s3.head_object().bucket(&at.bucket).key(&key).send().await else { continue };
        let found = object_tags(s3, &at.bucket, &key, None).await.ok()?;
        let marked_deleted = found.iter().any(|(k, v)| k == "Deleted" && v == "True");
        if marked_deleted || !tags.iter().all(|tag| found.contains(tag)) {
            return None;
        }
        return Some(
            Outcome {
                bytes: head.content_length().unwrap_or(0).max(0) as u64,
                target_key: Some(key),
                target_etag: head.e_tag().map(str::to_string),
                method: Some("download".into()),
                ..task.outcome(Status::Ok)
            }
            .with_detail("in the backup already: stored by a run that stopped before recording it"),
        );
    }
    None
}

/// A download that failed because of its extract is tried again without it.
fn extract_refused(err: &TableauError) -> bool {
    matches!(err.status(), Some(403 | 413)) || matches!(err, TableauError::Transport { .. })
}

async fn download(
    engine: &Engine,
    spec: &TableauJob,
    connection: &Connection,
    task: &TableauTask,
    at: &Placed,
    tags: &[(String, String)],
    revision: Option<u32>,
) -> Step<TableauTask> {
    let mut note = None;
    let fetched = match connection.content(&at.id, revision, spec.include_extract).await {
        Err(err) if spec.include_extract && extract_refused(&err) => {
            note = Some(format!("downloaded without its extract ({err})"));
            connection.content(&at.id, revision, false).await
        }
        other => other,
    };
    let (response, filename) = match fetched {
        Ok(fetched) => fetched,
        Err(TableauError::Throttled { retry_after, .. }) => return Step::Wait(task.clone(), retry_after),
        Err(err) if err.status() == Some(404) => {
            return Step::Done(task.outcome(Status::Skipped).with_detail("gone from the server during the run"));
        }
        Err(err) => return Step::Done(failed(task, err.to_string())),
    };
    let extension = match filename.as_deref().and_then(|n| n.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase()) {
        Some(e) if e == "twb" || e == "twbx" => e,
        _ => "twbx".to_string(),
    };
    let key = format!("{}.{extension}", at.key);
    let to = Destination {
        bucket: &at.bucket,
        key: &key,
        tags,
        storage_class: spec.target.as_ref().and_then(|t| t.storage_class).map(|c| c.as_str()),
        content_type: "application/octet-stream",
    };
    let body = response.bytes_stream().map_err(|e| e.to_string());
    match stream_to_s3(&engine.clients.s3, &to, body, PART_SIZE).await {
        Ok(uploaded) => {
            let outcome = Outcome {
                bytes: uploaded.bytes,
                target_key: Some(key),
                target_etag: uploaded.etag,
                method: Some("download".into()),
                ..task.outcome(Status::Ok)
            };
            Step::Done(match note {
                Some(note) => outcome.with_detail(note),
                None => outcome,
            })
        }
        Err(message) => Step::Done(failed(task, message)),
    }
}

/// Copies the object onto itself (a new version with a new LastModified), keeping its tags.
async fn refresh(engine: &Engine, task: &TableauTask, at: &Placed) -> Outcome {
    let result = engine
        .clients
        .s3
        .copy_object()
        .bucket(&at.bucket)
        .key(&at.key)
        .copy_source(copy_source(&at.bucket, &at.key))
        .metadata_directive(MetadataDirective::Replace)
        .metadata("refreshed", Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .tagging_directive(TaggingDirective::Copy)
        .send()
        .await;
    match result {
        Ok(_) => task.outcome(Status::Ok),
        Err(err) => failed(task, format!("CopyObject: {}", error_text(&err))),
    }
}

async fn mark_deleted(engine: &Engine, task: &TableauTask, at: &Placed) -> Outcome {
    let s3 = &engine.clients.s3;
    let existing = match object_tags(s3, &at.bucket, &at.key, None).await {
        Ok(tags) => tags,
        Err(failure) => return failed(task, format!("GetObjectTagging: {failure:?}")),
    };
    let tag_set: Vec<Tag> = deleted_tags(existing, Utc::now())
        .into_iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    let tagging = Tagging::builder().set_tag_set(Some(tag_set)).build().expect("tag set is given");
    match s3.put_object_tagging().bucket(&at.bucket).key(&at.key).tagging(tagging).send().await {
        Ok(_) => task.outcome(Status::Ok),
        Err(err) => failed(task, format!("PutObjectTagging: {}", error_text(&err))),
    }
}
