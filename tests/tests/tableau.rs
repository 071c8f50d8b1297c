//! The `tableau` kind against the Tableau emulator (`tests/emulators/tableau`) and moto:
//! sites, paging, projects with their own bucket, extracts refused, incremental runs, changed
//! and removed workbooks, tags, 429s, and the one-session-per-token rule.

use std::sync::Arc;

use backline::aws::AwsClients;
use backline::model::Status;
use backline::pipeline::{NoProgress, local};
use backline::store::Manifest;
use backline::{Config, Job};
use backline_tests::tableau::TableauServer;
use backline_tests::{Moto, create_bucket, tags, unique};
use serde_json::{Value, json};

const ADMIN: &str = "5de011f8-5aa9-4d5b-b991-f462c8dd6bb7";

fn workbook(id: &str, name: &str, project: Option<&str>, text: &str) -> Value {
    json!({"id": id, "name": name, "projectId": project, "ownerId": ADMIN, "text": text,
           "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-02T00:00:00Z", "tags": ["Sales", "Q1"],
           "description": "Umsätze & Kosten"})
}

/// Default (105 workbooks: two pages), finance (a project with a sub-project that has its own
/// bucket) and Sandbox (excluded).
fn world() -> Value {
    let mut default_books: Vec<Value> = (0..100)
        .map(|i| workbook(&format!("d{i:03}"), &format!("Book {i:03}"), Some("p-top"), &format!("book {i}")))
        .collect();
    default_books.push(workbook("d-nested", "Nested", Some("p-sub"), "nested"));
    default_books.push(workbook("d-personal", "Mine", None, "personal"));
    default_books.push(json!({"id": "d-locked", "name": "Locked", "projectId": "p-top", "ownerId": ADMIN,
        "extract_forbidden": true, "text": "with extract", "no_extract": {"text": "without extract", "twb": true},
        "updatedAt": "2016-06-31T00:00:00Z"}));
    default_books.push(json!({"id": "d-comma", "name": "Ventes, Q1 été", "projectId": "p-top", "ownerId": ADMIN,
        "disposition": "rfc5987", "text": "unicode"}));
    default_books.push(workbook("d-twin", "Book 000", Some("p-top"), "same name"));
    json!({
        "credentials": {"pats": {"backline": {"secret": "pat-secret", "user": "admin"}}},
        "sites": [
            {"id": "site-default", "name": "Default", "contentUrl": "",
             "users": [{"id": ADMIN, "name": "admin", "siteRole": "SiteAdministratorCreator"}],
             "projects": [{"id": "p-top", "name": "Top", "parentProjectId": null},
                          {"id": "p-sub", "name": "Sub", "parentProjectId": "p-top"}],
             "workbooks": default_books},
            {"id": "site-finance", "name": "Finance", "contentUrl": "finance",
             "users": [{"id": ADMIN, "name": "admin", "siteRole": "SiteAdministratorCreator"}],
             "projects": [{"id": "f-fin", "name": "Finance", "parentProjectId": null},
                          {"id": "f-rep", "name": "Reports", "parentProjectId": "f-fin"},
                          {"id": "f-q1", "name": "Q1", "parentProjectId": "f-rep"},
                          {"id": "f-other", "name": "Other", "parentProjectId": null}],
             "workbooks": [workbook("f1", "Ledger", Some("f-q1"), "ledger"), workbook("f2", "Misc", Some("f-other"), "misc")]},
            {"id": "site-sandbox", "name": "Sandbox", "contentUrl": "sandbox",
             "users": [{"id": ADMIN, "name": "admin", "siteRole": "SiteAdministratorCreator"}],
             "projects": [], "workbooks": [workbook("s1", "Toy", None, "toy")]}
        ]
    })
}

fn job(server: &str, token_env: &str, bucket: &str, reports: &str) -> Job {
    let text = format!(
        r#"
[[jobs]]
name = "tableau-prod"
kind = "tableau"
[jobs.source]
server = "{server}"
api_version = "3.19"
token_name = "backline"
token_secret = "env:{token_env}"
excluded_sites = ["Sandbox"]
[jobs.target]
bucket = "{bucket}"
[[jobs.projects]]
site = "finance"
project = "Reports"
bucket = "{reports}"
"#
    );
    Config::parse(&text, backline::config::Format::Toml, "tableau.toml").expect("valid job").jobs.remove(0)
}

