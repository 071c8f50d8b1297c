//! QuickSight backups and restores killed at random points. A QuickSight backup is a snapshot
//! of the day: its tables are dated and its bundles named by the run's time, so no run's writes
//! overwrite another's. A restore creates what is missing and imports bundles, which QuickSight
//! applies over what is there. What must hold is that the run after the kills leaves what an
//! uninterrupted run leaves, and that nothing a killed run held (an export or import slot, an
//! open marker, an upload) stops it.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use backline_tests::quicksight::{QuickSightServer, made_in, zip_entries};
use backline_tests::reliability::{self, Figures};
use backline_tests::{create_bucket, keys, open_uploads, unique};
use serde_json::{Value, json};

use super::{Lcg, command, manifests, write_job_file};

const ACCOUNT: &str = "111111111111";
/// Empty accounts restores go into: one uninterrupted, one killed again and again.
const CALM_ACCOUNT: &str = "222222222222";
const KILLED_ACCOUNT: &str = "333333333333";
const REGION: &str = "eu-west-1";

/// Users, groups, memberships and assets in one region, pages of 3; two empty accounts.
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
        "accounts": {
            (ACCOUNT): {
                "identity_region": REGION, "users": people, "groups": groups, "memberships": memberships,
                "regions": {(REGION): {
                    "datasources": [{"id": "athena", "type": "ATHENA"}],
                    "datasets": [{"id": "sales", "deps": ["athena"]}],
                    "analyses": [{"id": "sales-analysis", "deps": ["sales"]}],
                    "dashboards": {"generate": dashboards, "deps": ["sales-analysis"]}
                }}
            },
            (CALM_ACCOUNT): {"identity_region": REGION},
            (KILLED_ACCOUNT): {"identity_region": REGION}
        }
    })
}

/// A job writing into `bucket` and tables based on `base`.
fn job_file(name: &str, bucket: &str, base: &str) -> String {
    write_job_file(&format!(
        "[[jobs]]\nname = \"{name}\"\nkind = \"quicksight\"\nmode = \"full\"\nmax_assets_per_bundle = 5\n\
         include_dependencies = true\npoll_interval = \"1s\"\n\
         [jobs.source]\naccount_id = \"{ACCOUNT}\"\nregion = \"{REGION}\"\nidentity_region = \"{REGION}\"\n\
         [jobs.target]\nbucket = \"{bucket}\"\nprefix = \"qs\"\nusers_table = \"{base}-users\"\n\
         groups_table = \"{base}-groups\"\nmemberships_table = \"{base}-members\"\n"
    ))
}

fn quicksight_command(server: &QuickSightServer, args: &[&str]) -> std::process::Command {
    let mut command = command(args);
    command.env("AWS_ENDPOINT_URL_QUICKSIGHT", &server.url);
    command
}

/// Runs `args` to the end; it must succeed. Returns how long it took.
fn run_to_end(server: &QuickSightServer, args: &[&str]) -> Duration {
    let started = std::time::Instant::now();
    let output = quicksight_command(server, args).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(output.status.success(), "{}\n{}", text(&output.stdout), text(&output.stderr));
    started.elapsed()
}

