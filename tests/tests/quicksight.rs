//! The `quicksight` and `quicksight-restore` kinds against the QuickSight emulator
//! (`tests/emulators/quicksight`) and moto: paging, modes, identity region, bundles and their
//! keys, the 5-export limit, failed and unexportable exports, expired URLs, throttling, table
//! reuse and retention, restore into an empty account, and dry runs.

use std::sync::Arc;

use backline::aws::AwsClients;
use backline::model::{Action, Status};
use backline::pipeline::{NoProgress, local};
use backline::store::Manifest;
use backline::{Config, Job};
use backline_tests::quicksight::QuickSightServer;
use backline_tests::{create_bucket, keys, unique};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

const ACCOUNT: &str = "111111111111";
const EMPTY_ACCOUNT: &str = "222222222222";

/// Users and groups in us-east-1, assets in eu-west-1, pages of 3.
fn world(dashboards: u32) -> Value {
    json!({
        "settings": {"page_size": 3, "polls_per_status": 1},
        "accounts": {
            (ACCOUNT): {
                "identity_region": "us-east-1",
                "users": [
                    {"name": "alice", "role": "ADMIN", "identity_type": "QUICKSIGHT"},
                    {"name": "bob", "role": "AUTHOR", "identity_type": "IAM"},
                    {"name": "reporting/session-1", "role": "READER", "identity_type": "IAM"},
                    {"name": "carol", "role": "READER", "identity_type": "IAM_IDENTITY_CENTER"},
                    {"name": "dave", "role": "READER", "identity_type": "QUICKSIGHT", "custom_permissions_name": "no-export"},
                    {"name": "erin", "role": "AUTHOR", "identity_type": "QUICKSIGHT", "active": false},
                    {"name": "frank", "role": "READER", "identity_type": "QUICKSIGHT"}
                ],
                "groups": [
                    {"name": "analysts", "description": "Analysts"},
                    {"name": "admins"}, {"name": "g3"}, {"name": "g4"}
                ],
                "memberships": [
                    {"group": "analysts", "member": "alice"}, {"group": "analysts", "member": "bob"},
                    {"group": "analysts", "member": "dave"}, {"group": "analysts", "member": "erin"},
                    {"group": "admins", "member": "alice"}
                ],
                "regions": {
                    "eu-west-1": {
                        "datasources": [
                            {"id": "athena", "name": "Athena", "type": "ATHENA"},
                            {"id": "redshift", "name": "Redshift", "type": "REDSHIFT"}
                        ],
                        "datasets": [
                            {"id": "sales", "name": "Sales", "deps": ["athena"]},
                            {"id": "upload", "name": "Uploaded file", "deps": ["athena"], "exportable": false},
                            {"id": "costs", "name": "Costs", "deps": ["redshift"]}
                        ],
                        "analyses": [{"id": "sales-analysis", "deps": ["sales"], "definition": {"Sheets": [1]}}],
                        "dashboards": {"generate": dashboards, "deps": ["sales-analysis"]}
                    }
                }
            },
            (EMPTY_ACCOUNT): {"identity_region": "us-east-1"}
        }
    })
}

struct Setup {
    server: QuickSightServer,
    clients: AwsClients,
    bucket: String,
    /// Unique table bases for this test: moto is shared by the test process.
    tables: [String; 3],
}

async fn setup(world: &Value) -> Setup {
    let server = QuickSightServer::start(world).await;
    let clients = server.clients().await;
    let bucket = unique("quicksight");
    create_bucket(&clients.s3, &bucket).await;
    let tables = [unique("qs-users"), unique("qs-groups"), unique("qs-members")];
    Setup { server, clients, bucket, tables }
}

