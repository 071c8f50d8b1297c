//! `backline run`: planner, workers and finalizer in one process, joined by channels, with an
//! in-memory ledger. The stages are the same functions the Lambda functions call.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;

use super::ledger::MemoryLedger;
use super::planner::{self, PlanSummary};
use super::queue::LocalQueue;
use super::worker::{self, ChunkResult};
use super::{Engine, EngineError, EngineOptions, Progress, finalizer};
use crate::aws::AwsClients;
use crate::config::Job;
use crate::model::{ChunkMessage, RunRef};
use crate::store::Manifest;

/// Chunks executed at once; each runs `job.concurrency` tasks in parallel.
const LOCAL_WORKERS: usize = 4;
/// A chunk whose bookkeeping fails (not a task: tasks record their own failures) is tried this
/// often, as SQS would redeliver it.
const CHUNK_ATTEMPTS: usize = 3;

pub struct LocalRun {
    pub plan: PlanSummary,
    /// `None` for a dry run.
    pub manifest: Option<Manifest>,
}

pub async fn run(
    clients: AwsClients,
    job: &Job,
    scheduled_at: DateTime<Utc>,
    dry_run: bool,
    progress: Arc<dyn Progress>,
) -> Result<LocalRun, EngineError> {
    run_with(clients, job, scheduled_at, dry_run, progress, EngineOptions::default()).await
}

pub async fn run_with(
    clients: AwsClients,
    job: &Job,
    scheduled_at: DateTime<Utc>,
    dry_run: bool,
    progress: Arc<dyn Progress>,
    options: EngineOptions,
) -> Result<LocalRun, EngineError> {
    if options.resumable && !dry_run {
        super::resume::wait_for_a_new_second().await;
    }
    let run = RunRef::new(job, scheduled_at);
    if dry_run {
        let engine = Engine::standalone(clients).with_options(options);
        let plan = planner::plan(&engine, job, &run, true).await?;
        return Ok(LocalRun { plan, manifest: None });
    }

    let (work_tx, mut work_rx) = mpsc::channel::<ChunkMessage>(LOCAL_WORKERS * 2);
    let (finalize_tx, mut finalize_rx) = mpsc::unbounded_channel();
    let queue = LocalQueue { work: work_tx, finalize: finalize_tx };
    let engine = Arc::new(
        Engine::new(clients, Arc::new(queue), Arc::new(MemoryLedger::default()))
            .with_progress(progress)
            .with_options(options),
    );

    let planning = {
        let (engine, job, run) = (engine.clone(), job.clone(), run.clone());
        tokio::spawn(async move { planner::plan(&engine, &job, &run, false).await })
    };
    tokio::pin!(planning);
    let mut plan: Option<PlanSummary> = None;
    let mut chunks = FuturesUnordered::new();
    let finalize_message = loop {
        tokio::select! {
            planned = &mut planning, if plan.is_none() => {
                plan = Some(planned.map_err(|e| EngineError::Queue(format!("planner stopped: {e}")))??);
            }
            Some(message) = work_rx.recv(), if chunks.len() < LOCAL_WORKERS => {
                let engine = engine.clone();
                chunks.push(async move { run_chunk_with_retries(&engine, message).await });
            }
            Some(done) = chunks.next() => {
                done?;
            }
            Some(message) = finalize_rx.recv() => break message,
        }
    };
    while let Some(done) = chunks.next().await {
        done?;
    }
    let plan = match plan {
        Some(plan) => plan,
        None => planning.await.map_err(|e| EngineError::Queue(format!("planner stopped: {e}")))??,
    };
    let manifest = finalizer::finalize(&engine, &finalize_message).await?;
    Ok(LocalRun { plan, manifest: Some(manifest) })
}

async fn run_chunk_with_retries(engine: &Engine, message: ChunkMessage) -> Result<ChunkResult, EngineError> {
    let mut attempt = 1;
    loop {
        match worker::run_chunk(engine, &message).await {
            Ok(result) => return Ok(result),
            Err(err) if attempt < CHUNK_ATTEMPTS => {
                tracing::warn!(chunk = message.chunk.seq, attempt, error = %err, "chunk failed; trying again");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt as u64)).await;
            }
            Err(err) => return Err(err),
        }
    }
}
