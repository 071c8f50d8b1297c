//! Planning a `quicksight` run: users, groups and memberships read in the identity region
//! become records for the day's tables; each asset type's list becomes bundles to export.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::client::{Group, QuickSight, User};
use super::records::ensure_table;
use super::task::{BundleTask, QuickSightTask, RecordTask};
use super::{AssetType, QuickSightJob};
use crate::pipeline::EngineError;
use crate::pipeline::kind::JobContext;
use crate::pipeline::planner::TaskSink;

pub const USER_KEY: &str = "user_name";
pub const GROUP_KEY: &str = "group_name";
pub const MEMBERSHIP_KEY: &str = "membership_id";

/// The day's three tables: users, groups, memberships.
pub struct Tables {
    pub users: String,
    pub groups: String,
    pub memberships: String,
}

impl Tables {
    pub fn of(spec: &QuickSightJob, date: chrono::NaiveDate) -> Tables {
        let target = &spec.target;
        Tables {
            users: target.users_table.dated(date),
            groups: target.groups_table.dated(date),
            memberships: target.memberships_table.dated(date),
        }
    }

    pub fn with_keys(&self) -> [(&str, &'static str); 3] {
        [(&self.users, USER_KEY), (&self.groups, GROUP_KEY), (&self.memberships, MEMBERSHIP_KEY)]
    }
}

pub async fn plan(cx: &JobContext<'_>, spec: &QuickSightJob, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
    let at = cx.run.scheduled_at;
    sink.note(format!("mode {}", spec.mode.as_str()));
    if spec.mode.users() {
        plan_users(cx, spec, sink, at).await?;
    }
    if spec.mode.assets() {
        plan_assets(cx, spec, sink, at).await?;
    }
    Ok(())
}

fn record(key: String, table: &str, key_attribute: &str, item: Value) -> QuickSightTask {
    let Value::Object(item) = item else { unreachable!("records are objects") };
    QuickSightTask::Record(RecordTask { key, table: table.to_string(), key_attribute: key_attribute.to_string(), item })
}

/// A user's item in the users table.
pub fn user_item(user: &User, timestamp: &str) -> Value {
    json!({
        USER_KEY: user.user_name,
        "arn": user.arn,
        "email": user.email,
        "role": user.role,
        "identity_type": user.identity_type,
        "active": user.active,
        "principal_id": user.principal_id,
        "custom_permissions_name": user.custom_permissions_name,
        "external_login_federation_provider_type": user.external_login_federation_provider_type,
        "external_login_federation_provider_url": user.external_login_federation_provider_url,
        "external_login_id": user.external_login_id,
        "backup_timestamp": timestamp,
    })
}

pub fn group_item(group: &Group, timestamp: &str) -> Value {
    json!({
        GROUP_KEY: group.group_name,
        "arn": group.arn,
        "description": group.description,
        "principal_id": group.principal_id,
        "members": group.members,
        "backup_timestamp": timestamp,
    })
}

pub fn membership_item(group: &Group, member: usize, users: &[User], timestamp: &str) -> Value {
    let user_name = &group.members[member];
    let user_arn = group
        .member_arns
        .get(member)
        .filter(|arn| !arn.is_empty())
        .cloned()
        .or_else(|| users.iter().find(|u| &u.user_name == user_name).map(|u| u.arn.clone()));
    json!({
        MEMBERSHIP_KEY: format!("{user_name}#{}", group.group_name),
        "user_name": user_name,
        "group_name": group.group_name,
        "user_arn": user_arn,
        "group_arn": group.arn,
        "backup_timestamp": timestamp,
    })
}

async fn plan_users(
    cx: &JobContext<'_>,
    spec: &QuickSightJob,
    sink: &mut TaskSink<'_>,
    at: DateTime<Utc>,
) -> Result<(), EngineError> {
    let source = &spec.source;
    let qs = QuickSight::new(&cx.engine.clients, source.account_id.as_str(), source.identity_region().as_str());
    let users = qs.users(&source.namespace).await?;
    let groups = qs.groups(&source.namespace).await?;
    let memberships: usize = groups.iter().map(|g| g.members.len()).sum();
    let tables = Tables::of(spec, at.date_naive());
    sink.note(format!(
        "{} users, {} groups, {memberships} memberships (namespace {}, identity region {}) -> DynamoDB {}, {}, {}",
        users.len(),
        groups.len(),
        source.namespace,
        qs.region,
        tables.users,
        tables.groups,
        tables.memberships
    ));
    if cx.dry_run {
        check_dynamodb(cx, &tables, sink).await?;
    } else {
        for (table, key) in tables.with_keys() {
            ensure_table(&cx.engine.clients.dynamodb, table, key, &cx.job.name).await?;
        }
    }
    let timestamp = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for user in &users {
        let item = user_item(user, &timestamp);
        sink.push(record(format!("users/{}", user.user_name), &tables.users, USER_KEY, item)).await?;
    }
    for group in &groups {
        let item = group_item(group, &timestamp);
        sink.push(record(format!("groups/{}", group.group_name), &tables.groups, GROUP_KEY, item)).await?;
    }
    for group in &groups {
        for member in 0..group.members.len() {
            let item = membership_item(group, member, &users, &timestamp);
            let key = format!("memberships/{}#{}", group.members[member], group.group_name);
            sink.push(record(key, &tables.memberships, MEMBERSHIP_KEY, item)).await?;
        }
    }
    Ok(())
}

/// A dry run says, for each table, whether it would be made or reused.
async fn check_dynamodb(cx: &JobContext<'_>, tables: &Tables, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    for (table, _) in tables.with_keys() {
        let state = match cx.engine.clients.dynamodb.describe_table().table_name(table).send().await {
            Ok(_) => "exists, would be reused",
            Err(err) if err.code() == Some("ResourceNotFoundException") => "would be created",
            Err(err) => {
                return Err(EngineError::service(
                    format!("DynamoDB DescribeTable `{table}`"),
                    crate::aws::error_text(&err),
                ));
            }
        };
        sink.note(format!("check: DynamoDB table {table}: {state}"));
    }
    Ok(())
}

