//! The SQS partial-batch-failure loop, written once: each record of a batch is handled on its
//! own, and only the ones that failed are named in the answer, so SQS redelivers just those
//! (and moves them to the DLQ after `maxReceiveCount`).

use std::fmt::Debug;
use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::future::join_all;

use super::EngineError;

/// Runs `handle` on every record's body at once; `what` names a record in the log.
pub async fn handle_batch<F, Fut, T>(event: &SqsEvent, what: &str, handle: F) -> SqsBatchResponse
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, EngineError>>,
    T: Debug,
{
    let handle = &handle;
    let results = join_all(event.records.iter().map(|record| async move {
        let id = record.message_id.clone().unwrap_or_default();
        let result = match record.body.as_deref() {
            Some(body) => handle(body.to_string()).await.map_err(|e| e.to_string()),
            None => Err("the record has no body".to_string()),
        };
        (id, result)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (id, result) in results {
        match result {
            Ok(done) => tracing::info!(message_id = %id, ?done, "{what} handled"),
            Err(error) => {
                tracing::error!(message_id = %id, %error, "{what} failed; SQS will redeliver it");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}
