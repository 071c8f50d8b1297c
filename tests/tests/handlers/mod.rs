//! The three Lambda handlers driven by hand, as SQS would: shared by the handler tests.
// Each test file uses a part of it.
#![allow(dead_code)]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use backline::Engine;
use backline::aws::AwsClients;
use backline::pipeline::Deployment;
use backline_tests::faults::FaultProxy;
use backline_tests::reliability::{self, Figures, compare_versioned};
use backline_tests::{Moto, create_ledger_table, create_queue, drain, unique};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub struct Stack {
    pub clients: AwsClients,
    pub deployment: Deployment,
    pub engine: Engine,
}

pub async fn stack_with_config(config: &str) -> Stack {
    stack_with_clients(config, Moto::get().clients().await).await
}

/// Queues and a ledger of their own in moto, and `clients` (QuickSight pointed at an emulator).
pub async fn stack_with_clients(config: &str, clients: AwsClients) -> Stack {
    let deployment = Deployment {
        work_queue_url: create_queue(&clients.sqs, &unique("work")).await,
        finalize_queue_url: create_queue(&clients.sqs, &unique("finalize")).await,
        ledger_table: unique("ledger"),
        config: Some(config.to_string()),
    };
    create_ledger_table(&clients.dynamodb, &deployment.ledger_table).await;
    let engine = deployment.engine(clients.clone());
    Stack { clients, deployment, engine }
}

pub fn sqs_event(records: &[(String, String)]) -> LambdaEvent<SqsEvent> {
    let records: Vec<Value> = records.iter().map(|(id, body)| json!({"messageId": id, "body": body})).collect();
    let payload: SqsEvent = serde_json::from_value(json!({ "Records": records })).expect("an SQS event");
    LambdaEvent::new(payload, Context::default())
}

pub fn as_records(messages: &[aws_sdk_sqs::types::Message]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| (m.message_id().unwrap_or_default().to_string(), m.body().unwrap_or_default().to_string()))
        .collect()
}

pub fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}

pub async fn plan(stack: &Stack, payload: Value) -> Value {
    let config = stack.deployment.config.as_deref();
    let response = backline_planner::handler(&stack.engine, config, LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap_or_else(|e| panic!("planner: {e}"));
    serde_json::to_value(response).unwrap()
}

/// Runs every queued chunk through the worker, then every finalize message through the finalizer.
pub async fn drive(stack: &Stack) -> usize {
    let work = drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await;
    let response = backline_worker::handler(&stack.engine, sqs_event(&as_records(&work))).await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "worker failures: {:?}", failed_ids(&response));
    let finals = drain(&stack.clients.sqs, &stack.deployment.finalize_queue_url).await;
    let response = backline_finalizer::handler(&stack.engine, sqs_event(&as_records(&finals))).await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "finalizer failures: {:?}", failed_ids(&response));
    finals.len()
}

/// An SQS event whose Lambda must end `seconds` from now.
pub fn event_ending_in(records: &[(String, String)], seconds: i64) -> LambdaEvent<SqsEvent> {
    let mut event = sqs_event(records);
    let mut context = Context::default();
    context.deadline = (chrono::Utc::now() + chrono::Duration::seconds(seconds)).timestamp_millis() as u64;
    event.context = context;
    event
}

/// Delivers `records` to a worker whose Lambda must end in 2 s, and returns once that time is
/// up. `proxy` holds one of the worker's requests (a `stall` rule): once it does, the worker
/// is cut off (its future dropped), as Lambda ends a function at its deadline.
pub async fn worker_dies_at_the_stall(
    engine: &Engine,
    records: &[(String, String)],
    proxy: &FaultProxy,
    scenario: &str,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    let dying = backline_worker::handler(engine, event_ending_in(records, 2));
    let stalled = async {
        while proxy.faults().await == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = dying => panic!("{scenario}: the worker finished; the stall did not hold it"),
        held = tokio::time::timeout(std::time::Duration::from_secs(60), stalled) => held.expect("the stall never came"),
    }
    assert_eq!(proxy.faults().await, 1, "{scenario}");
    // SQS delivers the message again after its visibility time-out, past the deadline.
    tokio::time::sleep_until(deadline + std::time::Duration::from_millis(100)).await;
}

/// Chunk deliveries the ledger counted as done.
pub async fn chunks_done(stack: &Stack, run_id: &str) -> u64 {
    stack.engine.ledger.progress(run_id).await.unwrap().expect("the run is in the ledger").done
}

