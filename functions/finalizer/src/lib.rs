//! Finalizer handler: each SQS record is a finalize message -> manifest, report, state, metrics.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use backline::Engine;
use backline::model::{FinalizeMessage, WIRE_VERSION};
use backline::pipeline::finalizer;
use lambda_runtime::{Error, LambdaEvent};

async fn finalize_body(engine: &Engine, body: &str) -> Result<String, String> {
    let message: FinalizeMessage =
        serde_json::from_str(body).map_err(|e| format!("not a Backline finalize message: {e}"))?;
    if message.version != WIRE_VERSION {
        return Err(format!("message version {} is not supported (expected {WIRE_VERSION})", message.version));
    }
    let manifest = finalizer::finalize(engine, &message).await.map_err(|e| e.to_string())?;
    Ok(format!("{} {}", manifest.run_id, manifest.status))
}

pub async fn handler(engine: &Engine, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in &event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        match finalize_body(engine, record.body.as_deref().unwrap_or_default()).await {
            Ok(run) => tracing::info!(message_id = %id, %run, "run finalized"),
            Err(error) => {
                tracing::error!(message_id = %id, %error, "finalize failed; SQS will redeliver it");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    Ok(response)
}
