//! The `quicksight` kind on the Lambda path when a worker dies at its deadline: while storing a
//! bundle, after its work and before recording it, after recording and before the ledger
//! write. Its exports wait in the queue between looks, so the death comes in whichever delivery
//! reaches the held request. SQS then delivers that chunk again; every record and bundle must
//! be written once (one version of each zip in a versioned bucket), every delivery counted
//! once, and the manifest must report each item once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backline::model::Status;
use backline_tests::faults::FaultProxy;
use backline_tests::quicksight::QuickSightServer;
use backline_tests::reliability::{self, Figures};
use backline_tests::{Moto, create_bucket, unique};
use serde_json::{Value, json};

mod handlers;
use handlers::{deliver_until_one_dies, drive, failed_ids, manifest_of, plan, sqs_event, stack_with_clients, stall};

const JOB: &str = "qs-lambda-faults";
/// 2 users, 1 group, 1 membership; one bundle for each of the 4 asset types.
const RECORDS: usize = 4;
const BUNDLES: usize = 4;
/// The empty account restores go into.
const RESTORED_ACCOUNT: &str = "222222222222";

fn world() -> Value {
    json!({
        "settings": {"page_size": 2},
        "accounts": {"111111111111": {
            "users": [{"name": "alice", "identity_type": "QUICKSIGHT", "role": "AUTHOR"},
                      {"name": "bob", "identity_type": "QUICKSIGHT"}],
            "groups": [{"name": "analysts"}],
            "memberships": [{"group": "analysts", "member": "alice"}],
            "regions": {"us-east-1": {
                "datasources": [{"id": "athena"}],
                "datasets": [{"id": "sales", "deps": ["athena"]}],
                "analyses": [{"id": "a1", "deps": ["sales"]}],
                "dashboards": {"generate": 6, "deps": ["a1"]}}}
        },
        (RESTORED_ACCOUNT): {}}
    })
}

/// Where the worker dies, and the request the proxy in front of moto holds until it is gone.
fn deaths() -> Vec<(&'static str, Value)> {
    vec![
        ("a quicksight worker dies storing a bundle", stall(&["PutObject"], "/quicksight-backups/", 1)),
        ("a quicksight worker dies after its work, before recording it", stall(&["PutObject"], "/outcomes/", 1)),
        ("a quicksight worker dies after recording, before the ledger write", stall(&["TransactWriteItems"], "", 1)),
    ]
}

/// A job file of one quicksight job writing to `bucket` and tables named from `tables`.
fn job_file(bucket: &str, tables: &str) -> std::path::PathBuf {
    let config = std::env::temp_dir().join(format!("{}.yaml", unique("qs-jobs")));
    let text = format!(
        "jobs:\n  - name: {JOB}\n    kind: quicksight\n    source: {{account_id: \"111111111111\", region: us-east-1}}\n    target: {{bucket: {bucket}, users_table: {tables}-u, groups_table: {tables}-g, memberships_table: {tables}-m}}\n    poll_interval: 1s\n"
    );
    std::fs::write(&config, text).unwrap();
    config
}

