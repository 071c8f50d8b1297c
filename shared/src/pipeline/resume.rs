//! Runs that stopped without finalizing (a killed `backline run`): what they finished is carried
//! into the job's state before the next run plans, so that run does not copy it again.
//!
//! A run leaves an open marker (`open-runs/<job>/<run id>.json`) from planning until its
//! manifest is written. A resumable engine also records each chunk's task keys before running
//! it (`runs/<job>/<run id>/started/`). The next run of the job then finds the marker, reads the
//! outcomes the dead run recorded, advances the state with them (the kind's `finalize`, a merge
//! that may be repeated), writes the dead run's manifest with status `interrupted`, and removes
//! the marker. The keys of chunks that started and never recorded outcomes are *in doubt*: they
//! may be in the target already, and the kind's plan may check before copying them again.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use super::kind::JobContext;
use super::{Engine, EngineError, finalizer};
use crate::config::Job;
use crate::model::{Chunk, Outcome, RunRef, Status};
use crate::store::ControlStore;

/// What `resume` found of earlier runs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Resumed {
    /// Runs recorded as interrupted, oldest first. Their open markers stay until the resuming
    /// run has recorded what they left in doubt ([`Resumed::close`]).
    pub runs: Vec<RunRef>,
    /// Keys a dead run may have written without recording it, with when the first such run
    /// started (what it wrote is newer than that).
    pub in_doubt: InDoubt,
}

/// Keys that may be in the target without a recorded outcome -> the start of the run that may
/// have written them.
pub type InDoubt = HashMap<String, DateTime<Utc>>;

/// The record of which tasks a chunk attempt was about to run.
#[derive(Debug, Serialize, Deserialize)]
struct Started {
    keys: Vec<String>,
}

/// What a run inherited in doubt.
#[derive(Debug, Serialize, Deserialize)]
struct Inherited {
    keys: InDoubt,
}

fn open_key(run: &RunRef) -> String {
    format!("open-runs/{}/{}.json", run.job, run.run_id)
}

/// Marks `run` as open until its manifest is written.
pub async fn open(store: &ControlStore, run: &RunRef) -> Result<(), EngineError> {
    store.put_json(&open_key(run), run).await?;
    Ok(())
}

/// Removes the open marker of a finalized run; a marker left behind only costs the next run a
/// look, so failing to remove it is not an error.
pub async fn close(store: &ControlStore, run: &RunRef) {
    if let Err(error) = store.delete(&open_key(run)).await {
        tracing::warn!(run = %run.run_id, %error, "could not remove the run's open marker");
    }
}

fn started_key(run: &RunRef, seq: u32, attempt: u32) -> String {
    format!("{}started/{seq:06}-{attempt:03}.json", ControlStore::run_dir(run))
}

/// Records the keys of a chunk attempt's tasks before it runs (resumable engines only).
pub async fn chunk_started(
    store: &ControlStore,
    run: &RunRef,
    chunk: &Chunk,
    keys: Vec<String>,
) -> Result<(), EngineError> {
    store.put_json(&started_key(run, chunk.seq, chunk.attempt), &Started { keys }).await?;
    Ok(())
}

/// Waits for the next whole second of the clock. S3 and Tableau keep times in whole seconds,
/// and a run resuming a stopped one tells what that run wrote by it being written in or after
/// the second the stopped run started. A resumable run starts on a new second so that nothing
/// written before it began (by a run killed a moment earlier, or by one that just finished)
/// shares its first second, and nothing it reads as unchanged was changed in that second.
pub async fn wait_for_a_new_second() {
    let into_second = Utc::now().timestamp_subsec_nanos();
    let rest = 1_000_000_000u32.saturating_sub(into_second);
    tokio::time::sleep(std::time::Duration::from_nanos(u64::from(rest) + 1_000_000)).await;
}

