//! Planning a QuickSight restore: the day's tables read back into groups, users and
//! memberships to create, and the day's bundles (from its last run's manifest) to import.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;

use super::QuickSightRestoreJob;
use super::config::Only;
use super::task::{BundleRef, Imports, QuickSightRestoreTask, UserIdentity};
use crate::aws::error_text;
use crate::model::{Action, Status};
use crate::pipeline::EngineError;
use crate::pipeline::kind::JobContext;
use crate::pipeline::planner::TaskSink;
use crate::sources::quicksight::AssetType;
use crate::sources::quicksight::plan::Tables;
use crate::store::{ControlStore, Manifest};

type Item = HashMap<String, AttributeValue>;

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub async fn plan(
    cx: &JobContext<'_>,
    spec: &QuickSightRestoreJob,
    sink: &mut TaskSink<'_>,
) -> Result<(), EngineError> {
    let filters = spec.options.filters().map_err(|(f, m)| EngineError::Input(format!("restore.{f}: {m}")))?;
    let store = ControlStore::new(cx.engine.clients.s3.clone(), &cx.run.control);
    let date = match spec.options.date {
        Some(date) => date,
        None => last_run_date(&store, &spec.backup_job).await?,
    };
    let (users, assets) = spec.options.parts();
    sink.note(format!(
        "the backup of {date} -> account {}, region {} (identity region {})",
        spec.account(),
        spec.region(),
        spec.identity_region()
    ));
    if users {
        plan_identities(cx, spec, sink, date, &filters).await?;
    }
    if assets {
        plan_imports(&store, spec, sink, date, &filters).await?;
    }
    Ok(())
}

/// The day of the backup job's last finished run.
async fn last_run_date(store: &ControlStore, job: &str) -> Result<NaiveDate, EngineError> {
    let keys = store.list(&format!("runs/{job}/")).await?;
    keys.iter()
        .filter(|k| k.ends_with("/manifest.json"))
        .filter_map(|k| k.rsplit('/').nth(1))
        .filter_map(|run_id| run_id.strip_prefix(&format!("{job}-")).and_then(|t| t.get(..8)))
        .filter_map(|day| NaiveDate::parse_from_str(day, "%Y%m%d").ok())
        .max()
        .ok_or_else(|| EngineError::Input(format!("job {job} has no finished run to restore; give --date")))
}

async fn scan(cx: &JobContext<'_>, table: &str, date: NaiveDate) -> Result<Vec<Item>, EngineError> {
    let dynamodb = &cx.engine.clients.dynamodb;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = match dynamodb.scan().table_name(table).set_exclusive_start_key(start).send().await {
            Ok(page) => page,
            Err(err) if err.code() == Some("ResourceNotFoundException") => {
                return Err(EngineError::Input(format!(
                    "there is no table `{table}`: no users were backed up on {date} (see `backline runs`)"
                )));
            }
            Err(err) => return Err(EngineError::service(format!("DynamoDB Scan `{table}`"), error_text(&err))),
        };
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(items);
        }
    }
}

async fn plan_identities(
    cx: &JobContext<'_>,
    spec: &QuickSightRestoreJob,
    sink: &mut TaskSink<'_>,
    date: NaiveDate,
    filters: &[Only],
) -> Result<(), EngineError> {
    let tables = Tables::of(&spec.backup, date);
    let wanted_users: Vec<&str> =
        filters.iter().filter_map(|f| if let Only::User(u) = f { Some(u.as_str()) } else { None }).collect();
    let wanted_groups: Vec<&str> =
        filters.iter().filter_map(|f| if let Only::Group(g) = f { Some(g.as_str()) } else { None }).collect();
    let filtered = !filters.is_empty();
    let user_wanted = |name: &str| !filtered || wanted_users.contains(&name);
    let group_wanted = |name: &str| !filtered || wanted_groups.contains(&name);

    let mut groups = scan(cx, &tables.groups, date).await?;
    groups.sort_by_key(|g| text(g, "group_name"));
    let mut users = scan(cx, &tables.users, date).await?;
    users.sort_by_key(|u| text(u, "user_name"));
    let mut memberships = scan(cx, &tables.memberships, date).await?;
    memberships.sort_by_key(|m| text(m, "membership_id"));
    sink.note(format!(
        "{} groups, {} users, {} memberships in {}, {}, {}",
        groups.len(),
        users.len(),
        memberships.len(),
        tables.groups,
        tables.users,
        tables.memberships
    ));
    for group in &groups {
        let Some(name) = text(group, "group_name") else { continue };
        if group_wanted(&name) {
            sink.push(QuickSightRestoreTask::Group { name, description: text(group, "description") }).await?;
        }
    }
    for user in &users {
        let Some(user_name) = text(user, "user_name") else { continue };
        if user_wanted(&user_name) {
            sink.push(QuickSightRestoreTask::User(UserIdentity {
                user_name,
                email: text(user, "email"),
                role: text(user, "role"),
                identity_type: text(user, "identity_type"),
                arn: text(user, "arn"),
                custom_permissions_name: text(user, "custom_permissions_name"),
            }))
            .await?;
        }
    }
    for membership in &memberships {
        let (Some(user), Some(group)) = (text(membership, "user_name"), text(membership, "group_name")) else {
            continue;
        };
        // A membership comes back with its user or its group.
        if user_wanted(&user) || group_wanted(&group) {
            sink.push(QuickSightRestoreTask::Membership { user, group, looks: 0 }).await?;
        }
    }
    Ok(())
}

