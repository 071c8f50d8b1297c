//! The ledger of a run in one process (`backline run`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{ChunkDone, Ledger, Opened, RunProgress};
use crate::model::RunRef;
use crate::pipeline::EngineError;
use crate::pipeline::lease::{Lease, MemoryLeases};
use crate::pipeline::slots::{MemorySlots, Slot};

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
