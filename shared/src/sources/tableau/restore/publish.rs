//! Executing a Tableau restore: each workbook's object read from its bucket (the version the
//! chosen run stored) and published to its site and project as a job; later looks check the
//! job. The token's session is taken as for backups, one at a time across workers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use super::{TableauRestoreJob, TableauRestoreTask};
use crate::aws::error_text;
use crate::model::{Outcome, Status};
use crate::pipeline::kind::{Executed, KindTask, Step, Waiting, run_tasks};
use crate::pipeline::{EngineError, JobContext};
use crate::sources::tableau::client::{
    Connection, ConnectionCredentials, INLINE_WAIT, Job, JobState, Publication, TableauClient, TableauError,
};
use crate::sources::tableau::plan::login;
use crate::sources::tableau::session;
use crate::sources::tableau::xml::{Project, User, Workbook};

/// What a chunk's publishes share: the site's projects (created as needed), workbooks and users,
/// and the connection credentials, resolved.
struct Shared {
    projects: Mutex<Vec<Project>>,
    workbooks: Vec<Workbook>,
    users: Vec<User>,
    connections: Vec<ConnectionCredentials>,
}

/// Publishes that fail for a dropped connection or a server error are tried this often again,
/// after waits doubling from [`RETRY_WAIT`].
const PUBLISH_TRIES: u32 = 4;
const RETRY_WAIT: Duration = Duration::from_secs(1);

fn failed(task: &TableauRestoreTask, detail: impl Into<String>) -> Outcome {
    task.outcome(Status::Failed).with_detail(detail)
}

fn all_wait(tasks: &[TableauRestoreTask], after: Duration) -> Executed {
    let waiting = tasks
        .iter()
        .map(|task| Waiting {
            task: serde_json::to_value(task).expect("tasks serialize"),
            after,
            abandoned: failed(task, "waited for the Tableau session or the server"),
        })
        .collect();
    Executed { outcomes: vec![], waiting }
}

pub async fn execute(
    cx: &JobContext<'_>,
    spec: &TableauRestoreJob,
    tasks: &[TableauRestoreTask],
) -> Result<Executed, EngineError> {
    let holder = format!("{}#{}", cx.run.run_id, tasks.first().map(|t| t.key()).unwrap_or_default());
    let Some(session) = session::take(cx, &spec.backup, holder, None).await? else {
        return Ok(all_wait(tasks, session::BUSY_WAIT));
    };
    let executed = execute_holding(cx, spec, tasks).await;
    session.give_back(cx).await?;
    Ok(executed)
}

async fn execute_holding(cx: &JobContext<'_>, spec: &TableauRestoreJob, tasks: &[TableauRestoreTask]) -> Executed {
    let all_failed = |detail: String| Executed {
        outcomes: tasks.iter().map(|t| failed(t, detail.clone())).collect(),
        waiting: vec![],
    };
    let backup = &spec.backup;
    let login = match login(&cx.engine.clients, backup).await {
        Ok(login) => login,
        Err(message) => return all_failed(message),
    };
    let client = match TableauClient::connect(backup.source.server.as_str(), backup.source.api_version.as_deref()).await
    {
        Ok(client) => client,
        Err(err) => return all_failed(err.to_string()),
    };
    // A restore's tasks all go to one site.
    let site = tasks.iter().find_map(|t| match t {
        TableauRestoreTask::Publish { site, .. } => Some(site.clone()),
        TableauRestoreTask::Skip { .. } => None,
    });
    let connection = match site {
        None => None,
        Some(site) => match Connection::open(&client, &login, &site, INLINE_WAIT).await {
            Ok(connection) => Some(connection),
            Err(TableauError::Throttled { retry_after, .. }) => return all_wait(tasks, retry_after),
            Err(err) => return all_failed(format!("cannot sign in to site {site:?}: {err}")),
        },
    };
    let mut connections = Vec::new();
    for secret in &spec.options.connections {
        match crate::secrets::resolve(&cx.engine.clients, secret.password.reference()).await {
            Ok(password) => connections.push(ConnectionCredentials {
                server_address: secret.server_address.clone(),
                server_port: secret.server_port.clone(),
                username: secret.username.clone(),
                password,
                embed: secret.embed,
            }),
            Err(message) => return all_failed(format!("connection credentials of {}: {message}", secret.username)),
        }
    }
    let shared = match &connection {
        Some(connection) => {
            let listed = async {
                Ok::<_, TableauError>((
                    connection.projects().await?,
                    connection.workbooks().await?,
                    connection.users().await?,
                ))
            };
            match listed.await {
                Ok((projects, workbooks, users)) => {
                    Some(Arc::new(Shared { projects: Mutex::new(projects), workbooks, users, connections }))
                }
                Err(err) => return all_failed(format!("cannot list the site: {err}")),
            }
        }
        None => None,
    };
    let (connection, shared) = (&connection, &shared);
    let executed = run_tasks(cx.engine, tasks, cx.job.concurrency, |task| async move {
        match (task, connection, shared) {
            (TableauRestoreTask::Skip { reason, .. }, _, _) => {
                Step::Done(task.outcome(Status::Skipped).with_detail(reason.clone()))
            }
            (TableauRestoreTask::Publish { .. }, Some(connection), Some(shared)) => {
                publish(cx, spec, connection, shared, task).await
            }
            _ => Step::Done(failed(task, "no session")),
        }
    })
    .await;
    if let Some(connection) = connection {
        connection.sign_out().await;
    }
    executed
}

