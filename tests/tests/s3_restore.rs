//! Restore (current, point in time, from Deep Archive) and verify, against moto_server.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backline::aws::AwsClients;
use backline::model::{Action, Status};
use backline::pipeline::{EngineError, NoProgress, Progress, local};
use backline::sources::s3::verify::verify;
use backline::store::Manifest;
use backline::{Config, Job};
use backline_tests::{
    Moto, TestObject, body, create_bucket, keys, put, set_transition, source_and_target, tags, unique,
};

fn backup_job(source: &str, target: &str, extra_target: &str) -> Job {
    let text = format!(
        "[[jobs]]\nname = \"b\"\nkind = \"s3\"\n[jobs.source]\nbucket = \"{source}\"\n[jobs.target]\nbucket = \"{target}\"\n{extra_target}\n"
    );
    Config::parse(&text, backline::config::Format::Toml, "test.toml").expect("valid job").jobs.remove(0)
}

/// The options of a restore, as a planner request gives them.
fn options(to_bucket: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut value = serde_json::json!({ "to_bucket": to_bucket, "poll_interval": "1s" });
    value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    value
}

fn restore_job(backup: &Job, options: serde_json::Value) -> Job {
    backup.spec.restore_job(backup, options).expect("s3 jobs restore").expect("valid options")
}

async fn run_with(clients: &AwsClients, job: &Job, progress: Arc<dyn Progress>) -> Result<Manifest, EngineError> {
    let run = local::run(clients.clone(), job, chrono::Utc::now(), false, progress).await?;
    Ok(run.manifest.expect("a manifest"))
}

async fn run(clients: &AwsClients, job: &Job) -> Manifest {
    run_with(clients, job, Arc::new(NoProgress)).await.expect("run")
}

async fn restore(clients: &AwsClients, backup: &Job, options: serde_json::Value) -> Result<Manifest, EngineError> {
    run_with(clients, &restore_job(backup, options), Arc::new(NoProgress)).await
}

fn outcome<'a>(manifest: &'a Manifest, key: &str) -> &'a backline::model::Outcome {
    manifest.tasks.iter().find(|o| o.key.ends_with(key)).unwrap_or_else(|| panic!("{key} in {:#?}", manifest.tasks))
}

#[tokio::test]
async fn restore_skips_deleted_objects_and_the_control_prefix_unless_asked() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    let job = backup_job(&source, &target, "");
    put(&clients.s3, &source, &TestObject::new("live/a.txt", "a")).await;
    put(
        &clients.s3,
        &source,
        &TestObject { tags: vec![("own".into(), "b".into())], ..TestObject::new("gone/b.txt", "b") },
    )
    .await;
    run(&clients, &job).await;
    clients.s3.delete_object().bucket(&source).key("gone/b.txt").send().await.unwrap();
    assert_eq!(run(&clients, &job).await.counts.tagged_deleted, 1);

    let to = unique("restored");
    let manifest = restore(&clients, &job, options(&to, serde_json::json!({}))).await.unwrap();
    assert_eq!(manifest.status, "succeeded");
    assert_eq!(keys(&clients.s3, &to, "").await, vec!["live/a.txt".to_string()], "no deleted object, no _backline/");
    assert_eq!(body(&clients.s3, &to, "live/a.txt").await, b"a");
    let skipped = outcome(&manifest, "gone/b.txt");
    assert_eq!(skipped.status, Status::Skipped);
    assert!(skipped.detail.as_deref().unwrap().contains("--include-deleted"), "{skipped:?}");

    let to = unique("restored");
    let manifest = restore(&clients, &job, options(&to, serde_json::json!({"include_deleted": true}))).await.unwrap();
    assert_eq!(manifest.counts.copied, 2);
    assert_eq!(body(&clients.s3, &to, "gone/b.txt").await, b"b");
    assert_eq!(tags(&clients.s3, &to, "gone/b.txt").await, vec![("own".into(), "b".into())], "deletion marks dropped");

    let to = unique("restored");
    let manifest =
        restore(&clients, &job, options(&to, serde_json::json!({"prefix": "gone/", "include_deleted": true})))
            .await
            .unwrap();
    assert_eq!(keys(&clients.s3, &to, "").await, vec!["gone/b.txt".to_string()]);
    assert_eq!(manifest.counts.copied, 1);
}

