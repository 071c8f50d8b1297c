use lambda_runtime::{Error, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    backline_finalizer::serve().await
}
