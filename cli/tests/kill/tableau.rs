//! Tableau backups and restores killed at random points.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use backline_tests::reliability;
use backline_tests::{Moto, create_bucket, keys, unique};

use serde_json::json;

use super::{
    Lcg, Outcome, STARTUP, Target, check_and_record, check_runs, kill_command_until_one_finishes, kill_repeatedly,
    manifests, run_command_to_end, run_to_end, write_job_file,
};

#[tokio::test]
async fn tableau_backup_killed_at_random_points_loses_and_duplicates_nothing() {
    let s3 = Moto::get().clients().await.s3;
    let n = reliability::size(60, 150);
    // Big enough that a run takes a few seconds, so the kills land in every stage.
    let world = backline_tests::tableau::one_site_world(n, |i| format!("workbook {i} ").repeat(30_000));
    let tableau = backline_tests::tableau::TableauServer::start(&world).await;
    let token_env = backline_tests::tableau::token_env();
    let job_file = |name: &str, bucket: &str| {
        write_job_file(&format!(
            "[[jobs]]\nname = \"{name}\"\nkind = \"tableau\"\n[jobs.source]\nserver = \"{}\"\n\
             api_version = \"3.19\"\ntoken_name = \"backline\"\ntoken_secret = \"env:{token_env}\"\n\
             [jobs.target]\nbucket = \"{bucket}\"\n",
            tableau.url
        ))
    };
    let (reference, target) = (unique("tableau-ref"), unique("tableau-kill"));
    create_bucket(&s3, &reference).await;
    create_bucket(&s3, &target).await;
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(&target).versioning_configuration(enabled).send().await.unwrap();
    // What an uninterrupted run stores: the workbooks the killed ones must end up with.
    let started = std::time::Instant::now();
    run_to_end(&job_file("tableau-reference", &reference));
    // Each kill lands within the first twentieth of an uninterrupted run's length (after its
    // start): a run that resumes has less to do, and most must still be killed (in planning,
    // mid-chunk, finalizing).
    let whole = started.elapsed();
    let mut expected = BTreeMap::new();
    for key in keys(&s3, &reference, "").await.into_iter().filter(|k| !k.starts_with("_backline/")) {
        expected.insert(key.clone(), backline_tests::body(&s3, &reference, &key).await);
    }
    assert_eq!(expected.len(), n, "one object per workbook");

    let file = job_file("tableau-prod", &target);
    let times = reliability::size(6, 20);
    let kills = kill_repeatedly(&file, times, &mut Lcg(13), STARTUP + whole / 100..STARTUP + whole / 20).await;
    run_to_end(&file);
    run_to_end(&file);

    let source_keys = (0..n).map(|i| format!("Default/Book {i:03}")).collect();
    let outcome = Outcome { kills, runs_recorded: times, runs_to_end: 2 };
    check_and_record(
        "SIGKILL at random points, then run to the end",
        "tableau",
        &s3,
        &target,
        &target,
        "",
        "tableau-prod",
        &expected,
        &source_keys,
        outcome,
    )
    .await;
}

#[tokio::test]
async fn tableau_restore_killed_at_random_points_publishes_each_workbook_once() {
    let s3 = Moto::get().clients().await.s3;
    let n = reliability::size(30, 80);
    let text = |i: usize| format!("workbook {i} ").repeat(30_000);
    let mut world = backline_tests::tableau::one_site_world(n, text);
    // A real server finishes a publish job whether or not the client that started it lives on.
    world["settings"] = json!({"job_seconds": 0.5});
    let tableau = backline_tests::tableau::TableauServer::start(&world).await;
    let token_env = backline_tests::tableau::token_env();
    let bucket = unique("tableau-restore-kill");
    create_bucket(&s3, &bucket).await;
    let file = write_job_file(&format!(
        "[[jobs]]\nname = \"tableau-prod\"\nkind = \"tableau\"\n[jobs.source]\nserver = \"{}\"\n\
         api_version = \"3.19\"\ntoken_name = \"backline\"\ntoken_secret = \"env:{token_env}\"\n\
         [jobs.target]\nbucket = \"{bucket}\"\n",
        tableau.url
    ));
    run_to_end(&file);
    let restore_into = |project: &'static str| {
        let args =
            ["restore", "--config", &file, "--job", "tableau-prod", "--site", "Default", "--to-project", project];
        args.iter().chain(&["--poll-interval", "1s", "--no-progress"]).map(|a| a.to_string()).collect::<Vec<String>>()
    };
    let (scratch, restored) = (restore_into("Scratch"), restore_into("Restored"));
    let scratch: Vec<&str> = scratch.iter().map(String::as_str).collect();
    let args: Vec<&str> = restored.iter().map(String::as_str).collect();
    // An uninterrupted restore elsewhere sets the pace; the kills land early in a run (a run that
    // resumes has less to do, and most must still be killed).
    let started = std::time::Instant::now();
    run_command_to_end(&scratch);
    let whole = started.elapsed();
    let times = reliability::size(6, 20);
    // A restore that finished is not run again: it would refuse to publish over what it did.
    let kills =
        kill_command_until_one_finishes(&args, times, &mut Lcg(23), STARTUP + whole / 80..STARTUP + whole / 12).await;
    let runs_to_end = if kills.finished_alone == 0 { 1 } else { 0 };
    if runs_to_end == 1 {
        run_command_to_end(&args);
    }

    let published = backline_tests::tableau::published_under(&tableau.state().await, "Restored");
    let lost: Vec<String> = (0..n)
        .map(|i| format!("Book {i:03}"))
        .filter(|name| {
            let i: usize = name[5..].parse().unwrap();
            published.get(name).is_none_or(|shas| !shas.contains(&backline_tests::tableau::sha256(text(i).as_bytes())))
        })
        .collect();
    let duplicates = published.iter().filter(|(_, shas)| shas.len() > 1).map(|(name, _)| name.clone()).collect();
    // The runs into Restored: all but the first, which set the pace.
    let manifests = manifests(&s3, &bucket, "tableau-prod-restore").await.into_iter().skip(1).collect::<Vec<_>>();
    let source_keys = (0..n).map(|i| format!("Default/Top/Book {i:03}")).collect();
    let runs_recorded = (kills.killed + kills.finished_alone) as usize;
    let outcome = Outcome { kills, runs_recorded, runs_to_end };
    let target = Target { lost, duplicates };
    let scenario = "SIGKILL at random points, then run to the end";
    check_runs(scenario, "tableau-restore", &s3, &bucket, &manifests, &source_keys, target, outcome).await;
}
