//! Folders of files to per-folder versioned buckets, against moto_server and temporary folders.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use backline::aws::AwsClients;
use backline::model::Status;
use backline::pipeline::{EngineOptions, NoProgress, local};
use backline::sources::filesystem::{LIFECYCLE_RULE_ID, bucket_name, key_of};
use backline::store::Manifest;
use backline::{Config, Job};
use backline_tests::{Moto, WebhookListener, temp_folder, unique};

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn prefix() -> String {
    unique("fs").replace('_', "-")
}

fn job(bucket_prefix: &str, folders: &[&Path], roots: &[&Path], extra: &str) -> Job {
    let list =
        |paths: &[&Path]| paths.iter().map(|p| format!("{:?}", p.display().to_string())).collect::<Vec<_>>().join(", ");
    let text = format!(
        "[[jobs]]\nname = \"images\"\nkind = \"filesystem\"\nfolders = [{}]\nroots = [{}]\n[jobs.target]\nbucket_prefix = \"{bucket_prefix}\"\nmultipart_threshold = \"5 MiB\"\n{extra}",
        list(folders),
        list(roots)
    );
    Config::parse(&text, backline::config::Format::Toml, "fs.toml").unwrap_or_else(|e| panic!("{e}")).jobs.remove(0)
}

async fn run(clients: &AwsClients, job: &Job, options: EngineOptions) -> Manifest {
    let run = local::run_with(clients.clone(), job, chrono::Utc::now(), false, Arc::new(NoProgress), options).await;
    run.unwrap_or_else(|e| panic!("run: {e}")).manifest.expect("a manifest")
}

async fn versions(clients: &AwsClients, bucket: &str, key: &str) -> (usize, usize) {
    let output = clients.s3.list_object_versions().bucket(bucket).prefix(key).send().await.unwrap();
    let versions = output.versions().iter().filter(|v| v.key() == Some(key)).count();
    let markers = output.delete_markers().iter().filter(|m| m.key() == Some(key)).count();
    (versions, markers)
}

fn touch_later(path: &Path, content: &[u8]) {
    // A different size, so the change is seen whatever the clock's resolution.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(path, content).unwrap();
}

