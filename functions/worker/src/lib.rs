//! Worker handler: each SQS record is one chunk, handled on its own; the records that failed
//! are returned so SQS redelivers only those.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use backline::Engine;
use backline::pipeline::{batch, lease, worker};
use lambda_runtime::{Error, LambdaEvent};

pub async fn handler(engine: &Engine, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    // A chunk's lease lasts until this invocation must end: then a redelivery may take over.
    let until = lease::until_deadline(event.context.deadline);
    Ok(batch::handle_batch(&event.payload, "chunk", |body| async move {
        worker::handle_body_until(engine, &body, until).await
    })
    .await)
}

/// The function as Lambda runs it: the engine from the environment, then the runtime loop
/// (`AWS_LAMBDA_RUNTIME_API`). `main` and the tests that run it as a process call this.
pub async fn serve() -> Result<(), Error> {
    let engine = backline::pipeline::Deployment::from_env()?.engine(backline::aws::AwsClients::from_env().await);
    lambda_runtime::run(lambda_runtime::service_fn(|event| handler(&engine, event))).await
}
