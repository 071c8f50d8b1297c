//! An S3 restore on the Lambda path when a worker dies at its deadline: mid-copy, after its
//! copies and before recording them, after recording and before the ledger write. SQS then
//! delivers the chunk again; every object must be restored once (one version in a versioned
//! bucket), the chunk counted once, and the manifest must report every object restored.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backline::model::Status;
use backline_tests::faults::FaultProxy;
use backline_tests::reliability;
use backline_tests::{Moto, TestObject, create_bucket, drain, put, unique};
use serde_json::{Value, json};

mod handlers;
use handlers::{
    as_records, deliver_again_and_finalize, drive, each_stored_once, manifest_of, plan, stack_with_clients, stall,
    worker_dies_at_the_stall,
};

const JOB: &str = "restore-faults";

/// Where the worker dies, and the request the proxy in front of moto holds until it is gone.
fn deaths() -> Vec<(&'static str, Value)> {
    vec![
        ("a restore worker dies mid-copy", stall(&["CopyObject"], "", 5)),
        ("a restore worker dies after its copies, before recording them", stall(&["PutObject"], "/outcomes/", 1)),
        ("a restore worker dies after recording, before the ledger write", stall(&["TransactWriteItems"], "", 1)),
    ]
}

async fn versioned_bucket(s3: &aws_sdk_s3::Client, prefix: &str) -> String {
    let bucket = unique(prefix);
    create_bucket(s3, &bucket).await;
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(&bucket).versioning_configuration(enabled).send().await.unwrap();
    bucket
}

#[tokio::test]
async fn a_restore_worker_that_dies_at_its_deadline_restores_each_object_once() {
    let n = reliability::size(12, 40);
    let moto = Moto::get().clients().await;
    let (source, backup) = (unique("restore-src"), unique("restore-bak"));
    create_bucket(&moto.s3, &source).await;
    create_bucket(&moto.s3, &backup).await;
    let mut expected = BTreeMap::new();
    for i in 0..n {
        let bytes = format!("object {i} ").repeat(20).into_bytes();
        put(&moto.s3, &source, &TestObject::new(format!("k{i:03}"), bytes.clone())).await;
        expected.insert(format!("k{i:03}"), bytes);
    }
    let config = std::env::temp_dir().join(format!("{}.yaml", unique("restore-jobs")));
    let text = format!(
        "jobs:\n  - name: {JOB}\n    kind: s3\n    source: {{bucket: {source}}}\n    target: {{bucket: {backup}}}\n"
    );
    std::fs::write(&config, text).unwrap();
    // The proxy injects nothing until a scenario's rule is set: the backup runs calm.
    let proxy = FaultProxy::start(&Moto::get().endpoint, json!([])).await;
    let stack = stack_with_clients(&config.display().to_string(), proxy.clients().await).await;
    plan(&stack, json!({"job": JOB, "time": "2026-11-23T01:00:00Z"})).await;
    assert_eq!(drive(&stack).await, 1, "the backup finished");

    for (hour, (scenario, rule)) in deaths().into_iter().enumerate() {
        let to = versioned_bucket(&moto.s3, "restored").await;
        proxy.post("reset", &json!({"rules": rule, "seed": 7})).await;
        let time = format!("2026-11-23T{:02}:00:00Z", hour + 2);
        let planned = plan(&stack, json!({"restore": {"job": JOB, "to_bucket": to}, "time": time})).await;
        let run_id = planned["runs"][0]["run_id"].as_str().expect("a run").to_string();
        let records = as_records(&drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await);
        assert_eq!(records.len(), 1, "{scenario}: one chunk");

        worker_dies_at_the_stall(&stack.engine, &records, &proxy, scenario).await;
        deliver_again_and_finalize(&stack, moto.clone(), &records, &run_id, scenario).await;
        each_stored_once(&to, "", &expected, scenario, "s3-restore (Lambda)").await;
        let manifest = manifest_of(&moto.s3, &[&backup, &to], &run_id).await;
        let restored: BTreeSet<&str> =
            manifest.tasks.iter().filter(|t| t.status == Status::Ok).map(|t| t.key.as_str()).collect();
        assert_eq!(restored, expected.keys().map(String::as_str).collect(), "{scenario}: every object reported");
        assert_eq!((manifest.status.as_str(), manifest.counts.failed), ("succeeded", 0), "{scenario}");
    }
}