impl Setup {
    /// The job of the issue, with `extra` lines at the job's top level.
    fn job(&self, extra: &str) -> Job {
        let [users, groups, members] = &self.tables;
        let text = format!(
            r#"
jobs:
  - name: quicksight
    kind: quicksight
    mode: full
{extra}
    source:
      account_id: "{ACCOUNT}"
      region: eu-west-1
      identity_region: us-east-1
      namespace: default
    target:
      bucket: {bucket}
      prefix: quicksight-backups
      prefix_format: YYYY/MM/DD
      users_table: {users}
      groups_table: {groups}
      memberships_table: {members}
    max_assets_per_bundle: 50
    include_dependencies: true
    include_permissions: true
    include_tags: true
    poll_interval: 1s
"#,
            bucket = self.bucket
        );
        Config::parse(&text, backline::config::Format::Yaml, "quicksight.yaml").expect("valid job").jobs.remove(0)
    }

    async fn run_at(&self, job: &Job, at: DateTime<Utc>) -> Manifest {
        let run = local::run(self.clients.clone(), job, at, false, Arc::new(NoProgress)).await.expect("run");
        run.manifest.expect("a manifest")
    }

    async fn items(
        &self,
        table: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let output = self
            .clients
            .dynamodb
            .scan()
            .table_name(table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("scan {table}: {e:?}"));
        output.items().to_vec()
    }

    async fn table_names(&self) -> Vec<String> {
        let names = self.clients.dynamodb.list_tables().send().await.expect("list tables").table_names().to_vec();
        names.into_iter().filter(|n| self.tables.iter().any(|t| n.ends_with(t.as_str()))).collect()
    }
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap()
}

fn failed(manifest: &Manifest) -> Vec<&backline::model::Outcome> {
    manifest.tasks.iter().filter(|o| o.status == Status::Failed).collect()
}

fn s(item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_else(|| panic!("no {name} in {item:?}"))
}

#[tokio::test]
async fn a_full_backup_writes_dated_tables_and_bundles_with_the_run_time_in_their_keys() {
    let setup = setup(&world(7)).await;
    let manifest = setup.run_at(&setup.job(""), at(1, 2, 3)).await;
    assert!(failed(&manifest).is_empty(), "{:#?}", failed(&manifest));

    // Users, read in the identity region (assets are in eu-west-1): three pages of three.
    let users = setup.items(&format!("2026-11-23-{}", setup.tables[0])).await;
    assert_eq!(users.len(), 7);
    let dave = users.iter().find(|u| s(u, "user_name") == "dave").unwrap();
    assert_eq!(s(dave, "role"), "READER");
    assert_eq!(s(dave, "identity_type"), "QUICKSIGHT");
    assert_eq!(s(dave, "custom_permissions_name"), "no-export");
    assert_eq!(s(dave, "backup_timestamp"), "2026-11-23T01:02:03Z");
    assert!(s(dave, "arn").starts_with("arn:aws:quicksight:us-east-1:111111111111:user/default/dave"));
    assert!(dave.get("active").and_then(|v| v.as_bool().ok()).copied().unwrap());
    let erin = users.iter().find(|u| s(u, "user_name") == "erin").unwrap();
    assert!(!erin.get("active").and_then(|v| v.as_bool().ok()).copied().unwrap());
    let groups = setup.items(&format!("2026-11-23-{}", setup.tables[1])).await;
    assert_eq!(groups.len(), 4);
    let analysts = groups.iter().find(|g| s(g, "group_name") == "analysts").unwrap();
    assert_eq!(s(analysts, "description"), "Analysts");
    let members = analysts.get("members").and_then(|m| m.as_ss().ok()).unwrap();
    assert_eq!(members.len(), 4, "four members over two pages");
    let memberships = setup.items(&format!("2026-11-23-{}", setup.tables[2])).await;
    assert_eq!(memberships.len(), 5);
    let one = memberships.iter().find(|m| s(m, "membership_id") == "bob#analysts").unwrap();
    assert_eq!((s(one, "user_name"), s(one, "group_name")), ("bob".into(), "analysts".into()));
    assert!(
        s(one, "user_arn").ends_with("user/default/bob") && s(one, "group_arn").ends_with("group/default/analysts")
    );

    // One bundle per type, named by the run's date and time.
    let mut stored = keys(&setup.clients.s3, &setup.bucket, "quicksight-backups/").await;
    stored.sort();
    assert_eq!(
        stored,
        [
            "quicksight-backups/2026/11/23/analyses/analyses-010203.zip",
            "quicksight-backups/2026/11/23/dashboards/dashboards-010203.zip",
            "quicksight-backups/2026/11/23/datasets/datasets-010203.zip",
            "quicksight-backups/2026/11/23/datasources/datasources-010203.zip",
        ]
    );
    let zip = backline_tests::body(&setup.clients.s3, &setup.bucket, &stored[1]).await;
    assert_eq!(&zip[..2], b"PK", "a zip");

    // The manifest lists every user, group, membership and bundle with its assets.
    let keys_of = |action| manifest.tasks.iter().filter(move |o| o.action == action).map(|o| o.key.as_str());
    let records: Vec<&str> = keys_of(Action::Copy).collect();
    assert_eq!(records.len(), 7 + 4 + 5);
    assert!(records.contains(&"users/reporting/session-1") && records.contains(&"memberships/alice#admins"));
    let dashboards = manifest.tasks.iter().find(|o| o.key == "dashboards/dashboards").unwrap();
    assert_eq!(dashboards.item.as_ref().unwrap()["assets"].as_array().unwrap().len(), 7);
    // The uploaded-file data set cannot be exported: skipped with the reason, the rest exported.
    let upload = manifest.tasks.iter().find(|o| o.key == "datasets/upload").unwrap();
    assert_eq!(upload.status, Status::Skipped);
    assert!(upload.detail.as_deref().unwrap().contains("cannot export"), "{upload:?}");
    let datasets = manifest.tasks.iter().find(|o| o.key == "datasets/datasets").unwrap();
    assert_eq!(datasets.item.as_ref().unwrap()["assets"], json!(["sales", "costs"]));

    let state = setup.server.state().await;
    assert_eq!(state["errors"]["ListUsers"], Value::Null, "no AccessDenied: users were read in us-east-1");
    assert!(state["calls"]["ListDashboards"].as_u64().unwrap() >= 3, "three pages of dashboards");
}

