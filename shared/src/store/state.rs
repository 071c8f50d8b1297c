//! What the last run saw of a source, so the next plan diffs against it instead of re-reading
//! the target. Stored as JSON lines sorted by key: a header line, then one line per object.

use serde::{Deserialize, Serialize};

use crate::model::{Action, Outcome, Status};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "s")]
    pub size: u64,
    #[serde(rename = "e")]
    pub etag: String,
    /// Gone from the source and tagged `Deleted=True` in the backup: a tombstone, so the object
    /// is not tagged again and a reappearance is recognised.
    #[serde(rename = "d", default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// A file's modification time in nanoseconds (filesystem jobs).
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Header {
    version: u32,
    /// `s3://bucket/prefix` of the source the entries describe.
    source: String,
    run_id: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    pub source: String,
    pub run_id: String,
    /// Sorted by key (byte order, as S3 lists).
    pub entries: Vec<StateEntry>,
}

impl State {
    pub fn encode(&self) -> Vec<u8> {
        let header = Header { version: 1, source: self.source.clone(), run_id: self.run_id.clone() };
        let mut out = serde_json::to_vec(&header).expect("header serializes");
        out.push(b'\n');
        for entry in &self.entries {
            serde_json::to_writer(&mut out, entry).expect("entry serializes");
            out.push(b'\n');
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<State, String> {
        let mut lines = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        let header: Header =
            serde_json::from_slice(lines.next().ok_or("empty state file")?).map_err(|e| format!("bad header: {e}"))?;
        if header.version != 1 {
            return Err(format!("state version {} is not supported (expected 1)", header.version));
        }
        let mut entries: Vec<StateEntry> = lines
            .enumerate()
            .map(|(i, line)| serde_json::from_slice(line).map_err(|e| format!("line {}: {e}", i + 2)))
            .collect::<Result<_, _>>()?;
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(State { source: header.source, run_id: header.run_id, entries })
    }

    /// The state after a run: successful copies update their entry, deletions tagged in the
    /// backup become tombstones (or vanish when the backup never had the object), and failed
    /// tasks keep the old entry so the next run tries again.
    pub fn apply(&self, run_id: &str, outcomes: &[Outcome]) -> State {
        let mut entries: std::collections::BTreeMap<String, StateEntry> =
            self.entries.iter().map(|e| (e.key.clone(), e.clone())).collect();
        for outcome in outcomes {
            match (outcome.action, outcome.status) {
                (Action::Copy, Status::Ok) => {
                    let entry = StateEntry {
                        key: outcome.key.clone(),
                        size: outcome.bytes,
                        etag: outcome.etag.clone().unwrap_or_default(),
                        deleted: false,
                        mtime: None,
                    };
                    entries.insert(outcome.key.clone(), entry);
                }
                (Action::Upload, Status::Ok) => {
                    let entry = StateEntry {
                        key: outcome.key.clone(),
                        size: outcome.bytes,
                        etag: outcome.target_etag.clone().unwrap_or_default(),
                        deleted: false,
                        mtime: outcome.mtime_ns,
                    };
                    entries.insert(outcome.key.clone(), entry);
                }
                (Action::Delete, Status::Ok) => {
                    entries.remove(&outcome.key);
                }
                (Action::MarkDeleted, Status::Ok) => {
                    if let Some(entry) = entries.get_mut(&outcome.key) {
                        entry.deleted = true;
                    }
                }
                (Action::MarkDeleted, Status::Skipped) => {
                    entries.remove(&outcome.key);
                }
                _ => {}
            }
        }
        State { source: self.source.clone(), run_id: run_id.to_string(), entries: entries.into_values().collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Task;

    fn entry(key: &str, size: u64, etag: &str) -> StateEntry {
        StateEntry { key: key.into(), size, etag: etag.into(), deleted: false, mtime: None }
    }

    #[test]
    fn encode_decode_round_trip() {
        let state = State {
            source: "s3://a/".into(),
            run_id: "r".into(),
            entries: vec![entry("a\nb", 1, "x"), entry("ü", 2, "y")],
        };
        assert_eq!(State::decode(&state.encode()).unwrap(), state);
        assert!(State::decode(b"").is_err());
        assert!(State::decode(b"{\"version\":9,\"source\":\"\",\"run_id\":\"\"}\n").unwrap_err().contains("version 9"));
    }

    #[test]
    fn apply_keeps_failures_for_the_next_run() {
        let old = State {
            source: "s".into(),
            run_id: "r1".into(),
            entries: vec![entry("gone", 1, "g"), entry("kept", 1, "k"), entry("retry", 1, "old")],
        };
        let copy = |key: &str, status| {
            let task = Task::Copy {
                key: key.into(),
                target_key: key.into(),
                size: 5,
                etag: "new".into(),
                replace_tags: false,
            };
            Outcome { bytes: 5, ..Outcome::for_task(&task, status) }
        };
        let deleted =
            Outcome::for_task(&Task::MarkDeleted { key: "gone".into(), target_key: "gone".into() }, Status::Ok);
        let new = old.apply("r2", &[copy("added", Status::Ok), copy("retry", Status::Failed), deleted]);
        assert_eq!(new.run_id, "r2");
        let tombstone = StateEntry { deleted: true, ..entry("gone", 1, "g") };
        assert_eq!(
            new.entries,
            vec![entry("added", 5, "new"), tombstone, entry("kept", 1, "k"), entry("retry", 1, "old")]
        );
        let back = new.apply("r3", &[copy("gone", Status::Ok)]);
        assert!(!back.entries.iter().any(|e| e.deleted), "a copied key is live again");
    }
}
