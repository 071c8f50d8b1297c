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

/// One metric of a run: name, value, unit.
pub type Metric = (&'static str, f64, StandardUnit);

/// What every run reports; kinds add their own (`Kind::metrics`).
pub fn run_metrics(counts: &Counts, planned_copies: u64) -> Vec<Metric> {
    vec![
        ("ObjectsToBackup", planned_copies as f64, StandardUnit::Count),
        ("ObjectsCopied", counts.copied as f64, StandardUnit::Count),
        ("BytesCopied", counts.bytes_copied as f64, StandardUnit::Bytes),
        ("ObjectsTaggedDeleted", counts.tagged_deleted as f64, StandardUnit::Count),
        ("TasksFailed", counts.failed as f64, StandardUnit::Count),
    ]
}

/// The metrics as one Embedded Metric Format log line: CloudWatch makes them metrics of the
/// `Backline` namespace with the `Job` dimension, with no API call from the function.
pub fn emf_line(job: &str, metrics: &[Metric], at: chrono::DateTime<chrono::Utc>) -> String {
    let definitions: Vec<serde_json::Value> =
        metrics.iter().map(|(name, _, unit)| serde_json::json!({"Name": name, "Unit": unit.as_str()})).collect();
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["Job"]], "Metrics": definitions}]
        },
        "Job": job,
    });
    for (name, value, _) in metrics {
        line[*name] = serde_json::json!(value);
    }
    line.to_string()
}

/// PutMetricData (the CLI); best-effort.
pub async fn publish(client: &aws_sdk_cloudwatch::Client, job: &str, metrics: &[Metric]) {
    let dimension = Dimension::builder().name("Job").value(job).build();
    let data: Vec<MetricDatum> = metrics
        .iter()
        .map(|(name, value, unit)| {
            MetricDatum::builder()
                .metric_name(*name)
                .dimensions(dimension.clone())
                .value(*value)
                .unit(unit.clone())
                .build()
        })
        .collect();
    let result = client.put_metric_data().namespace(NAMESPACE).set_metric_data(Some(data)).send().await;
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
        let metrics = run_metrics(&Counts::default(), objects_to_back_up(&outcomes));
        let to_back_up = metrics.iter().find(|m| m.0 == "ObjectsToBackup").unwrap();
        assert_eq!(to_back_up.1, 3.0);
    }

    /// The EMF specification: `_aws.Timestamp` in epoch milliseconds, `CloudWatchMetrics` with a
    /// namespace, dimension sets naming top-level string members, metric definitions (at most
    /// 100) each naming a top-level number, units from CloudWatch's list.
    #[test]
    fn emf_lines_are_what_the_specification_asks() {
        let mut metrics = run_metrics(&Counts { copied: 3, ..Default::default() }, 4);
        metrics.push(("Bundles", 2.0, StandardUnit::Count));
        let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let line: serde_json::Value = serde_json::from_str(&emf_line("photos", &metrics, at)).unwrap();
        let aws = &line["_aws"];
        assert_eq!(aws["Timestamp"], 1_795_000_000_000i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Backline");
        for set in directive["Dimensions"].as_array().unwrap() {
            for dimension in set.as_array().unwrap() {
                assert!(line[dimension.as_str().unwrap()].is_string(), "dimension {dimension} is a top-level string");
            }
        }
        let definitions = directive["Metrics"].as_array().unwrap();
        assert!(!definitions.is_empty() && definitions.len() <= 100);
        let units = ["Count", "Bytes", "Seconds", "None"];
        for definition in definitions {
            let name = definition["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} is a top-level number");
            assert!(units.contains(&definition["Unit"].as_str().unwrap()), "{definition}");
        }
        assert_eq!((line["ObjectsCopied"].as_f64(), line["Bundles"].as_f64()), (Some(3.0), Some(2.0)));
    }
}
