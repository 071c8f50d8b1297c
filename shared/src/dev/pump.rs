//! The local event source mapping: what AWS runs between each queue and its function. It
//! long-polls the queue, invokes the function with an SQS batch event, deletes what the
//! function's `batchItemFailures` do not name and leaves the rest to SQS: back after the
//! visibility time-out, into the DLQ after `max_receive_count` receives.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{info, warn};

use super::batch_response::{Verdict, judge};
use super::event_sources::EventSources;
use super::invoke::{InvokeError, Invoker};
use super::queues::EventQueue;
use crate::aws::error_text;
use crate::model::FinalizeMessage;
use crate::store::{ControlStore, report_url};

/// What the pump has done so far, for its summary and for tests.
#[derive(Debug, Default)]
pub struct PumpStats {
    pub invocations: AtomicU64,
    pub deleted: AtomicU64,
    /// Messages left in their queue after a failure, to come back or go to the DLQ.
    pub left: AtomicU64,
}

pub struct Pump {
    pub sqs: aws_sdk_sqs::Client,
    /// For printing a finished run's report.
    pub s3: aws_sdk_s3::Client,
    pub invoker: Invoker,
    pub queues: Vec<EventQueue>,
    /// How long one ReceiveMessage waits for a message (SQS allows at most 20 s).
    pub wait: Duration,
    /// Print each finished run's report (finalize queue) to standard output.
    pub print_reports: bool,
    pub stats: Arc<PumpStats>,
}

