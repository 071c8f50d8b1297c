//! Where chunks and finalize messages go: SQS in Lambda, channels in one process.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tokio::sync::mpsc;

use super::EngineError;
use crate::aws::error_text;
use crate::model::{ChunkMessage, FinalizeMessage, WIRE_VERSION, WorkMessage};
use crate::store::ControlStore;

#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// How many chunks the planner should hand over at once.
    fn batch_size(&self) -> usize;
    async fn send_chunks(&self, chunks: Vec<ChunkMessage>) -> Result<(), EngineError>;
    async fn send_finalize(&self, message: FinalizeMessage) -> Result<(), EngineError>;
    /// Sends a chunk to be delivered after `delay` (capped at SQS's 15 minutes): how a task
    /// waits without a Lambda sleeping.
    async fn send_later(&self, chunk: ChunkMessage, delay: Duration) -> Result<(), EngineError>;
}

/// SQS delays a message by at most 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// A chunk body larger than this goes to S3 and the message carries its key.
pub const CLAIM_CHECK_BYTES: usize = 200 * 1024;
/// SQS limits a SendMessageBatch request to 10 entries and 256 KiB in all.
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 256 * 1024;
const SEND_ATTEMPTS: usize = 3;

pub struct SqsQueue {
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    work_queue_url: String,
    finalize_queue_url: String,
}

impl SqsQueue {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        s3: aws_sdk_s3::Client,
        work_queue_url: impl Into<String>,
        finalize_queue_url: impl Into<String>,
    ) -> SqsQueue {
        SqsQueue { sqs, s3, work_queue_url: work_queue_url.into(), finalize_queue_url: finalize_queue_url.into() }
    }

    async fn body_for(&self, message: ChunkMessage) -> Result<String, EngineError> {
        let body =
            serde_json::to_string(&WorkMessage::Chunk { version: WIRE_VERSION, message: Box::new(message.clone()) })
                .expect("wire types serialize");
        if body.len() <= CLAIM_CHECK_BYTES {
            return Ok(body);
        }
        let store = ControlStore::new(self.s3.clone(), &message.run.control);
        let chunk = &message.chunk;
        let relative =
            format!("{}chunks/{:06}-{:03}.json", ControlStore::run_dir(&message.run), chunk.seq, chunk.attempt);
        let key = store.put_json(&relative, &message).await?;
        let claim = WorkMessage::ClaimCheck {
            version: WIRE_VERSION,
            seq: chunk.seq,
            attempt: chunk.attempt,
            tasks: chunk.tasks.len(),
            key,
            job: Some(Box::new(message.job.clone())),
            run: message.run,
        };
        Ok(serde_json::to_string(&claim).expect("wire types serialize"))
    }

    /// Sends one batch, retrying the entries SQS reports as failed.
    async fn send_batch(&self, mut entries: Vec<SendMessageBatchRequestEntry>) -> Result<(), EngineError> {
        for attempt in 1..=SEND_ATTEMPTS {
            let output = self
                .sqs
                .send_message_batch()
                .queue_url(&self.work_queue_url)
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .map_err(|e| {
                    EngineError::Queue(format!("SendMessageBatch to {}: {}", self.work_queue_url, error_text(&e)))
                })?;
            let failed: Vec<_> =
                output.failed().iter().map(|f| (f.id().to_string(), f.message().unwrap_or("").to_string())).collect();
            if failed.is_empty() {
                return Ok(());
            }
            if attempt == SEND_ATTEMPTS {
                return Err(EngineError::Queue(format!(
                    "SendMessageBatch: {} entries failed, first: {}",
                    failed.len(),
                    failed[0].1
                )));
            }
            entries.retain(|e| failed.iter().any(|(id, _)| id == e.id()));
        }
        Ok(())
    }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    fn batch_size(&self) -> usize {
        BATCH_ENTRIES
    }

    async fn send_chunks(&self, chunks: Vec<ChunkMessage>) -> Result<(), EngineError> {
        let mut batch: Vec<SendMessageBatchRequestEntry> = Vec::new();
        let mut batch_bytes = 0;
        for chunk in chunks {
            let id = format!("c{}", chunk.chunk.seq);
            let body = self.body_for(chunk).await?;
            if !batch.is_empty() && (batch.len() == BATCH_ENTRIES || batch_bytes + body.len() > BATCH_BYTES) {
                self.send_batch(std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
            }
            batch_bytes += body.len();
            let entry = SendMessageBatchRequestEntry::builder()
                .id(id)
                .message_body(body)
                .build()
                .map_err(|e| EngineError::Queue(e.to_string()))?;
            batch.push(entry);
        }
        if !batch.is_empty() {
            self.send_batch(batch).await?;
        }
        Ok(())
    }

    async fn send_finalize(&self, message: FinalizeMessage) -> Result<(), EngineError> {
        let body = serde_json::to_string(&message).expect("wire types serialize");
        self.sqs.send_message().queue_url(&self.finalize_queue_url).message_body(body).send().await.map_err(|e| {
            EngineError::Queue(format!("SendMessage to {}: {}", self.finalize_queue_url, error_text(&e)))
        })?;
        Ok(())
    }

    async fn send_later(&self, chunk: ChunkMessage, delay: Duration) -> Result<(), EngineError> {
        let body = self.body_for(chunk).await?;
        self.sqs
            .send_message()
            .queue_url(&self.work_queue_url)
            .message_body(body)
            .delay_seconds(delay.min(MAX_DELAY).as_secs() as i32)
            .send()
            .await
            .map_err(|e| EngineError::Queue(format!("SendMessage to {}: {}", self.work_queue_url, error_text(&e))))?;
        Ok(())
    }
}

/// The queue of a run in one process.
pub struct LocalQueue {
    pub work: mpsc::Sender<ChunkMessage>,
    pub finalize: mpsc::UnboundedSender<FinalizeMessage>,
}

#[async_trait]
impl WorkQueue for LocalQueue {
    fn batch_size(&self) -> usize {
        1
    }

    async fn send_chunks(&self, chunks: Vec<ChunkMessage>) -> Result<(), EngineError> {
        for chunk in chunks {
            self.work.send(chunk).await.map_err(|_| EngineError::Queue("the local workers stopped".into()))?;
        }
        Ok(())
    }

    async fn send_finalize(&self, message: FinalizeMessage) -> Result<(), EngineError> {
        self.finalize.send(message).map_err(|_| EngineError::Queue("the local run stopped".into()))
    }

    async fn send_later(&self, chunk: ChunkMessage, delay: Duration) -> Result<(), EngineError> {
        let work = self.work.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = work.send(chunk).await;
        });
        Ok(())
    }
}

/// Accepts and drops everything: the queue of a dry run.
pub struct NullQueue;

#[async_trait]
impl WorkQueue for NullQueue {
    fn batch_size(&self) -> usize {
        usize::MAX
    }

    async fn send_chunks(&self, _chunks: Vec<ChunkMessage>) -> Result<(), EngineError> {
        Ok(())
    }

    async fn send_finalize(&self, _message: FinalizeMessage) -> Result<(), EngineError> {
        Ok(())
    }

    async fn send_later(&self, _chunk: ChunkMessage, _delay: Duration) -> Result<(), EngineError> {
        Ok(())
    }
}
