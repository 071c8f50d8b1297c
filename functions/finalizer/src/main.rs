use backline::aws::AwsClients;
use backline::pipeline::Deployment;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let engine = Deployment::from_env()?.engine(AwsClients::from_env().await);
    run(service_fn(|event| backline_finalizer::handler(&engine, event))).await
}
