//! Telling people and systems how a run went.

pub mod metrics;
pub mod webhook;

use serde::Serialize;

use crate::model::{Counts, RunRef, Status};
use crate::pipeline::EngineError;
use crate::store::Manifest;

/// What a failure notification says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub job: String,
    pub run_id: String,
    /// `failed` (finished with failed tasks) or `plan_failed` (could not run).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// The first errors, `key: what went wrong`.
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

const FIRST_ERRORS: usize = 10;

impl Failure {
    pub fn of_run(manifest: &Manifest, report: String) -> Failure {
        let errors = manifest
            .tasks
            .iter()
            .filter(|o| o.status == Status::Failed)
            .take(FIRST_ERRORS)
            .map(|o| format!("{}: {}", o.key, o.detail.as_deref().unwrap_or("failed")))
            .collect();
        Failure {
            job: manifest.job.clone(),
            run_id: manifest.run_id.clone(),
            status: manifest.status.clone(),
            counts: Some(manifest.counts.clone()),
            errors,
            report: Some(report),
        }
    }

    pub fn of_plan(run: &RunRef, error: &EngineError) -> Failure {
        Failure {
            job: run.job.clone(),
            run_id: run.run_id.clone(),
            status: "plan_failed".into(),
            counts: None,
            errors: vec![error.to_string()],
            report: None,
        }
    }
}
