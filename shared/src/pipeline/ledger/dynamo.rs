//! The ledger in DynamoDB, shared by the Lambda functions.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::{ChunkDone, Ledger, Opened, RunProgress};
use crate::aws::error_text;
use crate::model::RunRef;
use crate::pipeline::EngineError;
use crate::pipeline::lease::{DynamoLeases, Lease};
use crate::pipeline::slots::{DynamoSlots, Slot};

/// The ledger in a DynamoDB table with string keys `pk` (run id) and `sk` (`run` or
/// `chunk#NNNNNN`), and a TTL attribute `expires_at`.
pub struct DynamoLedger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

const RUN_SK: &str = "run";
const TTL_DAYS: i64 = 30;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn chunk_sk(seq: u32, attempt: u32) -> String {
    format!("chunk#{seq:06}#{attempt:03}")
}

fn expires_at() -> AttributeValue {
    n((Utc::now() + chrono::Duration::days(TTL_DAYS)).timestamp())
}

fn is_condition_failure<E: ProvideErrorMetadata>(err: &E) -> bool {
    matches!(err.code(), Some("ConditionalCheckFailedException"))
}

impl DynamoLedger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoLedger {
        DynamoLedger { client, table: table.into() }
    }

    fn error(&self, operation: &str, err: impl std::fmt::Display) -> EngineError {
        EngineError::Ledger(format!("table {}: {operation}: {err}", self.table))
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn open_run(&self, run: &RunRef) -> Result<Opened, EngineError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&run.run_id))
            .item("sk", s(RUN_SK))
            .item("job", s(&run.job))
            .item("status", s("planning"))
            .item("done", n(0))
            .item("started_at", s(run.started_at.to_rfc3339()))
            .item("expires_at", expires_at())
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(Opened::New),
            Err(e) if is_condition_failure(&e) => Ok(Opened::AlreadyPlanned),
            Err(e) => Err(self.error("PutItem", error_text(&e))),
        }
    }

    async fn is_chunk_done(&self, run_id: &str, seq: u32, attempt: u32) -> Result<bool, EngineError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(run_id))
            .key("sk", s(chunk_sk(seq, attempt)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", error_text(&e)))?;
        Ok(item.item().is_some())
    }

    async fn complete_chunk(&self, run_id: &str, chunk: ChunkDone) -> Result<bool, EngineError> {
        // The chunk marker and the run's counters change together or not at all. A requeued
        // chunk raises `requeued`, so the run waits for its next attempt too.
        let marker = Put::builder()
            .table_name(&self.table)
            .item("pk", s(run_id))
            .item("sk", s(chunk_sk(chunk.seq, chunk.attempt)))
            .item("expires_at", expires_at())
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| self.error("TransactWriteItems", e))?;
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(run_id))
            .key("sk", s(RUN_SK))
            .update_expression("ADD #done :one, #target :requeued, #waiting :waiting")
            .expression_attribute_names("#done", "done")
            .expression_attribute_names("#target", "target")
            .expression_attribute_names("#waiting", "waiting")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":requeued", n(u32::from(chunk.requeued)))
            .expression_attribute_values(":waiting", n(chunk.waiting_delta))
            .build()
            .map_err(|e| self.error("TransactWriteItems", e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(marker).build())
            .transact_items(TransactWriteItem::builder().update(count).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let cancelled_by_condition = e.as_service_error().is_some_and(|service| {
                    service.is_transaction_canceled_exception()
                        && format!("{service:?}").contains("ConditionalCheckFailed")
                });
                if cancelled_by_condition { Ok(false) } else { Err(self.error("TransactWriteItems", error_text(&e))) }
            }
        }
    }

    async fn seal(&self, run_id: &str, chunks: u32) -> Result<(), EngineError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(run_id))
            .key("sk", s(RUN_SK))
            .update_expression("SET #expected = :n, #status = :running ADD #target :n")
            .expression_attribute_names("#expected", "expected")
            .expression_attribute_names("#target", "target")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":n", n(chunks))
            .expression_attribute_values(":running", s("running"))
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", error_text(&e)))?;
        Ok(())
    }

    async fn claim_finalize(&self, run_id: &str) -> Result<Option<u32>, EngineError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(run_id))
            .key("sk", s(RUN_SK))
            .update_expression("SET #claimed = :yes")
            .condition_expression("attribute_exists(#expected) AND #done = #target AND attribute_not_exists(#claimed)")
            .expression_attribute_names("#claimed", "finalize_claimed")
            .expression_attribute_names("#expected", "expected")
            .expression_attribute_names("#target", "target")
            .expression_attribute_names("#done", "done")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let expected = output
                    .attributes()
                    .and_then(|a| a.get("expected"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Ok(Some(expected))
            }
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(self.error("UpdateItem", error_text(&e))),
        }
    }

    async fn progress(&self, run_id: &str) -> Result<Option<RunProgress>, EngineError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(run_id))
            .key("sk", s(RUN_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", error_text(&e)))?;
        let Some(item) = output.item() else { return Ok(None) };
        let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
        Ok(Some(RunProgress {
            status: item.get("status").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
            expected: item.contains_key("expected").then(|| number("target").unwrap_or(0).max(0) as u64),
            done: number("done").unwrap_or(0).max(0) as u64,
            waiting: number("waiting").unwrap_or(0),
        }))
    }

    async fn release_finalize(&self, run_id: &str) -> Result<(), EngineError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(run_id))
            .key("sk", s(RUN_SK))
            .update_expression("REMOVE finalize_claimed")
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", error_text(&e)))?;
        Ok(())
    }

    async fn finish(&self, run_id: &str, status: &str) -> Result<(), EngineError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(run_id))
            .key("sk", s(RUN_SK))
            .update_expression("SET #status = :status, finished_at = :at")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":at", s(Utc::now().to_rfc3339()))
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", error_text(&e)))?;
        Ok(())
    }

    async fn acquire_slot(&self, slot: &Slot<'_>) -> Result<bool, EngineError> {
        DynamoSlots { client: &self.client, table: &self.table }.acquire(slot).await
    }

    async fn release_slot(&self, resource: &str, holder: &str) -> Result<(), EngineError> {
        DynamoSlots { client: &self.client, table: &self.table }.release(resource, holder).await
    }

    async fn take_lease(&self, run_id: &str, name: &str, until: DateTime<Utc>) -> Result<Lease, EngineError> {
        DynamoLeases { client: &self.client, table: &self.table }.take(run_id, name, until).await
    }

    async fn end_lease(&self, run_id: &str, name: &str) -> Result<(), EngineError> {
        DynamoLeases { client: &self.client, table: &self.table }.end(run_id, name).await
    }
}
