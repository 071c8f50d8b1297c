//! QuickSight backups killed at random points. A QuickSight run is a snapshot of the day: its
//! tables are dated and its bundles named by the run's time, so no run's writes overwrite
//! another's. What must hold is that the run after the kills writes the snapshot an
//! uninterrupted run writes, and that nothing a killed run held (an export slot, an open
//! marker, an upload) stops it.

use std::collections::{BTreeMap, BTreeSet};

use backline_tests::quicksight::{QuickSightServer, zip_entries};
use backline_tests::reliability::{self, Figures};
use backline_tests::{create_bucket, keys, open_uploads, unique};
use serde_json::{Value, json};

use super::{Lcg, command, manifests, write_job_file};

const ACCOUNT: &str = "111111111111";

/// Users, groups and memberships in us-east-1, assets in eu-west-1, pages of 3.
fn world(users: usize, dashboards: usize) -> Value {
    let people: Vec<Value> = (0..users)
        .map(|i| {
            let role = ["ADMIN", "AUTHOR", "READER"][i % 3];
            json!({"name": format!("user-{i:02}"), "role": role})
        })
        .collect();
    let memberships: Vec<Value> =
        (0..users).map(|i| json!({"group": format!("team-{}", i % 3), "member": format!("user-{i:02}")})).collect();
    let groups: Vec<Value> = (0..3).map(|i| json!({"name": format!("team-{i}")})).collect();
    json!({
        // A killed run's export jobs finish on their own, as on QuickSight, and free their slots.
        "settings": {"page_size": 3, "polls_per_status": 1, "job_seconds": 1},
        "accounts": {(ACCOUNT): {
            "identity_region": "us-east-1", "users": people, "groups": groups, "memberships": memberships,
            "regions": {"eu-west-1": {
                "datasources": [{"id": "athena", "type": "ATHENA"}],
                "datasets": [{"id": "sales", "deps": ["athena"]}],
                "analyses": [{"id": "sales-analysis", "deps": ["sales"]}],
                "dashboards": {"generate": dashboards, "deps": ["sales-analysis"]}
            }}
        }}
    })
}

/// A job writing into `bucket` and tables based on `base`.
fn job_file(name: &str, bucket: &str, base: &str) -> String {
    write_job_file(&format!(
        "[[jobs]]\nname = \"{name}\"\nkind = \"quicksight\"\nmode = \"full\"\nmax_assets_per_bundle = 5\n\
         include_dependencies = true\npoll_interval = \"1s\"\n\
         [jobs.source]\naccount_id = \"{ACCOUNT}\"\nregion = \"eu-west-1\"\nidentity_region = \"us-east-1\"\n\
         [jobs.target]\nbucket = \"{bucket}\"\nprefix = \"qs\"\nusers_table = \"{base}-users\"\n\
         groups_table = \"{base}-groups\"\nmemberships_table = \"{base}-members\"\n"
    ))
}

fn quicksight_command(server: &QuickSightServer, args: &[&str]) -> std::process::Command {
    let mut command = command(args);
    command.env("AWS_ENDPOINT_URL_QUICKSIGHT", &server.url);
    command
}

/// What the run of `manifest` wrote: each bundle (its key without the run's time) as its
/// entries, each table item (by table without its date and base) as its attributes but the
/// run's timestamp.
async fn snapshot(
    clients: &backline::aws::AwsClients,
    bucket: &str,
    base: &str,
    manifest: &Value,
) -> BTreeMap<String, String> {
    let at: chrono::DateTime<chrono::Utc> = manifest["scheduled_at"].as_str().unwrap().parse().unwrap();
    let mut written = BTreeMap::new();
    let suffix = format!("-{}.zip", at.format("%H%M%S"));
    for key in keys(&clients.s3, bucket, &format!("qs/{}/", at.format("%Y/%m/%d"))).await {
        if let Some(name) = key.strip_suffix(&suffix) {
            let zip = backline_tests::body(&clients.s3, bucket, &key).await;
            written.insert(name.to_string(), format!("{:?}", zip_entries(&zip)));
        }
    }
    for (table, id) in [("users", "user_name"), ("groups", "group_name"), ("members", "membership_id")] {
        let name = format!("{}-{base}-{table}", at.format("%Y-%m-%d"));
        let scan = clients.dynamodb.scan().table_name(&name).send().await.expect("scan");
        for item in scan.items() {
            let key = item.get(id).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            // Each run stamps its items with its own time.
            let attributes: BTreeMap<_, _> = item.iter().filter(|(name, _)| *name != "backup_timestamp").collect();
            written.insert(format!("{table}/{key}"), format!("{attributes:?}"));
        }
    }
    written
}

