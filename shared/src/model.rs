//! The wire types that travel between planner, workers and finalizer (SQS bodies, S3 files).
//! Every message carries `version`; a message of another version is refused, not guessed at.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{ControlLocation, Job};

/// 2: chunks carry their kind and each kind's own tasks (1 had one task enum for every kind).
pub const WIRE_VERSION: u32 = 2;

/// Identifies one run of one job and where its records live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    pub job: String,
    pub run_id: String,
    /// The event time the run id derives from.
    pub scheduled_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub control: ControlLocation,
}

impl RunRef {
    pub fn new(job: &Job, scheduled_at: DateTime<Utc>) -> RunRef {
        RunRef {
            job: job.name.clone(),
            run_id: run_id(&job.name, scheduled_at),
            scheduled_at,
            started_at: Utc::now(),
            control: job.control(),
        }
    }
}

/// The same job at the same event time is the same run: a redelivered schedule plans once.
/// Schedules fire on whole seconds; a time with a fraction (a run started by hand) keeps its
/// milliseconds so two quick runs do not share records.
pub fn run_id(job: &str, scheduled_at: DateTime<Utc>) -> String {
    if scheduled_at.timestamp_subsec_millis() == 0 {
        format!("{job}-{}", scheduled_at.format("%Y%m%dT%H%M%SZ"))
    } else {
        format!("{job}-{}", scheduled_at.format("%Y%m%dT%H%M%S%.3fZ"))
    }
}

/// Tasks grouped for one SQS message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub seq: u32,
    /// 0 when planned; each time tasks of the chunk go back to the queue to wait (for a Glacier
    /// restore), they travel as the next attempt of the same chunk.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The kind whose tasks these are; a worker refuses a chunk of another kind than its job.
    pub kind: String,
    /// The kind's own tasks, as that kind wrote them (`{"action": ..., ...}`).
    pub tasks: Vec<serde_json::Value>,
    /// When the tasks of this chunk first had to wait: a wait ends by the time since then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<DateTime<Utc>>,
    /// Not to be run before this time (a wait longer than SQS can delay one message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
}

impl Chunk {
    /// The first attempt of chunk `seq` of `kind`'s tasks.
    pub fn new(seq: u32, kind: &str, tasks: Vec<serde_json::Value>) -> Chunk {
        Chunk { seq, attempt: 0, kind: kind.to_string(), tasks, waiting_since: None, not_before: None }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkMessage {
    pub run: RunRef,
    pub job: Job,
    pub chunk: Chunk,
}

/// A body on the work queue: a chunk inline, or the S3 key of a chunk too large for SQS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkMessage {
    Chunk {
        version: u32,
        #[serde(flatten)]
        message: Box<ChunkMessage>,
    },
    ClaimCheck {
        version: u32,
        run: RunRef,
        seq: u32,
        key: String,
        #[serde(default)]
        attempt: u32,
        /// How many tasks the chunk holds, and its job: enough to record the chunk as lost
        /// and still finish the run if the claim-check object is gone.
        #[serde(default)]
        tasks: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<Box<Job>>,
    },
}

impl WorkMessage {
    pub fn version(&self) -> u32 {
        match self {
            WorkMessage::Chunk { version, .. } | WorkMessage::ClaimCheck { version, .. } => *version,
        }
    }
}

/// Sent once every chunk of a run is done: the finalizer's cue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalizeMessage {
    pub version: u32,
    pub run: RunRef,
    pub job: Job,
    pub chunks: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Skipped,
    Failed,
}

/// What happened to one task: one line of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub action: Action,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_key: Option<String>,
    pub status: Status,
    #[serde(default)]
    pub bytes: u64,
    /// The source ETag the copy was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_etag: Option<String>,
    /// The copy's full-object CRC64NVME checksum, where the server computed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The bucket written, where a job writes to more than one (filesystem jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_bucket: Option<String>,
    /// The uploaded file's modification time, in nanoseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i64>,
    /// `copy` or `multipart` for copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The kind's own record of the item (a workbook's id and version, a bundle's assets), for
    /// its state and the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Copy,
    MarkDeleted,
    Skip,
    Restore,
    Upload,
    Delete,
    /// An unchanged item's object copied onto itself, so lifecycle rules see it as new.
    Refresh,
}

impl Outcome {
    /// The manifest line of one task, before the work fills in what happened.
    pub fn new(action: Action, key: impl Into<String>, status: Status) -> Outcome {
        Outcome {
            action,
            key: key.into(),
            target_key: None,
            status,
            bytes: 0,
            etag: None,
            target_etag: None,
            checksum: None,
            target_bucket: None,
            mtime_ns: None,
            method: None,
            detail: None,
            item: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Outcome {
        self.detail = Some(detail.into());
        self
    }
}

/// Counts of a run, for the summary, the report and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub tasks: u64,
    pub copied: u64,
    pub bytes_copied: u64,
    pub tagged_deleted: u64,
    /// Objects deleted because their files are gone (filesystem jobs; old versions are kept).
    #[serde(default)]
    pub deleted: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl Counts {
    pub fn add(&mut self, outcome: &Outcome) {
        self.tasks += 1;
        match (outcome.action, outcome.status) {
            (_, Status::Failed) => self.failed += 1,
            (_, Status::Skipped) | (Action::Skip, _) => self.skipped += 1,
            (Action::Delete, Status::Ok) => self.deleted += 1,
            (Action::Copy | Action::Restore | Action::Upload, Status::Ok) => {
                self.copied += 1;
                self.bytes_copied += outcome.bytes;
            }
            (Action::MarkDeleted, Status::Ok) => self.tagged_deleted += 1,
            (Action::Refresh, Status::Ok) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn run_id_derives_from_job_and_event_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap();
        assert_eq!(run_id("photos", at), "photos-20261122T030000Z");
        assert_eq!(run_id("photos", at), run_id("photos", at));
        let by_hand = at + chrono::Duration::milliseconds(250);
        assert_eq!(run_id("photos", by_hand), "photos-20261122T030000.250Z");
    }
}
