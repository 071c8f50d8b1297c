//! QuickSight backups and restores through fault proxies: one in front of the QuickSight
//! emulator (5 % throttling, 1 % resets but of Start calls, bundle downloads included since the
//! emulator's download URLs name the host they were asked through), one in front of moto for S3 and DynamoDB (5 %
//! SlowDown, 1 % resets). Each run must succeed and write what the same run without faults
//! writes: bundles with the same entries, table items alike, the same identities and assets
//! restored.

use std::collections::BTreeMap;
use std::sync::Arc;

use backline::aws::AwsClients;
use backline::pipeline::{NoProgress, local};
use backline::store::Manifest;
use backline::{Config, Job};
use backline_tests::faults::FaultProxy;
use backline_tests::quicksight::{QuickSightServer, made_in, zip_entries};
use backline_tests::reliability::{self, Figures};
use backline_tests::{Moto, create_bucket, unique};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

const ACCOUNT: &str = "111111111111";
const CALM_ACCOUNT: &str = "222222222222";
const STORMY_ACCOUNT: &str = "333333333333";
const SCENARIO: &str = "5 % throttling and 1 % resets (QuickSight), 5 % SlowDown and 1 % resets (S3, DynamoDB)";

/// Users and groups in us-east-1, assets in eu-west-1, pages of 3; two empty accounts to
/// restore into.
fn world(users: usize, dashboards: usize) -> Value {
    let roles = ["ADMIN", "AUTHOR", "READER"];
    let people: Vec<Value> = (0..users)
        .map(|i| {
            let identity = if i % 4 == 0 { "IAM" } else { "QUICKSIGHT" };
            json!({"name": format!("user-{i:02}"), "role": roles[i % 3], "identity_type": identity})
        })
        .collect();
    let mut memberships: Vec<Value> =
        (0..users).map(|i| json!({"group": format!("team-{}", i % 4), "member": format!("user-{i:02}")})).collect();
    memberships.extend((0..users).step_by(3).map(|i| json!({"group": "admins", "member": format!("user-{i:02}")})));
    let groups: Vec<Value> = (0..4)
        .map(|i| json!({"name": format!("team-{i}"), "description": format!("Team {i}")}))
        .chain([json!({"name": "admins"})])
        .collect();
    json!({
        "settings": {"page_size": 3, "polls_per_status": 1},
        "accounts": {
            (ACCOUNT): {
                "identity_region": "us-east-1", "users": people, "groups": groups, "memberships": memberships,
                "regions": {"eu-west-1": {
                    "datasources": [{"id": "athena", "type": "ATHENA"}, {"id": "redshift", "type": "REDSHIFT"}],
                    "datasets": [{"id": "sales", "deps": ["athena"]}, {"id": "costs", "deps": ["redshift"]},
                                 {"id": "margins", "deps": ["athena"]}],
                    "analyses": [{"id": "sales-analysis", "deps": ["sales"], "definition": {"Sheets": [1]}},
                                 {"id": "cost-analysis", "deps": ["costs", "margins"]}],
                    "dashboards": {"generate": dashboards, "deps": ["sales-analysis"]}
                }}
            },
            (CALM_ACCOUNT): {"identity_region": "us-east-1"},
            (STORMY_ACCOUNT): {"identity_region": "us-east-1"}
        }
    })
}

/// Users, groups and memberships of the world.
fn records(users: usize) -> usize {
    users + 5 + users + users.div_ceil(3)
}

/// Records and assets of the world.
fn items_in(users: usize, dashboards: usize) -> usize {
    records(users) + 2 + 3 + 2 + dashboards
}

/// A proxy before the QuickSight emulator and one before moto, and clients that reach both
/// through them.
struct Unreliable {
    quicksight: FaultProxy,
    moto: FaultProxy,
}

/// Where StartAssetBundleExportJob and StartAssetBundleImportJob are sent.
const START_CALLS: &str = r"/accounts/\d+/asset-bundle-(export-jobs/export|import-jobs/import)$";
/// 5 % throttling and 1 % resets on every QuickSight call, bundle downloads included.
fn unreliable_quicksight() -> Value {
    json!([
        {"name": "quicksight-throttling", "fault": "throttling", "rate": 0.05},
        {"name": "quicksight-reset", "fault": "reset", "rate": 0.01},
    ])
}

