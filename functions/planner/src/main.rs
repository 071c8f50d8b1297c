use backline::aws::AwsClients;
use backline::pipeline::Deployment;
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let deployment = Deployment::from_env()?;
    let engine = deployment.engine(AwsClients::from_env().await);
    let config = deployment.config.as_deref();
    run(service_fn(|event| backline_planner::handler(&engine, config, event))).await
}
