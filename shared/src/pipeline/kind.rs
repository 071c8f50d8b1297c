//! The one interface between the pipeline and a job kind.
//!
//! Each `sources/<kind>/` implements [`Kind`] once (its spec is the implementing type) and
//! gives its tasks a type of its own that implements [`KindTask`]. The planner, the worker and
//! the finalizer call these traits and never name a kind; the one list of kinds is
//! the registry in `sources/mod.rs`, which `config` reads to parse `kind = "..."`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::planner::TaskSink;
use super::{Engine, EngineError};
use crate::config::{BucketName, Job, JobError};
use crate::model::{Outcome, RunRef, Status};

/// How long a task may wait (for an archive retrieval, an export job, a publish job), counted
/// from its first wait, unless its kind says otherwise.
pub const DEFAULT_WAIT_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// What a kind sees of the run it works for.
pub struct JobContext<'a> {
    pub engine: &'a Engine,
    pub job: &'a Job,
    pub run: &'a RunRef,
    /// Planning only: nothing may be written or created.
    pub dry_run: bool,
}

/// How the plan summary counts a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskClass {
    /// Moves data: a copy, an upload, a download, a restore, an export.
    Transfer,
    /// Records a removal: a deletion mark, a deletion in a versioned bucket.
    Removal,
    /// Reported, not carried out.
    Skip,
}

/// A kind's own task type: it travels as JSON in chunks and is decoded only by its kind.
pub trait KindTask: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The name a person knows the item by (a key, a path, a workbook).
    fn key(&self) -> &str;
    /// Bytes the task moves, for chunk sizing and progress.
    fn bytes(&self) -> u64 {
        0
    }
    fn class(&self) -> TaskClass;
    /// Its line in `--dry-run`, such as `copy         "a.txt" (5 B)`.
    fn describe(&self) -> TaskLine;
    /// The manifest line of this task, before the work fills in what happened.
    fn outcome(&self, status: Status) -> Outcome;
    /// This task when a worker that started at `since` may have done it and stopped before
    /// recording it: a task that can look at the target first says so; others run again.
    fn in_doubt(self, _since: DateTime<Utc>) -> Self {
        self
    }
}

/// A task as `--dry-run` shows it: `{verb:<12} {subject} ({bytes}){tail}`. The kind picks the
/// words; the one showing it formats the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskLine {
    pub verb: &'static str,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// What follows, such as `: the reason` or ` from archive`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tail: String,
}

impl TaskLine {
    pub fn new(verb: &'static str, subject: impl Into<String>) -> TaskLine {
        TaskLine { verb, subject: subject.into(), bytes: None, tail: String::new() }
    }

    pub fn bytes(mut self, bytes: u64) -> TaskLine {
        self.bytes = Some(bytes);
        self
    }

    pub fn tail(mut self, tail: impl Into<String>) -> TaskLine {
        self.tail = tail.into();
        self
    }
}

/// A task either finishes or waits, saying how long until its next look.
// Most tasks finish: boxing the outcome would cost an allocation each for the rare wait's sake.
#[allow(clippy::large_enum_variant)]
pub enum Step<T> {
    Done(Outcome),
    Wait(T, Duration),
    /// The task became several: some parts finished, the rest wait (a failed export split in
    /// halves, its unexportable assets skipped).
    Many {
        done: Vec<Outcome>,
        waiting: Vec<T>,
        after: Duration,
    },
}

/// A task that goes back to the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub task: Value,
    /// Until the next look.
    pub after: Duration,
    /// What the manifest records if the wait runs past the kind's limit.
    pub abandoned: Outcome,
}

/// What executing a chunk produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Executed {
    pub outcomes: Vec<Outcome>,
    pub waiting: Vec<Waiting>,
}

/// The result of comparing a job's source with its backup.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// For a person to read.
    pub report: String,
    /// No drift.
    pub clean: bool,
}

