//! Users, groups and memberships as items of the day's DynamoDB tables, which are made on
//! first use and reused by later runs of the same day.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
    TableStatus, Tag, WriteRequest,
};
use serde_json::{Map, Value};

use crate::aws::error_text;
use crate::pipeline::EngineError;

/// The tag that marks a table as this job's, so retention never deletes another's.
pub const JOB_TAG: &str = "backline:job";
/// How long a new table may take to become ACTIVE.
const CREATE_TIMEOUT: Duration = Duration::from_secs(120);
/// BatchWriteItem takes 25 items at most.
const BATCH: usize = 25;
/// Rounds of resending what DynamoDB left unprocessed before the rest fails.
const UNPROCESSED_ROUNDS: u32 = 8;

/// Makes `table` (keyed by the string `key`) unless it exists, and waits until it is ACTIVE.
pub async fn ensure_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    job: &str,
) -> Result<(), EngineError> {
    let exists = match dynamodb.describe_table().table_name(table).send().await {
        Ok(_) => true,
        Err(err) if err.code() == Some("ResourceNotFoundException") => false,
        Err(err) => return Err(EngineError::service(format!("DynamoDB DescribeTable `{table}`"), error_text(&err))),
    };
    if !exists {
        let created = dynamodb
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(KeySchemaElement::builder().attribute_name(key).key_type(KeyType::Hash).build().expect("key"))
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .tags(Tag::builder().key(JOB_TAG).value(job).build().expect("tag"))
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(table, "created table"),
            // Another worker of the same run made it first.
            Err(err) if err.code() == Some("ResourceInUseException") => {}
            Err(err) => return Err(EngineError::service(format!("DynamoDB CreateTable `{table}`"), error_text(&err))),
        }
    }
    let deadline = tokio::time::Instant::now() + CREATE_TIMEOUT;
    loop {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| EngineError::service(format!("DynamoDB DescribeTable `{table}`"), error_text(&e)))?;
        let status = described.table().and_then(|t| t.table_status()).cloned();
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(EngineError::service(
                format!("DynamoDB table `{table}`"),
                format!("still {status:?} after {} s", CREATE_TIMEOUT.as_secs()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A record's fields as DynamoDB attributes: strings, booleans, and lists of strings as string
/// sets (as the tool Backline replaces writes `members`); a missing value or an empty list is
/// left out (DynamoDB refuses an empty set).
pub fn attributes(item: &Map<String, Value>) -> HashMap<String, AttributeValue> {
    fn attribute(value: &Value) -> Option<AttributeValue> {
        match value {
            Value::Null => None,
            Value::Bool(b) => Some(AttributeValue::Bool(*b)),
            Value::Number(n) => Some(AttributeValue::N(n.to_string())),
            Value::String(s) => Some(AttributeValue::S(s.clone())),
            Value::Array(values) if values.is_empty() => None,
            Value::Array(values) if values.iter().all(Value::is_string) => {
                Some(AttributeValue::Ss(values.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()))
            }
            Value::Array(values) => Some(AttributeValue::L(values.iter().filter_map(attribute).collect())),
            Value::Object(fields) => Some(AttributeValue::M(
                fields.iter().filter_map(|(k, v)| attribute(v).map(|a| (k.clone(), a))).collect(),
            )),
        }
    }
    item.iter().filter_map(|(k, v)| attribute(v).map(|a| (k.clone(), a))).collect()
}

/// Writes `items` into `table`, resending what DynamoDB leaves unprocessed; returns, for each
/// item, `None` when written or what went wrong.
pub async fn write(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    items: Vec<HashMap<String, AttributeValue>>,
) -> Vec<Option<String>> {
    let mut results: Vec<Option<String>> = vec![None; items.len()];
    let index: HashMap<String, usize> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item.get(key) {
            Some(AttributeValue::S(k)) => Some((k.clone(), i)),
            _ => None,
        })
        .collect();
    for (batch_start, batch) in items.chunks(BATCH).enumerate() {
        let mut pending: Vec<WriteRequest> = batch
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item.clone())).build().expect("item"))
                    .build()
            })
            .collect();
        let mut round = 0;
        while !pending.is_empty() {
            let sent = dynamodb.batch_write_item().request_items(table, pending.clone()).send().await;
            match sent {
                Ok(output) => {
                    pending = output.unprocessed_items().and_then(|u| u.get(table)).cloned().unwrap_or_default();
                }
                Err(err) => {
                    let reason = format!("DynamoDB BatchWriteItem into `{table}`: {}", error_text(&err));
                    let start = batch_start * BATCH;
                    for slot in &mut results[start..start + batch.len()] {
                        *slot = Some(reason.clone());
                    }
                    pending.clear();
                    break;
                }
            }
            round += 1;
            if pending.is_empty() {
                break;
            }
            if round >= UNPROCESSED_ROUNDS {
                for request in &pending {
                    let name = request.put_request().and_then(|p| p.item().get(key)).and_then(|v| v.as_s().ok());
                    if let Some(i) = name.and_then(|n| index.get(n)) {
                        results[*i] = Some(format!("DynamoDB left it unprocessed {UNPROCESSED_ROUNDS} times"));
                    }
                }
                break;
            }
            // DynamoDB's advice for unprocessed items: back off exponentially.
            tokio::time::sleep(Duration::from_millis(50 << round.min(6))).await;
        }
    }
    results
}
