//! S3 backup end to end through the in-process pipeline, against moto_server.

use std::sync::Arc;

use aws_sdk_s3::types::StorageClass;
use backline::aws::AwsClients;
use backline::model::{Action, Status};
use backline::pipeline::{EngineError, NoProgress, local};
use backline::store::Manifest;
use backline::{Config, Job};
use backline_tests::{Moto, TestObject, body, create_bucket, put, source_and_target, tags, unique};

fn job(source: &str, target: &str, extra_target: &str) -> Job {
    let text = format!(
        "[[jobs]]\nname = \"t\"\nkind = \"s3\"\n[jobs.source]\nbucket = \"{source}\"\n[jobs.target]\nbucket = \"{target}\"\n{extra_target}\n"
    );
    Config::parse(&text, backline::config::Format::Toml, "test.toml").expect("valid job").jobs.remove(0)
}

async fn run(clients: &AwsClients, job: &Job) -> Manifest {
    let run = local::run(clients.clone(), job, chrono::Utc::now(), false, Arc::new(NoProgress)).await.expect("run");
    run.manifest.expect("a manifest")
}

fn odd_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "plain.txt",
        "with space/and+plus.txt",
        "percent%20literal%2F.bin",
        "ünïcödé/日本語/ファイル.txt",
        "quote's & ampersand=equals?query#hash.txt",
        "trailing space ",
        "~tilde/!bang/(paren)/[bracket]/{brace}",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    keys.push(format!("{}leaf", "deep/".repeat(150)));
    keys.push(format!("long/{}", "k".repeat(1024 - 5)));
    keys
}

#[tokio::test]
async fn keys_of_every_shape_are_copied_with_their_attributes() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    let keys = odd_keys();
    assert_eq!(keys.last().unwrap().len(), 1024);
    for key in &keys {
        put(&clients.s3, &source, &TestObject::new(key.clone(), format!("body of {key}"))).await;
    }
    let dressed = TestObject {
        metadata: vec![("owner".into(), "ops team".into()), ("checksum".into(), "abc123".into())],
        tags: vec![("team".into(), "ops".into()), ("class".into(), "a b+c".into())],
        content_type: Some("image/jpeg".into()),
        content_encoding: Some("gzip".into()),
        content_disposition: Some("attachment; filename=\"p.jpg\"".into()),
        cache_control: Some("max-age=60".into()),
        ..TestObject::new("dressed/photo.jpg", vec![7u8; 2048])
    };
    put(&clients.s3, &source, &dressed).await;

    let manifest = run(&clients, &job(&source, &target, "")).await;
    assert_eq!(manifest.status, "succeeded", "{:#?}", manifest.tasks);
    assert_eq!(manifest.counts.copied, keys.len() as u64 + 1);
    for key in &keys {
        assert_eq!(body(&clients.s3, &target, key).await, format!("body of {key}").into_bytes(), "{key}");
    }
    let head = clients.s3.head_object().bucket(&target).key("dressed/photo.jpg").send().await.unwrap();
    assert_eq!(head.metadata().unwrap().get("owner").map(String::as_str), Some("ops team"));
    assert_eq!(head.content_type(), Some("image/jpeg"));
    assert_eq!(head.content_encoding(), Some("gzip"));
    assert_eq!(head.content_disposition(), Some("attachment; filename=\"p.jpg\""));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    let mut want = dressed.tags.clone();
    want.sort();
    assert_eq!(tags(&clients.s3, &target, "dressed/photo.jpg").await, want);
}