impl Unreliable {
    async fn start(server: &QuickSightServer, quicksight: Value) -> Unreliable {
        // DynamoDB's SlowDown is an awsJson 503: the SDK retries it as it does S3's.
        let moto = json!([
            {"name": "slowdown", "fault": "slowdown", "rate": 0.05},
            {"name": "reset", "fault": "reset", "rate": 0.01},
        ]);
        Unreliable {
            quicksight: FaultProxy::start(&server.url, quicksight).await,
            moto: FaultProxy::start(&Moto::get().endpoint, moto).await,
        }
    }

    async fn clients(&self) -> AwsClients {
        let mut clients = self.moto.clients().await;
        clients.quicksight_endpoint = Some(self.quicksight.url.clone());
        clients
    }

    async fn faults(&self) -> u64 {
        self.quicksight.faults().await + self.moto.faults().await
    }
}

/// Where one run writes: its own bucket and table bases (moto is shared by the test process).
struct Target {
    bucket: String,
    tables: [String; 3],
}

impl Target {
    async fn new(s3: &aws_sdk_s3::Client, name: &str) -> Target {
        let bucket = unique(name);
        create_bucket(s3, &bucket).await;
        Target { bucket, tables: [unique("qs-users"), unique("qs-groups"), unique("qs-members")] }
    }

    fn job(&self) -> Job {
        let [users, groups, members] = &self.tables;
        let text = format!(
            "[[jobs]]\nname = \"quicksight\"\nkind = \"quicksight\"\nmode = \"full\"\nmax_assets_per_bundle = 5\n\
             include_dependencies = true\ninclude_permissions = true\ninclude_tags = true\npoll_interval = \"1s\"\n\
             [jobs.source]\naccount_id = \"{ACCOUNT}\"\nregion = \"eu-west-1\"\nidentity_region = \"us-east-1\"\n\
             [jobs.target]\nbucket = \"{}\"\nprefix = \"quicksight-backups\"\nusers_table = \"{users}\"\n\
             groups_table = \"{groups}\"\nmemberships_table = \"{members}\"\n",
            self.bucket
        );
        Config::parse(&text, backline::config::Format::Toml, "faults.toml").expect("valid job").jobs.remove(0)
    }

    /// What the run wrote, by bundle key and table key: a bundle as its entries' names, CRCs
    /// and sizes (the zip's timestamps are the export's), an item as all its attributes.
    async fn written(&self, clients: &AwsClients) -> BTreeMap<String, String> {
        let mut written = BTreeMap::new();
        for key in backline_tests::keys(&clients.s3, &self.bucket, "quicksight-backups/").await {
            let zip = backline_tests::body(&clients.s3, &self.bucket, &key).await;
            written.insert(key, format!("{:?}", zip_entries(&zip)));
        }
        for (base, key) in self.tables.iter().zip(["user_name", "group_name", "membership_id"]) {
            let table = format!("2026-11-23-{base}");
            let scan = clients.dynamodb.scan().table_name(&table).send().await.expect("scan");
            for item in scan.items() {
                let id = item.get(key).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                written.insert(format!("{key}/{id}"), format!("{:?}", item.iter().collect::<BTreeMap<_, _>>()));
            }
        }
        written
    }
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).unwrap()
}

async fn run(clients: &AwsClients, job: &Job, at: DateTime<Utc>) -> Manifest {
    let run = local::run(clients.clone(), job, at, false, Arc::new(NoProgress)).await;
    run.unwrap_or_else(|e| panic!("job {}: {e}", job.name)).manifest.expect("a manifest")
}

/// The failed tasks with what went wrong, for an assertion's message.
fn failed(manifest: &Manifest) -> Vec<(&str, Option<&str>)> {
    let failed = manifest.tasks.iter().filter(|t| t.status == backline::model::Status::Failed);
    failed.map(|t| (t.key.as_str(), t.detail.as_deref())).collect()
}

fn record(kind: &str, items: usize, faults: u64, lost: usize) {
    reliability::record(&Figures::of_one_run(SCENARIO, kind, items, faults, lost, 0));
}