#[tokio::test]
async fn folders_back_up_incrementally_into_versioned_deep_archive_buckets() {
    let clients = Moto::get().clients().await;
    let base = temp_folder("fs-tree");
    let one = base.join("One Folder");
    let archives = base.join("archives");
    write(&one.join("a.txt"), b"a");
    write(&one.join("sub dir/b é.txt"), b"bb");
    write(&one.join(".hidden"), b"hidden files too");
    let big: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 253) as u8).collect();
    write(&one.join("scans/big.tif"), &big);
    write(&archives.join("2019/x.jpg"), b"x");
    write(&archives.join("2020/y.jpg"), b"y");
    std::os::unix::fs::symlink(base.join("nowhere"), one.join("broken link")).unwrap();
    let fifo = std::ffi::CString::new(one.join("pipe").display().to_string()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);

    let prefix = prefix();
    let job = job(&prefix, &[&one], &[&archives], "");
    let plan = local::run(clients.clone(), &job, chrono::Utc::now(), true, Arc::new(NoProgress)).await.unwrap().plan;
    let buckets: Vec<String> =
        plan.notes.iter().filter_map(|n| n.split(" -> bucket ").nth(1)).map(str::to_string).collect();
    let one_bucket = bucket_name(&prefix, &one.display().to_string());
    assert!(buckets.contains(&one_bucket) && buckets.len() == 3, "{:?}", plan.notes);
    assert_eq!(plan.to_copy, 6);

    let first = run(&clients, &job, EngineOptions::default()).await;
    assert_eq!(first.counts.copied, 6, "{:#?}", first.tasks);
    assert_eq!(first.counts.skipped, 2, "the FIFO and the broken link");
    assert_eq!(first.status, "succeeded");
    let skipped: Vec<&str> =
        first.tasks.iter().filter(|o| o.status == Status::Skipped).filter_map(|o| o.detail.as_deref()).collect();
    assert!(
        skipped.iter().any(|d| d.contains("FIFO")) && skipped.iter().any(|d| d.contains("broken symbolic link")),
        "{skipped:?}"
    );

    // Buckets: versioned, expiring old versions, private, encrypted.
    for bucket in &buckets {
        // (moto's GetBucketVersioning answer does not parse; real version ids show versioning is on.)
        let listed = clients.s3.list_object_versions().bucket(bucket).send().await.unwrap();
        assert!(listed.versions().iter().all(|v| v.version_id().is_some_and(|id| id != "null")), "{bucket}");
        let lifecycle = clients.s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await.unwrap();
        let rule = lifecycle.rules().iter().find(|r| r.id() == Some(LIFECYCLE_RULE_ID)).expect("our rule");
        assert_eq!(rule.noncurrent_version_expiration().and_then(|e| e.noncurrent_days()), Some(180));
        let block = clients.s3.get_public_access_block().bucket(bucket).send().await.unwrap();
        assert_eq!(block.public_access_block_configuration().and_then(|c| c.restrict_public_buckets()), Some(true));
        assert!(clients.s3.get_bucket_encryption().bucket(bucket).send().await.is_ok());
    }
    // Objects: absolute paths as keys, Deep Archive, mtime kept.
    let key = key_of(&one.join("sub dir/b é.txt").display().to_string());
    let head = clients.s3.head_object().bucket(&one_bucket).key(&key).send().await.unwrap();
    assert_eq!(head.storage_class().map(|c| c.as_str()), Some("DEEP_ARCHIVE"));
    assert!(head.metadata().unwrap().get("mtime").is_some_and(|m| m.contains('.')));
    let big_key = key_of(&one.join("scans/big.tif").display().to_string());
    assert_eq!(first.tasks.iter().find(|o| o.key == big_key).unwrap().method.as_deref(), Some("multipart"));

    // Nothing changed: nothing uploaded. Settings of existing buckets are checked, not duplicated.
    let second = run(&clients, &job, EngineOptions::default()).await;
    assert_eq!((second.counts.copied, second.counts.deleted), (0, 0));
    let lifecycle = clients.s3.get_bucket_lifecycle_configuration().bucket(&one_bucket).send().await.unwrap();
    assert_eq!(lifecycle.rules().len(), 1);

    // A touched file is a new version; a deleted one gets a delete marker.
    touch_later(&one.join("a.txt"), b"a, edited");
    std::fs::remove_file(one.join("sub dir/b é.txt")).unwrap();
    let third = run(&clients, &job, EngineOptions::default()).await;
    assert_eq!((third.counts.copied, third.counts.deleted), (1, 1), "{:#?}", third.tasks);
    assert_eq!(versions(&clients, &one_bucket, &key_of(&one.join("a.txt").display().to_string())).await, (2, 0));
    assert_eq!(versions(&clients, &one_bucket, &key).await, (1, 1));

    // The state can be rebuilt from the buckets without uploading again, and cached on disk.
    let control = job.control();
    let state_key = format!("_backline/state/images/{one_bucket}.jsonl");
    clients.s3.delete_object().bucket(control.bucket.as_str()).key(&state_key).send().await.unwrap();
    let reset = run(&clients, &job, EngineOptions { reset_state: true, ..Default::default() }).await;
    assert_eq!((reset.counts.copied, reset.counts.deleted), (0, 0), "{:#?}", reset.tasks);
    let cache = temp_folder("fs-cache");
    let options = EngineOptions { state_cache: Some(cache.clone()), ..Default::default() };
    assert_eq!(run(&clients, &job, options.clone()).await.counts.copied, 0);
    assert!(cache.join(format!("images/{one_bucket}.jsonl")).exists());
    touch_later(&archives.join("2020/y.jpg"), b"y, edited");
    assert_eq!(run(&clients, &job, options).await.counts.copied, 1, "the cached state still sees changes");
}

fn proc_mem_link(dir: &Path) -> PathBuf {
    // Reading /proc/self/mem from offset 0 fails with EIO, even as root: a real unreadable file.
    let link = dir.join("unreadable.bin");
    std::os::unix::fs::symlink("/proc/self/mem", &link).unwrap();
    link
}

