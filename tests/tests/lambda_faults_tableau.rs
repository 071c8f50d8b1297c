//! The `tableau` kind on the Lambda path when a worker dies at its deadline: mid-upload (or, in
//! a restore, mid-publish), after its work and before recording it, after recording and before
//! the ledger write. SQS then delivers the chunk again; every workbook must end up stored once
//! (one version in a versioned target) or published once, every delivery counted once, and the
//! manifest must report every workbook.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backline::model::Status;
use backline_tests::faults::FaultProxy;
use backline_tests::reliability::{self, Figures};
use backline_tests::tableau::{TableauServer, one_site_world, published_under, sha256, token_env};
use backline_tests::{Moto, create_bucket, drain, unique};
use serde_json::{Value, json};

mod handlers;
use handlers::{
    as_records, deliver_again_and_finalize, deliver_until_one_dies, drive, each_stored_once, failed_ids, manifest_of,
    plan, sqs_event, stack_with_clients, stall, worker_dies_at_the_stall,
};

const JOB: &str = "tableau-lambda-faults";

/// Where the worker dies, and the request the proxy in front of moto holds until it is gone.
fn deaths() -> Vec<(&'static str, Value)> {
    vec![
        ("a tableau worker dies mid-upload", stall(&["PutObject"], "/Default/", 5)),
        ("a tableau worker dies after its uploads, before recording them", stall(&["PutObject"], "/outcomes/", 1)),
        ("a tableau worker dies after recording, before the ledger write", stall(&["TransactWriteItems"], "", 1)),
    ]
}

#[tokio::test]
async fn a_tableau_worker_that_dies_at_its_deadline_stores_each_workbook_once() {
    let n = reliability::size(12, 24);
    let text = |i: usize| format!("workbook {i} ").repeat(40);
    let expected: BTreeMap<String, Vec<u8>> =
        (0..n).map(|i| (format!("Default/Top/Book {i:03}.twbx"), text(i).into_bytes())).collect();
    let moto = Moto::get().clients().await;
    for (scenario, rule) in deaths() {
        let tableau = TableauServer::start(&one_site_world(n, text)).await;
        let proxy = FaultProxy::start(&Moto::get().endpoint, rule).await;
        let stack = stack_with_clients("unused.toml", proxy.clients().await).await;
        let target = unique("tableau-dst");
        create_bucket(&moto.s3, &target).await;
        let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
        moto.s3.put_bucket_versioning().bucket(&target).versioning_configuration(enabled).send().await.unwrap();
        let job = json!({"name": JOB, "kind": "tableau",
            "source": {"server": tableau.url, "api_version": "3.19", "token_name": "backline",
                       "token_secret": format!("env:{}", token_env())},
            "target": {"bucket": target}});
        let planned = plan(&stack, json!({"job": job, "time": chrono::Utc::now()})).await;
        let run_id = planned["runs"][0]["run_id"].as_str().expect("a run").to_string();
        let records = as_records(&drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await);
        assert_eq!(records.len(), 1, "{scenario}: one chunk");

        worker_dies_at_the_stall(&stack.engine, &records, &proxy, scenario).await;
        deliver_again_and_finalize(&stack, moto.clone(), &records, &run_id, scenario).await;
        each_stored_once(&target, "Default/", &expected, scenario, "tableau (Lambda)").await;
        let manifest = manifest_of(&moto.s3, &[&target], &run_id).await;
        let stored: Vec<&str> = manifest
            .tasks
            .iter()
            .filter(|t| t.status == Status::Ok)
            .filter_map(|t| t.target_key.as_deref())
            .filter(|k| k.starts_with("Default/"))
            .collect();
        assert_eq!(stored.len(), n, "{scenario}: every workbook reported stored: {:#?}", manifest.tasks);
        assert_eq!((manifest.status.as_str(), manifest.counts.failed), ("succeeded", 0), "{scenario}");
    }
}

