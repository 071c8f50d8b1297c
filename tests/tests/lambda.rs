//! The three Lambda handlers, fed the sample events in `events/` and real SQS and DynamoDB
//! traffic, all against moto_server.

use std::path::PathBuf;

use aws_lambda_events::event::sqs::SqsEvent;
use backline::model::{Chunk, ChunkMessage, RunRef, WorkMessage};
use backline::pipeline::worker;
use backline::sources::s3::S3Task;
use backline::store::Manifest;
use backline_tests::{Moto, TestObject, body, create_bucket, drain, put, source_and_target, tags, unique};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

mod handlers;
use handlers::{Stack, as_records, drive, failed_ids, plan, sqs_event, stack_with_config};

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn event(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn stack() -> Stack {
    stack_with_config(&repo_file("events/jobs.toml").display().to_string()).await
}

fn inline_job(source: &str, target: &str) -> Value {
    json!({"name": "inline", "kind": "s3", "source": {"bucket": source}, "target": {"bucket": target}})
}

#[tokio::test]
async fn the_sample_events_drive_the_handlers() {
    let stack = stack().await;
    let s3 = &stack.clients.s3;
    // The sample events name these buckets; only this test uses them.
    create_bucket(s3, "photos-prod").await;
    create_bucket(s3, "photos-backup").await;
    for key in ["2026/11/IMG 0001.jpg", "2026/11/IMG 0002.jpg"] {
        put(s3, "photos-prod", &TestObject::new(key, "jpeg!")).await;
    }
    put(
        s3,
        "photos-backup",
        &TestObject { tags: vec![("year".into(), "2025".into())], ..TestObject::new("2025/old.jpg", "old") },
    )
    .await;

    let payload: SqsEvent = serde_json::from_value(event("events/worker-sqs.json")).unwrap();
    let response =
        backline_worker::handler(&stack.engine, LambdaEvent::new(payload, Context::default())).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(body(s3, "photos-backup", "2026/11/IMG 0002.jpg").await, b"jpeg!");
    assert!(tags(s3, "photos-backup", "2025/old.jpg").await.contains(&("Deleted".into(), "True".into())));

    let payload: SqsEvent = serde_json::from_value(event("events/finalizer-sqs.json")).unwrap();
    let response =
        backline_finalizer::handler(&stack.engine, LambdaEvent::new(payload, Context::default())).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let manifest: Manifest = serde_json::from_slice(
        &body(s3, "photos-backup", "_backline/runs/photos/photos-20261122T070000Z/manifest.json").await,
    )
    .unwrap();
    assert_eq!((manifest.counts.copied, manifest.counts.tagged_deleted), (2, 1));

    let planned = plan(&stack, event("events/planner-request.json")).await;
    assert_eq!(planned["runs"][0]["run_id"], "photos-20261122T040000Z");
    let planned = plan(&stack, event("events/planner-eventbridge.json")).await;
    assert_eq!(planned["runs"][0]["run_id"], "photos-20261122T030000Z");
    let planned = plan(&stack, event("events/planner-scheduled.json")).await;
    assert_eq!(planned["runs"][0]["run_id"], "photos-20261122T060000Z");
    let planned = plan(&stack, event("events/planner-inline.json")).await;
    assert_eq!(planned["runs"][0]["run_id"], "photos-inline-20261122T050000Z");
    assert_eq!(planned["runs"][0]["dry_run"], true);

    // Three real runs were planned; each finalizes once its chunks are done.
    assert_eq!(drive(&stack).await, 3);
    for run in ["photos-20261122T040000Z", "photos-20261122T030000Z", "photos-20261122T060000Z"] {
        let key = format!("_backline/runs/photos/{run}/report.md");
        assert!(!body(s3, "photos-backup", &key).await.is_empty(), "{key}");
    }

    let planned = plan(&stack, event("events/planner-restore.json")).await;
    assert_eq!(planned["runs"][0]["run_id"], "photos-restore-20261122T120000Z");
    assert_eq!(drive(&stack).await, 1);
    assert_eq!(body(s3, "photos-restored", "2026/11/IMG 0001.jpg").await, b"jpeg!");
}

#[tokio::test]
async fn a_redelivered_chunk_is_copied_once_and_counted_once() {
    let stack = stack().await;
    let s3 = &stack.clients.s3;
    let (source, target) = source_and_target(s3).await;
    put(s3, &source, &TestObject::new("only.txt", "1")).await;

    plan(&stack, json!({"job": inline_job(&source, &target), "time": "2026-11-22T08:00:00Z"})).await;
    let work = drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await;
    assert_eq!(work.len(), 1);
    let records = as_records(&work);

    let first = backline_worker::handler(&stack.engine, sqs_event(&records)).await.unwrap();
    assert!(first.batch_item_failures.is_empty());
    assert_eq!(drain(&stack.clients.sqs, &stack.deployment.finalize_queue_url).await.len(), 1);

    // If the redelivery copied again, the object would reappear.
    s3.delete_object().bucket(&target).key("only.txt").send().await.unwrap();
    let again = worker::handle_body(&stack.engine, &records[0].1).await.unwrap();
    assert_eq!(again, worker::ChunkResult::Duplicate);
    let second = backline_worker::handler(&stack.engine, sqs_event(&records)).await.unwrap();
    assert!(second.batch_item_failures.is_empty());
    assert!(s3.head_object().bucket(&target).key("only.txt").send().await.is_err(), "copied twice");
    assert!(drain(&stack.clients.sqs, &stack.deployment.finalize_queue_url).await.is_empty(), "finalized twice");

    let run = stack
        .clients
        .dynamodb
        .get_item()
        .table_name(&stack.deployment.ledger_table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("inline-20261122T080000Z".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("run".into()))
        .send()
        .await
        .unwrap();
    let done = run.item().unwrap().get("done").unwrap().as_n().unwrap().clone();
    assert_eq!(done, "1", "counted once");
}

#[tokio::test]
async fn a_malformed_record_fails_alone() {
    let stack = stack().await;
    let s3 = &stack.clients.s3;
    let (source, target) = source_and_target(s3).await;
    put(s3, &source, &TestObject::new("x.txt", "x")).await;
    plan(&stack, json!({"job": inline_job(&source, &target), "time": "2026-11-22T09:00:00Z"})).await;
    let mut records = as_records(&drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await);
    records.push(("bad-json".into(), "{not json".into()));
    let current = format!("\"version\":{}", backline::model::WIRE_VERSION);
    let future = records[0].1.replace(&current, "\"version\":99");
    records.push(("bad-version".into(), future));

    let response = backline_worker::handler(&stack.engine, sqs_event(&records)).await.unwrap();
    let mut failed = failed_ids(&response);
    failed.sort();
    assert_eq!(failed, vec!["bad-json".to_string(), "bad-version".to_string()]);
    assert_eq!(body(s3, &target, "x.txt").await, b"x", "the good record still ran");
}

#[tokio::test]
async fn the_same_schedule_event_twice_plans_one_run() {
    let stack = stack().await;
    let s3 = &stack.clients.s3;
    let (source, target) = source_and_target(s3).await;
    put(s3, &source, &TestObject::new("x.txt", "x")).await;
    let envelope = json!({
        "detail-type": "Backline Run", "source": "ops", "time": "2026-11-22T10:00:00Z",
        "detail": {"job": inline_job(&source, &target)}
    });
    let first = plan(&stack, envelope.clone()).await;
    let second = plan(&stack, envelope).await;
    assert_eq!(first["runs"][0]["already_planned"], false);
    assert_eq!(second["runs"][0]["already_planned"], true);
    assert_eq!(first["runs"][0]["run_id"], second["runs"][0]["run_id"]);
    assert_eq!(drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await.len(), 1);
}

#[tokio::test]
async fn a_large_chunk_travels_by_claim_check() {
    let stack = stack().await;
    let target = unique("dst");
    create_bucket(&stack.clients.s3, &target).await;
    let job = backline::Job::from_value(inline_job("any-source", &target)).unwrap();
    let run = RunRef::new(&job, chrono::Utc::now());
    let tasks: Vec<serde_json::Value> = (0..300)
        .map(|i| S3Task::Copy {
            key: format!("{i:04}/{}", "k".repeat(1000)),
            target_key: format!("{i:04}"),
            size: 1,
            etag: "e".into(),
            replace_tags: false,
            copied_since: None,
        })
        .map(|task| serde_json::to_value(task).unwrap())
        .collect();
    let message = ChunkMessage { run, job, chunk: Chunk::new(7, "s3", tasks) };
    stack.engine.queue.send_chunks(vec![message.clone()]).await.unwrap();

    let received = drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await;
    let body = received[0].body().unwrap();
    assert!(body.len() < 4096, "the message carries a key, not the chunk");
    assert!(matches!(serde_json::from_str(body).unwrap(), WorkMessage::ClaimCheck { seq: 7, .. }));
    assert_eq!(worker::read_work_message(&stack.engine, body).await.unwrap(), message);
}

#[tokio::test]
async fn planner_refuses_bad_events_with_the_reason() {
    let stack = stack().await;
    let config = stack.deployment.config.as_deref();
    for (payload, want) in [
        (json!({"job": "nope"}), "job \"nope\" not found"),
        (json!({"jbo": "photos"}), "unknown field `jbo`"),
        (json!({"job": {"name": "x", "kind": "s3", "source": {"bucket": "a-b-c"}}}), "target"),
    ] {
        let err = backline_planner::handler(&stack.engine, config, LambdaEvent::new(payload, Context::default()))
            .await
            .expect_err("an error")
            .to_string();
        assert!(err.contains(want), "{err}");
    }
}

#[tokio::test]
async fn the_job_file_can_live_in_s3() {
    let stack = stack().await;
    let s3 = &stack.clients.s3;
    let (config_bucket, source, target) = (unique("cfg"), unique("src"), unique("dst"));
    for bucket in [&config_bucket, &source, &target] {
        create_bucket(s3, bucket).await;
    }
    put(s3, &source, &TestObject::new("x.txt", "x")).await;
    let jobs = format!(
        "jobs:\n  - name: nightly\n    kind: s3\n    source: {{bucket: {source}}}\n    target: {{bucket: {target}}}\n"
    );
    put(s3, &config_bucket, &TestObject::new("conf/jobs.yaml", jobs)).await;
    let location = format!("s3://{config_bucket}/conf/jobs.yaml");
    let payload = json!({"job": "nightly", "time": "2026-11-22T11:00:00Z", "dry_run": true});
    let response =
        backline_planner::handler(&stack.engine, Some(&location), LambdaEvent::new(payload, Context::default()))
            .await
            .unwrap();
    assert_eq!(response.runs[0].run_id, "nightly-20261122T110000Z");
    assert_eq!(response.runs[0].to_copy, 1);

    let missing = format!("s3://{config_bucket}/conf/absent.toml");
    let err = backline_planner::handler(
        &stack.engine,
        Some(&missing),
        LambdaEvent::new(json!({"job": "x"}), Context::default()),
    )
    .await
    .expect_err("no such job file");
    assert!(err.to_string().contains("absent.toml") && err.to_string().contains("NoSuchKey"), "{err}");
}

#[tokio::test]
async fn a_restore_from_deep_archive_waits_in_the_queue_not_in_a_lambda() {
    let moto = Moto::get();
    let clients = moto.clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    let config = std::env::temp_dir().join(format!("{}.yaml", unique("deep-jobs")));
    std::fs::write(
        &config,
        format!("jobs:\n  - name: deep\n    kind: s3\n    source: {{bucket: {source}}}\n    target: {{bucket: {target}, storage_class: DEEP_ARCHIVE}}\n"),
    )
    .unwrap();
    let stack = stack_with_config(&config.display().to_string()).await;
    for i in 0..2 {
        put(&clients.s3, &source, &TestObject::new(format!("frozen-{i}"), format!("ice {i}"))).await;
    }
    plan(&stack, json!({"job": "deep", "time": "2026-11-22T13:00:00Z"})).await;
    drive(&stack).await;

    backline_tests::set_transition(moto, "s3::keyrestore", Some(1));
    let to = unique("thawed");
    let request =
        json!({"restore": {"job": "deep", "to_bucket": to, "poll_interval": "1s"}, "time": "2026-11-22T14:00:00Z"});
    plan(&stack, request).await;
    let run_id = "deep-restore-20261122T140000Z";

    // First look: retrievals requested, the chunk goes back to the queue with a delay.
    let work = drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await;
    let response = backline_worker::handler(&stack.engine, sqs_event(&as_records(&work))).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let progress = stack.engine.ledger.progress(run_id).await.unwrap().unwrap();
    assert_eq!((progress.waiting, progress.done, progress.expected), (2, 1, Some(2)));
    assert!(drain(&stack.clients.sqs, &stack.deployment.finalize_queue_url).await.is_empty(), "the run stays open");
    assert!(backline_tests::keys(&clients.s3, &to, "").await.is_empty());

    // Each delayed delivery looks again; once retrieved, the objects are copied and the run closes.
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 5, "not restored after {rounds} looks");
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        if drive(&stack).await == 1 {
            break;
        }
        assert_eq!(stack.engine.ledger.progress(run_id).await.unwrap().unwrap().waiting, 2);
    }
    let progress = stack.engine.ledger.progress(run_id).await.unwrap().unwrap();
    assert_eq!((progress.waiting, progress.status.as_str()), (0, "succeeded"));
    assert_eq!(Some(progress.done), progress.expected, "every attempt of the chunk counted once");
    for i in 0..2 {
        assert_eq!(body(&clients.s3, &to, &format!("frozen-{i}")).await, format!("ice {i}").into_bytes());
    }
}