#[tokio::test]
async fn a_quicksight_worker_that_dies_at_its_deadline_writes_each_item_once() {
    let moto = Moto::get().clients().await;
    for (hour, (scenario, rule)) in deaths().into_iter().enumerate() {
        let server = QuickSightServer::start(&world()).await;
        let proxy = FaultProxy::start(&Moto::get().endpoint, rule).await;
        let mut clients = proxy.clients().await;
        clients.quicksight_endpoint = Some(server.url.clone());
        let (bucket, tables) = (unique("qs-dst"), unique("qs-tables"));
        let config = job_file(&bucket, &tables);
        let stack = stack_with_clients(&config.display().to_string(), clients).await;
        create_bucket(&moto.s3, &bucket).await;
        let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
        moto.s3.put_bucket_versioning().bucket(&bucket).versioning_configuration(enabled).send().await.unwrap();
        let time = format!("2026-11-23T{:02}:00:00Z", hour + 3);
        let planned = plan(&stack, json!({"job": JOB, "time": time})).await;
        let run_id = planned["runs"][0]["run_id"].as_str().expect("a run").to_string();

        let records = deliver_until_one_dies(&stack, &proxy, scenario).await;
        let mut calm_clients = moto.clone();
        calm_clients.quicksight_endpoint = Some(server.url.clone());
        let calm = stack.deployment.engine(calm_clients);
        let again = backline_worker::handler(&calm, sqs_event(&records)).await.unwrap();
        assert!(again.batch_item_failures.is_empty(), "{scenario}: {:?}", failed_ids(&again));
        let mut rounds = 0;
        while drive(&stack).await == 0 {
            rounds += 1;
            assert!(rounds <= 30, "{scenario}: the run did not finish");
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }

        let manifest = manifest_of(&moto.s3, &[&bucket], &run_id).await;
        let progress = stack.engine.ledger.progress(&run_id).await.unwrap().expect("the run is in the ledger");
        assert_eq!(Some(progress.done), progress.expected, "{scenario}: every delivery counted once");

        // Each zip once: one version, and one key per bundle the manifest reports.
        let mut versions: BTreeMap<String, usize> = BTreeMap::new();
        for version in backline::aws::s3::list_versions(&moto.s3, &bucket, "quicksight-backups/").await.unwrap() {
            *versions.entry(version.key).or_default() += 1;
        }
        let duplicates: Vec<&String> = versions.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k).collect();
        let ok = |t: &&backline::model::Outcome| t.status == Status::Ok;
        let bundles: BTreeSet<&str> = manifest
            .tasks
            .iter()
            .filter(ok)
            .filter_map(|t| t.target_key.as_deref())
            .filter(|k| k.starts_with("quicksight-backups/"))
            .collect();
        // Each record once in its table.
        let mut per_table: BTreeMap<&str, usize> = BTreeMap::new();
        for task in manifest.tasks.iter().filter(ok).filter(|t| t.target_bucket.is_none()) {
            *per_table.entry(task.target_key.as_deref().unwrap_or_default()).or_default() += 1;
        }
        let mut written = 0;
        for (table, wanted) in &per_table {
            let count = moto.dynamodb.scan().table_name(*table).send().await.unwrap().count();
            assert_eq!(count as usize, *wanted, "{scenario}: items in {table}");
            written += count as usize;
        }
        let lost = (RECORDS + BUNDLES).saturating_sub(written + bundles.len());
        reliability::record(&Figures::of_one_run(
            scenario,
            "quicksight (Lambda)",
            RECORDS + BUNDLES,
            1,
            lost,
            duplicates.len(),
        ));
        assert!(duplicates.is_empty(), "{scenario}: zips stored twice: {duplicates:?}");
        assert_eq!(versions.keys().map(String::as_str).collect::<BTreeSet<_>>(), bundles, "{scenario}");
        assert_eq!((written, bundles.len()), (RECORDS, BUNDLES), "{scenario}: {:#?}", manifest.tasks);
        let keys: BTreeSet<&str> = manifest.tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys.len(), manifest.tasks.len(), "{scenario}: an item reported twice");
        assert_eq!((manifest.status.as_str(), manifest.counts.failed), ("succeeded", 0), "{scenario}");
    }
}

/// Where a restore's worker dies: the proxy (`true`: the one before QuickSight, `false`: before
/// moto) and the request it holds.
fn restore_deaths() -> Vec<(&'static str, bool, Value)> {
    let import = json!([{"name": "worker-dies", "fault": "stall", "nth": [2], "method": "POST",
                         "path": "/asset-bundle-import-jobs/import$", "seconds": 20}]);
    vec![
        ("a quicksight restore worker dies starting an import", true, import),
        (
            "a quicksight restore worker dies after its work, before recording it",
            false,
            stall(&["PutObject"], "/outcomes/", 1),
        ),
        (
            "a quicksight restore worker dies after recording, before the ledger write",
            false,
            stall(&["TransactWriteItems"], "", 1),
        ),
    ]
}