async fn run(clients: &AwsClients, job: &Job) -> Manifest {
    let run = local::run(clients.clone(), job, chrono::Utc::now(), false, Arc::new(NoProgress)).await.expect("run");
    run.manifest.expect("a manifest")
}

async fn body(clients: &AwsClients, bucket: &str, key: &str) -> Vec<u8> {
    backline_tests::body(&clients.s3, bucket, key).await
}

#[tokio::test]
async fn sites_back_up_incrementally_with_tags_projects_and_removals() {
    let (clients, server, bucket, reports, token_env) = setup(&world()).await;
    let job = job(&server.url, &token_env, &bucket, &reports);

    let first = run(&clients, &job).await;
    let failed: Vec<_> = first.tasks.iter().filter(|o| o.status == Status::Failed).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(first.counts.copied, 107, "105 in Default, 2 in finance, none of Sandbox");
    assert_eq!(body(&clients, &bucket, "Default/Top/Book 001.twbx").await, b"book 1");
    assert_eq!(body(&clients, &bucket, "Default/Top/Sub/Nested.twbx").await, b"nested");
    assert_eq!(body(&clients, &bucket, "Default/Personal/admin/Mine.twbx").await, b"personal");
    assert_eq!(body(&clients, &bucket, "Default/Top/Ventes, Q1 été.twbx").await, b"unicode");
    // Two workbooks named alike in one project both get their id.
    assert_eq!(body(&clients, &bucket, "Default/Top/Book 000 [d000].twbx").await, b"book 0");
    assert_eq!(body(&clients, &bucket, "Default/Top/Book 000 [d-twin].twbx").await, b"same name");
    // The extract could not be downloaded: the workbook came without it, and the report says so.
    assert_eq!(body(&clients, &bucket, "Default/Top/Locked.twb").await, b"without extract");
    let locked = first.tasks.iter().find(|o| o.key.ends_with("/Locked")).unwrap();
    assert!(locked.detail.as_deref().unwrap_or("").contains("without its extract"), "{locked:?}");
    // A project (with its sub-projects) in its own bucket; the rest of the site in the default one.
    assert_eq!(body(&clients, &reports, "finance/Finance/Reports/Q1/Ledger.twbx").await, b"ledger");
    assert_eq!(body(&clients, &bucket, "finance/Other/Misc.twbx").await, b"misc");
    let keys = backline_tests::keys(&clients.s3, &bucket, "").await;
    assert!(!keys.iter().any(|k| k.starts_with("sandbox/")), "Sandbox is excluded");
    // Metadata as tags, within S3's rules.
    let tags = tags(&clients.s3, &bucket, "Default/Top/Book 001.twbx").await;
    let tag = |k: &str| tags.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(tag("WorkbookId").as_deref(), Some("d001"));
    assert_eq!(tag("Owner").as_deref(), Some("admin"));
    assert_eq!(tag("Project").as_deref(), Some("Top"));
    assert_eq!(tag("Description").as_deref(), Some("Umsätze _ Kosten"));

    let second = run(&clients, &job).await;
    assert_eq!((second.counts.copied, second.counts.tasks), (0, 0), "nothing changed: nothing downloaded");

    // A changed workbook becomes a new version; a removed one is tagged, not deleted.
    server
        .post(
            "workbooks",
            &json!({"site": "", "workbook": {"id": "d002", "updatedAt": "2026-02-01T00:00:00Z", "text": "book 2, v2"}}),
        )
        .await;
    server.delete("workbooks/default/d003").await;
    let third = run(&clients, &job).await;
    assert_eq!((third.counts.copied, third.counts.tagged_deleted), (1, 1), "{:#?}", third.tasks);
    assert_eq!(body(&clients, &bucket, "Default/Top/Book 002.twbx").await, b"book 2, v2");
    let versions =
        clients.s3.list_object_versions().bucket(&bucket).prefix("Default/Top/Book 002.twbx").send().await.unwrap();
    assert_eq!(versions.versions().len(), 2, "the target bucket keeps the old version");
    let removed = backline_tests::tags(&clients.s3, &bucket, "Default/Top/Book 003.twbx").await;
    assert!(removed.iter().any(|(k, v)| k == "Deleted" && v == "True"), "{removed:?}");
    assert!(removed.iter().any(|(k, _)| k == "WorkbookId"), "its own tags are kept");
    assert_eq!(body(&clients, &bucket, "Default/Top/Book 003.twbx").await, b"book 3", "never removed");

    // It comes back: backed up again.
    server
        .post(
            "workbooks",
            &json!({"site": "", "workbook": workbook("d003", "Book 003", Some("p-top"), "book 3 is back")}),
        )
        .await;
    let fourth = run(&clients, &job).await;
    assert_eq!(fourth.counts.copied, 1, "{:#?}", fourth.tasks);
    assert_eq!(body(&clients, &bucket, "Default/Top/Book 003.twbx").await, b"book 3 is back");

    // Five chunks ran on four workers at once, one token: none ended another's session.
    let state = server.state().await;
    assert_eq!(state["session_conflicts"], 0, "no worker ended another's session: {state}");
}