#[tokio::test]
async fn as_of_restores_what_a_past_run_left() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    clients
        .s3
        .put_bucket_versioning()
        .bucket(&target)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .unwrap();
    let job = backup_job(&source, &target, "");
    put(&clients.s3, &source, &TestObject::new("changed.txt", "version one")).await;
    put(&clients.s3, &source, &TestObject::new("deleted.txt", "still here")).await;
    let first = run(&clients, &job).await;
    put(&clients.s3, &source, &TestObject::new("changed.txt", "version two!")).await;
    clients.s3.delete_object().bucket(&source).key("deleted.txt").send().await.unwrap();
    let second = run(&clients, &job).await;
    assert_eq!((second.counts.copied, second.counts.tagged_deleted), (1, 1));

    let to = unique("asof");
    let manifest = restore(&clients, &job, options(&to, serde_json::json!({"as_of": first.run_id}))).await.unwrap();
    assert_eq!(manifest.counts.copied, 2, "{:#?}", manifest.tasks);
    assert_eq!(body(&clients.s3, &to, "changed.txt").await, b"version one");
    assert_eq!(body(&clients.s3, &to, "deleted.txt").await, b"still here");

    // A time picks the last run finished by then: the second.
    let to = unique("asof");
    let now = chrono::Utc::now().to_rfc3339();
    restore(&clients, &job, options(&to, serde_json::json!({"as_of": now}))).await.unwrap();
    assert_eq!(body(&clients.s3, &to, "changed.txt").await, b"version two!");
    assert_eq!(keys(&clients.s3, &to, "").await, vec!["changed.txt".to_string()]);

    let err = restore(&clients, &job, options(&unique("asof"), serde_json::json!({"as_of": "last tuesday"})))
        .await
        .expect_err("not a run or a time");
    assert!(err.is_input_error() && err.to_string().contains(&second.run_id), "{err}");
}

/// Counts the tasks that went to wait for a retrieval.
#[derive(Default)]
struct Waits(AtomicI64, AtomicI64);

