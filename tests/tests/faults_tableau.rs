//! Tableau backups and restores through fault proxies: one in front of the Tableau emulator
//! (5 % server errors, 1 % resets), one in front of moto (5 % SlowDown, 1 % resets). Each run
//! must succeed and store, or publish, what the same run without faults does: every workbook
//! once, byte for byte.

use std::collections::BTreeMap;
use std::sync::Arc;

use backline::aws::AwsClients;
use backline::pipeline::{NoProgress, local};
use backline::store::Manifest;
use backline::{Config, Job};
use backline_tests::faults::{FaultProxy, unreliable_s3};
use backline_tests::reliability::{self, Figures};
use backline_tests::tableau::{TableauServer, one_site_world, published_under, sha256, token_env};
use backline_tests::{Moto, create_bucket, unique};
use serde_json::{Value, json};

fn job(server: &str, token_env: &str, bucket: &str) -> Job {
    let text = format!(
        "[[jobs]]\nname = \"tableau-prod\"\nkind = \"tableau\"\n[jobs.source]\nserver = \"{server}\"\n\
         api_version = \"3.19\"\ntoken_name = \"backline\"\ntoken_secret = \"env:{token_env}\"\n\
         [jobs.target]\nbucket = \"{bucket}\"\n"
    );
    Config::parse(&text, backline::config::Format::Toml, "faults.toml").expect("valid job").jobs.remove(0)
}

async fn run(clients: &AwsClients, job: &Job) -> Manifest {
    let run = local::run(clients.clone(), job, chrono::Utc::now(), false, Arc::new(NoProgress)).await;
    run.unwrap_or_else(|e| panic!("job {}: {e}", job.name)).manifest.expect("a manifest")
}

/// Every object under a bucket but Backline's records, key -> bytes.
async fn objects_of(s3: &aws_sdk_s3::Client, bucket: &str) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    for key in backline_tests::keys(s3, bucket, "").await {
        if !key.starts_with("_backline/") {
            all.insert(key.clone(), backline_tests::body(s3, bucket, &key).await);
        }
    }
    all
}

/// 5 % of requests answered 500, 1 % reset before they reach the server.
fn unreliable_tableau() -> Value {
    json!([
        {"name": "tableau-500", "fault": "internal", "rate": 0.05},
        {"name": "tableau-reset", "fault": "reset", "rate": 0.01},
    ])
}

const SCENARIO: &str = "5 % server errors and 1 % resets (Tableau), 5 % SlowDown and 1 % resets (S3)";

fn record(kind: &str, items: usize, faults: u64, lost: usize, duplicates: usize) {
    reliability::record(&Figures::of_one_run(SCENARIO, kind, items, faults, lost, duplicates));
}

#[tokio::test]
async fn tableau_backup_survives_server_errors_resets_and_s3_slowdowns() {
    let moto = Moto::get().clients().await;
    let n = reliability::size(30, 200);
    let world = one_site_world(n, |i| format!("workbook {i} ").repeat(50));
    let tableau = TableauServer::start(&world).await;
    let tableau_proxy = FaultProxy::start(&tableau.url, unreliable_tableau()).await;
    let s3_proxy = FaultProxy::start(&Moto::get().endpoint, unreliable_s3()).await;
    let token_env = token_env();
    let (calm, stormy) = (unique("tableau-calm"), unique("tableau-faults"));
    create_bucket(&moto.s3, &calm).await;
    create_bucket(&moto.s3, &stormy).await;
    let reference = run(&moto, &job(&tableau.url, &token_env, &calm)).await;
    let manifest = run(&s3_proxy.clients().await, &job(&tableau_proxy.url, &token_env, &stormy)).await;
    let faults = tableau_proxy.faults().await + s3_proxy.faults().await;
    let (want, got) = (objects_of(&moto.s3, &calm).await, objects_of(&moto.s3, &stormy).await);
    let lost = want.iter().filter(|(k, b)| got.get(*k) != Some(*b)).count();
    record("tableau", n, faults, lost, 0);
    assert_eq!(reference.counts.copied, n as u64);
    assert!(faults > 0, "the proxies injected nothing");
    assert_eq!((manifest.status.as_str(), manifest.counts.copied), ("succeeded", n as u64), "{:?}", manifest.counts);
    assert_eq!(lost, 0, "workbooks missing or different from a run without faults");
}

#[tokio::test]
async fn tableau_restore_survives_server_errors_resets_and_s3_slowdowns() {
    let moto = Moto::get().clients().await;
    let n = reliability::size(30, 150);
    let text = |i: usize| format!("workbook {i} ").repeat(50);
    let tableau = TableauServer::start(&one_site_world(n, text)).await;
    let token_env = token_env();
    let bucket = unique("tableau-restore-faults");
    create_bucket(&moto.s3, &bucket).await;
    assert_eq!(run(&moto, &job(&tableau.url, &token_env, &bucket)).await.counts.copied, n as u64);

    let tableau_proxy = FaultProxy::start(&tableau.url, unreliable_tableau()).await;
    let s3_proxy = FaultProxy::start(&Moto::get().endpoint, unreliable_s3()).await;
    let backup = job(&tableau_proxy.url, &token_env, &bucket);
    let options = json!({"site": "Default", "to_project": "Restored", "poll_interval": "1s"});
    let restore = backup.spec.restore_job(&backup, options).expect("tableau jobs restore").expect("valid options");
    let manifest = run(&s3_proxy.clients().await, &restore).await;
    let faults = tableau_proxy.faults().await + s3_proxy.faults().await;

    let state = tableau.state().await;
    let published = published_under(&state, "Restored");
    let lost = (0..n)
        .filter(|i| {
            published.get(&format!("Book {i:03}")).is_none_or(|shas| !shas.contains(&sha256(text(*i).as_bytes())))
        })
        .count();
    let duplicates = published.values().filter(|shas| shas.len() > 1).count();
    record("tableau-restore", n, faults, lost, duplicates);
    assert!(faults > 0, "the proxies injected nothing");
    let created = state["projects_created"].as_array().unwrap();
    let restored: Vec<&Value> = created.iter().filter(|p| p["name"] == "Restored").collect();
    let projects =
        restored.len() + created.iter().filter(|p| restored.iter().any(|r| p["parentProjectId"] == r["id"])).count();
    assert_eq!(projects, 2, "each project created once: {created:?}");
    assert_eq!((manifest.status.as_str(), manifest.counts.copied), ("succeeded", n as u64), "{:#?}", manifest.tasks);
    assert_eq!((lost, duplicates), (0, 0), "published: {published:?}");
}