#[tokio::test]
async fn a_429_waits_out_retry_after_and_ts_site_name_limits_the_run() {
    let (clients, server, bucket, reports, token_env) = setup(&world()).await;
    // Only the finance site: two downloads, the first two content requests answered 429.
    let job = finance_only(&server, &token_env, &bucket, &reports, json!({}));
    server.post("faults", &json!({"throttle": {"count": 2, "retry_after": 1, "path_contains": "/content"}})).await;
    let manifest = run(&clients, &job).await;
    assert_eq!((manifest.counts.copied, manifest.counts.failed), (2, 0), "{:#?}", manifest.tasks);
    assert_eq!(body(&clients, &reports, "finance/Finance/Reports/Q1/Ledger.twbx").await, b"ledger");
}

fn finance_only(server: &TableauServer, token_env: &str, bucket: &str, reports: &str, extra: Value) -> Job {
    let mut value = serde_json::to_value(job(&server.url, token_env, bucket, reports)).unwrap();
    value["source"]["sites"] = json!(["finance"]);
    value["source"]["excluded_sites"] = json!([]);
    for (k, v) in extra.as_object().unwrap() {
        value[k] = v.clone();
    }
    Job::from_value(value).unwrap()
}

async fn setup(world: &Value) -> (AwsClients, TableauServer, String, String, String) {
    let clients = Moto::get().clients().await;
    let server = TableauServer::start(world).await;
    let (bucket, reports) = (unique("tableau"), unique("reports"));
    create_bucket(&clients.s3, &bucket).await;
    create_bucket(&clients.s3, &reports).await;
    let token_env = backline_tests::tableau::token_env();
    (clients, server, bucket, reports, token_env)
}

#[tokio::test]
async fn an_old_object_of_an_unchanged_workbook_is_refreshed_with_its_tags() {
    let (clients, server, bucket, reports, token_env) = setup(&world()).await;
    // Long enough that the third run comes within it even on a loaded machine.
    let job = finance_only(&server, &token_env, &bucket, &reports, json!({"refresh_after": "3s"}));
    assert_eq!(run(&clients, &job).await.counts.copied, 2);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let second = run(&clients, &job).await;
    assert_eq!(second.counts.copied, 0, "nothing downloaded again");
    let refreshed: Vec<_> = second.tasks.iter().filter(|o| o.action == backline::model::Action::Refresh).collect();
    assert_eq!(refreshed.len(), 2, "{:#?}", second.tasks);
    assert!(refreshed.iter().all(|o| o.status == Status::Ok), "{refreshed:#?}");
    let key = "finance/Other/Misc.twbx";
    let versions = clients.s3.list_object_versions().bucket(&bucket).prefix(key).send().await.unwrap();
    assert_eq!(versions.versions().len(), 2, "copied onto itself: a new version, a new LastModified");
    assert_eq!(body(&clients, &bucket, key).await, b"misc");
    assert!(tags(&clients.s3, &bucket, key).await.iter().any(|(k, v)| k == "WorkbookId" && v == "f2"), "tags kept");
    let third = run(&clients, &job).await;
    assert_eq!(third.counts.tasks, 0, "refreshed within the last three seconds: nothing to do");
}

