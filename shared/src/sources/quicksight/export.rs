//! One bundle's export: take one of the account's export slots, start the job, look at it
//! between waits in the queue (never sleeping in a worker), stream the zip into S3.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_quicksight::error::ProvideErrorMetadata;
use aws_sdk_quicksight::types::{AssetBundleExportFormat, AssetBundleExportJobStatus};

use super::QuickSightJob;
use super::client::{Asset, QuickSight, no_retries, start_should_wait};
use super::task::{BundleTask, QuickSightTask};
use crate::aws::error_text;
use crate::aws::stream_upload::{Destination, PART_SIZE, stream_to_s3};
use crate::model::{Outcome, Status};
use crate::pipeline::kind::{JobContext, KindTask, Step};
use crate::pipeline::slots::Slot;

/// QuickSight runs at most this many export jobs per account at once.
pub const EXPORT_SLOTS: u32 = 5;
/// A slot's lease; every look at the job renews it.
const LEASE: Duration = Duration::from_secs(20 * 60);
/// Downloads of a finished bundle before it counts as failed.
const MAX_DOWNLOADS: u32 = 4;

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client")
    })
}

fn slot_resource(qs: &QuickSight) -> String {
    format!("quicksight-export#{}", qs.account)
}

/// The export job's id: the run and the bundle, so a redelivered task finds its own job.
pub fn job_id(run_id: &str, name: &str) -> String {
    let clean = |s: &str| {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect::<String>()
    };
    let mut id = format!("backline-{}-{}", clean(run_id), clean(name));
    id.truncate(512);
    id
}

type BundleStep = Step<QuickSightTask>;

fn wait(task: BundleTask, after: Duration) -> BundleStep {
    Step::Wait(QuickSightTask::Bundle(task), after)
}

fn outcome(task: &BundleTask, status: Status) -> Outcome {
    QuickSightTask::Bundle(task.clone()).outcome(status)
}

pub async fn step(cx: &JobContext<'_>, spec: &QuickSightJob, qs: &QuickSight, task: &BundleTask) -> BundleStep {
    if task.stored_since.is_some()
        && let Some(found) = already_stored(cx, task).await
    {
        return Step::Done(found);
    }
    let resource = slot_resource(qs);
    let poll = spec.poll_interval.0;
    let Some(id) = task.job_id.clone() else {
        return start(cx, spec, qs, task, &resource).await;
    };
    let described = qs
        .client
        .describe_asset_bundle_export_job()
        .aws_account_id(&qs.account)
        .asset_bundle_export_job_id(&id)
        .send()
        .await;
    let described = match described {
        Ok(described) => described,
        Err(err) if err.code() == Some("ResourceNotFoundException") => {
            // The job is gone (QuickSight keeps jobs 14 days): export again.
            release(cx, &resource, &id).await;
            return wait(BundleTask { job_id: None, ..task.clone() }, poll);
        }
        Err(err) => {
            tracing::warn!(job = %id, error = %error_text(&err), "DescribeAssetBundleExportJob failed; looking again later");
            return wait(task.clone(), poll);
        }
    };
    match described.job_status() {
        Some(AssetBundleExportJobStatus::Successful) => {
            release(cx, &resource, &id).await;
            let url = described.download_url().unwrap_or_default().to_string();
            download(cx, task, url).await
        }
        Some(AssetBundleExportJobStatus::Failed) => {
            release(cx, &resource, &id).await;
            let errors: Vec<ExportError> = described
                .errors()
                .iter()
                .map(|e| ExportError {
                    arn: e.arn().unwrap_or_default().to_string(),
                    kind: e.r#type().unwrap_or_default().to_string(),
                    message: e.message().unwrap_or_default().to_string(),
                })
                .collect();
            after_failure(task, &errors, poll)
        }
        _ => {
            // Still queued or running: keep the slot another lease.
            let slot = Slot { resource: &resource, limit: EXPORT_SLOTS, holder: &id, lease: LEASE };
            if let Err(err) = cx.engine.ledger.acquire_slot(&slot).await {
                tracing::warn!(error = %err, "could not renew the export slot");
            }
            wait(task.clone(), poll)
        }
    }
}