/// `{prefix}/{date}/{type}/{type}-{HHMMSS}.zip`, or `{type}_bundle_{n}-{HHMMSS}.zip` of several.
pub fn bundle_tasks(
    spec: &QuickSightJob,
    kind: AssetType,
    assets: &[super::Asset],
    at: DateTime<Utc>,
) -> Vec<BundleTask> {
    let folder = format!("{}{kind}/", spec.date_prefix(at));
    let time = at.format("%H%M%S");
    let bundles: Vec<&[super::Asset]> = assets.chunks(spec.max_assets_per_bundle.get()).collect();
    let several = bundles.len() > 1;
    bundles
        .into_iter()
        .enumerate()
        .map(|(i, assets)| {
            let name = if several { format!("{kind}_bundle_{}", i + 1) } else { kind.to_string() };
            BundleTask {
                asset_type: kind,
                key: format!("{folder}{name}-{time}.zip"),
                name,
                bucket: spec.target.bucket.as_str().to_string(),
                assets: assets.to_vec(),
                split: false,
                job_id: None,
                downloads: 0,
                stored_since: None,
            }
        })
        .collect()
}

async fn plan_assets(
    cx: &JobContext<'_>,
    spec: &QuickSightJob,
    sink: &mut TaskSink<'_>,
    at: DateTime<Utc>,
) -> Result<(), EngineError> {
    let source = &spec.source;
    let qs = QuickSight::new(&cx.engine.clients, source.account_id.as_str(), source.region.as_str());
    for kind in AssetType::ALL {
        let assets = qs.assets(kind).await?;
        if assets.is_empty() {
            let warning = format!("warning: no {kind} in {} (account {})", qs.region, qs.account);
            tracing::warn!("{warning}");
            sink.note(warning);
            continue;
        }
        let bundles = bundle_tasks(spec, kind, &assets, at);
        sink.note(format!("{} {kind} in {} bundle(s)", assets.len(), bundles.len()));
        for bundle in bundles {
            sink.push(QuickSightTask::Bundle(bundle)).await?;
        }
    }
    if cx.dry_run {
        sink.note(format!("check: bucket {}: exists", spec.target.bucket));
    }
    Ok(())
}
