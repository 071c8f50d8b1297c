//! Planning a Tableau backup: sign in, list each chosen site's projects and workbooks, place
//! each workbook (its bucket and key), and diff against each site's `upload_state.json`.
//! Listing happens under one session that is signed out before any task is queued, so the
//! workers never find the planner holding the token.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;

use super::client::{Connection, INLINE_WAIT, Login, TableauClient, TableauError};
use super::config::{ProjectTarget, TableauJob};
use super::session;
use super::state::{self, UploadState};
use super::tags::workbook_tags;
use super::task::{Placed, TableauTask};
use super::xml::{Project, Revision, Site, Workbook};
use crate::aws::AwsClients;
use crate::pipeline::planner::TaskSink;
use crate::pipeline::{EngineError, JobContext};
use crate::store::ControlStore;

/// The environment variable that limits a run to one site, as the tool Backline replaces did.
pub const SITE_VARIABLE: &str = "TS_SITE_NAME";

/// The credentials of the job, resolved from their references.
pub async fn login(clients: &AwsClients, spec: &TableauJob) -> Result<Login, String> {
    let source = &spec.source;
    match (&source.token_name, &source.token_secret, &source.username, &source.password) {
        (Some(name), Some(secret), _, _) => Ok(Login::Token {
            name: name.clone(),
            secret: crate::secrets::resolve(clients, secret.reference())
                .await
                .map_err(|e| format!("token_secret: {e}"))?,
        }),
        (_, _, Some(name), Some(password)) => Ok(Login::Password {
            name: name.clone(),
            password: crate::secrets::resolve(clients, password.reference())
                .await
                .map_err(|e| format!("password: {e}"))?,
        }),
        _ => Err("no credentials: give token_name and token_secret, or username and password".into()),
    }
}

fn matches_site(wanted: &str, site: &Site) -> bool {
    wanted == site.name
        || wanted == site.content_url
        || (site.content_url.is_empty() && wanted.eq_ignore_ascii_case("default"))
}

/// The sites this run backs up: `sites`, or all but `excluded_sites`, narrowed by `TS_SITE_NAME`.
pub fn chosen_sites(spec: &TableauJob, all: Vec<Site>, only: Option<&str>) -> Vec<Site> {
    all.into_iter()
        .filter(|site| spec.source.sites.is_empty() || spec.source.sites.iter().any(|w| matches_site(w, site)))
        .filter(|site| !spec.source.excluded_sites.iter().any(|w| matches_site(w, site)))
        .filter(|site| only.is_none_or(|w| matches_site(w, site)))
        // Without a target for whole sites, only the sites of the projects are read.
        .filter(|site| spec.target.is_some() || spec.projects.iter().any(|p| matches_site(&p.site, site)))
        .collect()
}

/// What one site holds.
struct Listing {
    site: Site,
    projects: Vec<Project>,
    workbooks: Vec<Workbook>,
    /// With `revisions = true`: what the server keeps of each workbook, by id.
    revisions: HashMap<String, Vec<Revision>>,
}

fn service(err: TableauError) -> EngineError {
    EngineError::service(format!("Tableau {}", err_call(&err)), err.to_string())
}

fn err_call(err: &TableauError) -> &str {
    match err {
        TableauError::Api { call, .. }
        | TableauError::Throttled { call, .. }
        | TableauError::Transport { call, .. } => call,
    }
}

/// A path component: `/` would make a folder of it.
fn component(name: &str) -> String {
    let cleaned = name.replace('/', "_").trim().to_string();
    if cleaned.is_empty() { "_".into() } else { cleaned }
}

/// Each project's path from the top (`Finance/Reports`), following `parentProjectId`.
fn project_paths(projects: &[Project]) -> HashMap<String, Vec<String>> {
    let by_id: HashMap<&str, &Project> = projects.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut paths = HashMap::new();
    for project in projects {
        let mut path = vec![project.name.clone()];
        let mut at = project.parent_id.as_deref();
        // A cycle in the answer must not loop forever.
        while let Some(parent) = at.and_then(|id| by_id.get(id)).filter(|_| path.len() <= projects.len()) {
            path.push(parent.name.clone());
            at = parent.parent_id.as_deref();
        }
        path.reverse();
        paths.insert(project.id.clone(), path);
    }
    paths
}

