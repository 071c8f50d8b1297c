//! The worker: run one chunk's tasks, record their outcomes, count the chunk once, and send
//! the finalize message when it was the last.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::kind::{Executed, JobContext};
use super::lease::{self, Lease};
use super::ledger::ChunkDone;
use super::queue::MAX_DELAY;
use super::{Engine, EngineError};
use crate::config::Job;
use crate::model::{Action, Chunk, ChunkMessage, FinalizeMessage, Outcome, RunRef, Status, WIRE_VERSION, WorkMessage};
use crate::store::ControlStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkResult {
    /// The chunk ran; `failed` of its tasks failed (recorded in the outcomes, not retried).
    Done { tasks: usize, failed: usize, waiting: usize },
    /// The chunk was done before (a redelivered message): nothing ran again.
    Duplicate,
    /// The chunk's claim-check was gone: its `tasks` did not run, and the run records one
    /// failed outcome saying so rather than waiting for the chunk forever.
    Lost { tasks: usize },
}

/// Parses a work-queue body, resolving a claim-check from the control location.
pub async fn read_work_message(engine: &Engine, body: &str) -> Result<ChunkMessage, EngineError> {
    match read_work(engine, body).await? {
        Work::Chunk(message) => Ok(*message),
        Work::Lost(lost) => Err(lost.missing()),
    }
}

enum Work {
    Chunk(Box<ChunkMessage>),
    Lost(LostChunk),
}

/// A claim-check whose chunk is not in the control location.
struct LostChunk {
    run: RunRef,
    job: Option<Box<Job>>,
    seq: u32,
    attempt: u32,
    tasks: usize,
    bucket: String,
    key: String,
}

impl LostChunk {
    fn missing(&self) -> EngineError {
        EngineError::Message(format!("claim-check s3://{}/{} does not exist", self.bucket, self.key))
    }
}

async fn read_work(engine: &Engine, body: &str) -> Result<Work, EngineError> {
    let message: WorkMessage =
        serde_json::from_str(body).map_err(|e| EngineError::Message(format!("not a Backline work message: {e}")))?;
    check_version(message.version())?;
    match message {
        WorkMessage::Chunk { message, .. } => Ok(Work::Chunk(message)),
        WorkMessage::ClaimCheck { run, key, seq, attempt, tasks, job, .. } => {
            let store = ControlStore::new(engine.clients.s3.clone(), &run.control);
            Ok(match store.get_json(&key).await? {
                Some(message) => Work::Chunk(Box::new(message)),
                None => {
                    Work::Lost(LostChunk { run, job, seq, attempt, tasks, bucket: store.bucket().to_string(), key })
                }
            })
        }
    }
}

/// Handles one work-queue body with a lease until the Lambda's end (unknown here: the
/// longest a Lambda runs).
pub async fn handle_body(engine: &Engine, body: &str) -> Result<ChunkResult, EngineError> {
    handle_body_until(engine, body, lease::until_deadline(0)).await
}

/// Handles one work-queue body, holding the chunk's lease until `until` (the Lambda's
/// deadline: after it, a redelivery may take the chunk over).
pub async fn handle_body_until(engine: &Engine, body: &str, until: DateTime<Utc>) -> Result<ChunkResult, EngineError> {
    match read_work(engine, body).await? {
        Work::Chunk(message) => run_chunk_until(engine, &message, until).await,
        Work::Lost(lost) => record_lost(engine, lost).await,
    }
}

/// Refuses a message of another wire version, saying what to do about it.
pub fn check_version(version: u32) -> Result<(), EngineError> {
    if version == WIRE_VERSION {
        return Ok(());
    }
    let hint = if version < WIRE_VERSION {
        "it was sent by an older Backline: let the old functions drain the queue, or run the job again"
    } else {
        "it was sent by a newer Backline: deploy the same version to every function"
    };
    Err(EngineError::Message(format!("message version {version} is not supported (expected {WIRE_VERSION}); {hint}")))
}

pub async fn run_chunk(engine: &Engine, message: &ChunkMessage) -> Result<ChunkResult, EngineError> {
    run_chunk_until(engine, message, lease::until_deadline(0)).await
}

