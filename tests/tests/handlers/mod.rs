//! The three Lambda handlers driven by hand, as SQS would: shared by the handler tests.
// Each test file uses a part of it.
#![allow(dead_code)]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use backline::Engine;
use backline::aws::AwsClients;
use backline::pipeline::Deployment;
use backline_tests::{Moto, create_ledger_table, create_queue, drain, unique};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

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