/// The `[[jobs.projects]]` entry a project path falls under (the project or an ancestor).
fn project_target<'a>(spec: &'a TableauJob, site: &Site, path: &[String]) -> Option<&'a ProjectTarget> {
    // By its path from the top (`Finance/Reports`) or by the name of the project or an ancestor.
    spec.projects.iter().filter(|t| matches_site(&t.site, site)).find(|target| {
        (1..=path.len()).any(|depth| target.project == path[..depth].join("/") || target.project == path[depth - 1])
    })
}

/// A workbook's bucket, key (without extension) and project path; `None` when the job backs up
/// only some projects and this is not one of them.
fn place(
    spec: &TableauJob,
    site: &Site,
    paths: &HashMap<String, Vec<String>>,
    workbook: &Workbook,
) -> Option<(String, String, String)> {
    let path: Vec<String> = match workbook.project_id.as_ref().and_then(|id| paths.get(id)) {
        Some(path) => path.clone(),
        None => match &workbook.project_name {
            Some(name) => vec![name.clone()],
            None => {
                vec!["Personal".into(), workbook.owner_name.clone().or(workbook.owner_id.clone()).unwrap_or_default()]
            }
        },
    };
    let project_path = path.join("/");
    let site_dir = if site.content_url.is_empty() { "Default".to_string() } else { site.content_url.clone() };
    let (bucket, prefix) = match (project_target(spec, site, &path), &spec.target) {
        (Some(project), _) => (project.bucket.as_str().to_string(), project.prefix.clone()),
        (None, Some(target)) => (target.bucket.as_str().to_string(), target.prefix.clone()),
        (None, None) => return None,
    };
    let folders: Vec<String> = path.iter().map(|p| component(p)).collect();
    let key = format!("{prefix}{site_dir}/{}/{}", folders.join("/"), component(&workbook.name));
    Some((bucket, key, project_path))
}

async fn list_site(
    client: &TableauClient,
    login: &Login,
    site: Site,
    revisions: bool,
) -> Result<Listing, TableauError> {
    let connection = Connection::open(client, login, &site.content_url, INLINE_WAIT).await?;
    let listed = async {
        let projects = connection.projects().await?;
        let workbooks = connection.workbooks().await?;
        let mut kept = HashMap::new();
        if revisions {
            for workbook in &workbooks {
                kept.insert(workbook.id.clone(), connection.revisions(&workbook.id).await?);
            }
        }
        Ok::<_, TableauError>((projects, workbooks, kept))
    }
    .await;
    connection.sign_out().await;
    let (projects, workbooks, revisions) = listed?;
    Ok(Listing { site, projects, workbooks, revisions })
}

/// How long the planner waits for workers of an earlier run to hand the token back.
const PLANNER_SLOT_WAIT: Duration = Duration::from_secs(600);

pub async fn plan(cx: &JobContext<'_>, spec: &TableauJob, sink: &mut TaskSink<'_>) -> Result<(), EngineError> {
    let login = login(&cx.engine.clients, spec).await.map_err(EngineError::Input)?;
    let client = TableauClient::connect(spec.source.server.as_str(), spec.source.api_version.as_deref())
        .await
        .map_err(service)?;
    let session = take_session(cx, spec).await?;
    let listings = list_everything(spec, &client, &login).await;
    session.give_back(cx).await?;
    let store = ControlStore::new(cx.engine.clients.s3.clone(), &cx.job.control());
    for listing in listings? {
        match listing {
            Ok(listing) => plan_site(spec, &store, &cx.job.name, listing, sink).await?,
            Err((site, err)) => {
                tracing::warn!(site = %site, error = %err, "site could not be read; its workbooks are reported failed");
                sink.push(TableauTask::Unreadable { site, reason: err.to_string() }).await?;
            }
        }
    }
    Ok(())
}

