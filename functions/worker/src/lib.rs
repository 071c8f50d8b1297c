//! Worker handler: each SQS record is one chunk, handled on its own; the records that failed
//! are returned so SQS redelivers only those.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use backline::Engine;
use backline::pipeline::worker;
use futures::future::join_all;
use lambda_runtime::{Error, LambdaEvent};

pub async fn handler(engine: &Engine, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let results = join_all(event.payload.records.iter().map(|record| async move {
        let id = record.message_id.clone().unwrap_or_default();
        let Some(body) = record.body.as_deref() else {
            return (id, Err("record has no body".to_string()));
        };
        (id, worker::handle_body(engine, body).await.map_err(|e| e.to_string()))
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (id, result) in results {
        match result {
            Ok(outcome) => tracing::info!(message_id = %id, ?outcome, "chunk handled"),
            Err(error) => {
                tracing::error!(message_id = %id, %error, "chunk failed; SQS will redeliver it");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    Ok(response)
}
