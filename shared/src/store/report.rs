//! The finalizer's record of a run: `manifest.json` for machines, `report.md` for people.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Counts, Outcome, Status};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub job: String,
    pub kind: String,
    pub run_id: String,
    pub source: String,
    pub target: String,
    pub scheduled_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `succeeded` when no task failed, else `failed`.
    pub status: String,
    pub counts: Counts,
    pub tasks: Vec<Outcome>,
}

const LISTED: usize = 50;

pub fn render_report(manifest: &Manifest) -> String {
    let m = manifest;
    let c = &m.counts;
    let mut out = String::new();
    let _ = writeln!(out, "# Backline run `{}`\n", m.run_id);
    let _ = writeln!(out, "| | |\n|---|---|");
    for (label, value) in [
        ("Job", format!("`{}` ({})", m.job, m.kind)),
        ("Status", format!("**{}**", m.status)),
        ("Source", format!("`{}`", m.source)),
        ("Target", format!("`{}`", m.target)),
        ("Started", m.started_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        ("Finished", m.finished_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        ("Duration", format!("{:.1} s", (m.finished_at - m.started_at).num_milliseconds() as f64 / 1000.0)),
    ] {
        let _ = writeln!(out, "| {label} | {value} |");
    }
    let _ =
        writeln!(out, "\n## Counts\n\n| tasks | copied | bytes copied | tagged deleted | deleted | skipped | failed |");
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} |",
        c.tasks, c.copied, c.bytes_copied, c.tagged_deleted, c.deleted, c.skipped, c.failed
    );
    for (title, status) in [("Failed", Status::Failed), ("Skipped", Status::Skipped)] {
        let matching: Vec<&Outcome> = m.tasks.iter().filter(|o| o.status == status).collect();
        if matching.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n## {title} ({})\n", matching.len());
        for outcome in matching.iter().take(LISTED) {
            let _ = writeln!(
                out,
                "- `{}`: {}",
                outcome.key.escape_debug(),
                outcome.detail.as_deref().unwrap_or("no detail")
            );
        }
        if matching.len() > LISTED {
            let _ = writeln!(out, "- … and {} more in manifest.json", matching.len() - LISTED);
        }
    }
    out
}