#[tokio::test]
async fn two_hundred_fifty_dashboards_make_five_bundles_and_never_more_than_five_exports_run() {
    let setup = setup(&world(250)).await;
    let job = setup.job("").with_field("mode", json!("assets-only")).unwrap();
    let manifest = setup.run_at(&job, at(4, 5, 6)).await;
    assert!(failed(&manifest).is_empty(), "{:#?}", failed(&manifest));
    let mut dashboards = keys(&setup.clients.s3, &setup.bucket, "quicksight-backups/2026/11/23/dashboards/").await;
    dashboards.sort();
    let expected: Vec<String> =
        (1..=5).map(|n| format!("quicksight-backups/2026/11/23/dashboards/dashboards_bundle_{n}-040506.zip")).collect();
    assert_eq!(dashboards, expected);
    let state = setup.server.state().await;
    assert_eq!(state["max_concurrent_exports_seen"], 5, "eight bundles, five at a time");
    assert_eq!(state["errors"]["StartAssetBundleExportJob"], Value::Null, "the sixth waited for a slot");
    // assets-only: no tables.
    assert!(setup.table_names().await.is_empty());
    assert_eq!(state["calls"]["ListUsers"], Value::Null);
}

#[tokio::test]
async fn users_only_writes_tables_and_exports_nothing() {
    let setup = setup(&world(3)).await;
    let job = setup.job("").with_field("mode", json!("users-only")).unwrap();
    let manifest = setup.run_at(&job, at(1, 0, 0)).await;
    assert_eq!((manifest.counts.copied, failed(&manifest).len()), (16, 0));
    assert!(keys(&setup.clients.s3, &setup.bucket, "quicksight-backups/").await.is_empty());
    assert_eq!(setup.server.state().await["calls"]["ListDashboards"], Value::Null);
    let err = setup.job("").with_field("mode", json!("everything")).unwrap_err();
    assert!(err.contains("mode") && err.contains("users-only"), "{err}");
}

