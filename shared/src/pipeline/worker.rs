//! The worker: run one chunk's tasks, record their outcomes, count the chunk once, and send
//! the finalize message when it was the last.

use super::ledger::ChunkDone;
use super::queue::MAX_DELAY;
use super::{Engine, EngineError};
use crate::config::{Job, JobSpec};
use crate::model::{Chunk, ChunkMessage, FinalizeMessage, Outcome, RunRef, Status, WIRE_VERSION, WorkMessage};

/// How often a task may go back to wait for an archive retrieval: at the default 15-minute
/// interval, five days; Deep Archive's Bulk tier promises 48 hours.
pub const MAX_WAITS: u32 = 480;
use crate::sources;
use crate::store::ControlStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkResult {
    /// The chunk ran; `failed` of its tasks failed (recorded in the outcomes, not retried).
    Done { tasks: usize, failed: usize, waiting: usize },
    /// The chunk was done before (a redelivered message): nothing ran again.
    Duplicate,
}

/// Parses a work-queue body, resolving a claim-check from the control location.
pub async fn read_work_message(engine: &Engine, body: &str) -> Result<ChunkMessage, EngineError> {
    let message: WorkMessage =
        serde_json::from_str(body).map_err(|e| EngineError::Message(format!("not a Backline work message: {e}")))?;
    if message.version() != WIRE_VERSION {
        return Err(EngineError::Message(format!(
            "message version {} is not supported (expected {WIRE_VERSION})",
            message.version()
        )));
    }
    match message {
        WorkMessage::Chunk { message, .. } => Ok(*message),
        WorkMessage::ClaimCheck { run, key, .. } => {
            let store = ControlStore::new(engine.clients.s3.clone(), &run.control);
            store.get_json(&key).await?.ok_or_else(|| {
                EngineError::Message(format!("claim-check s3://{}/{key} does not exist", store.bucket()))
            })
        }
    }
}

pub async fn handle_body(engine: &Engine, body: &str) -> Result<ChunkResult, EngineError> {
    let message = read_work_message(engine, body).await?;
    run_chunk(engine, &message).await
}

pub async fn run_chunk(engine: &Engine, message: &ChunkMessage) -> Result<ChunkResult, EngineError> {
    let ChunkMessage { run, job, chunk } = message;
    if engine.ledger.is_chunk_done(&run.run_id, chunk.seq, chunk.attempt).await? {
        tracing::info!(run = %run.run_id, chunk = chunk.seq, attempt = chunk.attempt, "chunk already done; skipping redelivery");
        // The earlier delivery may have stopped between counting and finalizing.
        finalize_if_complete(engine, job, run).await?;
        return Ok(ChunkResult::Duplicate);
    }
    let (outcomes, waiting) = match &job.spec {
        JobSpec::S3(spec) => (sources::s3::execute(engine, spec, job.concurrency, &chunk.tasks).await, Vec::new()),
        JobSpec::S3Restore(spec) => sources::s3::restore::execute(engine, spec, job.concurrency, &chunk.tasks).await,
        JobSpec::Filesystem(spec) => {
            (sources::filesystem::execute(engine, spec, job.concurrency, &chunk.tasks).await, Vec::new())
        }
        JobSpec::FilesystemRestore(spec) => {
            sources::filesystem::restore::execute(engine, spec, job.concurrency, &chunk.tasks).await
        }
    };
    // A retrieval that never finishes must not keep the run open forever.
    let (outcomes, waiting) = if chunk.attempt >= MAX_WAITS && !waiting.is_empty() {
        let mut outcomes = outcomes;
        outcomes.extend(waiting.iter().map(|task| {
            Outcome::for_task(task, Status::Failed)
                .with_detail(format!("still not retrieved from the archive after {MAX_WAITS} checks"))
        }));
        (outcomes, Vec::new())
    } else {
        (outcomes, waiting)
    };
    let failed = outcomes.iter().filter(|o| o.status == Status::Failed).count();
    ControlStore::new(engine.clients.s3.clone(), &run.control)
        .put_outcomes(run, chunk.seq, chunk.attempt, &outcomes)
        .await?;
    let waiting_count = waiting.len();
    // Tasks of an attempt after the first were all waiting when it was sent.
    let was_waiting = if chunk.attempt > 0 { chunk.tasks.len() } else { 0 };
    let waiting_delta = waiting_count as i64 - was_waiting as i64;
    if !waiting.is_empty() {
        // Sent before the chunk is counted: if counting fails, the redelivery finds the next
        // attempt already queued, and its ledger marker keeps it from running twice.
        let next = Chunk { seq: chunk.seq, attempt: chunk.attempt + 1, tasks: waiting };
        let delay = match &job.spec {
            JobSpec::S3Restore(spec) => spec.options.poll_interval.0,
            JobSpec::FilesystemRestore(spec) => spec.options.poll_interval.0,
            JobSpec::S3(_) | JobSpec::Filesystem(_) => MAX_DELAY,
        };
        engine.queue.send_later(ChunkMessage { run: run.clone(), job: job.clone(), chunk: next }, delay).await?;
    }
    engine.progress.waiting(waiting_delta);
    let done = ChunkDone { seq: chunk.seq, attempt: chunk.attempt, requeued: waiting_count > 0, waiting_delta };
    if engine.ledger.complete_chunk(&run.run_id, done).await? {
        finalize_if_complete(engine, job, run).await?;
    }
    Ok(ChunkResult::Done { tasks: outcomes.len(), failed, waiting: waiting_count })
}

/// Sends the finalize message if this caller is the one to do it.
pub async fn finalize_if_complete(engine: &Engine, job: &Job, run: &RunRef) -> Result<(), EngineError> {
    let Some(chunks) = engine.ledger.claim_finalize(&run.run_id).await? else {
        return Ok(());
    };
    let message = FinalizeMessage { version: WIRE_VERSION, run: run.clone(), job: job.clone(), chunks };
    if let Err(err) = engine.queue.send_finalize(message).await {
        // Give the claim back so a redelivery of this chunk can try again.
        if let Err(release) = engine.ledger.release_finalize(&run.run_id).await {
            tracing::error!(run = %run.run_id, error = %release, "could not release the finalize claim");
        }
        return Err(err);
    }
    Ok(())
}