#[tokio::test]
async fn large_objects_are_copied_by_parts_with_metadata_and_tags() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    // 17 MiB with 16 MiB parts: two parts, the second short.
    let content: Vec<u8> = (0..(17u32 << 20)).map(|i| (i % 251) as u8).collect();
    let object = TestObject {
        metadata: vec![("origin".into(), "camera-7".into())],
        tags: vec![("keep".into(), "forever".into())],
        content_type: Some("video/mp4".into()),
        cache_control: Some("no-cache".into()),
        ..TestObject::new("videos/big one.mp4", content.clone())
    };
    put(&clients.s3, &source, &object).await;
    put(&clients.s3, &source, &TestObject::new("small.txt", "tiny")).await;

    let manifest = run(&clients, &job(&source, &target, "multipart_threshold = \"5 MiB\"")).await;
    assert_eq!(manifest.status, "succeeded", "{:#?}", manifest.tasks);
    let big = manifest.tasks.iter().find(|o| o.key == "videos/big one.mp4").unwrap();
    assert_eq!(big.method.as_deref(), Some("multipart"));
    assert_eq!(big.bytes, 17 << 20);
    let small = manifest.tasks.iter().find(|o| o.key == "small.txt").unwrap();
    assert_eq!(small.method.as_deref(), Some("copy"));

    assert!(body(&clients.s3, &target, "videos/big one.mp4").await == content, "multipart copy differs");
    let head = clients.s3.head_object().bucket(&target).key("videos/big one.mp4").send().await.unwrap();
    assert_eq!(head.metadata().unwrap().get("origin").map(String::as_str), Some("camera-7"));
    assert_eq!(head.content_type(), Some("video/mp4"));
    assert_eq!(head.cache_control(), Some("no-cache"));
    assert_eq!(tags(&clients.s3, &target, "videos/big one.mp4").await, vec![("keep".into(), "forever".into())]);
}

#[tokio::test]
async fn incremental_runs_copy_changes_and_tag_deletions() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    let job = job(&source, &target, "");
    for name in ["keep", "change", "delete"] {
        let object =
            TestObject { tags: vec![("own".into(), name.into())], ..TestObject::new(format!("{name}.txt"), name) };
        put(&clients.s3, &source, &object).await;
    }
    assert_eq!(run(&clients, &job).await.counts.copied, 3);

    let second = run(&clients, &job).await;
    assert_eq!((second.counts.tasks, second.counts.copied), (0, 0), "nothing changed, nothing copied");

    put(&clients.s3, &source, &TestObject::new("change.txt", "changed content")).await;
    clients.s3.delete_object().bucket(&source).key("delete.txt").send().await.unwrap();
    let third = run(&clients, &job).await;
    assert_eq!(third.counts.copied, 1);
    assert_eq!(third.counts.tagged_deleted, 1);
    assert_eq!(body(&clients.s3, &target, "change.txt").await, b"changed content");
    // Never deleted from the backup: tagged, with its own tags kept.
    let deleted_tags = tags(&clients.s3, &target, "delete.txt").await;
    assert_eq!(body(&clients.s3, &target, "delete.txt").await, b"delete");
    assert!(deleted_tags.contains(&("own".into(), "delete".into())), "{deleted_tags:?}");
    assert!(deleted_tags.contains(&("Deleted".into(), "True".into())), "{deleted_tags:?}");
    let deleted_at = deleted_tags.iter().find(|(k, _)| k == "DeletedAt").expect("DeletedAt").1.clone();
    assert!(chrono::NaiveDateTime::parse_from_str(&deleted_at, "%Y-%m-%dT%H:%M").is_ok(), "{deleted_at}");

    // Marked once: the next run has nothing to do.
    assert_eq!(run(&clients, &job).await.counts.tasks, 0);

    // The key comes back: copied again, and the tags are the source's.
    let back =
        TestObject { tags: vec![("own".into(), "reborn".into())], ..TestObject::new("delete.txt", "back again") };
    put(&clients.s3, &source, &back).await;
    let fifth = run(&clients, &job).await;
    assert_eq!(fifth.counts.copied, 1);
    assert_eq!(body(&clients.s3, &target, "delete.txt").await, b"back again");
    assert_eq!(tags(&clients.s3, &target, "delete.txt").await, vec![("own".into(), "reborn".into())]);
}

#[tokio::test]
async fn deletions_of_untagged_copies_are_marked_without_reading_their_tags() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    let job = job(&source, &target, "copy_tags = false");
    for i in 0..4 {
        put(&clients.s3, &source, &TestObject::new(format!("k{i}"), "x")).await;
    }
    assert_eq!(run(&clients, &job).await.counts.copied, 4);
    for i in 0..2 {
        clients.s3.delete_object().bucket(&source).key(format!("k{i}")).send().await.unwrap();
    }
    // Counted at a proxy that injects nothing: what the run asked S3 for.
    let proxy = backline_tests::faults::FaultProxy::start(&Moto::get().endpoint, serde_json::json!([])).await;
    let marked = run(&proxy.clients().await, &job).await;
    assert_eq!(marked.counts.tagged_deleted, 2);
    let requests = proxy.stats().await["requests"].clone();
    assert_eq!(requests["PutObjectTagging"], 2, "{requests}");
    assert!(requests.get("GetObjectTagging").is_none(), "the state knew the copies had no tags: {requests}");
    assert_eq!(tags(&clients.s3, &target, "k0").await.len(), 2, "Deleted and DeletedAt");

    // An object gone from the backup too is reported, not failed.
    clients.s3.delete_object().bucket(&target).key("k2").send().await.unwrap();
    clients.s3.delete_object().bucket(&source).key("k2").send().await.unwrap();
    let gone = run(&clients, &job).await;
    assert_eq!((gone.counts.skipped, gone.counts.failed), (1, 0), "{:?}", gone.tasks);
}

