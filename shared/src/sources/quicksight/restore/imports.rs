//! The day's bundles imported from S3 with `FailureAction=ROLLBACK`, a type at a time (data
//! sources, data sets, analyses, dashboards), at most 5 import jobs per account at once.

use std::time::Duration;

use aws_sdk_quicksight::error::ProvideErrorMetadata;
use aws_sdk_quicksight::types::{AssetBundleImportFailureAction, AssetBundleImportJobStatus, AssetBundleImportSource};

use super::task::{BundleRef, Imports, QuickSightRestoreTask};
use crate::aws::error_text;
use crate::model::{Outcome, Status};
use crate::pipeline::kind::{JobContext, Step};
use crate::pipeline::slots::Slot;
use crate::sources::quicksight::QuickSight;
use crate::sources::quicksight::client::{no_retries, start_should_wait};
use crate::sources::quicksight::export::job_id;

const IMPORT_SLOTS: u32 = 5;
const LEASE: Duration = Duration::from_secs(20 * 60);

enum Look {
    Running(BundleRef),
    Finished(Outcome),
}

pub async fn step(
    cx: &JobContext<'_>,
    qs: &QuickSight,
    imports: &Imports,
    poll: Duration,
) -> Step<QuickSightRestoreTask> {
    let mut stages = imports.stages.clone();
    let mut done = Vec::new();
    while let Some(stage) = stages.first_mut() {
        let mut running = Vec::new();
        for bundle in std::mem::take(stage) {
            match look(cx, qs, bundle).await {
                Look::Running(bundle) => running.push(bundle),
                Look::Finished(outcome) => done.push(outcome),
            }
        }
        if running.is_empty() {
            // The next type starts now: what it needs is in.
            stages.remove(0);
        } else {
            *stage = running;
            break;
        }
    }
    let waiting = if stages.is_empty() { Vec::new() } else { vec![QuickSightRestoreTask::Imports(Imports { stages })] };
    Step::Many { done, waiting, after: poll }
}

async fn look(cx: &JobContext<'_>, qs: &QuickSight, mut bundle: BundleRef) -> Look {
    let resource = format!("quicksight-import#{}", qs.account);
    let Some(id) = bundle.job_id.clone() else {
        let id = job_id(&cx.run.run_id, &bundle.name());
        let slot = Slot { resource: &resource, limit: IMPORT_SLOTS, holder: &id, lease: LEASE };
        if !cx.engine.ledger.acquire_slot(&slot).await.unwrap_or(false) {
            return Look::Running(bundle);
        }
        let source =
            AssetBundleImportSource::builder().s3_uri(format!("s3://{}/{}", bundle.bucket, bundle.key)).build();
        let started = qs
            .client
            .start_asset_bundle_import_job()
            .aws_account_id(&qs.account)
            .asset_bundle_import_job_id(&id)
            .asset_bundle_import_source(source)
            .failure_action(AssetBundleImportFailureAction::Rollback)
            .customize()
            .config_override(no_retries())
            .send()
            .await;
        return match started {
            Ok(_) => {
                bundle.job_id = Some(id);
                Look::Running(bundle)
            }
            Err(err) if err.code() == Some("ConflictException") => {
                bundle.job_id = Some(id);
                Look::Running(bundle)
            }
            Err(err) if start_should_wait(&err) => {
                release(cx, &resource, &id).await;
                Look::Running(bundle)
            }
            Err(err) => {
                release(cx, &resource, &id).await;
                let detail = format!("StartAssetBundleImportJob: {}", error_text(&err));
                Look::Finished(bundle.outcome(Status::Failed).with_detail(detail))
            }
        };
    };
    let described = qs
        .client
        .describe_asset_bundle_import_job()
        .aws_account_id(&qs.account)
        .asset_bundle_import_job_id(&id)
        .send()
        .await;
    let described = match described {
        Ok(described) => described,
        Err(err) => {
            tracing::warn!(job = %id, error = %error_text(&err), "DescribeAssetBundleImportJob failed; looking again later");
            return Look::Running(bundle);
        }
    };
    let errors = || {
        described
            .errors()
            .iter()
            .map(|e| {
                format!("{}: {} ({})", e.arn().unwrap_or("?"), e.message().unwrap_or(""), e.r#type().unwrap_or(""))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match described.job_status() {
        Some(AssetBundleImportJobStatus::Successful) => {
            release(cx, &resource, &id).await;
            Look::Finished(bundle.outcome(Status::Ok).with_detail(format!("imported ({} assets)", bundle.assets.len())))
        }
        Some(
            status @ (AssetBundleImportJobStatus::Failed
            | AssetBundleImportJobStatus::FailedRollbackCompleted
            | AssetBundleImportJobStatus::FailedRollbackError),
        ) => {
            release(cx, &resource, &id).await;
            let detail = format!("import job {id} ended {}: {}", status.as_str(), errors());
            Look::Finished(bundle.outcome(Status::Failed).with_detail(detail))
        }
        _ => {
            let slot = Slot { resource: &resource, limit: IMPORT_SLOTS, holder: &id, lease: LEASE };
            let _ = cx.engine.ledger.acquire_slot(&slot).await;
            Look::Running(bundle)
        }
    }
}

async fn release(cx: &JobContext<'_>, resource: &str, holder: &str) {
    if let Err(err) = cx.engine.ledger.release_slot(resource, holder).await {
        tracing::warn!(error = %err, "could not release the import slot");
    }
}