#[tokio::test]
async fn quicksight_backup_killed_at_random_points_writes_the_whole_snapshot() {
    let (users, dashboards) = (reliability::size(12, 40), reliability::size(10, 40));
    let server = QuickSightServer::start(&world(users, dashboards)).await;
    let clients = server.clients().await;
    let bucket = unique("qs-kill");
    create_bucket(&clients.s3, &bucket).await;
    let (reference_base, base) = (unique("qsref"), unique("qskill"));
    let reference_file = job_file("quicksight-reference", &bucket, &reference_base);
    let file = job_file("quicksight", &bucket, &base);
    let run_args = |file: &str| ["run", "--config", file, "--no-progress"].map(str::to_string);

    // An uninterrupted run sets the pace and says what a whole snapshot is.
    let started = std::time::Instant::now();
    let output =
        quicksight_command(&server, &run_args(&reference_file).each_ref().map(String::as_str)).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let whole = started.elapsed();
    let reference = manifests(&clients.s3, &bucket, "quicksight-reference").await;
    let want = snapshot(&clients, &bucket, &reference_base, reference.last().unwrap()).await;
    let bundles = 3 + dashboards.div_ceil(5);
    assert_eq!(want.len(), bundles + users + 3 + users, "{want:#?}");

    let times = reliability::size(6, 20);
    let (mut killed, mut alone) = (0u64, 0u64);
    let mut rng = Lcg(29);
    let args = run_args(&file);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for _ in 0..times {
        let mut child = quicksight_command(&server, &args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let spread = (whole * 8 / 10).as_millis().max(1) as u64;
        tokio::time::sleep(whole / 20 + std::time::Duration::from_millis(rng.next(spread))).await;
        match child.try_wait().unwrap() {
            Some(_) => alone += 1,
            None => {
                child.kill().unwrap();
                killed += 1;
            }
        }
        child.wait().unwrap();
    }
    let output = quicksight_command(&server, &args).output().unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let runs = manifests(&clients.s3, &bucket, "quicksight").await;
    let last = runs.last().expect("a manifest");
    let got = snapshot(&clients, &bucket, &base, last).await;
    let lost: Vec<&String> = want.keys().filter(|k| got.get(*k) != want.get(*k)).collect();
    let extra: BTreeSet<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let interrupted = runs.iter().filter(|m| m["status"] == "interrupted").count();
    reliability::record(&Figures {
        scenario: "SIGKILL at random points, then run to the end".into(),
        kind: "quicksight".into(),
        items: want.len(),
        faults_injected: killed,
        runs: killed + alone + 1,
        lost: lost.len(),
        duplicates: extra.len(),
        note: format!(
            "{killed} runs killed, {alone} finished before their kill, {interrupted} recorded as interrupted; \
             each run a dated snapshot, the last one compared with an uninterrupted run's"
        ),
        ..Default::default()
    });
    assert_eq!(last["status"], "succeeded", "{}", last["counts"]);
    assert!(lost.is_empty(), "missing or different from an uninterrupted run's snapshot: {lost:?}");
    assert!(extra.is_empty(), "not in an uninterrupted run's snapshot: {extra:?}");
    assert!(killed as usize >= times / 2, "most runs should have been killed: {killed} killed, {alone} not");
    assert!(keys(&clients.s3, &bucket, "_backline/open-runs/").await.is_empty(), "open markers left behind");
    assert!(open_uploads(&clients.s3, &bucket).await.is_empty(), "multipart uploads left open");
}
