//! The queues of a local stack as `infra/event-sources.json` describes them: each with its DLQ,
//! visibility time-out and redrive policy, as the CDK stack makes them on AWS.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;

use super::event_sources::{EventSources, Mapping};
use crate::aws::error_text;
use crate::config::InfraConfig;

#[derive(Debug, thiserror::Error)]
#[error("queue {queue}: {operation} failed: {message}")]
pub struct QueueError {
    pub queue: String,
    pub operation: &'static str,
    pub message: String,
}

/// A mapping's queue as it exists.
#[derive(Debug, Clone)]
pub struct EventQueue {
    pub mapping: Mapping,
    pub name: String,
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub visibility_timeout_seconds: u32,
    /// Invocations of the mapping's function at once.
    pub max_concurrency: u32,
}

/// Creates every mapping's queue and DLQ under `stack`, or brings existing ones in line with
/// the file (a local stack made by an older script has no DLQ).
pub async fn ensure_queues(
    sqs: &aws_sdk_sqs::Client,
    stack: &str,
    infra: &InfraConfig,
) -> Result<Vec<EventQueue>, QueueError> {
    let sources = EventSources::get();
    let mut queues = Vec::new();
    for mapping in &sources.mappings {
        let dlq_name = mapping.dlq_name(stack);
        let dlq_url = ensure(sqs, &dlq_name, days(sources.dlq_retention_days)).await?;
        let dlq_arn = arn(sqs, &dlq_name, &dlq_url).await?;
        let name = mapping.queue_name(stack);
        let visibility = mapping.visibility_timeout_seconds(infra);
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": sources.max_receive_count});
        let mut attributes = days(sources.retention_days);
        attributes.insert(QueueAttributeName::VisibilityTimeout, visibility.to_string());
        attributes.insert(QueueAttributeName::RedrivePolicy, redrive.to_string());
        let url = ensure(sqs, &name, attributes).await?;
        let arn = arn(sqs, &name, &url).await?;
        queues.push(EventQueue {
            mapping: mapping.clone(),
            name,
            url,
            arn,
            dlq_url,
            visibility_timeout_seconds: visibility,
            max_concurrency: mapping.max_concurrency(infra),
        });
    }
    Ok(queues)
}

fn days(days: u32) -> HashMap<QueueAttributeName, String> {
    HashMap::from([(QueueAttributeName::MessageRetentionPeriod, (days * 86_400).to_string())])
}

async fn ensure(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> Result<String, QueueError> {
    let error = |operation, message| QueueError { queue: name.to_string(), operation, message };
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(found) => {
            let url = found.queue_url().unwrap_or_default().to_string();
            sqs.set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|e| error("SetQueueAttributes", error_text(&e)))?;
            Ok(url)
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) => {
            let created = sqs
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|e| error("CreateQueue", error_text(&e)))?;
            Ok(created.queue_url().unwrap_or_default().to_string())
        }
        Err(e) => Err(error("GetQueueUrl", error_text(&e))),
    }
}

async fn arn(sqs: &aws_sdk_sqs::Client, name: &str, url: &str) -> Result<String, QueueError> {
    let attributes =
        sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::QueueArn).send().await.map_err(
            |e| QueueError { queue: name.to_string(), operation: "GetQueueAttributes", message: error_text(&e) },
        )?;
    Ok(attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().unwrap_or_default())
}