async fn start(
    cx: &JobContext<'_>,
    spec: &QuickSightJob,
    qs: &QuickSight,
    task: &BundleTask,
    resource: &str,
) -> BundleStep {
    let id = job_id(&cx.run.run_id, &task.name);
    let slot = Slot { resource, limit: EXPORT_SLOTS, holder: &id, lease: LEASE };
    match cx.engine.ledger.acquire_slot(&slot).await {
        Ok(true) => {}
        // Every slot is taken: try again at the next look.
        Ok(false) => return wait(task.clone(), spec.poll_interval.0),
        Err(err) => {
            tracing::warn!(error = %err, "could not take an export slot; trying again later");
            return wait(task.clone(), spec.poll_interval.0);
        }
    }
    let arns: Vec<String> = task.assets.iter().map(|a| a.arn.clone()).collect();
    let started = qs
        .client
        .start_asset_bundle_export_job()
        .aws_account_id(&qs.account)
        .asset_bundle_export_job_id(&id)
        .set_resource_arns(Some(arns))
        .include_all_dependencies(spec.include_dependencies)
        .include_permissions(spec.include_permissions)
        .include_tags(spec.include_tags)
        .export_format(AssetBundleExportFormat::QuicksightJson)
        .customize()
        .config_override(no_retries())
        .send()
        .await;
    let started_task = BundleTask { job_id: Some(id.clone()), ..task.clone() };
    match started {
        Ok(_) => wait(started_task, spec.poll_interval.0),
        // A job of this id is running: an earlier delivery of this task started it.
        Err(err) if err.code() == Some("ConflictException") => wait(started_task, spec.poll_interval.0),
        // Jobs Backline did not start fill the account's quota, or the call got no answer:
        // start again at the next look.
        Err(err) if start_should_wait(&err) => {
            release(cx, resource, &id).await;
            wait(task.clone(), spec.poll_interval.0)
        }
        Err(err) => {
            release(cx, resource, &id).await;
            Step::Done(
                outcome(task, Status::Failed).with_detail(format!("StartAssetBundleExportJob: {}", error_text(&err))),
            )
        }
    }
}

async fn release(cx: &JobContext<'_>, resource: &str, holder: &str) {
    if let Err(err) = cx.engine.ledger.release_slot(resource, holder).await {
        // The lease frees it in time.
        tracing::warn!(error = %err, "could not release the export slot");
    }
}

/// The zip a delivery that stopped may have stored without recording it. Its key carries the
/// run's time, so only this run writes it, and a zip is written whole or not at all (a single
/// PutObject, or a multipart upload that completes at once).
async fn already_stored(cx: &JobContext<'_>, task: &BundleTask) -> Option<Outcome> {
    let head = cx.engine.clients.s3.head_object().bucket(&task.bucket).key(&task.key).send().await.ok()?;
    Some(
        Outcome {
            bytes: head.content_length().unwrap_or(0).max(0) as u64,
            target_etag: head.e_tag().map(str::to_string),
            ..outcome(task, Status::Ok)
        }
        .with_detail("in the backup already: stored by a delivery that stopped before recording it"),
    )
}

/// Streams the finished bundle into S3. A URL that expired (it lives 5 minutes) is asked for
/// afresh with the next look.
async fn download(cx: &JobContext<'_>, task: &BundleTask, url: String) -> BundleStep {
    let again = BundleTask { downloads: task.downloads + 1, ..task.clone() };
    let failed = |detail: String| {
        if again.downloads >= MAX_DOWNLOADS {
            Step::Done(outcome(task, Status::Failed).with_detail(detail))
        } else {
            tracing::warn!(bundle = %task.name, "{detail}; trying again");
            wait(again.clone(), Duration::from_secs(1))
        }
    };
    let response = match http().get(&url).send().await {
        Ok(response) => response,
        Err(err) => return failed(format!("download of the bundle: {err}")),
    };
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let expired = body.contains("expired");
        let what = if expired { "the download URL expired" } else { "the download was refused" };
        return failed(format!("{what} (HTTP {status})"));
    }
    let to = Destination {
        bucket: &task.bucket,
        key: &task.key,
        tags: &[],
        storage_class: None,
        content_type: "application/zip",
    };
    match stream_to_s3(&cx.engine.clients.s3, &to, response.bytes_stream(), PART_SIZE).await {
        Ok(uploaded) => {
            Step::Done(Outcome { bytes: uploaded.bytes, target_etag: uploaded.etag, ..outcome(task, Status::Ok) })
        }
        Err(err) => failed(format!("writing s3://{}/{}: {err}", task.bucket, task.key)),
    }
}

