//! `backline run` and `backline plan`: run jobs in this process and print what happened.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use backline::aws::AwsClients;
use backline::pipeline::planner::PlanSummary;
use backline::pipeline::{EngineOptions, local};
use backline::store::{ControlStore, Manifest, render_report, report_url};
use backline::{Config, Job};

use indicatif::HumanBytes;

use crate::progress::Bar;
use crate::{EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_TASKS_FAILED};

/// The jobs of a file, or the one named; the exit code on failure.
pub fn load_jobs(file: &str, job: Option<&str>) -> Result<Vec<Job>, u8> {
    let config = Config::load(file).map_err(|err| {
        eprintln!("error: {err}");
        EXIT_BAD_INPUT
    })?;
    match job {
        Some(name) => match config.job(name, file) {
            Ok(job) => Ok(vec![job.clone()]),
            Err(err) => {
                eprintln!("error: {err}");
                Err(EXIT_BAD_INPUT)
            }
        },
        None => Ok(config.jobs),
    }
}

/// `jobs` with the fields of `overrides` replaced (`--mode`) in each job whose kind has them;
/// an error when no job has one.
pub fn with_overrides(jobs: Vec<Job>, overrides: &[(&str, serde_json::Value)]) -> Result<Vec<Job>, u8> {
    let mut jobs = jobs;
    for (field, value) in overrides {
        let mut applied = false;
        for job in &mut jobs {
            match job.with_field(field, value.clone()) {
                Ok(changed) => {
                    *job = changed;
                    applied = true;
                }
                Err(err) if err.contains("have no") => {}
                Err(err) => {
                    eprintln!("error: job {}: --{}: {err}", job.name, field.replace('_', "-"));
                    return Err(EXIT_BAD_INPUT);
                }
            }
        }
        if !applied {
            let kinds: Vec<&str> = jobs.iter().map(|j| j.spec.kind()).collect();
            eprintln!("error: --{} applies to none of the jobs run ({})", field.replace('_', "-"), kinds.join(", "));
            return Err(EXIT_BAD_INPUT);
        }
    }
    Ok(jobs)
}

/// Runs jobs one after another in this process; the exit code is the worst of them.
pub async fn run_jobs(
    jobs: Vec<Job>,
    dry_run: bool,
    progress: bool,
    options: EngineOptions,
    output_dir: Option<&Path>,
) -> u8 {
    let clients = AwsClients::from_env().await;
    let mut worst = EXIT_OK;
    for job in &jobs {
        let bar = Bar::new(&job.name, progress && !dry_run);
        let progress = Arc::new(bar.progress());
        let scheduled_at = chrono::Utc::now();
        let running = local::run_with(clients.clone(), job, scheduled_at, dry_run, progress, options.clone());
        let result = tokio::select! {
            result = running => result,
            _ = tokio::signal::ctrl_c() => {
                bar.finish();
                return interrupted(&clients, job, scheduled_at, dry_run).await;
            }
        };
        bar.finish();
        let code = match result {
            Ok(run) => match &run.manifest {
                Some(manifest) => {
                    let code = print_manifest(&run.plan, manifest, job);
                    match output_dir.map(|dir| write_records(dir, manifest)) {
                        Some(Err(err)) => {
                            eprintln!("error: {err:#}");
                            code.max(EXIT_BAD_INPUT)
                        }
                        _ => code,
                    }
                }
                None => print_plan(&run.plan),
            },
            Err(err) => {
                eprintln!("error: job {}: {err}", job.name);
                crate::exit_code(&err)
            }
        };
        worst = worst.max(code);
    }
    worst
}

