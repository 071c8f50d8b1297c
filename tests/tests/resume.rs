//! What a `backline run` stopped between two steps leaves for the run after it: tasks that
//! may have done their work without recording it are in doubt, never forgotten.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backline::model::{ChunkMessage, FinalizeMessage, RunRef};
use backline::pipeline::{Engine, EngineError, EngineOptions, MemoryLedger, WorkQueue, planner, resume, worker};
use backline::{Config, Job};
use backline_tests::tableau::{TableauServer, one_site_world, token_env};
use backline_tests::{Moto, create_bucket, unique};
use serde_json::json;

/// Keeps what is sent and delivers nothing: the process stops before anything queued runs.
#[derive(Default)]
struct StoppedQueue {
    chunks: Mutex<Vec<ChunkMessage>>,
}

#[async_trait]
impl WorkQueue for StoppedQueue {
    fn batch_size(&self) -> usize {
        1
    }

    async fn send_chunks(&self, chunks: Vec<ChunkMessage>) -> Result<(), EngineError> {
        self.chunks.lock().unwrap().extend(chunks);
        Ok(())
    }

    async fn send_finalize(&self, _message: FinalizeMessage) -> Result<(), EngineError> {
        Ok(())
    }

    async fn send_later(&self, _chunk: ChunkMessage, _delay: Duration) -> Result<(), EngineError> {
        Ok(())
    }
}

fn restore_job(server: &str, token_env: &str, bucket: &str) -> (Job, Job) {
    let text = format!(
        "[[jobs]]\nname = \"tableau-prod\"\nkind = \"tableau\"\n[jobs.source]\nserver = \"{server}\"\n\
         api_version = \"3.19\"\ntoken_name = \"backline\"\ntoken_secret = \"env:{token_env}\"\n\
         [jobs.target]\nbucket = \"{bucket}\"\n"
    );
    let backup = Config::parse(&text, backline::config::Format::Toml, "resume.toml").expect("valid job").jobs.remove(0);
    let options = json!({"site": "Default", "to_project": "Restored", "poll_interval": "1s"});
    let restore = backup.spec.restore_job(&backup, options).expect("tableau jobs restore").expect("valid options");
    (backup, restore)
}

#[tokio::test]
async fn publishes_whose_jobs_were_running_when_the_run_stopped_are_in_doubt() {
    let clients = Moto::get().clients().await;
    let mut world = one_site_world(3, |i| format!("workbook {i}"));
    // Jobs that outlast the stopped run.
    world["settings"] = json!({"job_seconds": 60});
    let tableau = TableauServer::start(&world).await;
    let bucket = unique("resume-tableau");
    create_bucket(&clients.s3, &bucket).await;
    let (backup, restore) = restore_job(&tableau.url, &token_env(), &bucket);
    let backed_up = backline::pipeline::local::run(
        clients.clone(),
        &backup,
        chrono::Utc::now(),
        false,
        Arc::new(backline::pipeline::NoProgress),
    )
    .await
    .expect("backup");
    assert_eq!(backed_up.manifest.expect("a manifest").counts.copied, 3);

    // A run that plans, starts every publish (each then waits for its job) and stops there.
    let resumable = EngineOptions { resumable: true, ..Default::default() };
    let queue = Arc::new(StoppedQueue::default());
    let engine =
        Engine::new(clients.clone(), queue.clone(), Arc::new(MemoryLedger::default())).with_options(resumable.clone());
    let stopped = RunRef::new(&restore, chrono::Utc::now());
    planner::plan(&engine, &restore, &stopped, false).await.expect("plan");
    let chunks: Vec<ChunkMessage> = queue.chunks.lock().unwrap().drain(..).collect();
    for chunk in &chunks {
        match worker::run_chunk(&engine, chunk).await.expect("chunk") {
            worker::ChunkResult::Done { waiting, .. } => assert!(waiting > 0, "the publishes wait for their jobs"),
            other => panic!("{other:?}"),
        }
    }
    let state = tableau.state().await;
    assert_eq!(state["published"].as_array().map(Vec::len), Some(3), "three publish jobs started: {state}");

    // The next run finds the stopped one: every publish it started is in doubt.
    let next_engine =
        Engine::new(clients.clone(), Arc::new(StoppedQueue::default()), Arc::new(MemoryLedger::default()))
            .with_options(resumable);
    let next = RunRef::new(&restore, chrono::Utc::now() + chrono::Duration::seconds(1));
    let resumed = resume::resume(&next_engine, &restore, &next).await.expect("resume");
    assert_eq!(resumed.runs.len(), 1, "the stopped run is found");
    let mut in_doubt: Vec<&String> = resumed.in_doubt.keys().collect();
    in_doubt.sort();
    assert_eq!(in_doubt, ["Default/Top/Book 000", "Default/Top/Book 001", "Default/Top/Book 002"]);
}

#[tokio::test]
async fn a_resumable_run_starts_on_a_new_second() {
    for _ in 0..3 {
        let before = chrono::Utc::now();
        resume::wait_for_a_new_second().await;
        let after = chrono::Utc::now();
        assert!(after.timestamp() > before.timestamp(), "{before} then {after}");
    }
}
