//! The Lambda path when things go wrong, against moto through the fault proxy: a worker that
//! dies at its deadline (mid-copy, before recording its outcomes, before the ledger write), a
//! chunk delivered twice at once, a finalize message delivered twice, and a claim-check whose
//! object is gone. Each must end with every object copied once (one version in a versioned
//! target), the chunk counted once, one finalize, and a manifest that tells what happened.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backline::model::Status;
use backline::pipeline::{finalizer, worker};
use backline::sources::s3::S3Task;
use backline::store::Manifest;
use backline_tests::faults::FaultProxy;
use backline_tests::reliability::{self, Figures, compare_versioned};
use backline_tests::{Moto, TestObject, body, create_bucket, drain, put, unique};
use serde_json::{Value, json};

mod handlers;
use handlers::{
    Stack, as_records, chunks_done, deliver_again_and_finalize, drive, each_stored_once, failed_ids, finalize_queued,
    plan, sqs_event, stack_with_clients, stall, worker_dies_at_the_stall,
};

const JOB: &str = "lambda-faults";

fn inline_job(source: &str, target: &str) -> Value {
    json!({"name": JOB, "kind": "s3", "source": {"bucket": source},
           "target": {"bucket": target, "multipart_threshold": "5 MiB"}})
}

struct Setup {
    stack: Stack,
    source: String,
    target: String,
    expected: BTreeMap<String, Vec<u8>>,
    run_id: String,
    /// The work queue's records, as SQS would deliver them.
    records: Vec<(String, String)>,
}

/// `n` objects (one big enough to be copied by parts) in a source, a versioned target, and a
/// run planned through the planner handler on a stack reached with `clients`.
async fn setup(clients: backline::aws::AwsClients, n: usize) -> Setup {
    let stack = stack_with_clients("unused.toml", clients).await;
    let s3 = &Moto::get().clients().await.s3;
    let (source, target) = (unique("src"), unique("dst"));
    create_bucket(s3, &source).await;
    create_bucket(s3, &target).await;
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(&target).versioning_configuration(enabled).send().await.unwrap();
    let mut expected = BTreeMap::new();
    for i in 0..n {
        let bytes = if i == 0 { vec![7u8; 6 << 20] } else { format!("object {i} ").repeat(20).into_bytes() };
        put(s3, &source, &TestObject::new(format!("k{i:03}"), bytes.clone())).await;
        expected.insert(format!("k{i:03}"), bytes);
    }
    // A source older than the second the run starts in: a copy found in the target after that
    // second can only be this run's (see the S3 kind's check of tasks in doubt).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let planned = plan(&stack, json!({"job": inline_job(&source, &target), "time": chrono::Utc::now()})).await;
    let run_id = planned["runs"][0]["run_id"].as_str().expect("a run").to_string();
    let records = as_records(&drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await);
    Setup { stack, source, target, expected, run_id, records }
}

/// Finalizes through the handler (every finalize message queued, each delivered `times`) and
/// returns the manifest and how many finalize messages there were.
async fn finalize(setup: &Setup, engine: &backline::Engine, times: usize) -> (Manifest, usize) {
    let finals = finalize_queued(&setup.stack, engine, times).await;
    let key = format!("_backline/runs/{JOB}/{}/manifest.json", setup.run_id);
    let moto = Moto::get().clients().await;
    (serde_json::from_slice(&body(&moto.s3, &setup.target, &key).await).unwrap(), finals)
}

fn record(scenario: &str, items: usize, faults: u64, lost: usize, duplicates: usize) {
    reliability::record(&Figures::of_one_run(scenario, "s3 (Lambda)", items, faults, lost, duplicates));
}