async fn publish(
    cx: &JobContext<'_>,
    spec: &TableauRestoreJob,
    connection: &Connection,
    shared: &Shared,
    task: &TableauRestoreTask,
) -> Step<TableauRestoreTask> {
    let TableauRestoreTask::Publish {
        project,
        name,
        bucket,
        key,
        version_id,
        size,
        job_id,
        project_id,
        owner,
        published_since,
        tries,
        ..
    } = task
    else {
        unreachable!("called for publishes")
    };
    let poll = spec.options.poll_interval.0;
    let throttled = |err: &TableauError| match err {
        TableauError::Throttled { retry_after, .. } => Some(*retry_after),
        _ => None,
    };
    // A dropped connection or a server error is tried again a few times, the publish marked
    // as maybe made.
    let again = |err: &TableauError, at: DateTime<Utc>| {
        (err.transient() && *tries < PUBLISH_TRIES).then(|| Step::Wait(task.tried(at), RETRY_WAIT * (1 << *tries)))
    };
    if let Some(id) = job_id {
        return match connection.job_state(&Job { id: id.clone() }).await {
            Ok(JobState::Running) => Step::Wait(task.clone(), poll),
            Ok(JobState::Succeeded) => {
                let note = give_owner(connection, shared, name, project_id.as_deref(), owner).await;
                Step::Done(task.outcome(Status::Ok).with_detail(format!("published (job {id}); {note}")))
            }
            Ok(JobState::Failed(message)) => {
                // Refused as existing, perhaps, because an earlier publish of it landed first.
                let earlier = match (published_since, project_id) {
                    (Some(since), Some(project_id)) => {
                        landed(connection, shared, task, project_id, *since).await.ok().flatten()
                    }
                    _ => None,
                };
                Step::Done(earlier.unwrap_or_else(|| failed(task, message)))
            }
            Err(err) => match throttled(&err) {
                Some(after) => Step::Wait(task.clone(), after),
                None => Step::Done(failed(task, err.to_string())),
            },
        };
    }
    let attempt = Utc::now();
    let project_id = {
        let mut projects = shared.projects.lock().await;
        match connection.ensure_project(&mut projects, project).await {
            Ok(id) => id,
            Err(err) => {
                return again(&err, attempt)
                    .unwrap_or_else(|| Step::Done(failed(task, format!("project {}: {err}", project.join("/")))));
            }
        }
    };
    if let Some(since) = published_since {
        match landed(connection, shared, task, &project_id, *since).await {
            Ok(Some(outcome)) => return Step::Done(outcome),
            Ok(None) => {}
            Err(err) => return again(&err, attempt).unwrap_or_else(|| Step::Done(failed(task, err.to_string()))),
        }
    }
    if !spec.options.overwrite && Connection::existing(&shared.workbooks, name, &project_id).is_some() {
        return Step::Done(failed(
            task,
            format!("a workbook {name:?} exists in project {}; not overwritten (pass --overwrite)", project.join("/")),
        ));
    }
    let object =
        match cx.engine.clients.s3.get_object().bucket(bucket).key(key).set_version_id(version_id.clone()).send().await
        {
            Ok(object) => object,
            Err(err) => {
                return Step::Done(failed(task, format!("GetObject s3://{bucket}/{key}: {}", error_text(&err))));
            }
        };
    let file_name = key.rsplit('/').next().unwrap_or(key).to_string();
    let body =
        futures::stream::unfold(object.body, |mut body| async move { body.next().await.map(|piece| (piece, body)) });
    let what = Publication {
        name,
        project_id: &project_id,
        file_name: &file_name,
        size: *size,
        overwrite: spec.options.overwrite,
        connections: &shared.connections,
    };
    match connection.publish(&what, body).await {
        Ok(job) => Step::Wait(task.started(job.id, &project_id), poll),
        Err(err) => {
            if let Some(after) = throttled(&err) {
                return Step::Wait(task.clone(), after);
            }
            if let Some(step) = again(&err, attempt) {
                return step;
            }
            let earlier = match (published_since, err.status()) {
                (Some(since), Some(403 | 409)) => {
                    landed(connection, shared, task, &project_id, *since).await.ok().flatten()
                }
                _ => None,
            };
            Step::Done(earlier.unwrap_or_else(|| failed(task, err.to_string())))
        }
    }
}