/// Finalizes, as interrupted, every earlier run of `job` that left an open marker.
pub async fn resume(engine: &Engine, job: &Job, current: &RunRef) -> Result<Resumed, EngineError> {
    let store = ControlStore::new(engine.clients.s3.clone(), &current.control);
    let mut dead: Vec<RunRef> = Vec::new();
    for key in store.list(&format!("open-runs/{}/", job.name)).await? {
        match store.get_json::<RunRef>(&key).await {
            Ok(Some(run)) if run.run_id != current.run_id => dead.push(run),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "unreadable open-run marker; leaving it"),
        }
    }
    dead.sort_by_key(|run| run.started_at);
    let mut resumed = Resumed::default();
    for run in dead {
        let outcomes = store.read_outcomes(&run).await?;
        for (key, since) in in_doubt(&store, &run, &outcomes).await? {
            let earliest = resumed.in_doubt.entry(key).or_insert(since);
            *earliest = (*earliest).min(since);
        }
        let cx = JobContext { engine, job, run: &run, dry_run: false };
        job.spec.finalize(&cx, &outcomes).await?;
        finalizer::record(engine, job, &run, outcomes.clone(), Some("interrupted")).await?;
        tracing::warn!(
            job = %job.name, run = %run.run_id, outcomes = outcomes.len(),
            "an earlier run stopped before finishing; what it did is now in the state"
        );
        resumed.runs.push(run);
    }
    Ok(resumed)
}

impl Resumed {
    /// Removes the resumed runs' open markers, once the resuming run has its own marker and
    /// the keys in doubt are recorded with it: a kill in between loses neither.
    pub async fn close(&self, store: &ControlStore) {
        for run in &self.runs {
            close(store, run).await;
        }
    }
}

/// What the runs the current one resumed recorded as done: the ok outcomes of the job's runs
/// recorded as interrupted since its last run that ended otherwise, newest first. A kind whose
/// plan learns nothing from a state (a restore that cannot tell its own writes by their
/// content) reads them so as not to do again what a stopped run did.
pub async fn done_by_stopped_runs(store: &ControlStore, job: &str) -> Result<Vec<(String, Outcome)>, EngineError> {
    let manifests = store.manifests(job).await?;
    let stopped = manifests.into_iter().rev().take_while(|m| m.status == "interrupted");
    Ok(stopped
        .flat_map(|m| {
            let run_id = m.run_id;
            m.tasks.into_iter().filter(|o| o.status == Status::Ok).map(move |o| (run_id.clone(), o))
        })
        .collect())
}

/// Records the keys a run inherited in doubt, so that if it dies too before settling them the
/// run after it still checks them.
pub async fn inherit(store: &ControlStore, run: &RunRef, keys: &InDoubt) -> Result<(), EngineError> {
    if !keys.is_empty() {
        let record = Inherited { keys: keys.clone() };
        store.put_json(&format!("{}in-doubt.json", ControlStore::run_dir(run)), &record).await?;
    }
    Ok(())
}

/// Keys of the chunk attempts that started and recorded no outcomes, and the keys the run
/// inherited in doubt and did not settle.
async fn in_doubt(store: &ControlStore, run: &RunRef, outcomes: &[Outcome]) -> Result<InDoubt, EngineError> {
    let dir = ControlStore::run_dir(run);
    let finished: HashSet<String> = store
        .list(&format!("{dir}outcomes/"))
        .await?
        .iter()
        .filter_map(|key| key.rsplit('/').next().map(str::to_string))
        .collect();
    let mut keys = InDoubt::new();
    for key in store.list(&format!("{dir}started/")).await? {
        let name = key.rsplit('/').next().unwrap_or_default();
        if finished.contains(name) {
            continue;
        }
        if let Some(started) = store.get_json::<Started>(&key).await? {
            keys.extend(started.keys.into_iter().map(|key| (key, run.started_at)));
        }
    }
    if let Some(inherited) = store.get_json::<Inherited>(&store.key(&format!("{dir}in-doubt.json"))).await? {
        let settled: HashSet<&str> = outcomes.iter().map(|o| o.key.as_str()).collect();
        for (key, since) in inherited.keys {
            if !settled.contains(key.as_str()) {
                keys.insert(key, since);
            }
        }
    }
    Ok(keys)
}