#[tokio::test]
async fn quicksights_own_export_limit_failures_expired_urls_and_throttling_are_waited_out() {
    let mut world = world(7);
    // Other exports fill the account: QuickSight refuses a third job at once.
    world["settings"]["max_concurrent_exports"] = json!(2);
    let setup = setup(&world).await;
    let server = &setup.server;
    server.post("faults", &json!({"throttle": {"count": 3, "operation": "ListDashboards"}})).await;
    // The failure lands on the dashboards' bundle, of several assets, whichever export starts first.
    server.post("faults", &json!({"fail_next_export": 1, "fail_export_arn_contains": ":dashboard/"})).await;
    server.post("faults", &json!({"expire_next_urls": 1})).await;
    let job = setup.job("").with_field("mode", json!("assets-only")).unwrap();
    let manifest = setup.run_at(&job, at(2, 0, 0)).await;
    assert!(failed(&manifest).is_empty(), "{:#?}", failed(&manifest));
    let state = server.state().await;
    assert_eq!(state["errors"]["ListDashboards"]["ThrottlingException"], 3, "throttled three times, then read");
    assert!(state["errors"]["StartAssetBundleExportJob"]["LimitExceededException"].as_u64().unwrap() >= 1);
    assert_eq!(state["faults"]["expire_next_urls"], 0, "an expired URL was handed out and replaced");
    assert_eq!(state["faults"]["fail_next_export"], 0);
    // The failed bundle was exported again in halves.
    let stored = keys(&setup.clients.s3, &setup.bucket, "quicksight-backups/").await;
    let halves: Vec<&String> = stored.iter().filter(|k| k.contains("_part_")).collect();
    assert_eq!(halves.len(), 2, "{stored:#?}");
    assert_eq!(stored.len(), 5, "{stored:#?}");
}

#[tokio::test]
async fn a_second_run_the_same_day_reuses_the_tables_and_retention_deletes_only_this_jobs_old_ones() {
    let setup = setup(&world(2)).await;
    let job = setup.job("    keep_tables: 90d\n").with_field("mode", json!("users-only")).unwrap();
    // Old tables: this job's (tagged), and one with the same name pattern but no tag.
    let dynamodb = &setup.clients.dynamodb;
    let old =
        |days: i64, base: &str| format!("{}-{base}", (at(0, 0, 0) - chrono::Duration::days(days)).format("%Y-%m-%d"));
    backline_tests::create_table(dynamodb, &old(100, &setup.tables[0]), Some(("backline:job", "quicksight"))).await;
    backline_tests::create_table(dynamodb, &old(100, &setup.tables[1]), None).await;
    backline_tests::create_table(dynamodb, &old(30, &setup.tables[2]), Some(("backline:job", "quicksight"))).await;

    let first = setup.run_at(&job, at(1, 0, 0)).await;
    let second = setup.run_at(&job, at(13, 0, 0)).await;
    assert_eq!((failed(&first).len(), failed(&second).len()), (0, 0));
    assert_eq!(second.counts.copied, 16);
    let mut names = setup.table_names().await;
    names.sort();
    let mut expected = vec![
        old(100, &setup.tables[1]),
        old(30, &setup.tables[2]),
        format!("2026-11-23-{}", setup.tables[0]),
        format!("2026-11-23-{}", setup.tables[1]),
        format!("2026-11-23-{}", setup.tables[2]),
    ];
    expected.sort();
    assert_eq!(names, expected, "the tagged 100-day-old table went; the untagged one and the 30-day one stayed");
    let users = setup.items(&format!("2026-11-23-{}", setup.tables[0])).await;
    assert!(users.iter().all(|u| s(u, "backup_timestamp") == "2026-11-23T13:00:00Z"), "the later run wrote last");
}

