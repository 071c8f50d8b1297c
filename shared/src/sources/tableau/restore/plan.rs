//! Planning a Tableau restore: what the backup held after a run (its manifests folded: each
//! workbook's last stored copy, removed from the server since or not), the workbooks asked for,
//! and the version of each object that run stored.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{TableauRestoreJob, TableauRestoreTask};
use crate::aws::s3::list_versions;
use crate::model::{Action, Status};
use crate::pipeline::KindTask;
use crate::pipeline::planner::TaskSink;
use crate::pipeline::resume::done_by_stopped_runs;
use crate::pipeline::{EngineError, JobContext};
use crate::sources::s3::restore::select_run;
use crate::sources::tableau::state::Item;
use crate::store::{ControlStore, Manifest};

/// A workbook as the backup held it.
#[derive(Debug, Clone, PartialEq)]
struct Held {
    item: Item,
    bucket: String,
    key: String,
    etag: String,
    size: u64,
}

/// What the backup held: each workbook's last copy, and the older revisions it stored, by
/// `<site>/<id>` (and revision number).
fn fold(manifests: &[Manifest]) -> (BTreeMap<String, Held>, HashMap<(String, u32), Held>) {
    let mut held: BTreeMap<String, Held> = BTreeMap::new();
    let mut revisions: HashMap<(String, u32), Held> = HashMap::new();
    for outcome in manifests.iter().flat_map(|m| &m.tasks).filter(|o| o.status == Status::Ok) {
        let Some(item) = outcome.item.clone().and_then(|i| serde_json::from_value::<Item>(i).ok()) else { continue };
        let id = format!("{}/{}", item.site, item.id);
        // A workbook removed from the server since is restored all the same: that is what a
        // restore is for.
        if outcome.action != Action::Copy {
            continue;
        }
        let revision = item.revision;
        let entry = Held {
            item,
            bucket: outcome.target_bucket.clone().unwrap_or_default(),
            key: outcome.target_key.clone().unwrap_or_default(),
            etag: outcome.target_etag.clone().unwrap_or_default(),
            size: outcome.bytes,
        };
        match revision {
            Some(number) => {
                revisions.insert((id, number), entry);
            }
            None => {
                held.insert(id, entry);
            }
        }
    }
    (held, revisions)
}

/// `Default` names the default site, whose content URL is "".
pub fn site_url(site: &str) -> &str {
    if site.eq_ignore_ascii_case("default") { "" } else { site }
}

fn split(path: &str) -> Vec<String> {
    path.split('/').filter(|p| !p.is_empty()).map(str::to_string).collect()
}

/// Where under the project filter a project path falls: the part below the matched project,
/// or `None` when it is not under it. A filter is a path from the top or one project's name.
fn below(filter: &[String], path: &[String]) -> Option<Vec<String>> {
    if path.starts_with(filter) {
        return Some(path[filter.len()..].to_vec());
    }
    if let [name] = filter {
        let at = path.iter().position(|p| p == name)?;
        return Some(path[at + 1..].to_vec());
    }
    None
}