#[tokio::test]
async fn a_failed_upload_sends_one_message_per_webhook_and_a_dry_run_none() {
    let clients = Moto::get().clients().await;
    let hooks = WebhookListener::start();
    let folder = temp_folder("fs-fail");
    write(&folder.join("fine.txt"), b"fine");
    let unreadable = proc_mem_link(&folder);
    // The Teams URL is a secret in SSM; the generic one is written out.
    let parameter = format!("/backline/{}/teams", unique("t"));
    clients
        .ssm
        .put_parameter()
        .name(&parameter)
        .value(format!("{}/teams", hooks.url))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let notify = format!("[jobs.notify]\nwebhook = \"{}/hook\"\nteams_webhook = \"ssm:{parameter}\"\n", hooks.url);
    let job = job(&prefix(), &[&folder], &[], &notify);

    local::run(clients.clone(), &job, chrono::Utc::now(), true, Arc::new(NoProgress)).await.unwrap();
    assert!(hooks.received().is_empty(), "a dry run sends nothing");

    let manifest = run(&clients, &job, EngineOptions::default()).await;
    assert_eq!((manifest.status.as_str(), manifest.counts.failed, manifest.counts.copied), ("failed", 1, 1));
    let failed = manifest.tasks.iter().find(|o| o.status == Status::Failed).unwrap();
    assert_eq!(failed.key, key_of(&unreadable.display().to_string()));
    assert!(failed.detail.as_deref().unwrap().contains("cannot read"), "{failed:?}");

    let received = hooks.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let (_, webhook) = received.iter().find(|(path, _)| path == "/hook").expect("the JSON webhook");
    let webhook: serde_json::Value = serde_json::from_str(webhook).unwrap();
    assert_eq!(webhook["status"], "failed");
    assert_eq!(webhook["run_id"], manifest.run_id.as_str());
    assert!(webhook["errors"][0].as_str().unwrap().contains("unreadable.bin"), "{webhook}");
    let (_, teams) = received.iter().find(|(path, _)| path == "/teams").expect("the Teams card");
    let teams: serde_json::Value = serde_json::from_str(teams).unwrap();
    assert_eq!(teams["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    assert!(teams.to_string().contains(&manifest.run_id));
    let bucket = bucket_name(job_prefix(&job), &folder.display().to_string());
    let fine = key_of(&folder.join("fine.txt").display().to_string());
    let head =
        clients.s3.head_object().bucket(&bucket).key(&fine).send().await.expect("the readable file was uploaded");
    assert_eq!(head.content_length(), Some(4));
}

fn job_prefix(job: &Job) -> &str {
    job.spec
        .get::<backline::sources::filesystem::FilesystemJob>()
        .expect("a filesystem job")
        .target
        .bucket_prefix
        .as_str()
}

/// The options of a restore, as a planner request gives them.
fn restore_options(to_dir: &Path, extra: serde_json::Value) -> serde_json::Value {
    let mut value = serde_json::json!({ "to_dir": to_dir.display().to_string(), "poll_interval": "1s" });
    value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    value
}

fn restore_files(backup: &Job, options: serde_json::Value) -> Option<Job> {
    backup.spec.restore_job(backup, options).map(|job| job.expect("valid options"))
}

#[tokio::test]
async fn files_come_back_from_deep_archive_under_a_folder_with_their_mtimes() {
    let moto = Moto::get();
    let clients = moto.clients().await;
    let folder = temp_folder("fs-restore");
    write(&folder.join("a.txt"), b"a");
    write(&folder.join("deep/er/b.txt"), b"b");
    let job = job(&prefix(), &[&folder], &[], "");
    run(&clients, &job, EngineOptions::default()).await;

    backline_tests::set_transition(moto, "s3::keyrestore", Some(1));
    let to = temp_folder("fs-restored");
    let restore = restore_files(&job, restore_options(&to, serde_json::json!({"tier": "Expedited"}))).unwrap();
    let manifest = run(&clients, &restore, EngineOptions::default()).await;
    assert_eq!(manifest.counts.copied, 2, "{:#?}", manifest.tasks);
    let restored_a = to.join(key_of(&folder.join("a.txt").display().to_string()));
    assert_eq!(std::fs::read(&restored_a).unwrap(), b"a");
    assert_eq!(std::fs::read(to.join(key_of(&folder.join("deep/er/b.txt").display().to_string()))).unwrap(), b"b");
    let original = std::fs::metadata(folder.join("a.txt")).unwrap().modified().unwrap();
    assert_eq!(std::fs::metadata(&restored_a).unwrap().modified().unwrap(), original, "mtime restored");
    assert!(manifest.tasks.iter().all(|o| o.detail.as_deref().unwrap_or("").contains("no Expedited")));

    // Again: nothing to do.
    let again = run(&clients, &restore, EngineOptions::default()).await;
    assert_eq!((again.counts.copied, again.counts.skipped), (0, 2));
}

#[tokio::test]
async fn as_of_restores_the_files_of_a_past_run_and_the_deleted_ones() {
    // STANDARD objects: moto's RestoreObject ignores version ids, so old archived versions
    // cannot be retrieved there (S3 retrieves them).
    let clients = Moto::get().clients().await;
    let folder = temp_folder("fs-asof");
    write(&folder.join("a.txt"), b"first a");
    write(&folder.join("gone.txt"), b"soon deleted");
    let job = job(&prefix(), &[&folder], &[], "storage_class = \"STANDARD\"");
    let first = run(&clients, &job, EngineOptions::default()).await;
    touch_later(&folder.join("a.txt"), b"second version of a");
    std::fs::remove_file(folder.join("gone.txt")).unwrap();
    let second = run(&clients, &job, EngineOptions::default()).await;
    assert_eq!((second.counts.copied, second.counts.deleted), (1, 1));

    let older = temp_folder("fs-restored-old");
    let as_of = restore_files(&job, restore_options(&older, serde_json::json!({"as_of": first.run_id}))).unwrap();
    let manifest = run(&clients, &as_of, EngineOptions::default()).await;
    assert_eq!(manifest.counts.copied, 2, "{:#?}", manifest.tasks);
    assert_eq!(std::fs::read(older.join(key_of(&folder.join("a.txt").display().to_string()))).unwrap(), b"first a");
    assert_eq!(
        std::fs::read(older.join(key_of(&folder.join("gone.txt").display().to_string()))).unwrap(),
        b"soon deleted"
    );

    let now = temp_folder("fs-restored-now");
    let current = restore_files(&job, restore_options(&now, serde_json::json!({}))).unwrap();
    let manifest = run(&clients, &current, EngineOptions::default()).await;
    assert_eq!(manifest.counts.copied, 1, "a deleted file is not restored from the current backup");
    assert_eq!(
        std::fs::read(now.join(key_of(&folder.join("a.txt").display().to_string()))).unwrap(),
        b"second version of a"
    );
}

#[tokio::test]
async fn a_file_a_lifecycle_rule_moved_to_deep_archive_is_retrieved_before_download() {
    // The job writes STANDARD; a lifecycle rule later moves the object to DEEP_ARCHIVE. Whether
    // a retrieval is needed is decided from the object, not from the job's storage class.
    let moto = Moto::get();
    let clients = moto.clients().await;
    let folder = temp_folder("fs-lifecycle");
    write(&folder.join("old.txt"), b"archived by a rule");
    let prefix = prefix();
    let job = job(&prefix, &[&folder], &[], "storage_class = \"STANDARD\"");
    run(&clients, &job, EngineOptions::default()).await;
    let bucket = bucket_name(&prefix, &folder.display().to_string());
    let key = key_of(&folder.join("old.txt").display().to_string());
    clients
        .s3
        .copy_object()
        .bucket(&bucket)
        .key(&key)
        .copy_source(format!("{bucket}/{key}"))
        .storage_class(aws_sdk_s3::types::StorageClass::DeepArchive)
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Copy)
        .send()
        .await
        .unwrap();

    backline_tests::set_transition(moto, "s3::keyrestore", Some(1));
    let to = temp_folder("fs-lifecycle-restored");
    let restore = restore_files(&job, restore_options(&to, serde_json::json!({}))).unwrap();
    let manifest =
        tokio::time::timeout(std::time::Duration::from_secs(60), run(&clients, &restore, Default::default()))
            .await
            .expect("the restore finishes: a retrieval was requested");
    assert_eq!(manifest.counts.copied, 1, "{:#?}", manifest.tasks);
    assert_eq!(std::fs::read(to.join(&key)).unwrap(), b"archived by a rule");
    let head = clients.s3.head_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert!(head.restore().is_some(), "RestoreObject was issued for the archived object");
}
