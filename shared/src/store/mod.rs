//! The control location: run records (chunk claim-checks, outcomes, manifest, report) and
//! per-job state, all under one bucket and prefix.

mod known;
mod report;
mod state;

use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use known::KnownEntries;
pub use report::{Manifest, render_report};
pub use state::{State, StateEntry, StateReader};

use crate::aws::error_text;
use crate::config::ControlLocation;
use crate::model::{Outcome, RunRef};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("control location s3://{bucket}/{key}: {operation} failed: {message}")]
    S3 { bucket: String, key: String, operation: &'static str, message: String },
    #[error("control location s3://{bucket}/{key}: cannot decode: {message}")]
    Decode { bucket: String, key: String, message: String },
}

/// A control prefix always ends in `/` (or is empty).
pub fn normalize_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") }
}

/// Where a run's report lands, for people to open.
pub fn report_url(location: &ControlLocation, job: &str, run_id: &str) -> String {
    format!("s3://{}/{}runs/{job}/{run_id}/report.md", location.bucket, normalize_prefix(&location.prefix))
}

#[derive(Clone, Debug)]
pub struct ControlStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl ControlStore {
    pub fn new(s3: aws_sdk_s3::Client, location: &ControlLocation) -> ControlStore {
        ControlStore { s3, bucket: location.bucket.to_string(), prefix: normalize_prefix(&location.prefix) }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The full key of a record, for excluding the control prefix from listings.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn key(&self, relative: &str) -> String {
        format!("{}{relative}", self.prefix)
    }

    pub fn run_dir(run: &RunRef) -> String {
        format!("runs/{}/{}/", run.job, run.run_id)
    }

    fn s3_error(&self, key: &str, operation: &'static str, message: String) -> StoreError {
        StoreError::S3 { bucket: self.bucket.clone(), key: key.to_string(), operation, message }
    }

    pub async fn put(&self, relative: &str, body: Vec<u8>, content_type: &str) -> Result<String, StoreError> {
        let key = self.key(relative);
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.s3_error(&key, "PutObject", error_text(&e)))?;
        Ok(key)
    }

    pub async fn put_json<T: Serialize>(&self, relative: &str, value: &T) -> Result<String, StoreError> {
        let body = serde_json::to_vec(value).expect("wire types always serialize");
        self.put(relative, body, "application/json").await
    }

    /// Deletes a record; deleting one that does not exist is not an error.
    pub async fn delete(&self, relative: &str) -> Result<(), StoreError> {
        let key = self.key(relative);
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| self.s3_error(&key, "DeleteObject", error_text(&e)))?;
        Ok(())
    }

    /// Reads a record by its full key; `None` when it does not exist.
    pub async fn get_by_key(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let response = match self.s3.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(response) => response,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.s3_error(key, "GetObject", error_text(&e))),
        };
        let bytes = response.body.collect().await.map_err(|e| self.s3_error(key, "GetObject", e.to_string()))?;
        Ok(Some(bytes.to_vec()))
    }

    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self.get_by_key(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Decode {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message: e.to_string(),
        })
    }

    /// Full keys under a relative prefix, in key order.
    pub async fn list(&self, relative: &str) -> Result<Vec<String>, StoreError> {
        let prefix = self.key(relative);
        let mut keys = Vec::new();
        let mut pages = self.s3.list_objects_v2().bucket(&self.bucket).prefix(&prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.s3_error(&prefix, "ListObjectsV2", error_text(&e)))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        Ok(keys)
    }

    pub async fn put_outcomes(
        &self,
        run: &RunRef,
        seq: u32,
        attempt: u32,
        outcomes: &[Outcome],
    ) -> Result<String, StoreError> {
        self.put_json(&format!("{}outcomes/{seq:06}-{attempt:03}.json", Self::run_dir(run)), &outcomes).await
    }

    /// The manifests of a job's finished runs, oldest first.
    pub async fn manifests(&self, job: &str) -> Result<Vec<Manifest>, StoreError> {
        let mut manifests = Vec::new();
        for key in self.list(&format!("runs/{job}/")).await? {
            if key.ends_with("/manifest.json")
                && let Some(manifest) = self.get_json::<Manifest>(&key).await?
            {
                manifests.push(manifest);
            }
        }
        manifests.sort_by_key(|m| m.finished_at);
        Ok(manifests)
    }

    /// The manifest of one run, if it finished.
    pub async fn manifest(&self, job: &str, run_id: &str) -> Result<Option<Manifest>, StoreError> {
        self.get_json(&self.key(&format!("runs/{job}/{run_id}/manifest.json"))).await
    }

    /// Every outcome the workers recorded for a run, in chunk order.
    pub async fn read_outcomes(&self, run: &RunRef) -> Result<Vec<Outcome>, StoreError> {
        let mut all = Vec::new();
        for key in self.list(&format!("{}outcomes/", Self::run_dir(run))).await? {
            let outcomes: Vec<Outcome> = self.get_json(&key).await?.unwrap_or_default();
            all.extend(outcomes);
        }
        Ok(all)
    }

    pub fn state_key(job: &str) -> String {
        format!("state/{job}.jsonl")
    }

    pub async fn read_state(&self, job: &str) -> Result<Option<State>, StoreError> {
        let key = self.key(&Self::state_key(job));
        let Some(bytes) = self.get_by_key(&key).await? else {
            return Ok(None);
        };
        State::decode(&bytes).map(Some).map_err(|message| StoreError::Decode {
            bucket: self.bucket.clone(),
            key,
            message,
        })
    }

    /// A job's state, read as a stream of entries in key order; `None` when there is none.
    pub async fn open_state(&self, job: &str) -> Result<Option<StateReader>, StoreError> {
        let key = self.key(&Self::state_key(job));
        let response = match self.s3.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(response) => response,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.s3_error(&key, "GetObject", error_text(&e))),
        };
        StateReader::from_object(response.body).await.map(Some).map_err(|message| StoreError::Decode {
            bucket: self.bucket.clone(),
            key,
            message,
        })
    }

    /// Writes a state; returns the stored object's ETag (for the local cache).
    pub async fn write_state(&self, name: &str, state: &State) -> Result<Option<String>, StoreError> {
        let key = self.key(&Self::state_key(name));
        let output = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/x-ndjson")
            .body(ByteStream::from(state.encode()))
            .send()
            .await
            .map_err(|e| self.s3_error(&key, "PutObject", error_text(&e)))?;
        Ok(output.e_tag().map(str::to_string))
    }
}