pub async fn plan(cx: &JobContext<'_>, spec: &TableauRestoreJob, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
    let options = &spec.options;
    let store = ControlStore::new(cx.engine.clients.s3.clone(), &cx.job.control());
    let manifests = store.manifests(&spec.backup_job).await?;
    let Some(last) = manifests.last() else {
        return Err(EngineError::Input(format!("job {} has no backup run to restore from", spec.backup_job)));
    };
    let chosen = match &options.as_of {
        Some(as_of) => select_run(&manifests, as_of)?,
        None => last,
    };
    let upto = manifests.iter().position(|m| m.run_id == chosen.run_id).expect("chosen from the list");
    tracing::info!(run = %chosen.run_id, "restoring workbooks as of this run");
    let site = site_url(&options.site);
    let filter = options.project.as_deref().map(split);
    let (held, revisions) = fold(&manifests[..=upto]);
    let mut missing_revision = Vec::new();
    let wanted: Vec<(Held, Vec<String>)> = held
        .into_values()
        .filter(|h| h.item.site == site)
        .filter(|h| options.workbook.as_ref().is_none_or(|w| &h.item.name == w || &h.item.id == w))
        .filter_map(|h| {
            let path = split(&h.item.project);
            let below = match &filter {
                Some(filter) => below(filter, &path)?,
                None => path.clone(),
            };
            let to = match &options.to_project {
                Some(to) => [split(to), below].concat(),
                None => path,
            };
            Some((h, to))
        })
        .filter_map(|(h, to)| match options.revision {
            None => Some((h, to)),
            Some(number) => match revisions.get(&(format!("{}/{}", h.item.site, h.item.id), number)) {
                Some(revision) => Some((revision.clone(), to)),
                None => {
                    missing_revision.push(h.item.name.clone());
                    None
                }
            },
        })
        .collect();
    if let Some(number) = options.revision
        && wanted.is_empty()
        && !missing_revision.is_empty()
    {
        return Err(EngineError::Input(format!(
            "revision {number} of {} is not in the backup (back up with `revisions = true`)",
            missing_revision.join(", ")
        )));
    }
    if wanted.is_empty() {
        return Err(EngineError::Input(format!(
            "no workbook of site {:?}{}{} in the backup of {} as of {}",
            options.site,
            options.project.as_ref().map(|p| format!(", project {p:?}")).unwrap_or_default(),
            options.workbook.as_ref().map(|w| format!(", named {w:?}")).unwrap_or_default(),
            spec.backup_job,
            chosen.run_id
        )));
    }
    // The version each run stored, found by its ETag among the versions of that very key (a
    // changed workbook is a new version of its object; keys may carry the job's prefix). One
    // listing per bucket, under what the wanted keys share, rather than one per workbook.
    let mut keys_by_bucket: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for (held, _) in &wanted {
        keys_by_bucket.entry(held.bucket.as_str()).or_default().insert(held.key.as_str());
    }
    let mut versions: HashMap<(String, String), Option<String>> = HashMap::new();
    for (bucket, keys) in keys_by_bucket {
        for version in list_versions(&cx.engine.clients.s3, bucket, &common_prefix(keys.iter().copied()))
            .await
            .map_err(|e| EngineError::service(format!("ListObjectVersions on `{bucket}`"), e))?
            .into_iter()
            .filter(|v| keys.contains(v.key.as_str()))
        {
            versions.insert((version.key, version.etag), version.version_id);
        }
    }
    // What the runs this one resumes published: the same copy of the workbook to the same place
    // is not published again (it would be refused as existing, or replaced by itself).
    let done: HashMap<(String, Option<String>, Option<String>), String> = done_by_stopped_runs(&store, &cx.job.name)
        .await?
        .into_iter()
        .map(|(run_id, outcome)| ((outcome.key, outcome.target_key, outcome.etag), run_id))
        .collect();
    let to_site = site_url(options.to_site.as_deref().unwrap_or(&options.site)).to_string();
    for (held, project) in wanted {
        let from =
            format!("{}/{}/{}", if site.is_empty() { "Default" } else { site }, held.item.project, held.item.name);
        let Some(version_id) = versions.get(&(held.key.clone(), held.etag.clone())) else {
            let reason =
                format!("the copy run {} stored is no longer in s3://{}/{}", chosen.run_id, held.bucket, held.key);
            sink.push(TableauRestoreTask::Skip { from, reason }).await?;
            continue;
        };
        if project.is_empty() {
            sink.push(TableauRestoreTask::Skip {
                from,
                reason: "it has no project to publish into; give --to-project".into(),
            })
            .await?;
            continue;
        }
        let task = TableauRestoreTask::Publish {
            from,
            site: to_site.clone(),
            project,
            name: held.item.name.clone(),
            bucket: held.bucket,
            key: held.key,
            version_id: version_id.clone(),
            size: held.size,
            etag: held.etag,
            owner: held.item.owner.clone(),
            job_id: None,
            project_id: None,
            published_since: None,
            tries: 0,
        };
        let outcome = task.outcome(Status::Ok);
        match done.get(&(outcome.key.clone(), outcome.target_key, outcome.etag)) {
            Some(run_id) => {
                let reason = format!("published by run {run_id}, which stopped before finishing");
                sink.push(TableauRestoreTask::Skip { from: outcome.key, reason }).await?;
            }
            None => sink.push(task).await?,
        }
    }
    Ok(())
}

/// The longest start all of `keys` share, cut at a character boundary.
fn common_prefix<'a>(mut keys: impl Iterator<Item = &'a str>) -> String {
    let Some(first) = keys.next() else { return String::new() };
    let mut shared = first.len();
    for key in keys {
        shared = first.bytes().zip(key.bytes()).take(shared).take_while(|(a, b)| a == b).count();
    }
    while !first.is_char_boundary(shared) {
        shared -= 1;
    }
    first[..shared].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_versions_of_a_restore_are_listed_under_what_its_keys_share() {
        let keys = ["tb/Default/Top/Book 1.twbx", "tb/Default/Top/Book 2.twbx", "tb/Default/Topaz/B.twb"];
        assert_eq!(common_prefix(keys.into_iter()), "tb/Default/Top");
        assert_eq!(common_prefix(["a/one.twbx"].into_iter()), "a/one.twbx");
        assert_eq!(common_prefix(["a/é1", "a/è2"].into_iter()), "a/", "cut at a character boundary");
        assert_eq!(common_prefix(std::iter::empty()), "");
    }

    fn path(p: &str) -> Vec<String> {
        split(p)
    }

    #[test]
    fn a_project_filter_takes_the_project_and_what_is_below_it() {
        assert_eq!(below(&path("Finance/Reports"), &path("Finance/Reports/Q1")), Some(path("Q1")));
        assert_eq!(below(&path("Reports"), &path("Finance/Reports/Q1")), Some(path("Q1")));
        assert_eq!(below(&path("Reports"), &path("Finance/Reports")), Some(vec![]));
        assert_eq!(below(&path("Finance/Other"), &path("Finance/Reports")), None);
        assert_eq!(site_url("default"), "");
    }
}
