//! AWS client construction and the S3 helpers every source shares.
//!
//! Clients come from the standard AWS environment: credentials chain, region, and the endpoint
//! variables `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`. With an endpoint override S3 is
//! addressed path-style, which local servers (moto, s3s, MinIO) need.

pub mod copy;
pub mod glacier;
pub mod listing;
pub mod s3;
pub mod stream_upload;
pub mod uploads;
pub mod written_once;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};

/// One set of clients, built once per process (Lambda cold start or CLI start).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// For secret references (`ssm:`, `secretsmanager:`) in job files.
    pub ssm: aws_sdk_ssm::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    /// Metrics are best-effort: one attempt, short timeouts, so a dead endpoint never stalls a run.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// What the clients were made from, for clients made per region (QuickSight).
    pub sdk_config: SdkConfig,
    /// Where QuickSight is served, if not AWS (`AWS_ENDPOINT_URL_QUICKSIGHT`, or a test's
    /// emulator): QuickSight clients are made per region, so the endpoint is kept apart.
    pub quicksight_endpoint: Option<String>,
}

impl AwsClients {
    pub async fn from_env() -> AwsClients {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        AwsClients::from_sdk_config(&config)
    }

    pub fn from_sdk_config(config: &SdkConfig) -> AwsClients {
        let retry = RetryConfig::standard().with_max_attempts(5).with_initial_backoff(Duration::from_millis(100));
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(endpoint_overridden(config, "S3"))
            .retry_config(retry.clone())
            // Checksums are requested explicitly where we want them; the SDK's default
            // trailer checksums are not understood by every S3-compatible server.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        let cloudwatch_config = aws_sdk_cloudwatch::config::Builder::from(config)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_timeout(Duration::from_secs(5))
                    .build(),
            )
            .build();
        AwsClients {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(config).retry_config(retry.clone()).build(),
            ),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(config).retry_config(retry).build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(cloudwatch_config),
            ssm: aws_sdk_ssm::Client::new(config),
            secretsmanager: aws_sdk_secretsmanager::Client::new(config),
            sdk_config: config.clone(),
            quicksight_endpoint: std::env::var("AWS_ENDPOINT_URL_QUICKSIGHT").ok().filter(|v| !v.is_empty()),
        }
    }
}

fn endpoint_overridden(config: &SdkConfig, service: &str) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    config.endpoint_url().is_some() || set("AWS_ENDPOINT_URL") || set(&format!("AWS_ENDPOINT_URL_{service}"))
}

/// Renders an SDK error as `Code: message` (or the full error chain when there is no code).
pub fn error_text<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
    }
}
