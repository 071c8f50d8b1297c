//! CloudWatch metrics per job. Best-effort: a failing endpoint is logged once per process and
//! never fails or stalls a run (the client makes one attempt with short timeouts).

use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::model::{Action, Counts, Outcome};

pub const NAMESPACE: &str = "Backline";

static WARNED: AtomicBool = AtomicBool::new(false);

/// `ObjectsToBackup`: the tasks that were to move data (copies, uploads, restores), whatever
/// became of them.
pub fn objects_to_back_up(outcomes: &[Outcome]) -> u64 {
    outcomes.iter().filter(|o| matches!(o.action, Action::Copy | Action::Restore | Action::Upload)).count() as u64
}

pub fn run_metrics(job: &str, counts: &Counts, planned_copies: u64) -> Vec<MetricDatum> {
    let dimension = Dimension::builder().name("Job").value(job).build();
    [
        ("ObjectsToBackup", planned_copies as f64, StandardUnit::Count),
        ("ObjectsCopied", counts.copied as f64, StandardUnit::Count),
        ("BytesCopied", counts.bytes_copied as f64, StandardUnit::Bytes),
        ("ObjectsTaggedDeleted", counts.tagged_deleted as f64, StandardUnit::Count),
        ("TasksFailed", counts.failed as f64, StandardUnit::Count),
    ]
    .into_iter()
    .map(|(name, value, unit)| {
        MetricDatum::builder().metric_name(name).dimensions(dimension.clone()).value(value).unit(unit).build()
    })
    .collect()
}

pub async fn publish_run(client: &aws_sdk_cloudwatch::Client, job: &str, counts: &Counts, planned_copies: u64) {
    let result = client
        .put_metric_data()
        .namespace(NAMESPACE)
        .set_metric_data(Some(run_metrics(job, counts, planned_copies)))
        .send()
        .await;
    if let Err(err) = result
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            error = %aws_smithy_types::error::display::DisplayErrorContext(&err),
            "could not publish CloudWatch metrics; the run goes on without them (logged once)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    #[test]
    fn folder_uploads_count_as_objects_to_back_up() {
        let outcomes = [
            Outcome::new(Action::Upload, "srv/a", Status::Ok),
            Outcome::new(Action::Upload, "srv/b", Status::Failed),
            Outcome::new(Action::Delete, "srv/c", Status::Ok),
            Outcome::new(Action::Copy, "x", Status::Ok),
            Outcome::new(Action::Skip, "y", Status::Skipped),
        ];
        assert_eq!(objects_to_back_up(&outcomes), 3);
        let metrics = run_metrics("job", &Counts::default(), objects_to_back_up(&outcomes));
        let to_back_up = metrics.iter().find(|m| m.metric_name() == Some("ObjectsToBackup")).unwrap();
        assert_eq!(to_back_up.value(), Some(3.0));
    }
}