/// Runs every queued finalize message through the finalizer of `engine`, `times` over; returns
/// how many there were.
pub async fn finalize_queued(stack: &Stack, engine: &Engine, times: usize) -> usize {
    let finals = as_records(&drain(&stack.clients.sqs, &stack.deployment.finalize_queue_url).await);
    for _ in 0..times {
        let response = backline_finalizer::handler(engine, sqs_event(&finals)).await.unwrap();
        assert!(response.batch_item_failures.is_empty(), "finalizer failed: {:?}", failed_ids(&response));
    }
    finals.len()
}

/// A proxy rule that holds the `nth` request of `operations` whose path matches `path` far
/// past any deadline: the worker that sent it dies waiting.
pub fn stall(operations: &[&str], path: &str, nth: u32) -> Value {
    json!([{"name": "worker-dies", "fault": "stall", "nth": [nth], "operations": operations,
            "path": path, "seconds": 20}])
}

/// SQS delivers the chunk in `records` again after its worker died: to a worker on `calm`
/// clients, then the run's finalize message to the finalizer. The chunk must be counted once
/// and the run finalized once.
pub async fn deliver_again_and_finalize(
    stack: &Stack,
    calm: AwsClients,
    records: &[(String, String)],
    run_id: &str,
    scenario: &str,
) {
    let calm = stack.deployment.engine(calm);
    let again = backline_worker::handler(&calm, sqs_event(records)).await.unwrap();
    assert!(again.batch_item_failures.is_empty(), "{scenario}: {:?}", failed_ids(&again));
    assert_eq!(finalize_queued(stack, &calm, 1).await, 1, "{scenario}: one finalize message");
    assert_eq!(chunks_done(stack, run_id).await, 1, "{scenario}: the chunk counted once");
}

/// Compares the versioned `bucket` under `prefix` with `expected` (one version of each),
/// records the figures for RELIABILITY.md, and fails on anything lost or stored twice.
pub async fn each_stored_once(
    bucket: &str,
    prefix: &str,
    expected: &BTreeMap<String, Vec<u8>>,
    scenario: &str,
    kind: &str,
) {
    let s3 = &Moto::get().clients().await.s3;
    let comparison = compare_versioned(s3, bucket, prefix, expected, 1).await;
    let (lost, duplicates) = (comparison.lost.len(), comparison.duplicates.len());
    reliability::record(&Figures::of_one_run(scenario, kind, expected.len(), 1, lost, duplicates));
    assert!(lost == 0 && duplicates == 0, "{scenario}: {comparison:?}");
}

/// Delivers the queued chunks, as SQS would, until a delivery reaches the request `proxy`
/// holds; that delivery is cut off at its 2 s deadline. For kinds whose chunks wait in the
/// queue between looks, so the held request may come in any delivery. Returns the records
/// the dying delivery was given.
pub async fn deliver_until_one_dies(stack: &Stack, proxy: &FaultProxy, scenario: &str) -> Vec<(String, String)> {
    for _ in 0..30 {
        let records = as_records(&drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await);
        if records.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            continue;
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        let delivery = backline_worker::handler(&stack.engine, event_ending_in(&records, 2));
        let stalled = async {
            while proxy.faults().await == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            done = delivery => {
                let done = done.unwrap();
                assert!(done.batch_item_failures.is_empty(), "{scenario}: {:?}", failed_ids(&done));
            }
            _ = stalled => {
                tokio::time::sleep_until(deadline + std::time::Duration::from_millis(100)).await;
                assert_eq!(proxy.faults().await, 1, "{scenario}");
                return records;
            }
        }
    }
    panic!("{scenario}: no delivery reached the held request");
}

/// The manifest of run `run_id`, wherever among `buckets` its job keeps its records (a restore
/// keeps them where its backup job does).
pub async fn manifest_of(s3: &aws_sdk_s3::Client, buckets: &[&str], run_id: &str) -> backline::store::Manifest {
    for bucket in buckets {
        let keys = backline_tests::keys(s3, bucket, "_backline/").await;
        if let Some(key) = keys.iter().find(|k| k.ends_with(&format!("/{run_id}/manifest.json"))) {
            return serde_json::from_slice(&backline_tests::body(s3, bucket, key).await).expect("a manifest");
        }
    }
    panic!("no manifest of {run_id} in {buckets:?}")
}
