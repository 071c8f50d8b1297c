//! plan -> chunk -> execute -> finalize. The same functions run in Lambda (SQS queue, DynamoDB
//! ledger) and in one process (`backline run`: in-process queue and ledger).

pub mod batch;
mod chunker;
pub mod deployment;
pub mod events;
pub mod finalizer;
pub mod kind;
pub mod lease;
pub mod ledger;
pub mod local;
pub mod planner;
pub mod queue;
pub mod resume;
pub mod slots;
pub mod worker;

use std::sync::Arc;

pub use chunker::Chunker;
pub use deployment::Deployment;
pub use kind::{JobContext, Kind, KindTask};
pub use ledger::{DynamoLedger, Ledger, MemoryLedger};
pub use queue::{SqsQueue, WorkQueue};

use crate::aws::AwsClients;
use crate::config::{ConfigError, JobError};
use crate::model::Outcome;
use crate::store::StoreError;

/// What the pipeline's stages share: clients built once, the queue and the ledger.
pub struct Engine {
    pub clients: AwsClients,
    pub queue: Arc<dyn WorkQueue>,
    pub ledger: Arc<dyn Ledger>,
    pub progress: Arc<dyn Progress>,
    pub options: EngineOptions,
}

/// Choices of the one running the engine (flags of `backline run`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineOptions {
    /// Keep a copy of filesystem states here, and use it while it matches the stored one.
    pub state_cache: Option<std::path::PathBuf>,
    /// Rebuild filesystem states from the buckets before planning.
    pub reset_state: bool,
    /// Print what would go to Zabbix instead of sending it (`backline run --zabbix-stub`).
    pub zabbix_stub: bool,
    /// Metrics as Embedded Metric Format lines in the log (Lambda), not PutMetricData calls.
    pub emf_metrics: bool,
    /// Abort multipart uploads under the job's targets started this long before the run
    /// (a killed run's): zero for `backline run`, an hour in Lambda, where a worker may still
    /// be writing for up to its 15-minute limit. `None`: leave them.
    pub abort_uploads_older_than: Option<std::time::Duration>,
    /// Runs may die without anyone delivering their chunks again (`backline run` killed):
    /// record which chunks started, and before planning carry what earlier unfinished runs of
    /// the job did into the state (see `resume`). In Lambda SQS redelivers instead.
    pub resumable: bool,
}

impl Engine {
    pub fn new(clients: AwsClients, queue: Arc<dyn WorkQueue>, ledger: Arc<dyn Ledger>) -> Engine {
        Engine { clients, queue, ledger, progress: Arc::new(NoProgress), options: EngineOptions::default() }
    }

    /// An engine that sends nothing anywhere: for dry runs and for reading (verify).
    pub fn standalone(clients: AwsClients) -> Engine {
        Engine::new(clients, Arc::new(queue::NullQueue), Arc::new(MemoryLedger::default()))
    }

    pub fn with_options(mut self, options: EngineOptions) -> Engine {
        self.options = options;
        self
    }

    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Engine {
        self.progress = progress;
        self
    }
}

/// Hooks for a progress display; the Lambda functions use `NoProgress`.
pub trait Progress: Send + Sync {
    /// A task was planned: `key` names it, `bytes` is what it will move.
    fn planned(&self, _key: &str, _bytes: u64) {}
    fn finished(&self, _outcome: &Outcome) {}
    /// Tasks waiting for an archive retrieval went up (or down) by `delta`.
    fn waiting(&self, _delta: i64) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Job(#[from] JobError),
    /// The request cannot be carried out as given (missing bucket, unknown job, bad event).
    #[error("{0}")]
    Input(String),
    /// A call to a service (S3, the source's server) failed while the run was under way.
    #[error("{call} failed: {message}")]
    Service { call: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(String),
    #[error("ledger: {0}")]
    Ledger(String),
    #[error("message: {0}")]
    Message(String),
    /// Another delivery of the same message is at work on it: this one must come back later.
    #[error("{0}")]
    InProgress(String),
}

impl EngineError {
    /// A failed service call, named the way its API names it (`ListObjectsV2 on bucket x`).
    pub fn service(call: impl Into<String>, message: impl Into<String>) -> EngineError {
        EngineError::Service { call: call.into(), message: message.into() }
    }

    /// Errors the user must fix (exit code 2), as opposed to failures during the work.
    pub fn is_input_error(&self) -> bool {
        matches!(self, EngineError::Config(_) | EngineError::Job(_) | EngineError::Input(_))
    }

    /// The exit code of a run that stopped with this error: 4 a service call failed, 2 bad
    /// input, else 1 (what `backline` exits with and what Zabbix is told).
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Service { .. } => 4,
            err if err.is_input_error() => 2,
            _ => 1,
        }
    }
}