/// Ctrl-C: the run's tasks are dropped where they stand; its open multipart uploads are
/// aborted (S3 would bill their parts) and the run is recorded as interrupted. What it copied
/// stays; the next run plans it again and aborts whatever was still open.
async fn interrupted(
    clients: &AwsClients,
    job: &Job,
    scheduled_at: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
) -> u8 {
    let (mut aborted, mut errors) = backline::aws::uploads::abort_open().await;
    // An upload whose CreateMultipartUpload was under way when the signal came exists in S3
    // but never reached the registry: look under the job's targets as well.
    for (bucket, prefix) in job.spec.upload_targets() {
        match backline::aws::uploads::abort_stale(&clients.s3, &bucket, &prefix, chrono::Utc::now()).await {
            Ok(n) => aborted += n,
            Err(e) => errors.push(e),
        }
    }
    let run_id = backline::model::run_id(&job.name, scheduled_at);
    eprintln!("interrupted: job {} run {run_id}; aborted {}", job.name, count(aborted as u64, "open multipart upload"));
    for error in &errors {
        eprintln!("could not abort a multipart upload: {error}");
    }
    if !dry_run {
        let store = ControlStore::new(clients.s3.clone(), &job.control());
        let record = serde_json::json!({
            "job": job.name,
            "run_id": run_id,
            "status": "interrupted",
            "interrupted_at": chrono::Utc::now(),
            "aborted_uploads": aborted,
        });
        let dir = format!("runs/{}/{run_id}/", job.name);
        match store.put_json(&format!("{dir}interrupted.json"), &record).await {
            Ok(key) => eprintln!("recorded at s3://{}/{key}", store.bucket()),
            Err(e) => eprintln!("could not record the interruption: {e}"),
        }
    }
    EXIT_INTERRUPTED
}

/// `1 object`, `2 objects`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Items listed by name after a run, per status, before "and N more".
const LISTED: usize = 5;

fn print_plan(plan: &PlanSummary) -> u8 {
    println!(
        "{} (dry run): would copy {} ({}), mark {} deleted, skip {}; {} unchanged; {}",
        plan.job,
        count(plan.to_copy, "object"),
        HumanBytes(plan.bytes_to_copy),
        plan.to_mark_deleted,
        plan.to_skip,
        plan.unchanged,
        count(plan.chunks.into(), "chunk"),
    );
    for note in &plan.notes {
        println!("  {note}");
    }
    if !plan.first_tasks.is_empty() {
        println!("  first tasks:");
    }
    for task in &plan.first_tasks {
        let bytes = task.bytes.map(|b| format!(" ({})", HumanBytes(b))).unwrap_or_default();
        println!("    {:<12} {}{bytes}{}", task.verb, task.subject, task.tail);
    }
    EXIT_OK
}

fn print_manifest(plan: &PlanSummary, manifest: &Manifest, job: &Job) -> u8 {
    let c = &manifest.counts;
    let seconds = (manifest.finished_at - manifest.started_at).num_milliseconds().max(1) as f64 / 1000.0;
    println!("{}: run {} {} in {seconds:.1} s", manifest.job, manifest.run_id, manifest.status);
    println!(
        "  copied {} ({}), tagged {} deleted, deleted {}, skipped {}, failed {}, unchanged {}",
        count(c.copied, "object"),
        HumanBytes(c.bytes_copied),
        c.tagged_deleted,
        c.deleted,
        c.skipped,
        c.failed,
        plan.unchanged
    );
    // The names, so nobody has to open the report to learn which ones and why.
    for (label, status) in [("failed", backline::model::Status::Failed), ("skipped", backline::model::Status::Skipped)]
    {
        let matching: Vec<_> = manifest.tasks.iter().filter(|o| o.status == status).collect();
        for outcome in matching.iter().take(LISTED) {
            println!("  {label} {:?}: {}", outcome.key, outcome.detail.as_deref().unwrap_or("no reason given"));
        }
        if matching.len() > LISTED {
            println!("  … and {} more {label} (in the report)", matching.len() - LISTED);
        }
    }
    for note in plan.notes.iter().filter(|n| n.starts_with("warning")) {
        println!("  {note}");
    }
    println!("  report: {}", report_url(&job.control(), &manifest.job, &manifest.run_id));
    if c.failed > 0 { EXIT_TASKS_FAILED } else { EXIT_OK }
}

/// `--output-dir`: the run's manifest and report as files, named by the run's start time as the
/// tools Backline replaces name them (the job's name added if two runs share a second).
fn write_records(dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("--output-dir {}: cannot create it", dir.display()))?;
    let stamp = manifest.started_at.format("%Y%m%d_%H%M%S").to_string();
    let mut names = (format!("backup_manifest_{stamp}.json"), format!("backup_report_{stamp}.txt"));
    if dir.join(&names.0).exists() || dir.join(&names.1).exists() {
        names = (
            format!("backup_manifest_{stamp}_{}.json", manifest.job),
            format!("backup_report_{stamp}_{}.txt", manifest.job),
        );
    }
    let json = serde_json::to_vec_pretty(manifest).context("manifest as JSON")?;
    for (name, body) in [(&names.0, json), (&names.1, render_report(manifest).into_bytes())] {
        let path = dir.join(name);
        std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("  wrote {} and {} in {}", names.0, names.1, dir.display());
    Ok(())
}