/// Where the worker dies: what the scenario calls it, and the request it never gets an answer
/// to (the proxy holds it, unsent, until the worker is gone).
fn deaths() -> Vec<(&'static str, Value)> {
    vec![
        ("a worker dies mid-copy", stall(&["CopyObject"], "", 5)),
        ("a worker dies after its copies, before recording them", stall(&["PutObject"], "/outcomes/", 1)),
        ("a worker dies after recording, before the ledger write", stall(&["TransactWriteItems"], "", 1)),
    ]
}

#[tokio::test]
async fn a_worker_that_dies_at_its_deadline_leaves_nothing_copied_twice_or_counted_twice() {
    let n = reliability::size(12, 40);
    for (scenario, rule) in deaths() {
        let proxy = FaultProxy::start(&Moto::get().endpoint, rule).await;
        let setup = setup(proxy.clients().await, n).await;
        assert_eq!(setup.records.len(), 1, "{scenario}: one chunk");
        worker_dies_at_the_stall(&setup.stack.engine, &setup.records, &proxy, scenario).await;

        let moto = Moto::get().clients().await;
        deliver_again_and_finalize(&setup.stack, moto.clone(), &setup.records, &setup.run_id, scenario).await;
        each_stored_once(&setup.target, "", &setup.expected, scenario, "s3 (Lambda)").await;
        let key = format!("_backline/runs/{JOB}/{}/manifest.json", setup.run_id);
        let manifest: Manifest = serde_json::from_slice(&body(&moto.s3, &setup.target, &key).await).unwrap();
        let copied: BTreeSet<&str> =
            manifest.tasks.iter().filter(|t| t.status == Status::Ok).map(|t| t.key.as_str()).collect();
        assert_eq!(copied, setup.expected.keys().map(String::as_str).collect(), "{scenario}: every object reported");
        assert_eq!((manifest.counts.copied, manifest.counts.failed), (n as u64, 0), "{scenario}");
        assert_eq!(manifest.status, "succeeded", "{scenario}");
    }
}

#[tokio::test]
async fn a_chunk_delivered_twice_at_once_runs_once_and_the_second_delivery_comes_back() {
    let n = reliability::size(12, 40);
    let setup = setup(Moto::get().clients().await, n).await;
    let engine = &setup.stack.engine;
    let (first, second) = tokio::join!(
        backline_worker::handler(engine, sqs_event(&setup.records)),
        backline_worker::handler(engine, sqs_event(&setup.records)),
    );
    let failures = failed_ids(&first.unwrap()).len() + failed_ids(&second.unwrap()).len();
    assert_eq!(failures, 1, "one delivery runs, the other is told to come back");
    // The one that came back finds the chunk done.
    let body = &setup.records[0].1;
    assert_eq!(worker::handle_body(engine, body).await.unwrap(), worker::ChunkResult::Duplicate);
    let (manifest, finals) = finalize(&setup, engine, 1).await;

    let moto = Moto::get().clients().await;
    let comparison = compare_versioned(&moto.s3, &setup.target, "", &setup.expected, 1).await;
    record("a chunk delivered twice at once", n, 1, comparison.lost.len(), comparison.duplicates.len());
    assert!(comparison.lost.is_empty() && comparison.duplicates.is_empty(), "{comparison:?}");
    assert_eq!(chunks_done(&setup.stack, &setup.run_id).await, 1);
    assert_eq!((finals, manifest.counts.copied, manifest.counts.failed), (1, n as u64, 0));
}

