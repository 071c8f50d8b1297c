//! `keep_tables`: after a successful run, this job's dated tables older than the limit go.
//! Only tables whose name is a base of this job's with a date, and that carry the job's tag,
//! are ever deleted; never the run's own day.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use chrono::NaiveDate;

use super::QuickSightJob;
use super::records::JOB_TAG;
use crate::aws::error_text;
use crate::pipeline::EngineError;

/// The tables of `names` that are due for deletion on `today`: a base of the job's, a date
/// older than `today - keep`.
pub fn due<'a>(spec: &QuickSightJob, names: &'a [String], today: NaiveDate) -> Vec<&'a str> {
    let Some(keep) = spec.keep_tables else { return Vec::new() };
    let days = i64::try_from(keep.0.as_secs().div_ceil(86_400)).unwrap_or(i64::MAX);
    let oldest_kept = today - chrono::Duration::days(days.min(100_000));
    let target = &spec.target;
    let bases = [&target.users_table, &target.groups_table, &target.memberships_table];
    names
        .iter()
        .filter(|name| {
            bases.iter().filter_map(|base| base.date_of(name)).any(|date| date < oldest_kept && date < today)
        })
        .map(String::as_str)
        .collect()
}

/// Deletes the job's tables that `due` names and that carry its tag; returns what went.
pub async fn apply(
    dynamodb: &aws_sdk_dynamodb::Client,
    spec: &QuickSightJob,
    job: &str,
    today: NaiveDate,
) -> Result<Vec<String>, EngineError> {
    let mut names = Vec::new();
    let mut start = None;
    loop {
        let page = dynamodb
            .list_tables()
            .set_exclusive_start_table_name(start)
            .send()
            .await
            .map_err(|e| EngineError::service("DynamoDB ListTables", error_text(&e)))?;
        names.extend(page.table_names().iter().cloned());
        start = page.last_evaluated_table_name().map(str::to_string);
        if start.is_none() {
            break;
        }
    }
    let mut deleted = Vec::new();
    for table in due(spec, &names, today) {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| EngineError::service(format!("DynamoDB DescribeTable `{table}`"), error_text(&e)))?;
        let Some(arn) = described.table().and_then(|t| t.table_arn()) else { continue };
        let tags = dynamodb
            .list_tags_of_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| EngineError::service(format!("DynamoDB ListTagsOfResource `{table}`"), error_text(&e)))?;
        if !tags.tags().iter().any(|t| t.key() == JOB_TAG && t.value() == job) {
            tracing::info!(table, "not deleted: it is not tagged as this job's");
            continue;
        }
        match dynamodb.delete_table().table_name(table).send().await {
            Ok(_) => deleted.push(table.to_string()),
            Err(err) if err.code() == Some("ResourceNotFoundException") => {}
            Err(err) => {
                return Err(EngineError::service(format!("DynamoDB DeleteTable `{table}`"), error_text(&err)));
            }
        }
    }
    Ok(deleted)
}