/// Waits until no worker holds the token's session (a run before this one may still be busy).
async fn take_session(cx: &JobContext<'_>, spec: &TableauJob) -> Result<session::Held, EngineError> {
    let deadline = tokio::time::Instant::now() + PLANNER_SLOT_WAIT;
    loop {
        let holder = format!("{}#plan", cx.run.run_id);
        if let Some(held) = session::take(cx, spec, holder, Some(PLANNER_SLOT_WAIT)).await? {
            return Ok(held);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(EngineError::service(
                "Tableau sign-in",
                format!("another run's workers held the token's session for {} s", PLANNER_SLOT_WAIT.as_secs()),
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

type SiteListing = Result<Listing, (String, TableauError)>;

/// Every chosen site's projects and workbooks, one session at a time.
async fn list_everything(
    spec: &TableauJob,
    client: &TableauClient,
    login: &Login,
) -> Result<Vec<SiteListing>, EngineError> {
    // Sign in where the token surely has access: the first named site, or Default.
    let first = spec.source.sites.first().map(String::as_str).unwrap_or("");
    let first = if first.eq_ignore_ascii_case("default") { "" } else { first };
    let connection = Connection::open(client, login, first, INLINE_WAIT).await.map_err(|e| match e {
        TableauError::Api { status: 401, .. } => EngineError::Input(format!("Tableau sign-in refused: {e}")),
        other => service(other),
    })?;
    let sites = connection.sites().await;
    connection.sign_out().await;
    let only = std::env::var(SITE_VARIABLE).ok().filter(|s| !s.is_empty());
    let sites = chosen_sites(spec, sites.map_err(service)?, only.as_deref());
    if sites.is_empty() {
        return Err(EngineError::Input(
            "no Tableau site to back up: check `sites`, `excluded_sites` and TS_SITE_NAME".into(),
        ));
    }
    let mut listings = Vec::with_capacity(sites.len());
    for site in sites {
        let content_url = site.content_url.clone();
        listings.push(list_site(client, login, site, spec.revisions).await.map_err(|e| (content_url, e)));
    }
    Ok(listings)
}

async fn plan_site(
    spec: &TableauJob,
    store: &ControlStore,
    job: &str,
    listing: Listing,
    sink: &mut TaskSink<'_>,
) -> Result<(), EngineError> {
    let Listing { site, projects, workbooks, revisions } = listing;
    let paths = project_paths(&projects);
    let mut placed: Vec<(Workbook, String, String, String)> = workbooks
        .into_iter()
        .filter_map(|w| {
            let (b, k, p) = place(spec, &site, &paths, &w)?;
            Some((w, b, k, p))
        })
        .collect();
    // Two workbooks on one key (the same name in one project, or names that only differ in
    // a `/`): both get their id after the name.
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (_, bucket, key, _) in &placed {
        *seen.entry((bucket.clone(), key.clone())).or_default() += 1;
    }
    for (workbook, bucket, key, _) in &mut placed {
        if seen[&(bucket.clone(), key.clone())] > 1 {
            *key = format!("{key} [{}]", workbook.id);
        }
    }
    // Every bucket of the site has a state of its own.
    let mut buckets: Vec<String> = spec.target.iter().map(|t| t.bucket.as_str().to_string()).collect();
    for target in spec.projects.iter().filter(|t| matches_site(&t.site, &site)) {
        buckets.push(target.bucket.as_str().to_string());
    }
    buckets.sort();
    buckets.dedup();
    let mut states: BTreeMap<String, UploadState> = BTreeMap::new();
    for bucket in &buckets {
        states.insert(bucket.clone(), state::load(store, job, &site.content_url, bucket).await?);
    }
    let refresh_before =
        spec.refresh_after.map(|after| Utc::now() - chrono::Duration::from_std(after.0).unwrap_or_default());
    let mut live: HashMap<&str, ()> = HashMap::new();
    for (workbook, bucket, key, project_path) in &placed {
        live.insert(&workbook.id, ());
        let at = Placed {
            site: site.content_url.clone(),
            id: workbook.id.clone(),
            name: workbook.name.clone(),
            updated_at: workbook.updated_at.clone(),
            project: project_path.clone(),
            owner: workbook.owner_name.clone().or(workbook.owner_id.clone()).unwrap_or_default(),
            bucket: bucket.clone(),
            key: key.clone(),
        };
        let stored = states.get(bucket).and_then(|s| s.workbooks.get(&workbook.id));
        // The same workbook at the same place: its stored key is this key with the extension the
        // server gave it (a workbook that moved gets a key of its own).
        let at_key =
            |stored: &str| stored.strip_suffix(".twbx").or_else(|| stored.strip_suffix(".twb")) == Some(key.as_str());
        let same = stored.filter(|s| !s.deleted && s.updated_at == workbook.updated_at && at_key(&s.key));
        match same {
            Some(stored) if refresh_before.is_some_and(|before| stored.stored_at < before) => {
                sink.push(TableauTask::Refresh { at: Placed { key: stored.key.clone(), ..at.clone() } }).await?;
            }
            Some(_) => sink.unchanged(),
            None => {
                let tags = workbook_tags(&site.name, project_path, workbook);
                sink.push(TableauTask::Download { at: at.clone(), tags, revision: None, downloaded_since: None })
                    .await?;
            }
        }
        // Older revisions the server keeps, each backed up once, beside the workbook.
        let stored = states.get(bucket).and_then(|s| s.revisions.get(&workbook.id));
        for revision in revisions.get(&workbook.id).into_iter().flatten() {
            if revision.deleted || revision.current || stored.is_some_and(|s| s.contains_key(&revision.number)) {
                continue;
            }
            let at = Placed { key: format!("{}.revisions/{}", at.key, revision.number), ..at.clone() };
            let tags = workbook_tags(&site.name, project_path, workbook);
            let revision = Some(revision.number);
            sink.push(TableauTask::Download { at, tags, revision, downloaded_since: None }).await?;
        }
    }
    for (bucket, state) in &states {
        for (id, stored) in &state.workbooks {
            if stored.deleted
                || (live.contains_key(id.as_str()) && placed.iter().any(|(w, b, _, _)| &w.id == id && b == bucket))
            {
                continue;
            }
            let at = Placed {
                site: site.content_url.clone(),
                id: id.clone(),
                name: stored.name.clone(),
                updated_at: stored.updated_at.clone(),
                project: stored.project.clone(),
                owner: stored.owner.clone(),
                bucket: bucket.clone(),
                key: stored.key.clone(),
            };
            sink.push(TableauTask::MarkDeleted { at }).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: &str, name: &str, parent: Option<&str>) -> Project {
        Project { id: id.into(), name: name.into(), parent_id: parent.map(str::to_string) }
    }

    #[test]
    fn nested_projects_have_paths_and_cycles_end() {
        let paths = project_paths(&[
            project("a", "Finance", None),
            project("b", "Reports", Some("a")),
            project("c", "Q1", Some("b")),
        ]);
        assert_eq!(paths["c"], ["Finance", "Reports", "Q1"]);
        let cyclic = project_paths(&[project("x", "X", Some("y")), project("y", "Y", Some("x"))]);
        assert!(cyclic["x"].len() <= 3);
    }

    #[test]
    fn sites_are_chosen_by_name_or_content_url() {
        let spec: TableauJob = serde_json::from_value(serde_json::json!({
            "source": {"server": "https://t.example", "token_name": "n", "token_secret": "env:T", "excluded_sites": ["Sandbox"]},
            "target": {"bucket": "b-b-b"}
        }))
        .unwrap();
        let site = |name: &str, url: &str| Site { id: name.into(), name: name.into(), content_url: url.into() };
        let all = vec![site("Default", ""), site("Sandbox", "sandbox"), site("Finance", "finance")];
        let names = |sites: Vec<Site>| sites.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(chosen_sites(&spec, all.clone(), None)), ["Default", "Finance"]);
        assert_eq!(names(chosen_sites(&spec, all.clone(), Some("finance"))), ["Finance"]);
        assert_eq!(names(chosen_sites(&spec, all, Some("Sandbox"))), Vec::<String>::new());
    }
}