#[tokio::test]
async fn sessions_that_end_mid_run_are_signed_in_again() {
    let (clients, server, bucket, reports, token_env) = setup(&world()).await;
    // Every session ends after two seconds, and each download takes most of them: the second
    // download outlives the session, and its retry has half a second to spare.
    server.post("settings", &json!({"session_ttl_seconds": 2})).await;
    server.post("faults", &json!({"delay": {"count": null, "seconds": 1.5, "path_contains": "/content"}})).await;
    let job = finance_only(&server, &token_env, &bucket, &reports, json!({"concurrency": 1}));
    let manifest = run(&clients, &job).await;
    assert_eq!((manifest.counts.copied, manifest.counts.failed), (2, 0), "{:#?}", manifest.tasks);
    let state = server.state().await;
    let sign_ins = state["sessions"]["by_pat"]["backline"]["sign_ins"].as_u64().unwrap();
    assert!(sign_ins >= 4, "the worker signed in again when its session ended: {state}");
    assert_eq!(state["session_conflicts"], 0, "{state}");
}

fn restore_world() -> Value {
    let mut world = world();
    let big = json!({"id": "f-big", "name": "Big", "projectId": "f-q1", "ownerId": ADMIN,
                     "generate": {"size": 66 * 1024 * 1024 + 123, "seed": 5}, "updatedAt": "2026-01-03T00:00:00Z"});
    world["sites"][1]["workbooks"].as_array_mut().unwrap().push(big);
    // Ledger's owner is a user of the drill site too; Big's is not.
    let cassie = json!({"id": "u-cassie", "name": "cassie", "siteRole": "Creator"});
    world["sites"][1]["users"]
        .as_array_mut()
        .unwrap()
        .extend([cassie.clone(), json!({"id": "u-bob", "name": "bob", "siteRole": "Creator"})]);
    world["sites"][1]["workbooks"][0]["ownerId"] = json!("u-cassie");
    world["sites"][1]["workbooks"][2]["ownerId"] = json!("u-bob");
    world["sites"].as_array_mut().unwrap().push(json!({"id": "site-drill", "name": "Drill", "contentUrl": "drill",
        "users": [{"id": ADMIN, "name": "admin", "siteRole": "SiteAdministratorCreator"}, cassie], "projects": [], "workbooks": []}));
    world
}

fn restore(job: &Job, options: Value) -> Job {
    job.spec.restore_job(job, options).expect("tableau jobs restore").expect("valid options")
}

