//! Backups and restores through a proxy that fails requests: 5 % answered 503 SlowDown and 1 %
//! reset before they reach the server, and a source replaced between listing and copy. Each
//! run must succeed with the target equal to the source byte for byte, a manifest that tells
//! the truth, and no extra versions in versioned targets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backline::aws::AwsClients;
use backline::model::Status;
use backline::pipeline::{NoProgress, events, local};
use backline::store::Manifest;
use backline::{Config, Job};
use backline_tests::faults::{FaultProxy, unreliable_s3};
use backline_tests::reliability::{self, Figures, compare_versioned};
use backline_tests::{Moto, TestObject, create_bucket, put, unique};
use serde_json::json;

fn job(text: &str) -> Job {
    Config::parse(text, backline::config::Format::Toml, "faults.toml").expect("valid job").jobs.remove(0)
}

async fn run(clients: &AwsClients, job: &Job) -> Manifest {
    let run = local::run(clients.clone(), job, chrono::Utc::now(), false, Arc::new(NoProgress)).await;
    run.unwrap_or_else(|e| panic!("job {}: {e}", job.name)).manifest.expect("a manifest")
}

/// Small bodies, and every 25th one big enough to be copied by parts.
fn bodies(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let body = if i % 25 == 0 { vec![i as u8; 6 << 20] } else { format!("body {i} ").repeat(30).into_bytes() };
            (format!("p{}/k{i:04}", i % 5), body)
        })
        .collect()
}

async fn versioned_bucket(s3: &aws_sdk_s3::Client) -> String {
    let name = unique("dst");
    create_bucket(s3, &name).await;
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(&name).versioning_configuration(enabled).send().await.unwrap();
    name
}

/// The manifest's copies, each with the key and the ETag it says it copied.
fn copied(manifest: &Manifest) -> BTreeMap<String, Option<String>> {
    manifest.tasks.iter().filter(|t| t.status == Status::Ok).map(|t| (t.key.clone(), t.etag.clone())).collect()
}

async fn source_etags(s3: &aws_sdk_s3::Client, bucket: &str, keys: &[String]) -> BTreeMap<String, Option<String>> {
    let mut etags = BTreeMap::new();
    for key in keys {
        let head = s3.head_object().bucket(bucket).key(key).send().await.unwrap();
        etags.insert(key.clone(), head.e_tag().map(str::to_string));
    }
    etags
}

fn record(scenario: &str, kind: &str, items: usize, faults: u64, runs: u64, lost: usize, duplicates: usize) {
    reliability::record(&Figures { runs, ..Figures::of_one_run(scenario, kind, items, faults, lost, duplicates) });
}

#[tokio::test]
async fn s3_backup_and_restore_survive_slowdowns_and_resets() {
    let moto = Moto::get().clients().await;
    let s3 = &moto.s3;
    let source = unique("src");
    create_bucket(s3, &source).await;
    let target = versioned_bucket(s3).await;
    let objects = bodies(reliability::size(60, 400));
    for (key, body) in &objects {
        put(s3, &source, &TestObject::new(key, body.clone())).await;
    }
    let proxy = FaultProxy::start(&Moto::get().endpoint, unreliable_s3()).await;
    let clients = proxy.clients().await;
    let backup = job(&format!(
        "[[jobs]]\nname = \"photos\"\nkind = \"s3\"\n[jobs.source]\nbucket = \"{source}\"\n[jobs.target]\n\
         bucket = \"{target}\"\nprefix = \"backup/\"\nmultipart_threshold = \"5 MiB\"\n"
    ));

    let manifest = run(&clients, &backup).await;
    let again = run(&clients, &backup).await;
    let backup_faults = proxy.faults().await;
    let expected: BTreeMap<String, Vec<u8>> = objects.iter().map(|(k, b)| (format!("backup/{k}"), b.clone())).collect();
    let comparison = compare_versioned(s3, &target, "backup/", &expected, 1).await;
    let keys: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
    let truth = copied(&manifest) == source_etags(s3, &source, &keys).await;
    record(
        "5 % 503 SlowDown, 1 % connection reset",
        "s3",
        objects.len(),
        backup_faults,
        2,
        comparison.lost.len(),
        comparison.duplicates.len(),
    );
    assert!(backup_faults > 0, "the proxy injected nothing: the scenario proves nothing");
    assert_eq!((manifest.status.as_str(), manifest.counts.failed), ("succeeded", 0), "{:?}", manifest.counts);
    assert!(comparison.lost.is_empty() && comparison.duplicates.is_empty(), "{comparison:?}");
    assert!(truth, "the manifest does not list every object with the ETag copied");
    assert_eq!(again.counts.copied, 0, "the second run copies nothing");

    // Restore into a new bucket through the same proxy.
    let restored = unique("restored");
    let restore = events::restore_job(&backup, json!({"to_bucket": restored})).expect("restore job");
    let before = proxy.faults().await;
    let manifest = run(&clients, &restore).await;
    let restore_faults = proxy.faults().await - before;
    let expected: BTreeMap<String, Vec<u8>> = objects.iter().cloned().collect();
    let comparison = compare_versioned(s3, &restored, "", &expected, 1).await;
    record(
        "5 % 503 SlowDown, 1 % connection reset",
        "s3-restore",
        objects.len(),
        restore_faults,
        1,
        comparison.lost.len(),
        comparison.duplicates.len(),
    );
    assert_eq!((manifest.status.as_str(), manifest.counts.copied), ("succeeded", objects.len() as u64));
    assert!(comparison.lost.is_empty(), "{comparison:?}");
}