/// Runs a chunk unless it is done already or another delivery of it is running. A delivery
/// that finds an earlier one stopped mid-way (dead at its time-out, or failed) has the kind
/// look at the target before redoing each task, so nothing is written twice.
pub async fn run_chunk_until(
    engine: &Engine,
    message: &ChunkMessage,
    until: DateTime<Utc>,
) -> Result<ChunkResult, EngineError> {
    let ChunkMessage { run, job, chunk } = message;
    if chunk.kind != job.spec.kind() {
        return Err(EngineError::Message(format!(
            "chunk {} of run {} holds {} tasks, but job {} is a {} job; refused",
            chunk.seq,
            run.run_id,
            chunk.kind,
            job.name,
            job.spec.kind()
        )));
    }
    if engine.ledger.is_chunk_done(&run.run_id, chunk.seq, chunk.attempt).await? {
        tracing::info!(run = %run.run_id, chunk = chunk.seq, attempt = chunk.attempt, "chunk already done; skipping redelivery");
        // The earlier delivery may have stopped between counting and finalizing.
        finalize_if_complete(engine, job, run).await?;
        return Ok(ChunkResult::Duplicate);
    }
    let lease_name = format!("chunk#{:06}#{:03}", chunk.seq, chunk.attempt);
    let chunk = match engine.ledger.take_lease(&run.run_id, &lease_name, until).await? {
        Lease::First => chunk.clone(),
        Lease::Busy { until } => {
            return Err(EngineError::InProgress(format!(
                "chunk {} of run {} is being run by another delivery until {until}; this delivery comes back later",
                chunk.seq, run.run_id
            )));
        }
        Lease::AfterStop { since } => {
            tracing::warn!(
                run = %run.run_id, chunk = chunk.seq, attempt = chunk.attempt, %since,
                "an earlier delivery of this chunk stopped before finishing; checking the target before each task"
            );
            Chunk { tasks: job.spec.in_doubt(chunk.tasks.clone(), since), ..chunk.clone() }
        }
    };
    let result = run_leased(engine, job, run, &chunk).await;
    if result.is_err()
        && let Err(error) = engine.ledger.end_lease(&run.run_id, &lease_name).await
    {
        tracing::warn!(run = %run.run_id, chunk = chunk.seq, %error, "could not end the chunk's lease");
    }
    result
}

async fn run_leased(engine: &Engine, job: &Job, run: &RunRef, chunk: &Chunk) -> Result<ChunkResult, EngineError> {
    let cx = JobContext { engine, job, run, dry_run: false };
    let store = ControlStore::new(engine.clients.s3.clone(), &run.control);
    record_started(engine, job, run, &store, chunk).await?;
    let (outcomes, next) = execute(&cx, chunk).await?;
    let failed = outcomes.iter().filter(|o| o.status == Status::Failed).count();
    if let Some((next, _)) = &next {
        // The waiting tasks may have started something (a publish job) that lands while they
        // wait: recorded as started before this attempt is recorded done, a kill in between
        // leaves them in doubt rather than forgotten.
        record_started(engine, job, run, &store, next).await?;
    }
    store.put_outcomes(run, chunk.seq, chunk.attempt, &outcomes).await?;
    let waiting_count = next.as_ref().map_or(0, |(chunk, _)| chunk.tasks.len());
    // Tasks of an attempt after the first were all waiting when it was sent.
    let was_waiting = if chunk.attempt > 0 { chunk.tasks.len() } else { 0 };
    let waiting_delta = waiting_count as i64 - was_waiting as i64;
    if let Some((next, delay)) = next {
        // Sent before the chunk is counted: if counting fails, the redelivery finds the next
        // attempt already queued, and its ledger marker keeps it from running twice.
        engine.queue.send_later(ChunkMessage { run: run.clone(), job: job.clone(), chunk: next }, delay).await?;
    }
    engine.progress.waiting(waiting_delta);
    let done = ChunkDone { seq: chunk.seq, attempt: chunk.attempt, requeued: waiting_count > 0, waiting_delta };
    if engine.ledger.complete_chunk(&run.run_id, done).await? {
        finalize_if_complete(engine, job, run).await?;
    }
    Ok(ChunkResult::Done { tasks: outcomes.len(), failed, waiting: waiting_count })
}

