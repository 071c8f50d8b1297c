//! The run's progress: chunks expected, chunks done, who finalizes. Every write is
//! conditional, so a redelivered chunk is counted once and one worker sends the finalize.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::EngineError;
use super::lease::{DynamoLeases, Lease, MemoryLeases};
use super::slots::{DynamoSlots, MemorySlots, Slot};
use crate::aws::error_text;
use crate::model::RunRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    New,
    /// The same run was planned before (a redelivered schedule event).
    AlreadyPlanned,
}

/// One delivery of one chunk, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkDone {
    pub seq: u32,
    pub attempt: u32,
    /// Some tasks went back to the queue as the next attempt: one more chunk to wait for.
    pub requeued: bool,
    /// Change in the number of tasks waiting for an archive retrieval.
    pub waiting_delta: i64,
}

/// Where a run stands, for `backline status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunProgress {
    pub status: String,
    pub expected: Option<u64>,
    pub done: u64,
    pub waiting: i64,
}

impl RunProgress {
    /// The finalizer closed the run (`status` is the manifest's: succeeded, failed…).
    pub fn is_finished(&self) -> bool {
        !matches!(self.status.as_str(), "" | "planning" | "running")
    }
}

#[async_trait]
pub trait Ledger: Send + Sync {
    async fn open_run(&self, run: &RunRef) -> Result<Opened, EngineError>;
    async fn is_chunk_done(&self, run_id: &str, seq: u32, attempt: u32) -> Result<bool, EngineError>;
    /// Marks a chunk attempt done; `false` when it was done already (and so not counted again).
    async fn complete_chunk(&self, run_id: &str, chunk: ChunkDone) -> Result<bool, EngineError>;
    async fn progress(&self, run_id: &str) -> Result<Option<RunProgress>, EngineError>;
    async fn seal(&self, run_id: &str, chunks: u32) -> Result<(), EngineError>;
    /// `Some(chunks)` for the one caller that may send the finalize message: the run is sealed,
    /// every chunk is done and nobody claimed it before.
    async fn claim_finalize(&self, run_id: &str) -> Result<Option<u32>, EngineError>;
    /// Gives the claim back when the finalize message could not be sent.
    async fn release_finalize(&self, run_id: &str) -> Result<(), EngineError>;
    async fn finish(&self, run_id: &str, status: &str) -> Result<(), EngineError>;
    /// Takes one of `slot.limit` slots of a resource shared by every run; `false` when all are
    /// taken (the task should wait and ask again).
    async fn acquire_slot(&self, slot: &Slot<'_>) -> Result<bool, EngineError>;
    async fn release_slot(&self, resource: &str, holder: &str) -> Result<(), EngineError>;
    /// Takes the lease on `name` (a chunk attempt, the finalize) of a run until `until`.
    async fn take_lease(&self, run_id: &str, name: &str, until: DateTime<Utc>) -> Result<Lease, EngineError>;
    /// Ends a lease early (its holder gave up); the next taker learns someone stopped.
    async fn end_lease(&self, run_id: &str, name: &str) -> Result<(), EngineError>;
}

/// The ledger of a run in one process.
#[derive(Default)]
pub struct MemoryLedger {
    runs: Mutex<HashMap<String, MemoryRun>>,
    slots: MemorySlots,
    leases: MemoryLeases,
}

#[derive(Default)]
struct MemoryRun {
    done: HashSet<(u32, u32)>,
    expected: Option<u32>,
    requeued: u32,
    waiting: i64,
    finalize_claimed: bool,
    status: String,
}

impl MemoryLedger {
    fn with_run<T>(&self, run_id: &str, f: impl FnOnce(&mut MemoryRun) -> T) -> T {
        let mut runs = self.runs.lock().expect("ledger lock");
        f(runs.entry(run_id.to_string()).or_default())
    }

    pub fn status(&self, run_id: &str) -> Option<String> {
        self.runs.lock().expect("ledger lock").get(run_id).map(|r| r.status.clone())
    }
}

#[async_trait]
impl Ledger for MemoryLedger {
    async fn open_run(&self, run: &RunRef) -> Result<Opened, EngineError> {
        let mut runs = self.runs.lock().expect("ledger lock");
        if runs.contains_key(&run.run_id) {
            return Ok(Opened::AlreadyPlanned);
        }
        runs.insert(run.run_id.clone(), MemoryRun { status: "planning".into(), ..Default::default() });
        Ok(Opened::New)
    }

    async fn is_chunk_done(&self, run_id: &str, seq: u32, attempt: u32) -> Result<bool, EngineError> {
        Ok(self.with_run(run_id, |r| r.done.contains(&(seq, attempt))))
    }

    async fn complete_chunk(&self, run_id: &str, chunk: ChunkDone) -> Result<bool, EngineError> {
        Ok(self.with_run(run_id, |r| {
            let new = r.done.insert((chunk.seq, chunk.attempt));
            if new {
                r.requeued += u32::from(chunk.requeued);
                r.waiting += chunk.waiting_delta;
            }
            new
        }))
    }

    async fn progress(&self, run_id: &str) -> Result<Option<RunProgress>, EngineError> {
        let runs = self.runs.lock().expect("ledger lock");
        Ok(runs.get(run_id).map(|r| RunProgress {
            status: r.status.clone(),
            expected: r.expected.map(|e| u64::from(e + r.requeued)),
            done: r.done.len() as u64,
            waiting: r.waiting,
        }))
    }

    async fn seal(&self, run_id: &str, chunks: u32) -> Result<(), EngineError> {
        self.with_run(run_id, |r| {
            r.expected = Some(chunks);
            r.status = "running".into();
        });
        Ok(())
    }

    async fn claim_finalize(&self, run_id: &str) -> Result<Option<u32>, EngineError> {
        Ok(self.with_run(run_id, |r| match r.expected {
            Some(expected) if !r.finalize_claimed && r.done.len() as u32 == expected + r.requeued => {
                r.finalize_claimed = true;
                Some(expected)
            }
            _ => None,
        }))
    }

    async fn release_finalize(&self, run_id: &str) -> Result<(), EngineError> {
        self.with_run(run_id, |r| r.finalize_claimed = false);
        Ok(())
    }

    async fn finish(&self, run_id: &str, status: &str) -> Result<(), EngineError> {
        self.with_run(run_id, |r| r.status = status.to_string());
        Ok(())
    }

    async fn acquire_slot(&self, slot: &Slot<'_>) -> Result<bool, EngineError> {
        Ok(self.slots.acquire(slot))
    }

    async fn release_slot(&self, resource: &str, holder: &str) -> Result<(), EngineError> {
        self.slots.release(resource, holder);
        Ok(())
    }

    async fn take_lease(&self, run_id: &str, name: &str, until: DateTime<Utc>) -> Result<Lease, EngineError> {
        Ok(self.leases.take(format!("{run_id}#{name}"), until))
    }

    async fn end_lease(&self, run_id: &str, name: &str) -> Result<(), EngineError> {
        self.leases.end(&format!("{run_id}#{name}"));
        Ok(())
    }
}

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