/// A copy S3 made whose answer never arrived: the connection is reset after the request was
/// forwarded. Sent again as the SDK would, it leaves a second version; Backline looks first.
#[tokio::test]
async fn copies_whose_answers_are_lost_are_not_made_twice() {
    let moto = Moto::get().clients().await;
    let s3 = &moto.s3;
    let source = unique("src");
    create_bucket(s3, &source).await;
    let target = versioned_bucket(s3).await;
    let objects = bodies(reliability::size(100, 400));
    for (key, body) in &objects {
        put(s3, &source, &TestObject::new(key, body.clone())).await;
    }
    let lost_answers = json!([{"name": "answer-lost", "fault": "reset", "rate": 0.05, "when": "after",
                               "operations": ["CopyObject", "CompleteMultipartUpload"]}]);
    let proxy = FaultProxy::start(&Moto::get().endpoint, lost_answers).await;
    let backup = job(&format!(
        "[[jobs]]\nname = \"photos\"\nkind = \"s3\"\n[jobs.source]\nbucket = \"{source}\"\n[jobs.target]\n\
         bucket = \"{target}\"\nmultipart_threshold = \"5 MiB\"\n"
    ));
    let manifest = run(&proxy.clients().await, &backup).await;
    let faults = proxy.faults().await;
    let expected: BTreeMap<String, Vec<u8>> = objects.iter().cloned().collect();
    let comparison = compare_versioned(s3, &target, "", &expected, 1).await;
    record(
        "5 % of copies' answers lost after S3 made them (reset after forwarding)",
        "s3",
        objects.len(),
        faults,
        1,
        comparison.lost.len(),
        comparison.duplicates.len(),
    );
    assert!(faults > 0, "the proxy injected nothing: the scenario proves nothing");
    assert_eq!((manifest.status.as_str(), manifest.counts.copied), ("succeeded", objects.len() as u64));
    assert!(comparison.lost.is_empty() && comparison.duplicates.is_empty(), "{comparison:?}");
}

/// The same for uploads into a folder's (versioned) bucket: PutObject and
/// CompleteMultipartUpload answers lost after S3 stored the file.
#[tokio::test]
async fn uploads_whose_answers_are_lost_are_not_made_twice() {
    let moto = Moto::get().clients().await;
    let folder = std::env::temp_dir().join(unique("lost-answers"));
    let files = bodies(reliability::size(100, 400));
    write_tree(&folder, &files);
    let prefix = unique("fl");
    let lost_answers = json!([{"name": "answer-lost", "fault": "reset", "rate": 0.05, "when": "after",
                               "operations": ["PutObject", "CompleteMultipartUpload"], "path": format!("^/{prefix}")}]);
    let proxy = FaultProxy::start(&Moto::get().endpoint, lost_answers).await;
    let backup = job(&format!(
        "[[jobs]]\nname = \"images\"\nkind = \"filesystem\"\nfolders = [{:?}]\n[jobs.target]\nbucket_prefix = \"{prefix}\"\n\
         storage_class = \"STANDARD\"\nmultipart_threshold = \"5 MiB\"\n",
        folder.display().to_string()
    ));
    let manifest = run(&proxy.clients().await, &backup).await;
    let faults = proxy.faults().await;
    let bucket = backline::sources::filesystem::bucket_name(&prefix, &folder.display().to_string());
    let key_of = |relative: &str| folder.join(relative).display().to_string().trim_start_matches('/').to_string();
    let expected: BTreeMap<String, Vec<u8>> = files.iter().map(|(k, b)| (key_of(k), b.clone())).collect();
    let comparison = compare_versioned(&moto.s3, &bucket, "", &expected, 1).await;
    record(
        "5 % of uploads' answers lost after S3 stored them (reset after forwarding)",
        "filesystem",
        files.len(),
        faults,
        1,
        comparison.lost.len(),
        comparison.duplicates.len(),
    );
    assert!(faults > 0, "the proxy injected nothing: the scenario proves nothing");
    assert_eq!((manifest.status.as_str(), manifest.counts.copied), ("succeeded", files.len() as u64));
    assert!(comparison.lost.is_empty() && comparison.duplicates.is_empty(), "{comparison:?}");
}