/// Records the keys of a chunk attempt's tasks before they run (resumable engines only).
async fn record_started(
    engine: &Engine,
    job: &Job,
    run: &RunRef,
    store: &ControlStore,
    chunk: &Chunk,
) -> Result<(), EngineError> {
    let keys = if engine.options.resumable { job.spec.task_keys(&chunk.tasks) } else { Vec::new() };
    if !keys.is_empty() {
        super::resume::chunk_started(store, run, chunk, keys).await?;
    }
    Ok(())
}

/// Counts a chunk whose claim-check is gone as done with one failed outcome naming it, so the
/// run finishes and says what it could not do instead of never finishing.
async fn record_lost(engine: &Engine, lost: LostChunk) -> Result<ChunkResult, EngineError> {
    // A message from before claim-checks carried the job cannot be finalized from here.
    let Some(job) = lost.job.as_deref() else { return Err(lost.missing()) };
    let run = &lost.run;
    if engine.ledger.is_chunk_done(&run.run_id, lost.seq, lost.attempt).await? {
        finalize_if_complete(engine, job, run).await?;
        return Ok(ChunkResult::Duplicate);
    }
    tracing::error!(run = %run.run_id, chunk = lost.seq, key = %lost.key, "the chunk's claim-check is missing; its tasks are recorded as not done");
    let outcome = Outcome::new(Action::Skip, format!("chunk {}", lost.seq), Status::Failed).with_detail(format!(
        "its {} tasks did not run: the claim-check s3://{}/{} is missing (deleted from the control bucket?); run the job again to do them",
        lost.tasks, lost.bucket, lost.key
    ));
    ControlStore::new(engine.clients.s3.clone(), &run.control)
        .put_outcomes(run, lost.seq, lost.attempt, &[outcome])
        .await?;
    // A later attempt's tasks were all waiting; they wait no more.
    let waiting_delta = if lost.attempt > 0 { -(lost.tasks as i64) } else { 0 };
    engine.progress.waiting(waiting_delta);
    let done = ChunkDone { seq: lost.seq, attempt: lost.attempt, requeued: false, waiting_delta };
    if engine.ledger.complete_chunk(&run.run_id, done).await? {
        finalize_if_complete(engine, job, run).await?;
    }
    Ok(ChunkResult::Lost { tasks: lost.tasks })
}

/// Runs a chunk's tasks (unless it is not due yet); returns the outcomes, and the next attempt
/// with its delay when tasks wait.
async fn execute(cx: &JobContext<'_>, chunk: &Chunk) -> Result<(Vec<Outcome>, Option<(Chunk, Duration)>), EngineError> {
    let now = Utc::now();
    if let Some(due) = chunk.not_before.filter(|due| *due > now) {
        let remaining = (due - now).to_std().unwrap_or_default();
        let since = chunk.waiting_since.unwrap_or(now);
        return Ok((Vec::new(), Some(next_attempt(chunk, chunk.tasks.clone(), since, remaining, now))));
    }
    let executed = cx.job.spec.execute(cx, chunk.tasks.clone()).await?;
    Ok(settle_waits(chunk, executed, cx.job.spec.wait_limit(), now))
}

/// What becomes of the tasks that wait: the next attempt of the chunk, or, once they have
/// waited `limit` in all since their first wait, failed outcomes.
fn settle_waits(
    chunk: &Chunk,
    executed: Executed,
    limit: Duration,
    now: DateTime<Utc>,
) -> (Vec<Outcome>, Option<(Chunk, Duration)>) {
    let Executed { mut outcomes, waiting } = executed;
    if waiting.is_empty() {
        return (outcomes, None);
    }
    let since = chunk.waiting_since.unwrap_or(now);
    let waited = (now - since).to_std().unwrap_or_default();
    if waited >= limit {
        // A wait that never ends must not keep the run open forever.
        outcomes.extend(waiting.into_iter().map(|w| {
            let what = w.abandoned.detail.clone().unwrap_or_else(|| "still waiting".into());
            Outcome { status: Status::Failed, ..w.abandoned }.with_detail(format!(
                "{what}: gave up after waiting {} (the {} limit is {})",
                human_duration(waited),
                chunk.kind,
                human_duration(limit)
            ))
        }));
        return (outcomes, None);
    }
    let delay = waiting.iter().map(|w| w.after).min().unwrap_or(MAX_DELAY);
    let tasks = waiting.into_iter().map(|w| w.task).collect();
    (outcomes, Some(next_attempt(chunk, tasks, since, delay, now)))
}