#[tokio::test]
async fn an_account_wide_limit_holds_across_concurrent_workers() {
    use backline::pipeline::slots::Slot;
    let stack = stack().await;
    let ledger = &stack.engine.ledger;
    let hour = std::time::Duration::from_secs(3600);
    let holders: Vec<String> = (0..8).map(|i| format!("export-{i}")).collect();
    let granted = futures::future::join_all(holders.iter().map(|holder| async move {
        let slot = Slot { resource: "quicksight-export#123456789012", limit: 5, holder, lease: hour };
        ledger.acquire_slot(&slot).await.unwrap()
    }))
    .await;
    // At once, never more than the limit. (moto's conditional writes are not atomic under
    // concurrent requests, so it may lose a writer's entry and grant fewer; DynamoDB grants 5.)
    let at_once = granted.iter().filter(|g| **g).count();
    assert!((1..=5).contains(&at_once), "{granted:?}");
    let slot = |holder, lease| Slot { resource: "quicksight-export#123456789012", limit: 5, holder, lease };
    // One after another the rest fill the set to exactly the limit, and no further.
    let mut granted = granted;
    for (holder, got) in holders.iter().zip(granted.iter_mut()) {
        if !*got {
            *got = ledger.acquire_slot(&slot(holder, hour)).await.unwrap();
        }
    }
    assert_eq!(granted.iter().filter(|g| **g).count(), 5, "{granted:?}");
    let holding = holders.iter().zip(&granted).find(|(_, g)| **g).map(|(h, _)| h.as_str()).unwrap();
    let waiting = holders.iter().zip(&granted).find(|(_, g)| !**g).map(|(h, _)| h.as_str()).unwrap();
    assert!(ledger.acquire_slot(&slot(holding, hour)).await.unwrap(), "a holder keeps its slot");
    assert!(!ledger.acquire_slot(&slot(waiting, hour)).await.unwrap(), "still full");
    ledger.release_slot("quicksight-export#123456789012", holding).await.unwrap();
    assert!(ledger.acquire_slot(&slot(waiting, hour)).await.unwrap(), "a released slot is free again");
    assert!(
        ledger
            .acquire_slot(&Slot { resource: "quicksight-export#999999999999", limit: 5, holder: "x", lease: hour })
            .await
            .unwrap(),
        "another account has its own slots"
    );
    // A holder that died keeps its slot only until its lease ends.
    let other = |holder| Slot { resource: "tableau-token#prod", limit: 1, holder, lease: std::time::Duration::ZERO };
    assert!(ledger.acquire_slot(&other("dead-worker")).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(ledger.acquire_slot(&other("next-worker")).await.unwrap(), "the dead holder's lease ended");
}

#[tokio::test]
async fn a_chunk_of_another_kind_is_refused_naming_both() {
    let stack = stack().await;
    let target = unique("dst");
    create_bucket(&stack.clients.s3, &target).await;
    let job = backline::Job::from_value(inline_job("any-source", &target)).unwrap();
    let run = RunRef::new(&job, chrono::Utc::now());
    let upload = json!({"action": "upload", "path": "/etc/hostname", "bucket": target, "key": "etc/hostname", "size": 1, "mtime_ns": 0});
    let chunk = Chunk::new(0, "filesystem", vec![upload]);
    let body = serde_json::to_string(&WorkMessage::Chunk {
        version: backline::model::WIRE_VERSION,
        message: Box::new(ChunkMessage { run: run.clone(), job: job.clone(), chunk }),
    })
    .unwrap();
    let err = worker::handle_body(&stack.engine, &body).await.unwrap_err().to_string();
    assert!(err.contains("holds filesystem tasks") && err.contains("is a s3 job"), "{err}");

    // Tasks that are not the kind's own are refused too, before any of them runs.
    let chunk = Chunk::new(1, "s3", vec![json!({"action": "upload", "path": "/etc/hostname"})]);
    let message = ChunkMessage { run, job, chunk };
    let err = worker::run_chunk(&stack.engine, &message).await.unwrap_err().to_string();
    assert!(err.contains("not a s3 task"), "{err}");
    assert!(backline_tests::keys(&stack.clients.s3, &target, "").await.iter().all(|k| !k.contains("hostname")));
}

#[tokio::test]
async fn a_tableau_backup_runs_through_the_three_handlers_and_waits_out_a_429_in_the_queue() {
    let stack = stack().await;
    let admin = "5de011f8-5aa9-4d5b-b991-f462c8dd6bb7";
    let books: Vec<Value> = (0..30)
        .map(|i| json!({"id": format!("w{i:02}"), "name": format!("Book {i:02}"), "projectId": "p", "ownerId": admin, "text": format!("book {i}")}))
        .collect();
    let world = json!({
        "credentials": {"pats": {"backline": {"secret": "pat-secret", "user": "admin"}}},
        "sites": [{"id": "site-default", "name": "Default", "contentUrl": "",
                   "users": [{"id": admin, "name": "admin", "siteRole": "SiteAdministratorCreator"}],
                   "projects": [{"id": "p", "name": "Sales", "parentProjectId": null}], "workbooks": books}]
    });
    let server = backline_tests::tableau::TableauServer::start(&world).await;
    server.post("faults", &json!({"throttle": {"count": 1, "retry_after": 1, "path_contains": "/content"}})).await;
    let bucket = unique("tableau");
    create_bucket(&stack.clients.s3, &bucket).await;
    let token_env = backline_tests::tableau::token_env();
    let job = json!({"name": "tableau-lambda", "kind": "tableau",
        "source": {"server": server.url, "api_version": "3.19", "token_name": "backline", "token_secret": format!("env:{token_env}")},
        "target": {"bucket": bucket}});
    let planned = plan(&stack, json!({"job": job, "time": "2026-11-22T15:00:00Z"})).await;
    assert_eq!(planned["runs"][0]["chunks"], 2, "30 workbooks in chunks of 25: {planned}");

    // Both chunks reach the worker at once: one holds the token's session, the other waits in
    // the queue; the throttled download waits there too. No Lambda sleeps.
    let mut rounds = 0;
    while drive(&stack).await == 0 {
        rounds += 1;
        assert!(rounds <= 10, "the run did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    assert!(rounds >= 1, "something waited in the queue");
    let control = backline::config::ControlLocation {
        bucket: backline::config::BucketName::try_from(bucket.clone()).unwrap(),
        prefix: "_backline/".into(),
    };
    let store = backline::store::ControlStore::new(stack.clients.s3.clone(), &control);
    let manifest =
        store.manifest("tableau-lambda", "tableau-lambda-20261122T150000Z").await.unwrap().expect("a manifest");
    assert_eq!((manifest.counts.copied, manifest.counts.failed), (30, 0), "{:#?}", manifest.tasks);
    assert_eq!(body(&stack.clients.s3, &bucket, "Default/Sales/Book 07.twbx").await, b"book 7");
    let state = server.state().await;
    assert_eq!(state["session_conflicts"], 0, "{state}");
}

#[tokio::test]
async fn a_tableau_restore_request_publishes_through_the_handlers() {
    let admin = "5de011f8-5aa9-4d5b-b991-f462c8dd6bb7";
    let world = json!({
        "credentials": {"pats": {"backline": {"secret": "pat-secret", "user": "admin"}}},
        "sites": [{"id": "site-default", "name": "Default", "contentUrl": "",
                   "users": [{"id": admin, "name": "admin", "siteRole": "SiteAdministratorCreator"}],
                   "projects": [{"id": "p", "name": "Sales", "parentProjectId": null}],
                   "workbooks": [{"id": "w1", "name": "Plan", "projectId": "p", "ownerId": admin, "text": "the plan"}]}]
    });
    let server = backline_tests::tableau::TableauServer::start(&world).await;
    let bucket = unique("tableau");
    let token_env = backline_tests::tableau::token_env();
    let config = std::env::temp_dir().join(format!("{}.toml", unique("tableau-jobs")));
    std::fs::write(
        &config,
        format!(
            "[[jobs]]\nname = \"tb\"\nkind = \"tableau\"\n[jobs.source]\nserver = \"{}\"\napi_version = \"3.19\"\ntoken_name = \"backline\"\ntoken_secret = \"env:{token_env}\"\n[jobs.target]\nbucket = \"{bucket}\"\n",
            server.url
        ),
    )
    .unwrap();
    let stack = stack_with_config(&config.display().to_string()).await;
    create_bucket(&stack.clients.s3, &bucket).await;
    plan(&stack, json!({"job": "tb", "time": "2026-11-22T16:00:00Z"})).await;
    assert_eq!(drive(&stack).await, 1, "the backup finished");
    server.delete("workbooks/default/w1").await;

    // The workbook is gone from the server; the restore publishes it back as a job, which a
    // later delivery of the chunk finds finished.
    let request =
        json!({"restore": {"job": "tb", "site": "Default", "poll_interval": "1s"}, "time": "2026-11-22T17:00:00Z"});
    plan(&stack, request).await;
    let mut rounds = 0;
    while drive(&stack).await == 0 {
        rounds += 1;
        assert!(rounds <= 10, "the restore did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    assert!(rounds >= 1, "the publish job was looked at again through the queue");
    let state = server.state().await;
    let published = &state["published"][0];
    assert_eq!((published["name"].as_str(), published["status"].as_str()), (Some("Plan"), Some("done")), "{state}");
}
