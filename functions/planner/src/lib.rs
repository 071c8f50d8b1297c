//! Planner handler: an EventBridge event, a plain request or a bare schedule -> plan each job
//! and send its chunks to the work queue.

use backline::Engine;
use backline::model::RunRef;
use backline::pipeline::events::{parse_planner_event, resolve_jobs};
use backline::pipeline::planner::{self, PlanSummary};
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct PlannerResponse {
    pub runs: Vec<PlanSummary>,
}

pub async fn handler(
    engine: &Engine,
    config: Option<&str>,
    event: LambdaEvent<Value>,
) -> Result<PlannerResponse, Error> {
    let request = parse_planner_event(event.payload)?;
    let jobs = resolve_jobs(request, config, &engine.clients.s3).await?;
    let mut runs = Vec::with_capacity(jobs.len());
    let mut errors = Vec::new();
    // One job's failure does not stop the others; a retried event skips the runs already planned.
    for (job, time, dry_run) in jobs {
        let run = RunRef::new(&job, time.unwrap_or_else(Utc::now));
        match planner::plan(engine, &job, &run, dry_run).await {
            Ok(summary) => runs.push(summary),
            Err(err) => {
                tracing::error!(job = %job.name, run = %run.run_id, error = %err, "planning failed");
                errors.push(format!("job {}: {err}", job.name));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; ").into());
    }
    Ok(PlannerResponse { runs })
}

/// The function as Lambda runs it: the engine and job file from the environment, then the
/// runtime loop (`AWS_LAMBDA_RUNTIME_API`). `main` and the tests that run it as a process call this.
pub async fn serve() -> Result<(), Error> {
    let deployment = backline::pipeline::Deployment::from_env()?;
    let engine = deployment.engine(backline::aws::AwsClients::from_env().await);
    let config = deployment.config.as_deref();
    lambda_runtime::run(lambda_runtime::service_fn(|event| handler(&engine, config, event))).await
}