/// Starts `args` `times` times, each killed with SIGKILL at a random point between 5 % and 45 %
/// of `whole` (an uninterrupted run's length, which varies with the machine's load); returns
/// (killed, finished before the kill).
async fn kill_repeatedly(
    server: &QuickSightServer,
    args: &[&str],
    times: usize,
    seed: u64,
    whole: Duration,
) -> (u64, u64) {
    let (mut killed, mut alone) = (0, 0);
    let mut rng = Lcg(seed);
    for _ in 0..times {
        let mut child = quicksight_command(server, args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let spread = (whole * 4 / 10).as_millis().max(1) as u64;
        tokio::time::sleep(whole / 20 + Duration::from_millis(rng.next(spread))).await;
        match child.try_wait().unwrap() {
            Some(_) => alone += 1,
            None => {
                child.kill().unwrap();
                killed += 1;
            }
        }
        child.wait().unwrap();
    }
    (killed, alone)
}

/// Records the figures of a scenario and checks them: nothing lost or extra, the last run
/// succeeded, most runs killed, no open marker left.
#[allow(clippy::too_many_arguments)]
async fn check_and_record(
    kind: &str,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    runs: &[Value],
    want: &BTreeMap<String, String>,
    got: &BTreeMap<String, String>,
    (killed, alone): (u64, u64),
    times: usize,
) {
    let lost: Vec<&String> = want.keys().filter(|k| got.get(*k) != want.get(*k)).collect();
    let extra: BTreeSet<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let interrupted = runs.iter().filter(|m| m["status"] == "interrupted").count();
    reliability::record(&Figures {
        scenario: "SIGKILL at random points, then run to the end".into(),
        kind: kind.into(),
        items: want.len(),
        faults_injected: killed,
        runs: killed + alone + 1,
        lost: lost.len(),
        duplicates: extra.len(),
        note: format!(
            "{killed} runs killed, {alone} finished before their kill, {interrupted} recorded as interrupted; \
             what the last run left compared with what an uninterrupted run makes"
        ),
        ..Default::default()
    });
    let last = runs.last().expect("a manifest");
    assert_eq!(last["status"], "succeeded", "{}", last["counts"]);
    assert!(lost.is_empty(), "missing or different from what an uninterrupted run makes: {lost:?}");
    assert!(extra.is_empty(), "not made by an uninterrupted run: {extra:?}");
    assert!(
        // Quick runs are short and vary with load: one kill that landed is enough there.
        killed as usize >= reliability::size(1, times / 3),
        "too few runs were killed: {killed} killed, {alone} not"
    );
    assert!(keys(s3, bucket, "_backline/open-runs/").await.is_empty(), "open markers left behind");
    assert!(open_uploads(s3, bucket).await.is_empty(), "multipart uploads left open");
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

    // An uninterrupted run sets the pace and says what a whole snapshot is.
    let whole = run_to_end(&server, &["run", "--config", &reference_file, "--no-progress"]);
    let reference = manifests(&clients.s3, &bucket, "quicksight-reference").await;
    let want = snapshot(&clients, &bucket, &reference_base, reference.last().unwrap()).await;
    let bundles = 3 + dashboards.div_ceil(5);
    assert_eq!(want.len(), bundles + users + 3 + users, "{want:#?}");

    let times = reliability::size(6, 20);
    let args = ["run", "--config", &file, "--no-progress"];
    let kills = kill_repeatedly(&server, &args, times, 29, whole).await;
    run_to_end(&server, &args);

    let runs = manifests(&clients.s3, &bucket, "quicksight").await;
    let got = snapshot(&clients, &bucket, &base, runs.last().expect("a manifest")).await;
    check_and_record("quicksight", &clients.s3, &bucket, &runs, &want, &got, kills, times).await;
}

#[tokio::test]
async fn quicksight_restore_killed_at_random_points_makes_what_an_uninterrupted_one_makes() {
    let (users, dashboards) = (reliability::size(12, 40), reliability::size(10, 40));
    let server = QuickSightServer::start(&world(users, dashboards)).await;
    let clients = server.clients().await;
    let bucket = unique("qs-restore-kill");
    create_bucket(&clients.s3, &bucket).await;
    let file = job_file("quicksight", &bucket, &unique("qsrestore"));
    run_to_end(&server, &["run", "--config", &file, "--no-progress"]);
    // The emulator imports from an S3Uri by reading moto unsigned.
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
        "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
    clients.s3.put_bucket_policy().bucket(&bucket).policy(policy.to_string()).send().await.expect("policy");
    let restore_into = |account: &'static str| {
        ["restore", "--config", &file, "--job", "quicksight", "--to-account", account, "--to-region", REGION]
            .into_iter()
            .chain(["--poll-interval", "1s", "--no-progress"])
            .collect::<Vec<&str>>()
    };

    // An uninterrupted restore sets the pace and says what a whole restore makes.
    let whole = run_to_end(&server, &restore_into(CALM_ACCOUNT));
    let times = reliability::size(6, 20);
    let kills = kill_repeatedly(&server, &restore_into(KILLED_ACCOUNT), times, 31, whole).await;
    run_to_end(&server, &restore_into(KILLED_ACCOUNT));

    let state = server.state().await;
    let (want, got) = (made_in(&state, CALM_ACCOUNT, REGION), made_in(&state, KILLED_ACCOUNT, REGION));
    assert_eq!(want.len(), users + 3 + users + 3 + dashboards, "{want:#?}");
    // The restores into the killed account: all but the first, which set the pace.
    let runs: Vec<Value> = manifests(&clients.s3, &bucket, "quicksight-restore").await.into_iter().skip(1).collect();
    check_and_record("quicksight-restore", &clients.s3, &bucket, &runs, &want, &got, kills, times).await;
}