fn write_tree(root: &Path, files: &[(String, Vec<u8>)]) {
    for (key, body) in files {
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
}

#[tokio::test]
async fn folder_backup_and_restore_survive_slowdowns_and_resets() {
    let moto = Moto::get().clients().await;
    let folder = std::env::temp_dir().join(unique("faults-folder"));
    let files = bodies(reliability::size(60, 400));
    write_tree(&folder, &files);
    let prefix = unique("ff");
    let proxy = FaultProxy::start(&Moto::get().endpoint, unreliable_s3()).await;
    let clients = proxy.clients().await;
    let backup = job(&format!(
        "[[jobs]]\nname = \"images\"\nkind = \"filesystem\"\nfolders = [{:?}]\n[jobs.target]\nbucket_prefix = \"{prefix}\"\n\
         storage_class = \"STANDARD\"\nmultipart_threshold = \"5 MiB\"\n",
        folder.display().to_string()
    ));
    let manifest = run(&clients, &backup).await;
    let again = run(&clients, &backup).await;
    let faults = proxy.faults().await;
    let bucket = backline::sources::filesystem::bucket_name(&prefix, &folder.display().to_string());
    let key_of = |relative: &str| folder.join(relative).display().to_string().trim_start_matches('/').to_string();
    let expected: BTreeMap<String, Vec<u8>> = files.iter().map(|(k, b)| (key_of(k), b.clone())).collect();
    let comparison = compare_versioned(&moto.s3, &bucket, "", &expected, 1).await;
    let listed: BTreeSet<String> =
        manifest.tasks.iter().filter(|t| t.status == Status::Ok).map(|t| t.key.clone()).collect();
    record(
        "5 % 503 SlowDown, 1 % connection reset",
        "filesystem",
        files.len(),
        faults,
        2,
        comparison.lost.len(),
        comparison.duplicates.len(),
    );
    assert!(faults > 0, "the proxy injected nothing");
    assert_eq!((manifest.status.as_str(), manifest.counts.failed), ("succeeded", 0), "{:?}", manifest.counts);
    assert!(comparison.lost.is_empty() && comparison.duplicates.is_empty(), "{comparison:?}");
    assert_eq!(listed, expected.keys().cloned().collect::<BTreeSet<_>>(), "the manifest lists every file");
    assert_eq!(again.counts.copied, 0, "the second run uploads nothing");

    let to_dir = std::env::temp_dir().join(unique("faults-restored"));
    let restore = events::restore_job(&backup, json!({"to_dir": to_dir.display().to_string()})).expect("restore job");
    let before = proxy.faults().await;
    let manifest = run(&clients, &restore).await;
    let restore_faults = proxy.faults().await - before;
    let lost: Vec<&String> = expected
        .iter()
        .filter(|(key, body)| std::fs::read(to_dir.join(key)).ok().as_ref() != Some(*body))
        .map(|(key, _)| key)
        .collect();
    record(
        "5 % 503 SlowDown, 1 % connection reset",
        "filesystem-restore",
        files.len(),
        restore_faults,
        1,
        lost.len(),
        0,
    );
    assert_eq!(manifest.counts.failed, 0, "{:?}", manifest.counts);
    assert!(lost.is_empty(), "not restored byte for byte: {lost:?}");
}

#[tokio::test]
async fn a_source_replaced_between_listing_and_copy_is_stored_whole_in_its_new_version() {
    let moto = Moto::get().clients().await;
    let s3 = &moto.s3;
    let source = unique("src");
    create_bucket(s3, &source).await;
    let target = versioned_bucket(s3).await;
    let objects = bodies(12);
    for (key, body) in &objects {
        put(s3, &source, &TestObject::new(key, body.clone())).await;
    }
    // The big object's source is replaced just before its UploadPartCopy: parts of the old version
    // must not be completed into the backup.
    let rules = json!([{
        "name": "replace-source", "fault": "replace_source", "operations": ["UploadPartCopy"],
        "nth": [1], "body": "the new version"
    }]);
    let proxy = FaultProxy::start(&Moto::get().endpoint, rules).await;
    let backup = job(&format!(
        "[[jobs]]\nname = \"photos\"\nkind = \"s3\"\nconcurrency = 1\n[jobs.source]\nbucket = \"{source}\"\n[jobs.target]\n\
         bucket = \"{target}\"\nmultipart_threshold = \"5 MiB\"\n"
    ));
    let manifest = run(&proxy.clients().await, &backup).await;
    let stats = proxy.stats().await;

    let keys: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
    let mut now: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for key in &keys {
        now.insert(key.clone(), backline_tests::body(s3, &source, key).await);
    }
    let replaced: Vec<&String> = keys.iter().filter(|k| now[*k] == b"the new version").collect();
    let comparison = compare_versioned(s3, &target, "", &now, 1).await;
    record(
        "source replaced between listing and copy",
        "s3",
        keys.len(),
        replaced.len() as u64,
        1,
        comparison.lost.len(),
        comparison.duplicates.len(),
    );
    assert_eq!(replaced.len(), 1, "one source replaced: {stats}");
    assert!(stats["preconditions_failed"].as_u64().unwrap_or(0) >= 1, "the stale copy was refused: {stats}");
    assert!(comparison.lost.is_empty(), "the backup is not the source's current version: {comparison:?}");
    assert!(comparison.duplicates.is_empty(), "{comparison:?}");
    assert_eq!(copied(&manifest), source_etags(s3, &source, &keys).await, "the manifest records the version copied");
}