#[tokio::test]
async fn a_finalize_message_delivered_twice_finalizes_once() {
    let setup = setup(Moto::get().clients().await, 3).await;
    let engine = &setup.stack.engine;
    let done = backline_worker::handler(engine, sqs_event(&setup.records)).await.unwrap();
    assert!(done.batch_item_failures.is_empty());
    let finals = as_records(&drain(&setup.stack.clients.sqs, &setup.stack.deployment.finalize_queue_url).await);
    assert_eq!(finals.len(), 1);

    // At once: one finalizes, the other comes back later.
    let (a, b) =
        tokio::join!(finalizer::handle_body(engine, &finals[0].1), finalizer::handle_body(engine, &finals[0].1));
    let (finished, busy): (Vec<_>, Vec<_>) = [a, b].into_iter().partition(Result::is_ok);
    assert_eq!((finished.len(), busy.len()), (1, 1), "one finalizes, one waits");
    let busy = busy[0].as_ref().unwrap_err().to_string();
    assert!(busy.contains("being finalized by another delivery"), "{busy}");
    let manifest_key = format!("_backline/runs/{JOB}/{}/manifest.json", setup.run_id);
    let moto = Moto::get().clients().await;
    let first = body(&moto.s3, &setup.target, &manifest_key).await;

    // Later, and again: nothing is done a second time.
    let later = finalizer::handle_body(engine, &finals[0].1).await.unwrap();
    assert!(later.contains("finalized before"), "{later}");
    assert_eq!(body(&moto.s3, &setup.target, &manifest_key).await, first, "the manifest was not written again");
    let manifest: Manifest = serde_json::from_slice(&first).unwrap();
    record("a finalize message delivered twice", 3, 1, 0, usize::from(manifest.counts.copied != 3));
    assert_eq!((manifest.status.as_str(), manifest.counts.copied), ("succeeded", 3));
}

#[tokio::test]
async fn a_claim_check_whose_object_is_gone_ends_the_run_as_failed_saying_so() {
    let setup = setup(Moto::get().clients().await, 2).await;
    let engine = &setup.stack.engine;
    let moto = Moto::get().clients().await;
    // A chunk too big for SQS travels as a claim-check; its object is then deleted.
    let mut message = worker::read_work_message(engine, &setup.records[0].1).await.unwrap();
    message.chunk.tasks.extend((0..300).map(|i| {
        let task = S3Task::Copy {
            key: format!("{i:04}/{}", "k".repeat(1000)),
            target_key: format!("big/{i}"),
            size: 1,
            etag: "e".into(),
            replace_tags: false,
            copied_since: None,
        };
        serde_json::to_value(task).unwrap()
    }));
    engine.queue.send_chunks(vec![message]).await.unwrap();
    let records = as_records(&drain(&setup.stack.clients.sqs, &setup.stack.deployment.work_queue_url).await);
    let claim: Value = serde_json::from_str(&records[0].1).unwrap();
    let key = claim["key"].as_str().expect("a claim-check").to_string();
    moto.s3.delete_object().bucket(&setup.target).key(&key).send().await.unwrap();

    let response = backline_worker::handler(engine, sqs_event(&records)).await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "the lost chunk is recorded, not retried forever");
    let again = worker::handle_body(engine, &records[0].1).await.unwrap();
    assert_eq!(again, worker::ChunkResult::Duplicate, "counted once");
    let (manifest, finals) = finalize(&setup, engine, 1).await;
    assert_eq!(finals, 1, "the run finished");
    assert_eq!(manifest.status, "failed");
    assert_eq!((manifest.counts.copied, manifest.counts.failed), (0, 1), "{:?}", manifest.counts);
    let detail = manifest.tasks[0].detail.as_deref().unwrap_or_default();
    assert!(detail.contains("302 tasks did not run") && detail.contains(&key), "{detail}");

    // What the lost chunk held is not in the state: the next run copies it.
    let later = chrono::Utc::now() + chrono::Duration::minutes(1);
    plan(&setup.stack, json!({"job": inline_job(&setup.source, &setup.target), "time": later})).await;
    assert_eq!(drive(&setup.stack).await, 1);
    let comparison = compare_versioned(&moto.s3, &setup.target, "k", &setup.expected, 1).await;
    record(
        "a claim-check whose object is gone, then the next run",
        setup.expected.len(),
        1,
        comparison.lost.len(),
        comparison.duplicates.len(),
    );
    assert!(comparison.lost.is_empty() && comparison.duplicates.is_empty(), "{comparison:?}");
}
