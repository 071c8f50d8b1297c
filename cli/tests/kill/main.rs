//! `backline run` killed with SIGKILL at random points, again and again, then run to the end:
//! nothing lost, nothing copied twice (versioned targets would show it), every item counted
//! once over all the runs' manifests, and the run after that copies nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backline_tests::reliability::{self, Figures, compare_versioned, copies_by_key, miscounted};
use backline_tests::{Moto, TestObject, create_bucket, keys, open_uploads, put, unique};
use serde_json::Value;

mod quicksight;
mod tableau;

fn command(args: &[&str]) -> Command {
    backline_tests::backline_command(env!("CARGO_BIN_EXE_backline"), args)
}

fn write_job_file(text: &str) -> String {
    let dir = std::env::temp_dir().join(unique("kill"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jobs.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A small deterministic generator: the kill points differ from one to the next but not from
/// one test run to the next.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// The bodies of the test: small ones, and every `big_every`th one big enough to go by parts.
fn bodies(n: usize, big_every: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let body = if i % big_every == 0 {
                vec![i as u8; 6 << 20]
            } else {
                format!("object {i} ").repeat(40).into_bytes()
            };
            (format!("d{}/o{i:04}.bin", i % 7), body)
        })
        .collect()
}

/// A run first waits for a new second, under one (see `resume::wait_for_a_new_second`): the
/// windows measured against an uninterrupted run start after it, so that most kills land in
/// the run's work.
const STARTUP: Duration = Duration::from_secs(1);

/// When the S3 and folder runs are killed: from the start's wait to finalize at these sizes
/// (the runs are too short for a window that begins after the wait).
fn window() -> std::ops::Range<Duration> {
    Duration::from_millis(150)..Duration::from_millis(2650)
}

struct Kills {
    killed: u64,
    finished_alone: u64,
}

/// Starts the job `times` times, each killed with SIGKILL after a random delay in `window`.
async fn kill_repeatedly(file: &str, times: usize, rng: &mut Lcg, window: std::ops::Range<Duration>) -> Kills {
    kill_command_repeatedly(&["run", "--config", file, "--no-progress"], times, rng, window).await
}

async fn kill_command_repeatedly(
    args: &[&str],
    times: usize,
    rng: &mut Lcg,
    window: std::ops::Range<Duration>,
) -> Kills {
    kill_command(args, times, rng, window, false).await
}

/// [`kill_command_repeatedly`], stopping at the first run that finishes before its kill: for
/// commands that, run again once done, would not repeat without failing (a Tableau restore
/// refuses to publish over what it published).
async fn kill_command_until_one_finishes(
    args: &[&str],
    times: usize,
    rng: &mut Lcg,
    window: std::ops::Range<Duration>,
) -> Kills {
    kill_command(args, times, rng, window, true).await
}

async fn kill_command(
    args: &[&str],
    times: usize,
    rng: &mut Lcg,
    window: std::ops::Range<Duration>,
    until_one_finishes: bool,
) -> Kills {
    let mut kills = Kills { killed: 0, finished_alone: 0 };
    for _ in 0..times {
        if until_one_finishes && kills.finished_alone > 0 {
            break;
        }
        let mut child = command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let spread = (window.end - window.start).as_millis().max(1) as u64;
        tokio::time::sleep(window.start + Duration::from_millis(rng.next(spread))).await;
        match child.try_wait().unwrap() {
            Some(_) => kills.finished_alone += 1,
            None => {
                child.kill().unwrap();
                kills.killed += 1;
            }
        }
        child.wait().unwrap();
    }
    kills
}

fn run_to_end(file: &str) {
    run_command_to_end(&["run", "--config", file, "--no-progress"]);
}

fn run_command_to_end(args: &[&str]) {
    let output = command(args).output().unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn manifests(s3: &aws_sdk_s3::Client, bucket: &str, job: &str) -> Vec<Value> {
    let mut manifests = Vec::new();
    for key in keys(s3, bucket, &format!("_backline/runs/{job}/")).await {
        if key.ends_with("/manifest.json") {
            manifests.push(serde_json::from_slice(&backline_tests::body(s3, bucket, &key).await).unwrap());
        }
    }
    manifests.sort_by(|a: &Value, b: &Value| a["finished_at"].as_str().cmp(&b["finished_at"].as_str()));
    manifests
}

/// The checks every kill scenario makes once the job has run to the end.
struct Outcome {
    kills: Kills,
    runs_recorded: usize,
    /// Runs after the killed ones, not killed.
    runs_to_end: u64,
}

/// What the target holds wrongly: items missing or different, items stored twice.
struct Target {
    lost: Vec<String>,
    duplicates: Vec<String>,
}

/// Checks a kill scenario's target (a versioned bucket) and runs, and records its figures.
#[allow(clippy::too_many_arguments)]
async fn check_and_record(
    scenario: &str,
    kind: &str,
    s3: &aws_sdk_s3::Client,
    target_bucket: &str,
    control_bucket: &str,
    prefix: &str,
    job: &str,
    expected: &BTreeMap<String, Vec<u8>>,
    source_keys: &BTreeSet<String>,
    outcome: Outcome,
) {
    let comparison = compare_versioned(s3, target_bucket, prefix, expected, 1).await;
    let target = Target { lost: comparison.lost, duplicates: comparison.duplicates };
    let manifests = manifests(s3, control_bucket, job).await;
    check_runs_and_record(scenario, kind, s3, control_bucket, manifests, source_keys, target, outcome).await;
    assert!(open_uploads(s3, target_bucket).await.is_empty(), "multipart uploads left open");
}

/// The checks of the target, of the runs' manifests (every item counted as copied once over
/// all of them, the last run copying nothing) and of the kills, with the figures recorded.
#[allow(clippy::too_many_arguments)]
async fn check_runs_and_record(
    scenario: &str,
    kind: &str,
    s3: &aws_sdk_s3::Client,
    control_bucket: &str,
    manifests: Vec<Value>,
    source_keys: &BTreeSet<String>,
    target: Target,
    outcome: Outcome,
) {
    check_runs(scenario, kind, s3, control_bucket, &manifests, source_keys, target, outcome).await;
    let last = manifests.last().expect("a manifest");
    assert_eq!(last["counts"]["copied"], 0, "the run after the last copies nothing: {}", last["counts"]);
}

/// [`check_runs_and_record`] but for the run after the last: for kinds whose runs do not
/// repeat without doing anything (a Tableau restore refuses to publish over what it published).
#[allow(clippy::too_many_arguments)]
async fn check_runs(
    scenario: &str,
    kind: &str,
    s3: &aws_sdk_s3::Client,
    control_bucket: &str,
    manifests: &[Value],
    source_keys: &BTreeSet<String>,
    target: Target,
    outcome: Outcome,
) {
    let (twice, never) = miscounted(&copies_by_key(manifests), source_keys);
    let last = manifests.last().expect("a manifest");
    let interrupted = manifests.iter().filter(|m| m["status"] == "interrupted").count();
    let (killed, alone) = (outcome.kills.killed, outcome.kills.finished_alone);
    reliability::record(&Figures {
        scenario: scenario.into(),
        kind: kind.into(),
        items: source_keys.len(),
        faults_injected: killed,
        runs: killed + alone + outcome.runs_to_end,
        lost: target.lost.len(),
        duplicates: target.duplicates.len() + twice.len(),
        note: format!(
            "{killed} runs killed, {alone} finished before their kill, {interrupted} recorded as interrupted"
        ),
        ..Default::default()
    });
    assert!(target.lost.is_empty(), "lost or wrong: {:?}", target.lost);
    assert!(target.duplicates.is_empty(), "stored twice (extra versions): {:?}", target.duplicates);
    assert!(twice.is_empty(), "counted as copied by more than one run: {twice:?}");
    assert!(never.is_empty(), "never counted as copied: {never:?}");
    assert_eq!(last["status"], "succeeded", "{}", last["counts"]);
    // Quick runs are short and their length varies with the machine's load: at quick size one
    // kill that landed is enough; at full size most runs must have been killed.
    let needed = reliability::size(1, outcome.runs_recorded / 2);
    assert!(killed as usize >= needed, "at least {needed} runs should have been killed: {killed} killed, {alone} not");
    assert!(keys(s3, control_bucket, "_backline/open-runs/").await.is_empty(), "open markers left behind");
}

/// Writes `files` under `folder` and a job file backing the folder up into buckets named
/// `prefix-…`; returns the job file.
fn folder_and_job(folder: &std::path::Path, files: &[(String, Vec<u8>)], prefix: &str) -> String {
    for (key, body) in files {
        let path = folder.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    write_job_file(&format!(
        "[[jobs]]\nname = \"images\"\nkind = \"filesystem\"\nconcurrency = 4\nfolders = [{:?}]\n[jobs.target]\n\
         bucket_prefix = \"{prefix}\"\nstorage_class = \"STANDARD\"\nmultipart_threshold = \"5 MiB\"\n",
        folder.display().to_string()
    ))
}

#[tokio::test]
async fn s3_backup_killed_at_random_points_loses_and_duplicates_nothing() {
    let s3 = Moto::get().clients().await.s3;
    let (source, target) = (unique("src"), unique("dst"));
    create_bucket(&s3, &source).await;
    create_bucket(&s3, &target).await;
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(&target).versioning_configuration(enabled).send().await.unwrap();
    let objects = bodies(reliability::size(150, 400), 50);
    for (key, body) in &objects {
        put(&s3, &source, &TestObject::new(key, body.clone())).await;
    }
    let file = write_job_file(&format!(
        "[[jobs]]\nname = \"photos\"\nkind = \"s3\"\nconcurrency = 4\n[jobs.source]\nbucket = \"{source}\"\n\
         [jobs.target]\nbucket = \"{target}\"\nprefix = \"backup/\"\nmultipart_threshold = \"5 MiB\"\n"
    ));
    let times = reliability::size(6, 20);
    let kills = kill_repeatedly(&file, times, &mut Lcg(7), window()).await;
    run_to_end(&file);
    run_to_end(&file);

    let expected: BTreeMap<String, Vec<u8>> = objects.iter().map(|(k, b)| (format!("backup/{k}"), b.clone())).collect();
    let source_keys = objects.iter().map(|(k, _)| k.clone()).collect();
    let outcome = Outcome { kills, runs_recorded: times, runs_to_end: 2 };
    check_and_record(
        "SIGKILL at random points, then run to the end",
        "s3",
        &s3,
        &target,
        &target,
        "backup/",
        "photos",
        &expected,
        &source_keys,
        outcome,
    )
    .await;
}

#[tokio::test]
async fn s3_restore_killed_at_random_points_loses_and_duplicates_nothing() {
    let s3 = Moto::get().clients().await.s3;
    let (source, backup, restored) = (unique("src"), unique("bak"), unique("rst"));
    for bucket in [&source, &backup, &restored] {
        create_bucket(&s3, bucket).await;
    }
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(&restored).versioning_configuration(enabled).send().await.unwrap();
    let objects = bodies(reliability::size(150, 400), 50);
    for (key, body) in &objects {
        put(&s3, &source, &TestObject::new(key, body.clone())).await;
    }
    let file = write_job_file(&format!(
        "[[jobs]]\nname = \"photos\"\nkind = \"s3\"\nconcurrency = 4\n[jobs.source]\nbucket = \"{source}\"\n\
         [jobs.target]\nbucket = \"{backup}\"\nprefix = \"backup/\"\nmultipart_threshold = \"5 MiB\"\n"
    ));
    run_to_end(&file);
    let restore = ["restore", "--config", &file, "--job", "photos", "--to-bucket", &restored, "--allow-existing"];
    let args: Vec<&str> = restore.iter().copied().chain(["--no-progress"]).collect();
    let times = reliability::size(6, 20);
    let kills = kill_command_repeatedly(&args, times, &mut Lcg(17), window()).await;
    run_command_to_end(&args);
    run_command_to_end(&args);

    let expected: BTreeMap<String, Vec<u8>> = objects.iter().cloned().collect();
    // The restore's manifests name each object by its key in the backup.
    let backup_keys = objects.iter().map(|(k, _)| format!("backup/{k}")).collect();
    let outcome = Outcome { kills, runs_recorded: times, runs_to_end: 2 };
    check_and_record(
        "SIGKILL at random points, then run to the end",
        "s3-restore",
        &s3,
        &restored,
        &backup,
        "",
        "photos-restore",
        &expected,
        &backup_keys,
        outcome,
    )
    .await;
}

#[tokio::test]
async fn folder_backup_killed_at_random_points_loses_and_duplicates_nothing() {
    let s3 = Moto::get().clients().await.s3;
    let folder = std::env::temp_dir().join(unique("kill-folder"));
    let files = bodies(reliability::size(150, 400), 50);
    let prefix = unique("kf");
    let file = folder_and_job(&folder, &files, &prefix);
    let times = reliability::size(6, 20);
    let kills = kill_repeatedly(&file, times, &mut Lcg(11), window()).await;
    run_to_end(&file);
    run_to_end(&file);

    let buckets = s3.list_buckets().send().await.unwrap();
    let names: Vec<&str> =
        buckets.buckets().iter().filter_map(|b| b.name()).filter(|n| n.starts_with(&prefix)).collect();
    let data = names.iter().find(|n| !n.ends_with("-backline")).expect("the folder's bucket").to_string();
    let control = format!("{prefix}-backline");
    // A file's key is its absolute path without the leading slash.
    let key_of = |relative: &str| folder.join(relative).display().to_string().trim_start_matches('/').to_string();
    let expected: BTreeMap<String, Vec<u8>> = files.iter().map(|(k, b)| (key_of(k), b.clone())).collect();
    let source_keys = files.iter().map(|(k, _)| key_of(k)).collect();
    let outcome = Outcome { kills, runs_recorded: times, runs_to_end: 2 };
    check_and_record(
        "SIGKILL at random points, then run to the end",
        "filesystem",
        &s3,
        &data,
        &control,
        "",
        "images",
        &expected,
        &source_keys,
        outcome,
    )
    .await;
}

#[tokio::test]
async fn folder_restore_killed_at_random_points_loses_and_duplicates_nothing() {
    let s3 = Moto::get().clients().await.s3;
    let folder = std::env::temp_dir().join(unique("kill-restore-src"));
    let files = bodies(reliability::size(150, 400), 50);
    let prefix = unique("kr");
    let file = folder_and_job(&folder, &files, &prefix);
    run_to_end(&file);
    // An uninterrupted restore elsewhere sets the pace: the kills land early in a run.
    let scratch = std::env::temp_dir().join(unique("kill-restore-scratch")).display().to_string();
    let started = std::time::Instant::now();
    run_command_to_end(&["restore", "--config", &file, "--job", "images", "--to", &scratch, "--no-progress"]);
    let whole = started.elapsed();
    let to = std::env::temp_dir().join(unique("kill-restore-dst"));
    let to_text = to.display().to_string();
    let args = ["restore", "--config", &file, "--job", "images", "--to", &to_text, "--no-progress"];
    let times = reliability::size(6, 20);
    let kills = kill_command_repeatedly(&args, times, &mut Lcg(19), STARTUP + whole / 80..STARTUP + whole / 10).await;
    run_command_to_end(&args);
    run_command_to_end(&args);

    // /a/b.txt comes back as TO/a/b.txt; its key is the path without the leading slash.
    let key_of = |relative: &str| folder.join(relative).display().to_string().trim_start_matches('/').to_string();
    let lost: Vec<String> = files
        .iter()
        .filter(|(k, body)| std::fs::read(to.join(key_of(k))).ok().as_ref() != Some(body))
        .map(|(k, _)| k.clone())
        .collect();
    let mut leftovers = Vec::new();
    let mut dirs = vec![to.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.to_string_lossy().ends_with(".backline-partial") {
                leftovers.push(path.display().to_string());
            }
        }
    }
    assert!(leftovers.is_empty(), "partial files left behind: {leftovers:?}");
    let control = format!("{prefix}-backline");
    // The runs into this folder, not the one that set the pace.
    let mut manifests = manifests(&s3, &control, "images-restore").await;
    manifests.retain(|m| m["target"] == to_text.as_str());
    let source_keys = files.iter().map(|(k, _)| key_of(k)).collect();
    // A folder keeps no versions: a file written twice leaves no trace but its count.
    let target = Target { lost, duplicates: Vec::new() };
    let outcome = Outcome { kills, runs_recorded: times, runs_to_end: 2 };
    let scenario = "SIGKILL at random points, then run to the end";
    check_runs_and_record(scenario, "filesystem-restore", &s3, &control, manifests, &source_keys, target, outcome)
        .await;
}