/// Keys of `want` that `got` lacks or holds otherwise, and keys only `got` holds.
fn differences(want: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> (Vec<String>, Vec<String>) {
    let lost = want.iter().filter(|(k, v)| got.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect();
    let extra = got.keys().filter(|k| !want.contains_key(*k)).cloned().collect();
    (lost, extra)
}

#[tokio::test]
async fn quicksight_backup_survives_throttling_resets_and_slowdowns() {
    let (users, dashboards) = (reliability::size(10, 50), reliability::size(6, 40));
    let server = QuickSightServer::start(&world(users, dashboards)).await;
    let direct = server.clients().await;
    let proxies = Unreliable::start(&server, unreliable_quicksight()).await;
    let (calm, stormy) = (Target::new(&direct.s3, "qs-calm").await, Target::new(&direct.s3, "qs-faults").await);

    let reference = run(&direct, &calm.job(), at()).await;
    let manifest = run(&proxies.clients().await, &stormy.job(), at()).await;
    let faults = proxies.faults().await;
    let (want, got) = (calm.written(&direct).await, stormy.written(&direct).await);
    let (lost, extra) = differences(&want, &got);
    record("quicksight", items_in(users, dashboards), faults, lost.len());

    assert_eq!((reference.status.as_str(), reference.counts.failed), ("succeeded", 0), "{:#?}", failed(&reference));
    let bundles = 3 + dashboards.div_ceil(5);
    assert_eq!(want.len(), records(users) + bundles, "{want:#?}");
    assert!(faults > 0, "the proxies injected nothing");
    assert_eq!((manifest.status.as_str(), manifest.counts.failed), ("succeeded", 0), "{:#?}", failed(&manifest));
    assert!(lost.is_empty(), "missing or different from a run without faults: {lost:?}");
    assert!(extra.is_empty(), "not written by a run without faults: {extra:?}");
}

#[tokio::test]
async fn quicksight_restore_survives_throttling_resets_and_slowdowns() {
    let (users, dashboards) = (reliability::size(10, 50), reliability::size(6, 40));
    let server = QuickSightServer::start(&world(users, dashboards)).await;
    let direct = server.clients().await;
    let backup = Target::new(&direct.s3, "qs-backup").await;
    let job = backup.job();
    let backed_up = run(&direct, &job, at()).await;
    assert_eq!((backed_up.status.as_str(), backed_up.counts.failed), ("succeeded", 0), "{:#?}", failed(&backed_up));
    // The emulator imports from an S3Uri by reading moto unsigned.
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
        "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/*", backup.bucket)}]});
    direct.s3.put_bucket_policy().bucket(&backup.bucket).policy(policy.to_string()).send().await.expect("policy");
    let restore_into = |account: &str| {
        let options = json!({"date": "2026-11-23", "to_account": account, "to_region": "eu-west-1",
                             "to_identity_region": "us-east-1", "poll_interval": "1s"});
        job.spec.restore_job(&job, options).expect("a restore").expect("valid options")
    };

    let reference = run(&direct, &restore_into(CALM_ACCOUNT), Utc::now()).await;
    let proxies = Unreliable::start(&server, unreliable_quicksight()).await;
    let manifest = run(&proxies.clients().await, &restore_into(STORMY_ACCOUNT), Utc::now()).await;
    let faults = proxies.faults().await;
    let state = server.state().await;
    let (want, got) = (made_in(&state, CALM_ACCOUNT, "eu-west-1"), made_in(&state, STORMY_ACCOUNT, "eu-west-1"));
    let (lost, extra) = differences(&want, &got);
    record("quicksight-restore", items_in(users, dashboards), faults, lost.len());

    assert_eq!((reference.status.as_str(), reference.counts.failed), ("succeeded", 0), "{:#?}", failed(&reference));
    assert_eq!(want.len(), items_in(users, dashboards), "{want:#?}");
    assert!(faults > 0, "the proxies injected nothing");
    assert_eq!((manifest.status.as_str(), manifest.counts.failed), ("succeeded", 0), "{:#?}", failed(&manifest));
    assert!(lost.is_empty(), "missing or different from a restore without faults: {lost:?}");
    assert!(extra.is_empty(), "not made by a restore without faults: {extra:?}");
}

/// Start calls are sent once (a full account waits in the queue, not in the SDK): one whose
/// connection breaks, before QuickSight saw it or after, is started again at the next look.
#[tokio::test]
async fn a_start_call_whose_connection_breaks_is_started_again() {
    let server = QuickSightServer::start(&world(3, 3)).await;
    let direct = server.clients().await;
    for when in ["before", "after"] {
        let reset = json!([{"name": "start-reset", "fault": "reset", "nth": [1], "when": when, "path": format!("^{START_CALLS}")}]);
        let proxies = Unreliable::start(&server, reset).await;
        let target = Target::new(&direct.s3, "qs-start-reset").await;
        let manifest = run(&proxies.clients().await, &target.job(), at()).await;
        assert_eq!(proxies.quicksight.faults().await, 1, "{when}: one Start call reset");
        let (status, failed_count) = (manifest.status.as_str(), manifest.counts.failed);
        assert_eq!((status, failed_count), ("succeeded", 0), "{when}: {:#?}", failed(&manifest));
    }
}