/// One entry of a failed job's `Errors`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportError {
    pub arn: String,
    pub kind: String,
    pub message: String,
}

impl ExportError {
    /// QuickSight cannot export this asset at all (a file data set, a data source type the
    /// bundle API does not take): asking again will not help.
    fn unsupported(&self) -> bool {
        let text = format!("{} {}", self.kind, self.message).to_ascii_lowercase();
        text.contains("unsupported") || text.contains("not supported")
    }
}

/// What a failed export becomes: its unexportable assets skipped with the reason and the rest
/// exported again; else the bundle split in halves, once (or until the asset QuickSight cannot
/// export is alone); else a failure naming QuickSight's errors.
pub fn after_failure(task: &BundleTask, errors: &[ExportError], poll: Duration) -> BundleStep {
    let own: HashSet<&str> = task.assets.iter().map(|a| a.arn.as_str()).collect();
    let unexportable: Vec<&ExportError> =
        errors.iter().filter(|e| e.unsupported() && own.contains(e.arn.as_str())).collect();
    let reasons =
        || errors.iter().map(|e| format!("{}: {} ({})", e.arn, e.message, e.kind)).collect::<Vec<_>>().join("; ");
    let skipped = |asset: &Asset, reason: &str| {
        let mut outcome = outcome(&BundleTask { assets: vec![asset.clone()], ..task.clone() }, Status::Skipped);
        outcome.key = format!("{}/{}", task.asset_type, asset.id);
        outcome.target_key = None;
        outcome.with_detail(format!("QuickSight cannot export it: {reason}"))
    };
    if !unexportable.is_empty() {
        let done: Vec<Outcome> = task
            .assets
            .iter()
            .filter_map(|a| unexportable.iter().find(|e| e.arn == a.arn).map(|e| skipped(a, &e.message)))
            .collect();
        let rest: Vec<Asset> =
            task.assets.iter().filter(|a| !unexportable.iter().any(|e| e.arn == a.arn)).cloned().collect();
        let waiting = if rest.is_empty() {
            Vec::new()
        } else {
            vec![QuickSightTask::Bundle(BundleTask { assets: rest, job_id: None, downloads: 0, ..task.clone() })]
        };
        return Step::Many { done, waiting, after: Duration::from_secs(1) };
    }
    // An asset this bundle needs (a dependency) cannot be exported: halves find which of ours.
    let dependency_unexportable = !errors.is_empty() && errors.iter().all(ExportError::unsupported);
    if task.assets.len() == 1 && dependency_unexportable {
        return Step::Many { done: vec![skipped(&task.assets[0], &reasons())], waiting: Vec::new(), after: poll };
    }
    // One asset failing for no fault of its own (an InternalFailure): no halves to try, so the
    // same export once more.
    if task.assets.len() == 1 && !task.split {
        tracing::warn!(bundle = %task.name, errors = %reasons(), "export failed; trying once more");
        let again = QuickSightTask::Bundle(BundleTask { split: true, job_id: None, downloads: 0, ..task.clone() });
        return Step::Many { done: Vec::new(), waiting: vec![again], after: Duration::from_secs(1) };
    }
    if task.assets.len() > 1 && (!task.split || dependency_unexportable) {
        let middle = task.assets.len() / 2;
        let half = |n: usize, assets: &[Asset]| {
            let name = format!("{}_part_{n}", task.name);
            let key = task.key.replacen(&format!("/{}-", task.name), &format!("/{name}-"), 1);
            QuickSightTask::Bundle(BundleTask {
                name,
                key,
                assets: assets.to_vec(),
                split: true,
                job_id: None,
                downloads: 0,
                ..task.clone()
            })
        };
        tracing::warn!(bundle = %task.name, errors = %reasons(), "export failed; trying again in halves");
        let waiting = vec![half(1, &task.assets[..middle]), half(2, &task.assets[middle..])];
        return Step::Many { done: Vec::new(), waiting, after: Duration::from_secs(1) };
    }
    let detail = if errors.is_empty() { "the export job FAILED without saying why".to_string() } else { reasons() };
    Step::Done(outcome(task, Status::Failed).with_detail(format!("export failed: {detail}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::quicksight::AssetType;

    fn bundle(n: usize) -> BundleTask {
        BundleTask {
            asset_type: AssetType::Dashboards,
            name: "dashboards_bundle_1".into(),
            bucket: "b".into(),
            key: "p/2026/11/23/dashboards/dashboards_bundle_1-010203.zip".into(),
            assets: (0..n)
                .map(|i| Asset { id: format!("d{i}"), arn: format!("arn:d{i}"), name: String::new() })
                .collect(),
            split: false,
            job_id: Some("j".into()),
            downloads: 0,
            stored_since: None,
        }
    }

    fn error(arn: &str, kind: &str) -> ExportError {
        ExportError { arn: arn.into(), kind: kind.into(), message: "m".into() }
    }

    fn waiting(step: &BundleStep) -> Vec<BundleTask> {
        match step {
            Step::Many { waiting, .. } => waiting
                .iter()
                .map(|t| match t {
                    QuickSightTask::Bundle(b) => b.clone(),
                    QuickSightTask::Record(_) => panic!("a bundle"),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn an_unexportable_asset_is_skipped_and_the_rest_exported_again() {
        let step = after_failure(&bundle(3), &[error("arn:d1", "UnsupportedResourceException")], Duration::ZERO);
        let Step::Many { done, .. } = &step else { panic!("many") };
        assert_eq!((done.len(), done[0].status, done[0].key.as_str()), (1, Status::Skipped, "dashboards/d1"));
        let rest = waiting(&step);
        assert_eq!(rest[0].asset_ids(), ["d0", "d2"]);
        assert_eq!((rest[0].job_id.as_deref(), rest[0].split), (None, false));
    }

    #[test]
    fn a_failed_bundle_of_one_asset_is_tried_once_more_then_fails() {
        let task = bundle(1);
        let step = after_failure(&task, &[error("arn:job", "InternalFailureException")], Duration::ZERO);
        let again = waiting(&step);
        assert_eq!((again.len(), again[0].split, again[0].key.as_str()), (1, true, task.key.as_str()));
        let last = after_failure(&again[0], &[error("arn:job", "InternalFailureException")], Duration::ZERO);
        assert!(matches!(last, Step::Done(ref o) if o.status == Status::Failed));
    }

    #[test]
    fn a_failed_bundle_is_split_once_then_fails() {
        let step = after_failure(&bundle(5), &[error("arn:job", "InternalFailureException")], Duration::ZERO);
        let halves = waiting(&step);
        assert_eq!(halves.iter().map(|h| h.assets.len()).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(halves[1].name, "dashboards_bundle_1_part_2");
        assert_eq!(halves[1].key, "p/2026/11/23/dashboards/dashboards_bundle_1_part_2-010203.zip");
        assert!(halves.iter().all(|h| h.split && h.job_id.is_none()));
        let again = after_failure(&halves[1], &[error("arn:job", "InternalFailureException")], Duration::ZERO);
        let Step::Done(outcome) = again else { panic!("done") };
        assert_eq!(outcome.status, Status::Failed);
        assert!(outcome.detail.unwrap().contains("InternalFailureException"));
    }

    #[test]
    fn an_unexportable_dependency_is_found_by_halving_and_its_dependent_skipped() {
        let mut task = bundle(2);
        task.split = true;
        let unsupported = [error("arn:dataset-upload", "UnsupportedResourceException")];
        assert_eq!(waiting(&after_failure(&task, &unsupported, Duration::ZERO)).len(), 2);
        let Step::Many { done, waiting, .. } = after_failure(&bundle(1), &unsupported, Duration::ZERO) else {
            panic!()
        };
        assert_eq!((done[0].status, waiting.len()), (Status::Skipped, 0));
    }
}
