//! `backline verify`: compare a source with its backup, writing nothing.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use aws_sdk_s3::types::ChecksumMode;
use futures::{StreamExt, stream};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::S3Job;
use crate::aws::error_text;
use crate::config::Job;
use crate::pipeline::EngineError;
use crate::store::ControlStore;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Drift {
    pub checked: u64,
    pub matched: u64,
    /// In the source, not in the backup.
    pub missing: Vec<String>,
    /// In both, but size, ETag or (with `--deep`) content differ.
    pub different: Vec<(String, String)>,
    /// In the backup, gone from the source, and not tagged deleted yet.
    pub stale: Vec<String>,
    /// Could not be compared (archived, unreadable), with the reason.
    pub unverified: Vec<(String, String)>,
}

impl Drift {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.different.is_empty() && self.stale.is_empty()
    }

    pub fn report(&self, job: &str, deep: bool) -> String {
        const LISTED: usize = 50;
        let mut out = String::new();
        let verdict = if self.is_clean() { "in sync" } else { "DRIFT" };
        let _ = writeln!(out, "# Verify `{job}`{}: {verdict}\n", if deep { " (deep)" } else { "" });
        let _ = writeln!(
            out,
            "checked {} source objects: {} match, {} missing, {} different, {} stale, {} unverified",
            self.checked,
            self.matched,
            self.missing.len(),
            self.different.len(),
            self.stale.len(),
            self.unverified.len()
        );
        let sections: [(&str, Vec<String>); 4] = [
            ("Missing from the backup", self.missing.iter().map(|k| format!("`{k}`")).collect()),
            ("Different", self.different.iter().map(|(k, why)| format!("`{k}`: {why}")).collect()),
            ("Stale (gone from the source, not tagged deleted)", self.stale.iter().map(|k| format!("`{k}`")).collect()),
            ("Unverified", self.unverified.iter().map(|(k, why)| format!("`{k}`: {why}")).collect()),
        ];
        for (title, lines) in sections {
            if lines.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n## {title} ({})\n", lines.len());
            for line in lines.iter().take(LISTED) {
                let _ = writeln!(out, "- {line}");
            }
            if lines.len() > LISTED {
                let _ = writeln!(out, "- … and {} more", lines.len() - LISTED);
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
struct Listed {
    size: u64,
    etag: String,
    archived: bool,
}

async fn list(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<BTreeMap<String, Listed>, EngineError> {
    let mut objects = BTreeMap::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| EngineError::service(format!("ListObjectsV2 on `{bucket}`"), error_text(&e)))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let archived = crate::aws::glacier::is_archived(object.storage_class().map(|c| c.as_str()));
            let listed = Listed {
                size: object.size().unwrap_or(0).max(0) as u64,
                etag: object.e_tag().unwrap_or_default().to_string(),
                archived,
            };
            objects.insert(key.to_string(), listed);
        }
    }
    Ok(objects)
}

/// The full-object CRC64NVME checksum S3 keeps for an object, if it has one.
async fn stored_checksum(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<String>, String> {
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(|e| format!("HeadObject {bucket}: {}", error_text(&e)))?;
    Ok(head.checksum_crc64_nvme().map(str::to_string))
}

/// A SHA-256 of the object's content, streamed.
async fn content_hash(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String, String> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("GetObject {bucket}: {}", error_text(&e)))?;
    let mut body = object.body;
    let mut hasher = Sha256::new();
    while let Some(bytes) = body.try_next().await.map_err(|e| format!("reading {bucket}: {e}"))? {
        hasher.update(&bytes);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Compares content: by the checksums S3 keeps when both sides have one, else by hashing both.
async fn same_content(s3: &aws_sdk_s3::Client, spec: &S3Job, key: &str, target_key: &str) -> Result<bool, String> {
    let (source, target) = (spec.source.bucket.as_str(), spec.target.bucket.as_str());
    if let (Some(a), Some(b)) =
        (stored_checksum(s3, source, key).await?, stored_checksum(s3, target, target_key).await?)
    {
        return Ok(a == b);
    }
    Ok(content_hash(s3, source, key).await? == content_hash(s3, target, target_key).await?)
}

/// Multipart ETags depend on the part size, and SSE-KMS ETags are not MD5s: only two plain
/// ETags can be compared.
fn comparable(a: &str, b: &str) -> bool {
    !a.contains('-') && !b.contains('-')
}

pub async fn verify(s3: &aws_sdk_s3::Client, job: &Job, spec: &S3Job, deep: bool) -> Result<Drift, EngineError> {
    let control = ControlStore::new(s3.clone(), &job.control());
    let source = list(s3, spec.source.bucket.as_str(), &spec.source.prefix).await?;
    let mut backup = list(s3, spec.target.bucket.as_str(), &spec.target.prefix).await?;
    if control.bucket() == spec.target.bucket.as_str() {
        backup.retain(|key, _| !key.starts_with(control.prefix()));
    }
    let source_label = format!("s3://{}/{}", spec.source.bucket, spec.source.prefix);
    let tombstones: HashSet<String> = match control.read_state(&job.name).await? {
        Some(state) if state.source == source_label => {
            state.entries.into_iter().filter(|e| e.deleted).map(|e| e.key).collect()
        }
        _ => HashSet::new(),
    };

    let mut drift = Drift::default();
    let mut to_fingerprint = Vec::new();
    for (key, listed) in &source {
        drift.checked += 1;
        let target_key = super::target_key(spec, key);
        let Some(copy) = backup.remove(&target_key) else {
            drift.missing.push(key.clone());
            continue;
        };
        if listed.size != copy.size {
            drift
                .different
                .push((key.clone(), format!("size {} at the source, {} in the backup", listed.size, copy.size)));
        } else if comparable(&listed.etag, &copy.etag) && listed.etag != copy.etag && spec.target.kms_key_id.is_none() {
            drift
                .different
                .push((key.clone(), format!("ETag {} at the source, {} in the backup", listed.etag, copy.etag)));
        } else if deep {
            if listed.archived || copy.archived {
                drift.unverified.push((key.clone(), "archived: restore it to compare content".into()));
            } else {
                to_fingerprint.push((key.clone(), target_key));
            }
        } else {
            drift.matched += 1;
        }
    }
    let compared: Vec<(String, Result<bool, String>)> = stream::iter(to_fingerprint)
        .map(|(key, target_key)| async move {
            let same = same_content(s3, spec, &key, &target_key).await;
            (key, same)
        })
        .buffer_unordered(job.concurrency)
        .collect()
        .await;
    for (key, result) in compared {
        match result {
            Ok(true) => drift.matched += 1,
            Ok(false) => drift.different.push((key, "content differs".into())),
            Err(why) => drift.unverified.push((key, why)),
        }
    }
    // What is left in the backup is gone from the source.
    for target_key in backup.into_keys() {
        let original = target_key
            .strip_prefix(spec.target.prefix.as_str())
            .map(|relative| format!("{}{relative}", spec.source.prefix))
            .unwrap_or(target_key);
        if !tombstones.contains(&original) {
            drift.stale.push(original);
        }
    }
    drift.different.sort();
    drift.unverified.sort();
    Ok(drift)
}
