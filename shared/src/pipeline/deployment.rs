//! How the Lambda functions find their queue, ledger and job file: environment variables set
//! by the deployment (see `infra/`).

use std::sync::Arc;

use super::{DynamoLedger, Engine, EngineError, SqsQueue};
use crate::aws::AwsClients;

pub const WORK_QUEUE_URL: &str = "BACKLINE_WORK_QUEUE_URL";
pub const FINALIZE_QUEUE_URL: &str = "BACKLINE_FINALIZE_QUEUE_URL";
pub const LEDGER_TABLE: &str = "BACKLINE_LEDGER_TABLE";
pub const CONFIG: &str = "BACKLINE_CONFIG";

#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub work_queue_url: String,
    pub finalize_queue_url: String,
    pub ledger_table: String,
    /// The job file: a local path or `s3://bucket/key`. Needed for named and scheduled jobs.
    pub config: Option<String>,
}

impl Deployment {
    pub fn from_env() -> Result<Deployment, EngineError> {
        let required = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| EngineError::Input(format!("environment variable {name} is not set")))
        };
        Ok(Deployment {
            work_queue_url: required(WORK_QUEUE_URL)?,
            finalize_queue_url: required(FINALIZE_QUEUE_URL)?,
            ledger_table: required(LEDGER_TABLE)?,
            config: std::env::var(CONFIG).ok().filter(|v| !v.is_empty()),
        })
    }

    /// The engine the three functions share: SQS queue, DynamoDB ledger.
    pub fn engine(&self, clients: AwsClients) -> Engine {
        let queue =
            SqsQueue::new(clients.sqs.clone(), clients.s3.clone(), &self.work_queue_url, &self.finalize_queue_url);
        let ledger = DynamoLedger::new(clients.dynamodb.clone(), &self.ledger_table);
        // In Lambda, metrics are log lines CloudWatch turns into metrics: no call on the hot path.
        let options = super::EngineOptions {
            emf_metrics: true,
            abort_uploads_older_than: Some(std::time::Duration::from_secs(3600)),
            ..Default::default()
        };
        Engine::new(clients, Arc::new(queue), Arc::new(ledger)).with_options(options)
    }
}