/// Where a restore's worker dies: the proxy (`true`: the one before Tableau, `false`: before
/// moto) and the request it holds.
fn restore_deaths() -> Vec<(&'static str, bool, Value)> {
    // The third publish: two workbooks are on the server when the worker dies.
    let publish_stall = json!([{"name": "worker-dies", "fault": "stall", "nth": [3], "method": "POST",
                                "path": "/sites/[^/]+/workbooks$", "seconds": 20}]);
    vec![
        ("a tableau restore worker dies mid-publish", true, publish_stall),
        (
            "a tableau restore worker dies after its work, before recording it",
            false,
            stall(&["PutObject"], "/outcomes/", 1),
        ),
        (
            "a tableau restore worker dies after recording, before the ledger write",
            false,
            stall(&["TransactWriteItems"], "", 1),
        ),
    ]
}

#[tokio::test]
async fn a_tableau_restore_worker_that_dies_at_its_deadline_publishes_each_workbook_once() {
    let n = reliability::size(6, 12);
    let text = |i: usize| format!("workbook {i} ").repeat(40);
    let moto = Moto::get().clients().await;
    for (hour, (scenario, at_tableau, rule)) in restore_deaths().into_iter().enumerate() {
        let tableau = TableauServer::start(&one_site_world(n, text)).await;
        let (tableau_proxy, s3_proxy) = (
            FaultProxy::start(&tableau.url, json!([])).await,
            FaultProxy::start(&Moto::get().endpoint, json!([])).await,
        );
        let bucket = unique("tableau-bak");
        create_bucket(&moto.s3, &bucket).await;
        let config = std::env::temp_dir().join(format!("{}.toml", unique("tableau-jobs")));
        let text_of_job = format!(
            "[[jobs]]\nname = \"{JOB}\"\nkind = \"tableau\"\n[jobs.source]\nserver = \"{}\"\napi_version = \"3.19\"\n\
             token_name = \"backline\"\ntoken_secret = \"env:{}\"\n[jobs.target]\nbucket = \"{bucket}\"\n",
            tableau_proxy.url,
            token_env()
        );
        std::fs::write(&config, text_of_job).unwrap();
        let stack = stack_with_clients(&config.display().to_string(), s3_proxy.clients().await).await;
        plan(&stack, json!({"job": JOB, "time": format!("2026-11-23T{:02}:00:00Z", hour + 1)})).await;
        assert_eq!(drive(&stack).await, 1, "{scenario}: the backup finished");

        let proxy = if at_tableau { &tableau_proxy } else { &s3_proxy };
        proxy.post("reset", &json!({"rules": rule, "seed": 7})).await;
        let request = json!({"restore": {"job": JOB, "site": "Default", "to_project": "Restored", "poll_interval": "1s"},
                             "time": format!("2026-11-23T{:02}:30:00Z", hour + 1)});
        let planned = plan(&stack, request).await;
        let run_id = planned["runs"][0]["run_id"].as_str().expect("a run").to_string();
        let records = deliver_until_one_dies(&stack, proxy, scenario).await;
        let again =
            backline_worker::handler(&stack.deployment.engine(moto.clone()), sqs_event(&records)).await.unwrap();
        assert!(again.batch_item_failures.is_empty(), "{scenario}: {:?}", failed_ids(&again));
        let mut rounds = 0;
        while drive(&stack).await == 0 {
            rounds += 1;
            assert!(rounds <= 30, "{scenario}: the restore did not finish");
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }

        let published = published_under(&tableau.state().await, "Restored");
        let lost = (0..n)
            .filter(|i| {
                published.get(&format!("Book {i:03}")).is_none_or(|shas| !shas.contains(&sha256(text(*i).as_bytes())))
            })
            .count();
        let duplicates = published.values().filter(|shas| shas.len() > 1).count();
        reliability::record(&Figures::of_one_run(scenario, "tableau-restore (Lambda)", n, 1, lost, duplicates));
        assert_eq!((lost, duplicates), (0, 0), "{scenario}: published {published:?}");
        let progress = stack.engine.ledger.progress(&run_id).await.unwrap().expect("the run is in the ledger");
        assert_eq!(Some(progress.done), progress.expected, "{scenario}: every delivery counted once");
        let manifest = manifest_of(&moto.s3, &[&bucket], &run_id).await;
        let restored = manifest.tasks.iter().filter(|t| t.status == Status::Ok).count();
        assert_eq!((restored, manifest.status.as_str()), (n, "succeeded"), "{scenario}: {:#?}", manifest.tasks);
    }
}