#[tokio::test]
async fn a_dry_run_checks_access_and_writes_nothing() {
    let setup = setup(&world(3)).await;
    let job = setup.job("");
    let run = local::run(setup.clients.clone(), &job, at(1, 0, 0), true, Arc::new(NoProgress)).await.expect("plan");
    assert!(run.manifest.is_none());
    let notes = run.plan.notes.join("\n");
    assert!(notes.contains("7 users, 4 groups, 5 memberships"), "{notes}");
    assert!(notes.contains("would be created") && notes.contains("check: bucket"), "{notes}");
    assert_eq!(run.plan.to_copy, 16 + 4);
    assert!(setup.table_names().await.is_empty());
    assert!(keys(&setup.clients.s3, &setup.bucket, "").await.is_empty());
    assert_eq!(setup.server.state().await["calls"]["StartAssetBundleExportJob"], Value::Null);
}

#[tokio::test]
async fn a_day_restores_into_an_empty_account_groups_users_memberships_then_assets_in_order() {
    let setup = setup(&world(7)).await;
    let job = setup.job("");
    let backup = setup.run_at(&job, at(3, 0, 0)).await;
    assert!(failed(&backup).is_empty());
    // QuickSight reads an S3Uri with the caller's access; the emulator reads moto unsigned, so
    // the bucket lets anyone read here.
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
        "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/*", setup.bucket)}]});
    setup.clients.s3.put_bucket_policy().bucket(&setup.bucket).policy(policy.to_string()).send().await.expect("policy");

    let options = json!({"date": "2026-11-23", "to_account": EMPTY_ACCOUNT, "to_region": "eu-west-1",
                         "to_identity_region": "us-east-1", "poll_interval": "1s"});
    let restore = job.spec.restore_job(&job, options).expect("a restore").expect("valid options");
    let manifest = setup.run_at(&restore, Utc::now()).await;
    let by_key = |key: &str| {
        manifest.tasks.iter().find(|o| o.key == key).unwrap_or_else(|| panic!("no {key}: {:#?}", manifest.tasks))
    };
    assert_eq!(by_key("groups/analysts").status, Status::Ok);
    assert_eq!(by_key("users/alice").status, Status::Ok);
    assert_eq!(by_key("users/bob").status, Status::Ok, "{:?}", by_key("users/bob"));
    let carol = by_key("users/carol");
    assert_eq!(carol.status, Status::Skipped, "an Identity Center user is listed, not created");
    assert!(carol.detail.as_deref().unwrap().contains("Identity Center"));
    assert_eq!(by_key("memberships/bob#analysts").status, Status::Ok);
    let imports: Vec<_> = manifest.tasks.iter().filter(|o| o.key.contains("-030000")).collect();
    assert_eq!(imports.len(), 4, "{:#?}", manifest.tasks);
    assert!(imports.iter().all(|o| o.status == Status::Ok), "{imports:#?}");

    let state = setup.server.state().await;
    let restored = &state["accounts"][EMPTY_ACCOUNT];
    let namespace = &restored["namespaces"]["default"];
    assert_eq!(namespace["groups"].as_array().unwrap().len(), 4);
    assert_eq!(namespace["users"].as_array().unwrap().len(), 6, "all but the Identity Center user");
    assert_eq!(namespace["memberships"].as_array().unwrap().len(), 5);
    let region = &restored["regions"]["eu-west-1"];
    assert_eq!(region["dashboards"].as_array().unwrap().len(), 7);
    assert_eq!(region["datasets"].as_array().unwrap().len(), 2, "the uploaded file was never exported");
    // Imports ran type by type: every data source import began before any dashboard import.
    let jobs = state["import_jobs"].as_array().unwrap();
    let order: Vec<&str> = jobs.iter().map(|j| j["s3_uri"].as_str().unwrap_or_default()).collect();
    let position = |t: &str| order.iter().position(|s| s.contains(&format!("/{t}/"))).unwrap();
    assert!(position("datasources") < position("datasets") && position("datasets") < position("analyses"));
    assert!(position("analyses") < position("dashboards"), "{order:?}");
    assert!(jobs.iter().all(|j| j["failure_action"] == "ROLLBACK"));
}