/// A job kind. The implementing type is the kind's spec: the fields of its `[[jobs]]` entry
/// besides those every job shares.
#[async_trait]
pub trait Kind: Send + Sync + fmt::Debug + 'static {
    /// What `kind = "..."` says.
    fn name(&self) -> &'static str;
    fn as_any(&self) -> &dyn Any;
    /// The spec's fields as they travel in messages and print in `config check`.
    fn to_value(&self) -> Value;
    /// Checks across fields that serde cannot express: `(field, what is wrong)`.
    fn validate(&self) -> Result<(), (String, String)> {
        Ok(())
    }
    /// Where the job's records live unless `[jobs.control]` says otherwise.
    fn control_bucket(&self) -> BucketName;
    /// Where the job reads from and writes to, for the manifest and the report.
    fn endpoints(&self) -> (String, String);
    /// Fails early, naming what is missing, when the run cannot start.
    async fn check(&self, _cx: &JobContext<'_>) -> Result<(), EngineError> {
        Ok(())
    }
    /// Lists the source and pushes the tasks of this run into `sink`.
    async fn plan(&self, cx: &JobContext<'_>, sink: &mut TaskSink<'_>) -> Result<(), EngineError>;
    /// Runs one chunk of this kind's tasks. Every task ends in an outcome or waits; an error
    /// means the chunk itself is unusable and goes back to the queue.
    async fn execute(&self, cx: &JobContext<'_>, tasks: Vec<Value>) -> Result<Executed, EngineError>;
    /// Tasks per chunk at most: a worker must finish a chunk well inside its time-out.
    fn chunk_tasks(&self) -> usize {
        super::Chunker::MAX_TASKS
    }
    /// How long a task of this kind may wait in all, from its first wait.
    fn wait_limit(&self) -> Duration {
        DEFAULT_WAIT_LIMIT
    }
    /// Advances the job's state with the run's outcomes (backups; a restore keeps none).
    async fn finalize(&self, _cx: &JobContext<'_>, _outcomes: &[Outcome]) -> Result<(), EngineError> {
        Ok(())
    }
    /// The restore job of this (backup) job with `options` (the `restore` object of a planner
    /// request, or the flags of `backline restore`); `None` if the kind has no restore.
    fn restore_job(&self, _backup: &Job, _options: Value) -> Option<Result<Job, JobError>> {
        None
    }
    /// Metrics of the kind's own beyond the counts every run reports (workbooks, bundles,
    /// users), from the run's outcomes.
    fn metrics(&self, _outcomes: &[Outcome]) -> Vec<crate::notify::metrics::Metric> {
        Vec::new()
    }
    /// Where the kind's tasks write with multipart uploads and nothing but Backline writes:
    /// `(bucket, prefix)`. A run first aborts the uploads a killed run left there.
    fn upload_targets(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The keys of a chunk's tasks (as [`KindTask::key`] names them), recorded before the chunk
    /// runs so that a run resuming a killed one knows which items may be written already and
    /// unrecorded. Kinds that return none have every task of a killed chunk done again.
    fn task_keys(&self, _tasks: &[Value]) -> Vec<String> {
        Vec::new()
    }
    /// A chunk's tasks when a delivery that started at `since` stopped before recording them
    /// (see [`KindTask::in_doubt`]); `tasks_in_doubt::<T>` writes it.
    fn in_doubt(&self, tasks: Vec<Value>, _since: DateTime<Utc>) -> Vec<Value> {
        tasks
    }
    /// Compares source and backup; `None` if the kind cannot be verified.
    async fn verify(&self, _engine: &Engine, _job: &Job, _deep: bool) -> Option<Result<Verified, EngineError>> {
        None
    }
}

/// Decodes a chunk's tasks into the kind's task type; a task that does not decode makes the
/// chunk unusable (it was not written by this kind).
pub fn decode_tasks<T: KindTask>(kind: &str, tasks: Vec<Value>) -> Result<Vec<T>, EngineError> {
    tasks
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            serde_json::from_value(value)
                .map_err(|e| EngineError::Message(format!("task {i} of the chunk is not a {kind} task: {e}")))
        })
        .collect()
}

/// [`Kind::task_keys`] for a kind whose tasks are `T`; tasks that do not decode are left out.
pub fn keys_of<T: KindTask>(tasks: &[Value]) -> Vec<String> {
    tasks.iter().filter_map(|task| T::deserialize(task).ok()).map(|task| task.key().to_string()).collect()
}

/// [`Kind::in_doubt`] for a kind whose tasks are `T`; tasks that do not decode stay as they
/// are (the worker refuses them with the reason).
pub fn tasks_in_doubt<T: KindTask>(tasks: Vec<Value>, since: DateTime<Utc>) -> Vec<Value> {
    tasks
        .into_iter()
        .map(|value| match T::deserialize(&value) {
            Ok(task) => serde_json::to_value(task.in_doubt(since)).expect("tasks serialize"),
            Err(_) => value,
        })
        .collect()
}

/// Runs `tasks` with at most `concurrency` in flight, reporting each finished one to the
/// progress display.
pub async fn run_tasks<'a, T, F, Fut>(engine: &'a Engine, tasks: &'a [T], concurrency: usize, run: F) -> Executed
where
    T: KindTask,
    F: Fn(&'a T) -> Fut,
    Fut: Future<Output = Step<T>> + 'a,
{
    // The futures are made first (they do nothing until polled) rather than in a `map` over the
    // stream: that keeps the whole future `Send` for the Lambda runtime.
    let pending: Vec<Fut> = tasks.iter().map(run).collect();
    let steps: Vec<Step<T>> = stream::iter(pending)
        .buffer_unordered(concurrency.max(1))
        .inspect(|step| match step {
            Step::Done(outcome) => engine.progress.finished(outcome),
            Step::Many { done, .. } => done.iter().for_each(|outcome| engine.progress.finished(outcome)),
            Step::Wait(..) => {}
        })
        .collect()
        .await;
    let mut executed = Executed::default();
    let wait = |task: T, after| Waiting {
        task: serde_json::to_value(&task).expect("tasks serialize"),
        after,
        abandoned: task.outcome(Status::Failed),
    };
    for step in steps {
        match step {
            Step::Done(outcome) => executed.outcomes.push(outcome),
            Step::Wait(task, after) => executed.waiting.push(wait(task, after)),
            Step::Many { done, waiting, after } => {
                executed.outcomes.extend(done);
                executed.waiting.extend(waiting.into_iter().map(|task| wait(task, after)));
            }
        }
    }
    executed
}

/// A kind's spec parsed from the fields of its job entry (`kind` and the shared fields taken
/// out), for the registry.
pub fn parse_spec<S>(value: Value) -> Result<std::sync::Arc<dyn Kind>, (String, String)>
where
    S: Kind + DeserializeOwned,
{
    let spec: S = crate::config::deserialize_at(value, "")?;
    spec.validate()?;
    Ok(std::sync::Arc::new(spec))
}

/// The three methods every [`Kind`] impl writes the same way, from its registry entry:
/// `impl Kind for S3Job { kind_identity!(ENTRY); ... }`.
#[macro_export]
macro_rules! kind_identity {
    ($entry:expr) => {
        fn name(&self) -> &'static str {
            $entry.name
        }

        fn as_any(&self) -> &dyn std::any::Any {
            self
        }

        fn to_value(&self) -> serde_json::Value {
            $crate::pipeline::kind::spec_value(self)
        }
    };
}

/// A spec's fields as JSON, for [`Kind::to_value`].
pub fn spec_value<S: Serialize>(spec: &S) -> Value {
    serde_json::to_value(spec).expect("specs serialize")
}