#[tokio::test]
async fn manifest_report_and_state_land_in_the_control_location() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    put(&clients.s3, &source, &TestObject::new("a.txt", "a")).await;
    let manifest = run(&clients, &job(&source, &target, "")).await;
    let dir = format!("_backline/runs/t/{}/", manifest.run_id);
    let stored: Manifest =
        serde_json::from_slice(&body(&clients.s3, &target, &format!("{dir}manifest.json")).await).unwrap();
    assert_eq!(stored.tasks.len(), 1);
    assert_eq!(stored.tasks[0].etag.as_deref(), Some(manifest.tasks[0].etag.as_deref().unwrap()));
    let report = String::from_utf8(body(&clients.s3, &target, &format!("{dir}report.md")).await).unwrap();
    assert!(report.contains(&manifest.run_id) && report.contains("succeeded"), "{report}");
    let state = body(&clients.s3, &target, "_backline/state/t.jsonl").await;
    assert!(String::from_utf8(state).unwrap().contains("\"k\":\"a.txt\""));
}

#[tokio::test]
async fn archived_source_objects_are_skipped_with_the_reason() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    let cold = TestObject { storage_class: Some(StorageClass::DeepArchive), ..TestObject::new("cold.bin", "zzz") };
    put(&clients.s3, &source, &cold).await;
    put(&clients.s3, &source, &TestObject::new("warm.bin", "hot")).await;
    let manifest = run(&clients, &job(&source, &target, "")).await;
    let skipped = manifest.tasks.iter().find(|o| o.key == "cold.bin").unwrap();
    assert_eq!((skipped.action, skipped.status), (Action::Skip, Status::Skipped));
    assert!(skipped.detail.as_deref().unwrap().contains("DEEP_ARCHIVE"), "{skipped:?}");
    assert_eq!(manifest.counts.copied, 1);
    assert_eq!(manifest.status, "succeeded");
}

#[tokio::test]
async fn a_missing_source_bucket_is_an_input_error() {
    let clients = Moto::get().clients().await;
    let target = unique("dst");
    create_bucket(&clients.s3, &target).await;
    let err =
        local::run(clients, &job("no-such-bucket-here", &target, ""), chrono::Utc::now(), false, Arc::new(NoProgress))
            .await
            .err()
            .expect("an error");
    assert!(err.is_input_error(), "{err}");
    assert!(
        matches!(&err, EngineError::Input(m) if m.contains("source bucket `no-such-bucket-here` does not exist")),
        "{err}"
    );
}

#[tokio::test]
async fn a_dead_metrics_endpoint_neither_fails_nor_stalls_a_run() {
    let moto = Moto::get();
    let mut clients = moto.clients().await;
    let dead = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await;
    clients.cloudwatch = AwsClients::from_sdk_config(&dead).cloudwatch;
    let (source, target) = source_and_target(&clients.s3).await;
    put(&clients.s3, &source, &TestObject::new("a.txt", "a")).await;
    let started = std::time::Instant::now();
    let manifest = run(&clients, &job(&source, &target, "")).await;
    assert_eq!(manifest.status, "succeeded");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    put(&clients.s3, &source, &TestObject::new("a.txt", "a")).await;
    let run = local::run(clients.clone(), &job(&source, &target, ""), chrono::Utc::now(), true, Arc::new(NoProgress))
        .await
        .unwrap();
    assert!(run.manifest.is_none());
    assert_eq!((run.plan.to_copy, run.plan.chunks), (1, 1));
    assert!(backline_tests::keys(&clients.s3, &target, "").await.is_empty());
}