/// The chunk's next attempt with `tasks`, and the delay to send it with. SQS delays a message
/// by 15 minutes at most; a longer wait travels as a due time the worker checks.
fn next_attempt(
    chunk: &Chunk,
    tasks: Vec<Value>,
    waiting_since: DateTime<Utc>,
    delay: Duration,
    now: DateTime<Utc>,
) -> (Chunk, Duration) {
    let not_before = (delay > MAX_DELAY).then(|| now + chrono::Duration::from_std(delay).unwrap_or_default());
    let next = Chunk {
        seq: chunk.seq,
        attempt: chunk.attempt + 1,
        kind: chunk.kind.clone(),
        tasks,
        waiting_since: Some(waiting_since),
        not_before,
    };
    (next, delay.min(MAX_DELAY))
}

fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s >= 86_400 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 3600 => format!("{:.1} h", s as f64 / 3600.0),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::kind::Waiting;

    const HOUR: Duration = Duration::from_secs(3600);

    fn waiting(after: Duration) -> Waiting {
        Waiting {
            task: serde_json::json!({"action": "restore", "key": "k"}),
            after,
            abandoned: Outcome::new(Action::Restore, "k", Status::Failed),
        }
    }

    fn chunk_waiting_since(since: Option<DateTime<Utc>>) -> Chunk {
        Chunk { attempt: 3, waiting_since: since, ..Chunk::new(4, "s3-restore", vec![]) }
    }

    #[test]
    fn a_wait_goes_on_until_the_time_limit_not_a_count_of_looks() {
        let now = Utc::now();
        let limit = 96 * HOUR;
        let since = now - chrono::Duration::hours(95);
        let executed =
            Executed { outcomes: vec![], waiting: vec![waiting(HOUR), waiting(5 * 60 * Duration::from_secs(1))] };
        let (outcomes, next) = settle_waits(&chunk_waiting_since(Some(since)), executed, limit, now);
        assert!(outcomes.is_empty());
        let (next, delay) = next.expect("still waiting after 95 of 96 hours");
        assert_eq!((next.seq, next.attempt, next.tasks.len()), (4, 4, 2));
        assert_eq!(next.waiting_since, Some(since), "the first wait's time travels on");
        assert_eq!(delay, Duration::from_secs(300), "the soonest look decides the delay");
        assert_eq!(next.not_before, None);
    }

    #[test]
    fn a_wait_past_the_limit_fails_its_tasks_with_the_reason() {
        let now = Utc::now();
        let since = now - chrono::Duration::hours(97);
        let executed = Executed { outcomes: vec![], waiting: vec![waiting(HOUR)] };
        let (outcomes, next) = settle_waits(&chunk_waiting_since(Some(since)), executed, 96 * HOUR, now);
        assert!(next.is_none());
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].status, Status::Failed);
        let detail = outcomes[0].detail.as_deref().unwrap();
        assert!(
            detail.contains("gave up after waiting 97 h") && detail.contains("s3-restore limit is 96 h"),
            "{detail}"
        );
    }

    #[test]
    fn a_first_wait_starts_the_clock_and_a_long_one_travels_as_a_due_time() {
        let now = Utc::now();
        let executed = Executed { outcomes: vec![], waiting: vec![waiting(Duration::from_secs(29 * 60))] };
        let (_, next) = settle_waits(&chunk_waiting_since(None), executed, 96 * HOUR, now);
        let (next, delay) = next.unwrap();
        assert_eq!(next.waiting_since, Some(now));
        assert_eq!(delay, MAX_DELAY, "SQS delays 15 minutes at most");
        assert_eq!(next.not_before, Some(now + chrono::Duration::minutes(29)));
    }

    #[test]
    fn old_and_new_wire_versions_are_refused_with_what_to_do() {
        assert!(check_version(WIRE_VERSION).is_ok());
        let old = check_version(1).unwrap_err().to_string();
        assert!(old.contains("version 1 is not supported") && old.contains("older Backline"), "{old}");
        assert!(check_version(WIRE_VERSION + 1).unwrap_err().to_string().contains("newer Backline"));
    }
}
