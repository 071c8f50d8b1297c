//! Where operations teams look: Sentry events, the Zabbix sender, Slack, and `vault:` secrets,
//! against a Sentry ingestion emulator, a Zabbix trapper emulator, a webhook listener and a real
//! OpenBao dev server. A run with a failed task comes from the QuickSight emulator (an export
//! that keeps failing).

use std::sync::Arc;
use std::time::{Duration, Instant};

use backline::aws::AwsClients;
use backline::pipeline::{EngineOptions, NoProgress, local};
use backline::{Config, Job};
use backline_tests::emulator::Emulator;
use backline_tests::quicksight::QuickSightServer;
use backline_tests::vault::VaultServer;
use backline_tests::{WebhookListener, create_bucket, unique};
use serde_json::{Value, json};

mod handlers;

const ACCOUNT: &str = "111111111111";

fn world() -> Value {
    json!({"accounts": {(ACCOUNT): {"regions": {"us-east-1": {"dashboards": [{"id": "d1"}]}}}}})
}

/// A QuickSight job (assets only: one bundle) with `notify` lines under `[jobs.notify]`.
fn job(bucket: &str, notify: &str) -> Job {
    let text = format!(
        "[[jobs]]\nname = \"qs-notify\"\nkind = \"quicksight\"\nmode = \"assets-only\"\npoll_interval = \"1s\"\n[jobs.source]\naccount_id = \"{ACCOUNT}\"\nregion = \"us-east-1\"\n[jobs.target]\nbucket = \"{bucket}\"\n[jobs.notify]\n{notify}\n"
    );
    Config::parse(&text, backline::config::Format::Toml, "notify.toml").expect("valid job").jobs.remove(0)
}

async fn setup() -> (QuickSightServer, AwsClients, String) {
    let server = QuickSightServer::start(&world()).await;
    let clients = server.clients().await;
    let bucket = unique("qs-notify");
    create_bucket(&clients.s3, &bucket).await;
    (server, clients, bucket)
}

async fn run(clients: &AwsClients, job: &Job) -> Result<backline::store::Manifest, backline::EngineError> {
    let options = EngineOptions::default();
    let run = local::run_with(clients.clone(), job, chrono::Utc::now(), false, Arc::new(NoProgress), options).await?;
    Ok(run.manifest.expect("a manifest"))
}

async fn sentry() -> (Emulator, String) {
    let sentry = Emulator::start("sentry", &json!({"project_id": "42", "public_key": "abc"})).await;
    let dsn = format!("http://abc@127.0.0.1:{}/42", sentry.port);
    (sentry, dsn)
}

async fn zabbix(keys: &[&str]) -> Emulator {
    Emulator::start_with("zabbix", &["--control-port", "0"], &json!({"hosts": {"backup-host": keys}})).await
}

fn env_ref(value: &str) -> String {
    let name = format!("BACKLINE_TEST_{}", unique("n").replace('-', "_"));
    // SAFETY: the variable's name is this test's own; no other thread reads or writes it.
    unsafe { std::env::set_var(&name, value) };
    format!("env:{name}")
}

