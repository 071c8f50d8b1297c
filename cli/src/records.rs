//! `backline runs`, `status` and `verify`: reading what runs left behind, writing nothing.

use backline::Job;
use backline::aws::AwsClients;
use backline::pipeline::{DynamoLedger, Ledger, deployment};
use backline::store::ControlStore;
use indicatif::HumanBytes;

use crate::run::load_jobs;
use crate::{EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_OK};

fn one_job(file: &str, job: Option<&str>) -> Result<Job, u8> {
    let mut jobs = load_jobs(file, job)?;
    if jobs.len() > 1 {
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        eprintln!("error: {file} has {} jobs ({}); pick one with --job", jobs.len(), names.join(", "));
        return Err(EXIT_BAD_INPUT);
    }
    Ok(jobs.remove(0))
}

pub async fn runs(file: &str, job: Option<&str>) -> u8 {
    let job = match one_job(file, job) {
        Ok(job) => job,
        Err(code) => return code,
    };
    let clients = AwsClients::from_env().await;
    let store = ControlStore::new(clients.s3.clone(), &job.control());
    println!(
        "{:<40} {:<20} {:<9} {:>8} {:>10} {:>8} {:>8} {:>7}",
        "RUN", "FINISHED (UTC)", "STATUS", "COPIED", "BYTES", "DELETED", "SKIPPED", "FAILED"
    );
    let mut shown = 0;
    for name in [job.name.clone(), format!("{}-restore", job.name)] {
        let manifests = match store.manifests(&name).await {
            Ok(manifests) => manifests,
            Err(err) => {
                eprintln!("error: {err}");
                return EXIT_BAD_INPUT;
            }
        };
        for m in &manifests {
            let c = &m.counts;
            println!(
                "{:<40} {:<20} {:<9} {:>8} {:>10} {:>8} {:>8} {:>7}",
                m.run_id,
                m.finished_at.format("%Y-%m-%d %H:%M:%S"),
                m.status,
                c.copied,
                HumanBytes(c.bytes_copied).to_string(),
                c.tagged_deleted,
                c.skipped,
                c.failed
            );
        }
        shown += manifests.len();
    }
    if shown == 0 {
        eprintln!("no finished runs of {} in s3://{}/{}", job.name, store.bucket(), store.prefix());
    }
    EXIT_OK
}

pub async fn status(file: &str, job: Option<&str>, run_id: &str) -> u8 {
    let job = match one_job(file, job) {
        Ok(job) => job,
        Err(code) => return code,
    };
    let restore = format!("{}-restore", job.name);
    let record_job = if run_id.starts_with(&format!("{restore}-")) { restore } else { job.name.clone() };
    let clients = AwsClients::from_env().await;
    let store = ControlStore::new(clients.s3.clone(), &job.control());
    match store.manifest(&record_job, run_id).await {
        Ok(Some(m)) => {
            let c = &m.counts;
            println!(
                "{run_id}: finished {} at {}: {} copied ({}), {} tagged deleted, {} skipped, {} failed",
                m.status,
                m.finished_at.format("%Y-%m-%d %H:%M:%S UTC"),
                c.copied,
                HumanBytes(c.bytes_copied),
                c.tagged_deleted,
                c.skipped,
                c.failed
            );
            return EXIT_OK;
        }
        Ok(None) => {}
        Err(err) => {
            eprintln!("error: {err}");
            return EXIT_BAD_INPUT;
        }
    }
    if let Ok(table) = std::env::var(deployment::LEDGER_TABLE) {
        let ledger = DynamoLedger::new(clients.dynamodb.clone(), table);
        match ledger.progress(run_id).await {
            Ok(Some(p)) => {
                let expected = p.expected.map(|e| e.to_string()).unwrap_or_else(|| "? (still planning)".into());
                println!(
                    "{run_id}: {}: {} of {expected} chunks done, {} objects waiting for archive retrieval",
                    p.status, p.done, p.waiting
                );
                return EXIT_OK;
            }
            Ok(None) => {}
            Err(err) => eprintln!("warning: {err}"),
        }
    }
    let dir = format!("runs/{record_job}/{run_id}/outcomes/");
    match store.list(&dir).await {
        Ok(results) if !results.is_empty() => {
            println!(
                "{run_id}: not finished: {} chunk results recorded (set {} to ask a deployment's ledger for more)",
                results.len(),
                deployment::LEDGER_TABLE
            );
            EXIT_OK
        }
        Ok(_) => {
            eprintln!("error: no run {run_id} of {record_job} in s3://{}/{}", store.bucket(), store.prefix());
            EXIT_BAD_INPUT
        }
        Err(err) => {
            eprintln!("error: {err}");
            EXIT_BAD_INPUT
        }
    }
}

pub async fn verify(file: &str, job: Option<&str>, deep: bool) -> u8 {
    let job = match one_job(file, job) {
        Ok(job) => job,
        Err(code) => return code,
    };
    let clients = AwsClients::from_env().await;
    let engine = backline::Engine::standalone(clients);
    match job.spec.verify(&engine, &job, deep).await {
        None => {
            eprintln!("error: job {} is a {} job, which cannot be verified", job.name, job.spec.kind());
            EXIT_BAD_INPUT
        }
        Some(Ok(verified)) => {
            print!("{}", verified.report);
            if verified.clean { EXIT_OK } else { EXIT_DRIFT }
        }
        Some(Err(err)) => {
            eprintln!("error: job {}: {err}", job.name);
            crate::exit_code(&err)
        }
    }
}