#[tokio::test]
async fn workbooks_are_published_back_as_of_a_run_into_recreated_projects() {
    let (clients, server, bucket, reports, token_env) = setup(&restore_world()).await;
    let job = finance_only(&server, &token_env, &bucket, &reports, json!({}));
    let first = run(&clients, &job).await;
    assert_eq!(first.counts.copied, 3, "{:#?}", first.tasks);
    server.post("workbooks", &json!({"site": "finance", "workbook": {"id": "f1", "updatedAt": "2026-02-01T00:00:00Z", "text": "ledger v2"}})).await;
    assert_eq!(run(&clients, &job).await.counts.copied, 1);

    // The Reports project as the first run held it, into the drill site: the project path is
    // created there, the 66 MB workbook goes through an upload session in parts.
    let db_env = format!("DB_PASSWORD_{}", unique("d").replace('-', "_"));
    // SAFETY: the variable's name is this test's own; no other thread reads or writes it.
    unsafe { std::env::set_var(&db_env, "db-secret") };
    let options = json!({"site": "finance", "project": "Reports", "as_of": first.run_id, "to_site": "drill", "poll_interval": "1s",
        "connections": [{"server_address": "db.example", "username": "reader", "password": format!("env:{db_env}")}]});
    let restored = run(&clients, &restore(&job, options.clone())).await;
    assert_eq!((restored.counts.copied, restored.counts.failed), (2, 0), "{:#?}", restored.tasks);
    let state = server.state().await;
    let published = state["published"].as_array().unwrap();
    let ledger = published.iter().find(|p| p["name"] == "Ledger").expect("Ledger published");
    assert_eq!(ledger["siteContentUrl"], "drill");
    assert_eq!(
        ledger["sha256"],
        backline_tests::tableau::sha256(b"ledger"),
        "the version of the first run, not the latest"
    );
    let credentials = &ledger["connections"][0];
    assert_eq!(
        (credentials["serverAddress"].as_str(), credentials["credentials"]["name"].as_str()),
        (Some("db.example"), Some("reader"))
    );
    assert_eq!(credentials["credentials"]["password"], "db-secret", "resolved from its reference when published");
    let outcome =
        |name: &str| restored.tasks.iter().find(|o| o.key.ends_with(name)).unwrap().detail.clone().unwrap_or_default();
    assert!(outcome("/Ledger").contains("owner cassie"), "{}", outcome("/Ledger"));
    assert!(outcome("/Big").contains("\"bob\" is not a user of this site"), "{}", outcome("/Big"));
    let ledger_now = server.get(&format!("workbooks/drill/{}", ledger["id"].as_str().unwrap())).await;
    assert_eq!(ledger_now["ownerId"], "u-cassie", "the original owner, found by name on the drill site");
    let manifest_text = serde_json::to_string(&restored).unwrap();
    assert!(!manifest_text.contains("db-secret"), "a resolved secret is never in the manifest");
    let big = published.iter().find(|p| p["name"] == "Big").expect("Big published");
    assert_eq!((big["chunked"].as_bool(), big["bytes"].as_u64()), (Some(true), Some(66 * 1024 * 1024 + 123)));
    let created: Vec<&str> =
        state["projects_created"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(["Finance", "Reports", "Q1"].iter().all(|p| created.contains(p)), "{created:?}");
    assert_eq!(state["session_conflicts"], 0, "{state}");

    // Again: the workbooks exist there now, and are not overwritten unless asked.
    let refused = run(&clients, &restore(&job, options.clone())).await;
    assert_eq!(refused.counts.failed, 2, "{:#?}", refused.tasks);
    assert!(refused.tasks.iter().all(|o| o.detail.as_deref().unwrap_or("").contains("pass --overwrite")));
    let mut overwrite = options;
    overwrite["overwrite"] = json!(true);
    overwrite["workbook"] = json!("Ledger");
    overwrite.as_object_mut().unwrap().remove("as_of");
    let replaced = run(&clients, &restore(&job, overwrite)).await;
    assert_eq!((replaced.counts.copied, replaced.counts.failed), (1, 0), "{:#?}", replaced.tasks);
    let state = server.state().await;
    let last = state["published"].as_array().unwrap().iter().rev().find(|p| p["name"] == "Ledger").unwrap().clone();
    assert_eq!(
        (last["sha256"].as_str(), last["replaced"].as_bool()),
        (Some(backline_tests::tableau::sha256(b"ledger v2").as_str()), Some(true))
    );
}

#[tokio::test]
async fn without_a_target_only_the_projects_are_backed_up() {
    let (clients, server, bucket, reports, token_env) = setup(&world()).await;
    let mut value = serde_json::to_value(job(&server.url, &token_env, &bucket, &reports)).unwrap();
    value.as_object_mut().unwrap().remove("target");
    value["source"]["excluded_sites"] = json!([]);
    let job = Job::from_value(value).unwrap();
    assert_eq!(job.control().bucket.as_str(), reports, "the records live in the project's bucket");
    let manifest = run(&clients, &job).await;
    assert_eq!((manifest.counts.copied, manifest.counts.failed), (1, 0), "{:#?}", manifest.tasks);
    assert_eq!(body(&clients, &reports, "finance/Finance/Reports/Q1/Ledger.twbx").await, b"ledger");
    assert!(backline_tests::keys(&clients.s3, &bucket, "").await.is_empty(), "nothing of the rest of the sites");
    let listed: Vec<String> = server.state().await["route_counts"].as_object().unwrap().keys().cloned().collect();
    assert!(listed.iter().any(|r| r.contains("workbooks.list")), "{listed:?}");
}

#[tokio::test]
async fn older_revisions_are_backed_up_once_and_one_can_be_restored() {
    let mut world = restore_world();
    world["sites"][1]["workbooks"][1]["revisions"] = json!([
        {"number": 1, "text": "misc r1"}, {"number": 2, "deleted": true}, {"number": 3, "current": true}
    ]);
    let (clients, server, bucket, reports, token_env) = setup(&world).await;
    let job = finance_only(&server, &token_env, &bucket, &reports, json!({"revisions": true}));
    let first = run(&clients, &job).await;
    assert_eq!(
        (first.counts.copied, first.counts.failed),
        (4, 0),
        "3 workbooks and 1 older revision: {:#?}",
        first.tasks
    );
    assert_eq!(body(&clients, &bucket, "finance/Other/Misc.revisions/1.twbx").await, b"misc r1");
    let keys = backline_tests::keys(&clients.s3, &bucket, "finance/Other/Misc.revisions/").await;
    assert_eq!(keys.len(), 1, "a deleted revision has no content, the current one is the workbook: {keys:?}");
    assert_eq!(run(&clients, &job).await.counts.copied, 0, "each revision once");

    let options =
        json!({"site": "finance", "workbook": "Misc", "revision": 1, "to_site": "drill", "poll_interval": "1s"});
    let restored = run(&clients, &restore(&job, options)).await;
    assert_eq!((restored.counts.copied, restored.counts.failed), (1, 0), "{:#?}", restored.tasks);
    let state = server.state().await;
    let misc = state["published"].as_array().unwrap().iter().find(|p| p["name"] == "Misc").unwrap().clone();
    assert_eq!(misc["sha256"], backline_tests::tableau::sha256(b"misc r1"));
    let missing =
        job.spec.restore_job(&job, json!({"site": "finance", "workbook": "Ledger", "revision": 7})).unwrap().unwrap();
    let Err(err) = local::run(clients.clone(), &missing, chrono::Utc::now(), false, Arc::new(NoProgress)).await else {
        panic!("a revision not backed up is refused");
    };
    assert!(err.to_string().contains("revision 7 of Ledger is not in the backup"), "{err}");
}

#[tokio::test]
async fn a_site_that_cannot_be_read_fails_its_workbooks_not_the_run() {
    let (clients, server, bucket, reports, token_env) = setup(&world()).await;
    server
        .post(
            "faults",
            &json!({"error": {"count": null, "status": 500, "path_contains": "/sites/site-finance/workbooks"}}),
        )
        .await;
    let job = job(&server.url, &token_env, &bucket, &reports);
    let manifest = run(&clients, &job).await;
    assert_eq!(manifest.counts.copied, 105, "the Default site is backed up: {:#?}", manifest.counts);
    let failed: Vec<_> = manifest.tasks.iter().filter(|o| o.status == Status::Failed).collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].key.contains("finance") && failed[0].detail.as_deref().unwrap_or("").contains("500"),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_backup_under_a_prefix_restores_and_a_moved_workbook_is_downloaded_again() {
    let (clients, server, bucket, reports, token_env) = setup(&restore_world()).await;
    let mut value = serde_json::to_value(finance_only(&server, &token_env, &bucket, &reports, json!({}))).unwrap();
    value["target"]["prefix"] = json!("tableau/");
    value["projects"][0]["prefix"] = json!("reports/");
    let job = Job::from_value(value).unwrap();
    assert_eq!(run(&clients, &job).await.counts.copied, 3);
    assert_eq!(body(&clients, &bucket, "tableau/finance/Other/Misc.twbx").await, b"misc");

    // Misc moves from Other into Finance, its updatedAt unchanged: it is backed up at its new key.
    server.post("workbooks", &json!({"site": "finance", "workbook": {"id": "f2", "projectId": "f-fin"}})).await;
    let moved = run(&clients, &job).await;
    assert_eq!(moved.counts.copied, 1, "{:#?}", moved.tasks);
    assert_eq!(body(&clients, &bucket, "tableau/finance/Finance/Misc.twbx").await, b"misc");

    let options = json!({"site": "finance", "workbook": "Ledger", "to_site": "drill", "poll_interval": "1s"});
    let restored = run(&clients, &restore(&job, options)).await;
    assert_eq!((restored.counts.copied, restored.counts.skipped), (1, 0), "{:#?}", restored.tasks);
    let state = server.state().await;
    assert!(state["published"].as_array().unwrap().iter().any(|p| p["name"] == "Ledger"), "{state}");
}
