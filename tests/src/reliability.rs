//! Figures of the fault and bad-input suites, for `RELIABILITY.md`.
//!
//! Each scenario writes one JSON file into `BACKLINE_RELIABILITY_DIR` (default
//! `target/reliability/` in the workspace); `scripts/reliability_report.py` turns the files into
//! the table. `BACKLINE_RELIABILITY=full` (what `make reliability` sets) runs the scenarios at
//! their full size; without it they run small enough for `make test`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use aws_sdk_s3::Client;
use serde_json::{Value, json};

/// Whether the scenarios run at full size.
pub fn full() -> bool {
    std::env::var("BACKLINE_RELIABILITY").is_ok_and(|v| v == "full")
}

/// `full` at full size, else `quick`.
pub fn size(quick: usize, full_size: usize) -> usize {
    if full() { full_size } else { quick }
}

fn dir() -> PathBuf {
    match std::env::var("BACKLINE_RELIABILITY_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/reliability"),
    }
}

/// One row of the table.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub scenario: String,
    pub kind: String,
    /// Items in the source (objects, files, workbooks, assets).
    pub items: usize,
    pub faults_injected: u64,
    /// Runs started, killed ones included.
    pub runs: u64,
    pub lost: usize,
    pub duplicates: usize,
    pub inputs_tried: u64,
    pub inputs_rejected: u64,
    pub note: String,
}

impl Figures {
    /// The figures of a scenario that ran its job once with faults injected.
    pub fn of_one_run(
        scenario: &str,
        kind: &str,
        items: usize,
        faults: u64,
        lost: usize,
        duplicates: usize,
    ) -> Figures {
        Figures {
            scenario: scenario.into(),
            kind: kind.into(),
            items,
            faults_injected: faults,
            runs: 1,
            lost,
            duplicates,
            ..Default::default()
        }
    }
}

/// Writes the row; a scenario that asserts after recording still shows its figures.
pub fn record(figures: &Figures) {
    let dir = dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let name = format!("{}--{}.json", slug(&figures.scenario), slug(&figures.kind));
    let row = json!({
        "scenario": figures.scenario,
        "kind": figures.kind,
        "size": if full() { "full" } else { "quick" },
        "items": figures.items,
        "faults_injected": figures.faults_injected,
        "runs": figures.runs,
        "lost": figures.lost,
        "duplicates": figures.duplicates,
        "inputs_tried": figures.inputs_tried,
        "inputs_rejected": figures.inputs_rejected,
        "note": figures.note,
    });
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(&row).expect("json")).expect("write figures");
}

fn slug(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// What a target bucket holds against what it should: keys whose bytes are missing or
/// different (lost), and keys with more versions than copies were wanted (duplicates).
#[derive(Debug, Default)]
pub struct Comparison {
    pub lost: Vec<String>,
    pub duplicates: Vec<String>,
}

/// Compares `expected` (target key -> bytes) with the current objects under `prefix` of a
/// versioned `bucket`; a key is a duplicate when it has more than `versions_wanted` versions.
pub async fn compare_versioned(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    expected: &BTreeMap<String, Vec<u8>>,
    versions_wanted: usize,
) -> Comparison {
    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    for version in backline::aws::s3::list_versions(s3, bucket, prefix).await.expect("ListObjectVersions") {
        *versions.entry(version.key).or_default() += 1;
    }
    let mut comparison = Comparison::default();
    for (key, bytes) in expected {
        let found = match s3.get_object().bucket(bucket).key(key).send().await {
            Ok(object) => object.body.collect().await.ok().map(|b| b.to_vec()),
            Err(_) => None,
        };
        if found.as_ref() != Some(bytes) {
            comparison.lost.push(key.clone());
        }
        if versions.get(key).copied().unwrap_or(0) > versions_wanted {
            comparison.duplicates.push(key.clone());
        }
    }
    comparison
}

/// The copies a manifest's tasks record as done, by key, summed over `manifests`.
pub fn copies_by_key(manifests: &[Value]) -> BTreeMap<String, usize> {
    let mut copies = BTreeMap::new();
    for manifest in manifests {
        for task in manifest["tasks"].as_array().into_iter().flatten() {
            let done = task["status"] == "ok" && matches!(task["action"].as_str(), Some("copy" | "upload" | "restore"));
            if done {
                *copies.entry(task["key"].as_str().unwrap_or_default().to_string()).or_default() += 1;
            }
        }
    }
    copies
}

/// Keys counted more than once in `copies`, and keys of `wanted` counted never.
pub fn miscounted(copies: &BTreeMap<String, usize>, wanted: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let twice = copies.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k.clone()).collect();
    let never = wanted.iter().filter(|k| !copies.contains_key(*k)).cloned().collect();
    (twice, never)
}