#[tokio::test]
async fn a_quicksight_restore_worker_that_dies_at_its_deadline_makes_each_item_once() {
    let moto = Moto::get().clients().await;
    for (hour, (scenario, at_quicksight, rule)) in restore_deaths().into_iter().enumerate() {
        let server = QuickSightServer::start(&world()).await;
        let (qs_proxy, s3_proxy) = (
            FaultProxy::start(&server.url, json!([])).await,
            FaultProxy::start(&Moto::get().endpoint, json!([])).await,
        );
        let mut clients = s3_proxy.clients().await;
        clients.quicksight_endpoint = Some(qs_proxy.url.clone());
        let (bucket, tables) = (unique("qs-bak"), unique("qs-tables"));
        let stack = stack_with_clients(&job_file(&bucket, &tables).display().to_string(), clients.clone()).await;
        create_bucket(&moto.s3, &bucket).await;
        // QuickSight reads the S3 URI with the caller's access; the emulator reads moto unsigned.
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
            "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
        moto.s3.put_bucket_policy().bucket(&bucket).policy(policy.to_string()).send().await.expect("policy");
        plan(&stack, json!({"job": JOB, "time": format!("2026-11-23T{:02}:00:00Z", hour + 3)})).await;
        let mut rounds = 0;
        while drive(&stack).await == 0 {
            rounds += 1;
            assert!(rounds <= 30, "{scenario}: the backup did not finish");
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }

        let proxy = if at_quicksight { &qs_proxy } else { &s3_proxy };
        proxy.post("reset", &json!({"rules": rule, "seed": 7})).await;
        let request = json!({"restore": {"job": JOB, "date": "2026-11-23", "to_account": RESTORED_ACCOUNT,
                                         "poll_interval": "1s"},
                             "time": format!("2026-11-23T{:02}:30:00Z", hour + 3)});
        let planned = plan(&stack, request).await;
        let run_id = planned["runs"][0]["run_id"].as_str().expect("a run").to_string();
        let records = deliver_until_one_dies(&stack, proxy, scenario).await;
        let mut calm_clients = moto.clone();
        calm_clients.quicksight_endpoint = Some(qs_proxy.url.clone());
        let again =
            backline_worker::handler(&stack.deployment.engine(calm_clients), sqs_event(&records)).await.unwrap();
        assert!(again.batch_item_failures.is_empty(), "{scenario}: {:?}", failed_ids(&again));
        let mut rounds = 0;
        while drive(&stack).await == 0 {
            rounds += 1;
            assert!(rounds <= 30, "{scenario}: the restore did not finish");
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }

        let state = server.state().await;
        let restored = &state["accounts"][RESTORED_ACCOUNT];
        let count = |value: &Value| value.as_array().map_or(0, Vec::len);
        let namespace = &restored["namespaces"]["default"];
        let made = [
            ("users", count(&namespace["users"]), 2usize),
            ("groups", count(&namespace["groups"]), 1),
            ("memberships", count(&namespace["memberships"]), 1),
            ("dashboards", count(&restored["regions"]["us-east-1"]["dashboards"]), 6),
        ];
        let lost: usize = made.iter().map(|(_, got, want)| want.saturating_sub(*got)).sum();
        let duplicates: usize = made.iter().map(|(_, got, want)| got.saturating_sub(*want)).sum();
        reliability::record(&Figures::of_one_run(scenario, "quicksight-restore (Lambda)", 10, 1, lost, duplicates));
        assert_eq!((lost, duplicates), (0, 0), "{scenario}: {made:?}");
        let progress = stack.engine.ledger.progress(&run_id).await.unwrap().expect("the run is in the ledger");
        assert_eq!(Some(progress.done), progress.expected, "{scenario}: every delivery counted once");
        let manifest = manifest_of(&moto.s3, &[&bucket], &run_id).await;
        assert_eq!((manifest.status.as_str(), manifest.counts.failed), ("succeeded", 0), "{:#?}", manifest.tasks);
    }
}
