//! The planner: list the source, diff against state, hand chunks to the queue, seal the run.

use serde::Serialize;

use super::kind::{JobContext, KindTask, TaskClass, TaskLine};
use super::ledger::Opened;
use super::{Chunker, Engine, EngineError, resume, worker};
use crate::config::Job;
use crate::model::{Chunk, ChunkMessage, RunRef};
use crate::store::ControlStore;

/// What a plan found. For a dry run this is all there is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanSummary {
    pub job: String,
    pub run_id: String,
    /// The run was planned before (same job, same event time): nothing was sent again.
    pub already_planned: bool,
    pub dry_run: bool,
    pub to_copy: u64,
    pub bytes_to_copy: u64,
    pub to_mark_deleted: u64,
    pub to_skip: u64,
    pub unchanged: u64,
    pub chunks: u32,
    /// What the kind says about the plan beyond counts (a folder and its bucket, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The first tasks, one line each, for `--dry-run` to show.
    pub first_tasks: Vec<TaskLine>,
}

const FIRST_TASKS: usize = 10;

impl PlanSummary {
    fn count(&mut self, class: TaskClass, bytes: u64, describe: impl FnOnce() -> TaskLine) {
        match class {
            TaskClass::Transfer => {
                self.to_copy += 1;
                self.bytes_to_copy += bytes;
            }
            TaskClass::Removal => self.to_mark_deleted += 1,
            TaskClass::Skip => self.to_skip += 1,
        }
        if self.first_tasks.len() < FIRST_TASKS {
            self.first_tasks.push(describe());
        }
    }
}

/// Receives the tasks a source plans, groups them and sends the chunks.
pub struct TaskSink<'a> {
    engine: &'a Engine,
    job: &'a Job,
    run: &'a RunRef,
    dry_run: bool,
    chunker: Chunker,
    pending: Vec<ChunkMessage>,
    in_doubt: resume::InDoubt,
    pub summary: PlanSummary,
}

impl TaskSink<'_> {
    /// Queues a task. One whose item a killed earlier run may have written without recording
    /// it is marked in doubt ([`KindTask::in_doubt`]), so it looks at the target first.
    pub async fn push<T: KindTask>(&mut self, task: T) -> Result<(), EngineError> {
        let task = match self.in_doubt.get(task.key()) {
            Some(since) => task.in_doubt(*since),
            None => task,
        };
        let bytes = task.bytes();
        self.summary.count(task.class(), bytes, || task.describe());
        self.engine.progress.planned(task.key(), bytes);
        let value = serde_json::to_value(&task).expect("tasks serialize");
        if let Some(chunk) = self.chunker.push(value, bytes) {
            self.queue_chunk(chunk).await?;
        }
        Ok(())
    }

    pub fn unchanged(&mut self) {
        self.summary.unchanged += 1;
    }

    /// A line for the plan summary (`folder /srv -> bucket b`).
    pub fn note(&mut self, note: impl Into<String>) {
        self.summary.notes.push(note.into());
    }

    async fn queue_chunk(&mut self, chunk: Chunk) -> Result<(), EngineError> {
        if self.dry_run {
            return Ok(());
        }
        self.pending.push(ChunkMessage { run: self.run.clone(), job: self.job.clone(), chunk });
        if self.pending.len() >= self.engine.queue.batch_size() {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), EngineError> {
        if !self.pending.is_empty() {
            self.engine.queue.send_chunks(std::mem::take(&mut self.pending)).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<PlanSummary, EngineError> {
        if let Some(chunk) = self.chunker.finish() {
            self.queue_chunk(chunk).await?;
        }
        self.flush().await?;
        self.summary.chunks = self.chunker.chunks();
        Ok(self.summary)
    }
}

/// Plans one run of `job`. With `dry_run` nothing is written or sent.
pub async fn plan(engine: &Engine, job: &Job, run: &RunRef, dry_run: bool) -> Result<PlanSummary, EngineError> {
    let cx = JobContext { engine, job, run, dry_run };
    if let Err(err) = job.spec.check(&cx).await {
        if !dry_run {
            crate::notify::run_failed_to_start(engine, job, run, &err).await;
        }
        return Err(err);
    }
    let summary = PlanSummary { job: job.name.clone(), run_id: run.run_id.clone(), dry_run, ..Default::default() };
    let mut summary_notes = Vec::new();
    if !dry_run && engine.ledger.open_run(run).await? == Opened::AlreadyPlanned {
        tracing::info!(run = %run.run_id, "run was planned before; not planning it again");
        return Ok(PlanSummary { already_planned: true, ..summary });
    }
    if !dry_run {
        crate::notify::run_started(engine, job, run).await;
    }
    let mut resumed = resume::Resumed::default();
    if !dry_run {
        abort_stale_uploads(engine, job, run).await;
        if engine.options.resumable {
            resumed = resume::resume(engine, job, run).await?;
            for dead in &resumed.runs {
                summary_notes.push(format!("run {} stopped before finishing: what it did is kept", dead.run_id));
            }
        }
        let store = ControlStore::new(engine.clients.s3.clone(), &run.control);
        resume::open(&store, run).await?;
        resume::inherit(&store, run, &resumed.in_doubt).await?;
        resumed.close(&store).await;
    }
    let mut sink = TaskSink {
        engine,
        job,
        run,
        dry_run,
        chunker: Chunker::new(job.spec.kind(), job.spec.chunk_tasks(), Chunker::MAX_BYTES),
        pending: Vec::new(),
        in_doubt: resumed.in_doubt,
        summary: PlanSummary { notes: summary_notes, ..summary },
    };
    if let Err(err) = job.spec.plan(&cx, &mut sink).await {
        if !dry_run {
            // Best effort: the run is marked failed so a reader of the ledger sees why it stopped.
            let _ = engine.ledger.finish(&run.run_id, "plan_failed").await;
            crate::notify::run_failed_to_start(engine, job, run, &err).await;
        }
        return Err(err);
    }
    let summary = sink.finish().await?;
    if !dry_run {
        engine.ledger.seal(&run.run_id, summary.chunks).await?;
        // A run with nothing to do, or whose workers were faster than the seal, finalizes here.
        worker::finalize_if_complete(engine, job, run).await?;
    }
    tracing::info!(
        job = %job.name, run = %run.run_id, to_copy = summary.to_copy, bytes = summary.bytes_to_copy,
        to_mark_deleted = summary.to_mark_deleted, to_skip = summary.to_skip, unchanged = summary.unchanged,
        chunks = summary.chunks, "planned"
    );
    Ok(summary)
}

/// Aborts what a killed run of the job left open; a failure here does not stop the run.
async fn abort_stale_uploads(engine: &Engine, job: &Job, run: &RunRef) {
    let Some(age) = engine.options.abort_uploads_older_than else { return };
    let before = run.started_at - chrono::Duration::from_std(age).unwrap_or_default();
    for (bucket, prefix) in job.spec.upload_targets() {
        match crate::aws::uploads::abort_stale(&engine.clients.s3, &bucket, &prefix, before).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(job = %job.name, bucket, n, "aborted multipart uploads an earlier run left unfinished")
            }
            Err(error) => tracing::warn!(job = %job.name, %error, "could not look for unfinished multipart uploads"),
        }
    }
}
