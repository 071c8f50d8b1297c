//! Finalizer handler: each SQS record is a finalize message -> manifest, report, state, metrics.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use backline::Engine;
use backline::pipeline::{batch, finalizer};
use lambda_runtime::{Error, LambdaEvent};

pub async fn handler(engine: &Engine, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(batch::handle_batch(&event.payload, "finalize message", |body| async move {
        finalizer::handle_body(engine, &body).await
    })
    .await)
}