/// The manifest of the day's last run that exported bundles.
async fn day_manifest(store: &ControlStore, job: &str, date: NaiveDate) -> Result<Option<Manifest>, EngineError> {
    let prefix = format!("runs/{job}/{job}-{}", date.format("%Y%m%d"));
    let mut keys: Vec<String> =
        store.list(&prefix).await?.into_iter().filter(|k| k.ends_with("/manifest.json")).collect();
    keys.sort();
    while let Some(key) = keys.pop() {
        if let Some(manifest) = store.get_json::<Manifest>(&key).await?
            && manifest.tasks.iter().any(|o| o.action == Action::Upload && o.status == Status::Ok)
        {
            return Ok(Some(manifest));
        }
    }
    Ok(None)
}

async fn plan_imports(
    store: &ControlStore,
    spec: &QuickSightRestoreJob,
    sink: &mut TaskSink<'_>,
    date: NaiveDate,
    filters: &[Only],
) -> Result<(), EngineError> {
    let Some(manifest) = day_manifest(store, &spec.backup_job, date).await? else {
        return Err(EngineError::Input(format!(
            "job {} exported no bundles on {date} (see `backline runs`)",
            spec.backup_job
        )));
    };
    let wanted: Vec<(AssetType, &str)> = filters
        .iter()
        .filter_map(|f| if let Only::Asset(t, id) = f { Some((*t, id.as_str())) } else { None })
        .collect();
    let filtered = !filters.is_empty();
    let mut stages: Vec<Vec<BundleRef>> = vec![Vec::new(); AssetType::ALL.len()];
    for outcome in &manifest.tasks {
        if outcome.action != Action::Upload || outcome.status != Status::Ok {
            continue;
        }
        let (Some(item), Some(key), Some(bucket)) = (&outcome.item, &outcome.target_key, &outcome.target_bucket) else {
            continue;
        };
        let Some(asset_type) = item.get("type").and_then(|t| t.as_str()).and_then(AssetType::parse) else { continue };
        let assets: Vec<String> = item
            .get("assets")
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if filtered && !assets.iter().any(|id| wanted.contains(&(asset_type, id.as_str()))) {
            continue;
        }
        let stage = AssetType::ALL.iter().position(|t| *t == asset_type).expect("a type");
        stages[stage].push(BundleRef { asset_type, bucket: bucket.clone(), key: key.clone(), assets, job_id: None });
    }
    for (asset_type, id) in &wanted {
        if !stages.iter().flatten().any(|b| b.asset_type == *asset_type && b.assets.iter().any(|a| a == id)) {
            return Err(EngineError::Input(format!("no bundle of run {} holds {asset_type}/{id}", manifest.run_id)));
        }
    }
    stages.retain(|s| !s.is_empty());
    let bundles: usize = stages.iter().map(Vec::len).sum();
    sink.note(format!("{bundles} bundle(s) of run {} to import", manifest.run_id));
    if bundles > 0 {
        sink.push(QuickSightRestoreTask::Imports(Imports { stages })).await?;
    }
    Ok(())
}