impl Progress for Waits {
    fn waiting(&self, delta: i64) {
        self.0.fetch_add(delta.max(0), Ordering::SeqCst);
        self.1.fetch_add(delta, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn deep_archive_objects_are_retrieved_then_copied() {
    let moto = Moto::get();
    let clients = moto.clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    let job = backup_job(&source, &target, "storage_class = \"DEEP_ARCHIVE\"");
    for i in 0..3 {
        put(&clients.s3, &source, &TestObject::new(format!("scan-{i}.tif"), format!("scan {i}"))).await;
    }
    run(&clients, &job).await;
    let head = clients.s3.head_object().bucket(&target).key("scan-0.tif").send().await.unwrap();
    assert_eq!(head.storage_class().map(|c| c.as_str()), Some("DEEP_ARCHIVE"));

    // Each retrieval reports "in progress" until the object has been looked at once more.
    set_transition(moto, "s3::keyrestore", Some(1));
    let to = unique("thawed");
    let waits = Arc::new(Waits::default());
    let restore_job = restore_job(&job, options(&to, serde_json::json!({"tier": "Expedited"})));
    let manifest = run_with(&clients, &restore_job, waits.clone()).await.unwrap();
    assert_eq!(manifest.counts.copied, 3, "{:#?}", manifest.tasks);
    assert_eq!(waits.0.load(Ordering::SeqCst), 3, "each object waited for its retrieval");
    assert_eq!(waits.1.load(Ordering::SeqCst), 0, "and none is waiting now");
    for i in 0..3 {
        assert_eq!(body(&clients.s3, &to, &format!("scan-{i}.tif")).await, format!("scan {i}").into_bytes());
    }
    let detail = outcome(&manifest, "scan-0.tif").detail.clone().unwrap_or_default();
    assert!(detail.contains("no Expedited"), "{detail}");
    let backup_head = clients.s3.head_object().bucket(&target).key("scan-1.tif").send().await.unwrap();
    assert!(backup_head.restore().is_some(), "RestoreObject was issued");
}

#[tokio::test]
async fn restore_is_safe_to_repeat_and_never_overwrites_unasked() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    let job = backup_job(&source, &target, "");
    put(&clients.s3, &source, &TestObject::new("x.txt", "x")).await;
    put(&clients.s3, &source, &TestObject::new("y.txt", "y")).await;
    run(&clients, &job).await;

    let busy = unique("busy");
    create_bucket(&clients.s3, &busy).await;
    put(&clients.s3, &busy, &TestObject::new("other.txt", "o")).await;
    let err = restore(&clients, &job, options(&busy, serde_json::json!({}))).await.expect_err("refused");
    assert!(err.is_input_error() && err.to_string().contains("--allow-existing"), "{err}");

    let to = unique("again");
    assert_eq!(restore(&clients, &job, options(&to, serde_json::json!({}))).await.unwrap().counts.copied, 2);
    let again = restore(&clients, &job, options(&to, serde_json::json!({"allow_existing": true}))).await.unwrap();
    assert_eq!((again.counts.copied, again.counts.skipped, again.counts.failed), (0, 2, 0), "nothing new");

    put(&clients.s3, &to, &TestObject::new("x.txt", "edited after the restore")).await;
    let refused = restore(&clients, &job, options(&to, serde_json::json!({"allow_existing": true}))).await.unwrap();
    assert_eq!(refused.counts.failed, 1);
    assert!(outcome(&refused, "x.txt").detail.as_deref().unwrap().contains("--overwrite"));
    assert_eq!(body(&clients.s3, &to, "x.txt").await, b"edited after the restore");
    let forced = restore(&clients, &job, options(&to, serde_json::json!({"allow_existing": true, "overwrite": true})))
        .await
        .unwrap();
    assert_eq!(forced.counts.copied, 1);
    assert_eq!(body(&clients.s3, &to, "x.txt").await, b"x");
}

#[tokio::test]
async fn verify_finds_drift_and_passes_a_clean_backup() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    let job = backup_job(&source, &target, "");
    let spec = job.spec.get::<backline::sources::s3::S3Job>().expect("an s3 job");
    for key in ["a.txt", "b.txt", "c.txt"] {
        put(&clients.s3, &source, &TestObject::new(key, key)).await;
    }
    let manifest = run(&clients, &job).await;
    assert!(
        manifest.tasks.iter().filter(|o| o.action == Action::Copy).all(|o| o.checksum.is_some()),
        "{:#?}",
        manifest.tasks
    );
    for deep in [false, true] {
        let drift = verify(&clients.s3, &job, spec, deep).await.unwrap();
        assert!(drift.is_clean(), "{drift:#?}");
        assert_eq!(drift.matched, 3);
    }

    // Changed behind the backup's back, same size; one deleted at the source and not yet marked.
    put(&clients.s3, &target, &TestObject::new("a.txt", "A.txt")).await;
    clients.s3.delete_object().bucket(&source).key("c.txt").send().await.unwrap();
    put(&clients.s3, &source, &TestObject::new("new.txt", "new")).await;
    let drift = verify(&clients.s3, &job, spec, false).await.unwrap();
    assert!(!drift.is_clean());
    assert_eq!(drift.different.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), vec!["a.txt"]);
    assert_eq!(drift.missing, vec!["new.txt".to_string()]);
    assert_eq!(drift.stale, vec!["c.txt".to_string()]);
    assert!(drift.report("b", false).contains("DRIFT"));

    // A run repairs it; the deleted object is then tagged, not stale.
    run(&clients, &job).await;
    put(&clients.s3, &source, &TestObject::new("a.txt", "a.tx!")).await;
    run(&clients, &job).await;
    let drift = verify(&clients.s3, &job, spec, true).await.unwrap();
    assert!(drift.is_clean(), "{drift:#?}");
}