impl Pump {
    /// Runs until `shutdown` turns true. Messages already handed to a function are seen through.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let mut pollers = Vec::new();
        for (index, queue) in self.queues.iter().enumerate() {
            // One poller per invocation the mapping allows at once.
            for _ in 0..queue.max_concurrency.max(1) {
                let pump = self.clone();
                let shutdown = shutdown.clone();
                pollers.push(tokio::spawn(async move { pump.poll(index, shutdown).await }));
            }
        }
        for poller in pollers {
            let _ = poller.await;
        }
    }

    async fn poll(&self, index: usize, mut shutdown: watch::Receiver<bool>) {
        let queue = &self.queues[index];
        while !*shutdown.borrow() {
            let batch = tokio::select! {
                _ = shutdown.changed() => break,
                batch = self.receive(queue) => batch,
            };
            match batch {
                Ok(messages) if messages.is_empty() => {}
                Ok(messages) => self.deliver(queue, messages).await,
                Err(e) => {
                    warn!("{}: ReceiveMessage failed: {e}", queue.name);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One batch: up to `batch_size` messages, gathered for at most the batching window.
    async fn receive(&self, queue: &EventQueue) -> Result<Vec<Message>, String> {
        let batch_size = queue.mapping.batch_size as usize;
        let window = Duration::from_secs(queue.mapping.max_batching_window_seconds.into());
        let mut messages = self.receive_once(queue, batch_size, self.wait).await?;
        let deadline = tokio::time::Instant::now() + window;
        while !messages.is_empty() && messages.len() < batch_size && tokio::time::Instant::now() < deadline {
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            let more = self.receive_once(queue, batch_size - messages.len(), wait).await?;
            messages.extend(more);
        }
        Ok(messages)
    }

    async fn receive_once(&self, queue: &EventQueue, max: usize, wait: Duration) -> Result<Vec<Message>, String> {
        let response = self
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        Ok(response.messages.unwrap_or_default())
    }

    async fn deliver(&self, queue: &EventQueue, messages: Vec<Message>) {
        let function = queue.mapping.function_name();
        let ids: Vec<String> = messages.iter().map(|m| m.message_id().unwrap_or_default().to_string()).collect();
        let receives: Vec<String> = messages.iter().map(receive_count).collect();
        info!("{} -> {function}: {} (receive {})", queue.name, short_ids(&ids), receives.join(", "));
        let event = sqs_event(queue, &messages);
        self.stats.invocations.fetch_add(1, Ordering::Relaxed);
        let verdict = match self.invoker.invoke(&function, &event).await {
            Ok(invocation) => judge(&ids, &invocation),
            Err(e @ InvokeError::Unreachable { .. }) => {
                // On AWS the function is always there. Here it may still be building or be
                // restarting: the batch goes back at once instead of after its visibility
                // time-out, and this poller waits for the functions to answer again.
                warn!("{}: {e}; the batch goes back to the queue", queue.name);
                self.release(queue, &messages).await;
                self.invoker.wait_until_up(Duration::from_secs(3600)).await;
                return;
            }
            Err(e) => Verdict::AllFailed(e.to_string()),
        };
        let failed = match &verdict {
            Verdict::AllSucceeded => Vec::new(),
            Verdict::SomeFailed(failed) => failed.clone(),
            Verdict::AllFailed(why) => {
                warn!("{} <- {function}: the whole batch failed: {why}", queue.name);
                ids.clone()
            }
        };
        let done: Vec<&Message> =
            messages.iter().filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id())).collect();
        self.delete(queue, &done).await;
        self.stats.deleted.fetch_add(done.len() as u64, Ordering::Relaxed);
        self.stats.left.fetch_add(failed.len() as u64, Ordering::Relaxed);
        if !failed.is_empty() {
            warn!(
                "{} <- {function}: failed {}: left in the queue, visible again in {} s; after {} receives SQS moves it to the DLQ",
                queue.name,
                short_ids(&failed),
                queue.visibility_timeout_seconds,
                EventSources::get().max_receive_count
            );
        }
        if !done.is_empty() {
            let done_ids: Vec<String> = done.iter().map(|m| m.message_id().unwrap_or_default().to_string()).collect();
            info!("{} <- {function}: done {}, deleted", queue.name, short_ids(&done_ids));
        }
        if self.print_reports && queue.mapping.queue == "finalize" {
            for message in done {
                self.print_report(message).await;
            }
        }
    }

    async fn delete(&self, queue: &EventQueue, messages: &[&Message]) {
        for group in messages.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = group
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .ok()
                })
                .collect();
            // A message not deleted comes back after its visibility time-out: at-least-once, as on AWS.
            match self.sqs.delete_message_batch().queue_url(&queue.url).set_entries(Some(entries)).send().await {
                Ok(response) if !response.failed().is_empty() => {
                    warn!("{}: {} messages were not deleted and will come back", queue.name, response.failed().len())
                }
                Ok(_) => {}
                Err(e) => warn!("{}: DeleteMessageBatch failed: {}", queue.name, error_text(&e)),
            }
        }
    }

    /// Makes messages visible again now.
    async fn release(&self, queue: &EventQueue, messages: &[Message]) {
        for message in messages {
            let handle = message.receipt_handle().unwrap_or_default();
            let released = self
                .sqs
                .change_message_visibility()
                .queue_url(&queue.url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send();
            if let Err(e) = released.await {
                warn!("{}: ChangeMessageVisibility failed: {}", queue.name, error_text(&e));
            }
        }
    }

    async fn print_report(&self, message: &Message) {
        let Ok(finalize) = serde_json::from_str::<FinalizeMessage>(message.body().unwrap_or_default()) else {
            return;
        };
        let run = &finalize.run;
        let store = ControlStore::new(self.s3.clone(), &run.control);
        let key = store.key(&format!("{}report.md", ControlStore::run_dir(run)));
        match store.get_by_key(&key).await {
            Ok(Some(report)) => {
                println!(
                    "\n{}:\n\n{}",
                    report_url(&run.control, &run.job, &run.run_id),
                    String::from_utf8_lossy(&report)
                );
            }
            Ok(None) => warn!("run {} finished without a report at s3://{}/{key}", run.run_id, store.bucket()),
            Err(e) => warn!("run {}: cannot read its report: {e}", run.run_id),
        }
    }
}

fn receive_count(message: &Message) -> String {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .cloned()
        .unwrap_or_else(|| "?".into())
}

/// Message ids shortened to their first block, as people read them in a log.
fn short_ids(ids: &[String]) -> String {
    let short: Vec<&str> = ids.iter().map(|id| id.split('-').next().unwrap_or(id)).collect();
    format!("message {}", short.join(" "))
}

/// The event Lambda's SQS event source sends: every record as AWS shapes it.
pub fn sqs_event(queue: &EventQueue, messages: &[Message]) -> Value {
    let region = queue.arn.split(':').nth(3).unwrap_or("us-east-1").to_string();
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), Value::String(v.clone()))).collect())
                .unwrap_or_default();
            let message_attributes: serde_json::Map<String, Value> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(name, value)| {
                            let attribute = json!({
                                "stringValue": value.string_value(),
                                "binaryValue": value.binary_value().map(|b| base64(b.as_ref())),
                                "stringListValues": [],
                                "binaryListValues": [],
                                "dataType": value.data_type(),
                            });
                            (name.clone(), attribute)
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "md5OfMessageAttributes": m.md5_of_message_attributes(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue.arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

fn base64(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(bytes)
}