#[tokio::test]
async fn a_failed_run_is_one_sentry_event_a_slack_message_and_zabbix_items() {
    let (server, clients, bucket) = setup().await;
    server.post("faults", &json!({"fail_next_export": 10})).await;
    let (sentry, dsn) = sentry().await;
    // Zabbix knows every item but the duration: one refused item is logged, nothing more.
    let zabbix = zabbix(&[
        "backline.heartbeat[qs-notify]",
        "backline.exit_code[qs-notify]",
        "backline.copied[qs-notify]",
        "backline.failed[qs-notify]",
    ])
    .await;
    let slack = WebhookListener::start();
    let notify = format!(
        "sentry_dsn = \"{}\"\nsentry_environment = \"test\"\nslack_webhook = \"{}\"\nzabbix = {{ server = \"127.0.0.1:{}\", host = \"backup-host\" }}",
        env_ref(&dsn),
        env_ref(&format!("{}/slack", slack.url)),
        zabbix.port
    );
    let job = job(&bucket, &notify);
    let manifest = run(&clients, &job).await.expect("the run finishes");
    assert_eq!(manifest.counts.failed, 1, "{:#?}", manifest.tasks);

    let events = sentry.get("events").await;
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1, "one event per failed run: {events:#?}");
    let event = &events[0]["event"];
    // The crate leaves out `level` when it is error, Sentry's default for an event.
    assert!(event["level"].is_null() || event["level"] == "error", "{event:#}");
    assert_eq!(event["environment"], "test");
    assert!(event["release"].as_str().unwrap().starts_with("backline@"));
    assert_eq!(event["tags"]["run_id"], manifest.run_id.as_str());
    assert_eq!(event["tags"]["job"], "qs-notify");
    assert_eq!(event["extra"]["counts"]["failed"], 1);
    let crumbs = event["breadcrumbs"]["values"].as_array().unwrap();
    assert_eq!(crumbs[0]["data"]["key"], "dashboards/dashboards", "{crumbs:#?}");
    assert!(crumbs[0]["data"]["error"].as_str().unwrap().contains("export failed"), "{crumbs:#?}");

    let received = zabbix.get("received").await;
    let items: Vec<(String, String, bool)> = received["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (i["key"].as_str().unwrap().into(), i["value"].as_str().unwrap().into(), i["accepted"].as_bool().unwrap())
        })
        .collect();
    let value = |key: &str| items.iter().find(|(k, ..)| k == key).map(|(_, v, _)| v.clone());
    assert!(value("backline.heartbeat[qs-notify]").is_some(), "{items:?}");
    assert_eq!(value("backline.exit_code[qs-notify]").as_deref(), Some("1"));
    assert_eq!(value("backline.failed[qs-notify]").as_deref(), Some("1"));
    assert_eq!(value("backline.copied[qs-notify]").as_deref(), Some("0"));
    assert!(items.iter().any(|(k, _, accepted)| k == "backline.duration[qs-notify]" && !accepted), "{items:?}");
    assert_eq!(received["requests"].as_array().unwrap().len(), 2, "a heartbeat, then the outcome");

    let messages = slack.received();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message: Value = serde_json::from_str(&messages[0].1).unwrap();
    assert!(message["text"].as_str().unwrap().contains(&manifest.run_id), "{message}");
}

#[tokio::test]
async fn a_run_that_cannot_start_is_one_sentry_event_and_exit_code_2_in_zabbix() {
    let (_server, clients, _bucket) = setup().await;
    let (sentry, dsn) = sentry().await;
    let zabbix = zabbix(&[]).await;
    zabbix.post("reset", &json!({"hosts": null})).await;
    let notify = format!(
        "sentry_dsn = \"{dsn}\"\nzabbix = {{ server = \"127.0.0.1:{}\", host = \"backup-host\" }}",
        zabbix.port
    );
    let job = job(&unique("no-such-bucket"), &notify);
    let err = run(&clients, &job).await.expect_err("the bucket does not exist");
    assert_eq!(err.exit_code(), 2, "{err}");
    let events = sentry.get("events").await;
    assert_eq!(events.as_array().unwrap().len(), 1, "{events:#}");
    assert!(events[0]["event"]["message"].as_str().unwrap().contains("could not run"), "{events:#}");
    let received = zabbix.get("received").await;
    let exit = received["items"].as_array().unwrap().iter().find(|i| i["key"] == "backline.exit_code[qs-notify]");
    assert_eq!(exit.map(|i| i["value"].clone()), Some(json!("2")), "{received:#}");
}

#[tokio::test]
async fn dead_and_slow_endpoints_change_neither_the_outcome_nor_the_time_beyond_their_time_out() {
    let (server, clients, bucket) = setup().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let quiet = job(&bucket, "");
    let baseline = run(&clients, &quiet).await.unwrap();
    // The run below fails an export, which QuickSight work retries: its own baseline is the
    // same failure without notifications.
    server.post("faults", &json!({"fail_next_export": 10})).await;
    let started = Instant::now();
    let failing = run(&clients, &quiet).await.unwrap();
    let baseline_time = started.elapsed();
    assert_eq!(failing.counts.failed, 1);

    // Sentry and Slack refuse connections; Zabbix holds the connection 30 s before answering.
    let zabbix = zabbix(&[]).await;
    zabbix.post("settings", &json!({"delay_seconds": 30})).await;
    let notify = format!(
        "sentry_dsn = \"http://abc@127.0.0.1:{closed}/42\"\nslack_webhook = \"http://127.0.0.1:{closed}/slack\"\nzabbix = {{ server = \"127.0.0.1:{}\", host = \"backup-host\" }}",
        zabbix.port
    );
    server.post("faults", &json!({"fail_next_export": 10})).await;
    let started = Instant::now();
    let failed = run(&clients, &job(&bucket, &notify)).await.expect("notifications never fail a run");
    let elapsed = started.elapsed();
    assert_eq!((baseline.counts.failed, failed.counts.failed), (0, 1));
    // Two Zabbix sends (start and end) of at most 5 s each; the refused connections cost nothing.
    let bound = baseline_time + Duration::from_secs(2 * 5 + 8);
    assert!(elapsed < bound, "{elapsed:?} against a baseline of {baseline_time:?}");
}

