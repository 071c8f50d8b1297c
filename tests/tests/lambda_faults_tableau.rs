//! The `tableau` kind on the Lambda path when a worker dies at its deadline: mid-upload, after
//! its uploads and before recording them, after recording and before the ledger write. SQS then
//! delivers the chunk again; every workbook must end up stored once (one version in a
//! versioned target), the chunk counted once, and the manifest must report every workbook.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backline::model::Status;
use backline::store::ControlStore;
use backline_tests::faults::FaultProxy;
use backline_tests::reliability;
use backline_tests::tableau::{TableauServer, one_site_world, token_env};
use backline_tests::{Moto, create_bucket, drain, unique};
use serde_json::{Value, json};

mod handlers;
use handlers::{
    as_records, deliver_again_and_finalize, each_stored_once, plan, stack_with_clients, stall, worker_dies_at_the_stall,
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
        let control = backline::config::ControlLocation {
            bucket: backline::config::BucketName::try_from(target.clone()).unwrap(),
            prefix: "_backline/".into(),
        };
        let manifest = ControlStore::new(moto.s3.clone(), &control)
            .manifest(JOB, &run_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{scenario}: no manifest"));
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