/// The outcome of a publish found made: the workbook of the task's name in its project,
/// updated in or after the second of `since` (the server's clock keeps whole seconds).
async fn landed(
    connection: &Connection,
    shared: &Shared,
    task: &TableauRestoreTask,
    project_id: &str,
    since: DateTime<Utc>,
) -> Result<Option<Outcome>, TableauError> {
    let TableauRestoreTask::Publish { name, owner, .. } = task else { return Ok(None) };
    let workbooks = connection.workbooks().await?;
    let Some(found) = Connection::existing(&workbooks, name, project_id) else { return Ok(None) };
    let updated = DateTime::parse_from_rfc3339(&found.updated_at).map(|t| t.timestamp()).ok();
    if updated.is_none_or(|updated| updated < since.timestamp()) {
        return Ok(None);
    }
    let note = give_owner(connection, shared, name, Some(project_id), owner).await;
    let detail = format!("published by an attempt that left no record (updated at {}); {note}", found.updated_at);
    Ok(Some(task.outcome(Status::Ok).with_detail(detail)))
}

/// Gives the published workbook its original owner when that user is on the site; says what
/// became of the owner either way.
async fn give_owner(
    connection: &Connection,
    shared: &Shared,
    name: &str,
    project_id: Option<&str>,
    owner: &str,
) -> String {
    if owner.is_empty() {
        return "owned by the restoring user (the backup did not record an owner)".into();
    }
    let Some(user) = shared.users.iter().find(|u| u.name == owner || u.id == owner) else {
        return format!("owned by the restoring user: {owner:?} is not a user of this site");
    };
    let published = match connection.workbooks().await {
        Ok(workbooks) => workbooks.into_iter().find(|w| w.name == name && w.project_id.as_deref() == project_id),
        Err(err) => return format!("owned by the restoring user: cannot find the published workbook ({err})"),
    };
    let Some(published) = published else {
        return "owned by the restoring user: the published workbook is not listed".into();
    };
    if published.owner_id.as_deref() == Some(user.id.as_str()) {
        return format!("owner {owner}");
    }
    match connection.set_owner(&published.id, &user.id).await {
        Ok(()) => format!("owner {owner}"),
        Err(err) => format!("owned by the restoring user: setting owner {owner:?} failed ({err})"),
    }
}
