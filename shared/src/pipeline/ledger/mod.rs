//! The run's progress: chunks expected, chunks done, who finalizes. Every write is
//! conditional, so a redelivered chunk is counted once and one worker sends the finalize.

mod dynamo;
mod memory;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use dynamo::DynamoLedger;
pub use memory::MemoryLedger;

use super::EngineError;
use super::lease::Lease;
use super::slots::Slot;
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
