//! Worker handler: each SQS record is one chunk, handled on its own; the records that failed
//! are returned so SQS redelivers only those.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use backline::Engine;
use backline::pipeline::{batch, worker};
use lambda_runtime::{Error, LambdaEvent};

pub async fn handler(engine: &Engine, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(batch::handle_batch(&event.payload, "chunk", |body| async move { worker::handle_body(engine, &body).await })
        .await)
}