#[tokio::test]
async fn vault_secrets_resolve_with_approle_and_never_travel_in_queue_messages_or_records() {
    let vault = VaultServer::shared();
    let (server, clients, bucket) = setup().await;
    server.post("faults", &json!({"fail_next_export": 10})).await;
    let slack = WebhookListener::start();
    let secret_path = format!("/hooks/T0-SECRET-{}", unique("s"));
    vault.put_v2("backline/slack", json!({"url": format!("{}{secret_path}", slack.url)})).await;
    let (sentry, dsn) = sentry().await;
    vault.put_v1("backline/sentry", json!({"dsn": dsn})).await;
    let config = std::env::temp_dir().join(format!("{}.toml", unique("vault-jobs")));
    let text = format!(
        "[notify]\nslack_webhook = \"vault:secret/data/backline/slack#url\"\nsentry_dsn = \"vault:kv1/backline/sentry#dsn\"\n\n[[jobs]]\nname = \"qs-vault\"\nkind = \"quicksight\"\nmode = \"assets-only\"\npoll_interval = \"1s\"\n[jobs.source]\naccount_id = \"{ACCOUNT}\"\nregion = \"us-east-1\"\n[jobs.target]\nbucket = \"{bucket}\"\n"
    );
    std::fs::write(&config, text).unwrap();
    let stack = handlers::stack_with_clients(&config.display().to_string(), clients.clone()).await;
    handlers::plan(&stack, json!({"job": "qs-vault", "time": "2026-11-23T05:00:00Z"})).await;

    // Every message on both queues is read before it is handled: none holds a secret.
    let secret = secret_path.trim_start_matches("/hooks/").to_string();
    let clean = |body: &str| !body.contains(&secret) && !body.contains("abc@");
    let mut finished = false;
    for _ in 0..30 {
        let work = backline_tests::drain(&stack.clients.sqs, &stack.deployment.work_queue_url).await;
        let records = handlers::as_records(&work);
        assert!(records.iter().all(|(_, body)| clean(body) && body.contains("vault:")), "{records:?}");
        backline_worker::handler(&stack.engine, handlers::sqs_event(&records)).await.unwrap();
        let finals = backline_tests::drain(&stack.clients.sqs, &stack.deployment.finalize_queue_url).await;
        let records = handlers::as_records(&finals);
        assert!(records.iter().all(|(_, body)| clean(body)), "{records:?}");
        backline_finalizer::handler(&stack.engine, handlers::sqs_event(&records)).await.unwrap();
        if !finals.is_empty() {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert!(finished, "the run finished");
    assert_eq!(slack.received().len(), 1, "the Slack URL came from Vault (KV v2)");
    assert_eq!(slack.received()[0].0, secret_path);
    assert_eq!(sentry.get("events").await.as_array().unwrap().len(), 1, "the DSN came from Vault (KV v1)");
    let event = sentry.get("events").await[0]["event"].to_string();
    assert!(clean(&event), "the Sentry event holds no secret");
    for key in backline_tests::keys(&clients.s3, &bucket, "_backline/").await {
        let body = String::from_utf8_lossy(&backline_tests::body(&clients.s3, &bucket, &key).await).into_owned();
        assert!(clean(&body), "a secret is in s3://{bucket}/{key}");
    }
}

#[tokio::test]
async fn a_missing_vault_secret_is_named_and_the_run_goes_on() {
    VaultServer::shared();
    let reference = "kv1/backline/nothing#url";
    let clients = backline_tests::Moto::get().clients().await;
    let err = backline::secrets::vault::read(&clients, reference).await.unwrap_err();
    assert!(err.contains("kv1/backline/nothing") && err.contains("404"), "{err}");
    assert!(backline::secrets::vault::VaultRef::parse("kv1/backline").is_err());
}
