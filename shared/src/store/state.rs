//! What the last run saw of a source, so the next plan diffs against it instead of re-reading
//! the target. Stored as JSON lines sorted by key: a header line, then one line per object.

use futures::StreamExt;
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
    /// The backup was written with no tags of its own (`copy_tags = false`): marking it deleted
    /// needs no look at its tags first.
    #[serde(rename = "u", default, skip_serializing_if = "std::ops::Not::not")]
    pub untagged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Header {
    version: u32,
    /// `s3://bucket/prefix` of the source the entries describe.
    source: String,
    run_id: String,
}

impl Header {
    fn decode(line: &[u8]) -> Result<Header, String> {
        let header: Header = serde_json::from_slice(line).map_err(|e| format!("bad header: {e}"))?;
        if header.version != 1 {
            return Err(format!("state version {} is not supported (expected 1)", header.version));
        }
        Ok(header)
    }
}

/// A stored state read entry by entry as its bytes arrive, so planning against millions of
/// keys holds one line at a time instead of the whole file. Entries must come in key order
/// (as `State::encode` writes them); anything else is an error, never a silent mis-diff.
type ChunkStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Vec<u8>, String>> + Send>>;

pub struct StateReader {
    pub source: String,
    pub run_id: String,
    body: ChunkStream,
    buffer: Vec<u8>,
    /// Bytes of `buffer` already split into lines.
    consumed: usize,
    line: usize,
    last_key: Option<String>,
    finished: bool,
}

impl StateReader {
    pub async fn from_object(body: aws_sdk_s3::primitives::ByteStream) -> Result<StateReader, String> {
        let chunks = futures::stream::unfold(body, |mut body| async move {
            let chunk = body.next().await?;
            Some((chunk.map(|bytes| bytes.to_vec()).map_err(|e| e.to_string()), body))
        });
        StateReader::new(Box::pin(chunks)).await
    }

    /// A state stored in a local file (a cache of the stored one), read 64 KiB at a time.
    pub async fn from_file(path: &std::path::Path) -> Result<StateReader, String> {
        use tokio::io::AsyncReadExt;
        let file = tokio::fs::File::open(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
        let chunks = futures::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut buffer = vec![0; 64 << 10];
            match file.read(&mut buffer).await {
                Ok(0) => None,
                Ok(n) => {
                    buffer.truncate(n);
                    Some((Ok(buffer), Some(file)))
                }
                Err(e) => Some((Err(e.to_string()), None)),
            }
        });
        StateReader::new(Box::pin(chunks)).await
    }

    async fn new(body: ChunkStream) -> Result<StateReader, String> {
        let mut reader = StateReader {
            source: String::new(),
            run_id: String::new(),
            body,
            buffer: Vec::new(),
            consumed: 0,
            line: 0,
            last_key: None,
            finished: false,
        };
        let Some(line) = reader.next_line().await? else { return Err("empty state file".into()) };
        let header = Header::decode(&line)?;
        reader.source = header.source;
        reader.run_id = header.run_id;
        Ok(reader)
    }

    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(end) = self.buffer[self.consumed..].iter().position(|b| *b == b'\n') {
                let line = self.buffer[self.consumed..self.consumed + end].to_vec();
                self.consumed += end + 1;
                self.line += 1;
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.finished {
                let rest = self.buffer.split_off(self.consumed);
                self.buffer.clear();
                self.consumed = 0;
                if rest.is_empty() {
                    return Ok(None);
                }
                self.line += 1;
                return Ok(Some(rest));
            }
            // Keep only the unfinished line before reading more.
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
            match self.body.next().await {
                Some(Ok(bytes)) => self.buffer.extend_from_slice(&bytes),
                Some(Err(e)) => return Err(format!("reading after line {}: {e}", self.line)),
                None => self.finished = true,
            }
        }
    }

    /// The next entry, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<StateEntry>, String> {
        let Some(line) = self.next_line().await? else { return Ok(None) };
        let entry: StateEntry = serde_json::from_slice(&line).map_err(|e| format!("line {}: {e}", self.line))?;
        if self.last_key.as_deref().is_some_and(|last| last >= entry.key.as_str()) {
            return Err(format!(
                "line {}: key `{}` is not after `{}`: the state is not in key order",
                self.line,
                entry.key,
                self.last_key.take().unwrap_or_default()
            ));
        }
        self.last_key = Some(entry.key.clone());
        Ok(Some(entry))
    }
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
        let header = Header::decode(lines.next().ok_or("empty state file")?)?;
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
                        untagged: false,
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
                        untagged: false,
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
    use crate::model::Action;

    fn entry(key: &str, size: u64, etag: &str) -> StateEntry {
        StateEntry { key: key.into(), size, etag: etag.into(), deleted: false, mtime: None, untagged: false }
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

    async fn read_all(bytes: Vec<u8>, chunk: usize) -> Result<(String, Vec<StateEntry>), String> {
        let parts: Vec<Result<Vec<u8>, String>> = bytes.chunks(chunk).map(|c| Ok(c.to_vec())).collect();
        let mut reader = StateReader::new(Box::pin(futures::stream::iter(parts))).await?;
        let mut entries = Vec::new();
        while let Some(entry) = reader.next().await? {
            entries.push(entry);
        }
        Ok((reader.source, entries))
    }

    #[tokio::test]
    async fn reader_streams_entries_across_any_chunking() {
        let state = State {
            source: "s3://a/".into(),
            run_id: "r".into(),
            entries: (0..50).map(|i| entry(&format!("k{i:03}"), i, "e")).collect(),
        };
        for chunk in [1, 7, 64, 100_000] {
            let (source, entries) = read_all(state.encode(), chunk).await.unwrap();
            assert_eq!(source, "s3://a/");
            assert_eq!(entries, state.entries, "chunks of {chunk} bytes");
        }
        let mut unterminated = state.encode();
        unterminated.pop();
        assert_eq!(read_all(unterminated, 5).await.unwrap().1.len(), 50, "a last line without a newline counts");
    }

    #[tokio::test]
    async fn reader_refuses_keys_out_of_order() {
        let state =
            State { source: "s".into(), run_id: "r".into(), entries: vec![entry("b", 1, "x"), entry("a", 1, "y")] };
        let error = read_all(state.encode(), 3).await.unwrap_err();
        assert!(error.contains("line 3") && error.contains("not in key order"), "{error}");
        assert!(read_all(Vec::new(), 3).await.unwrap_err().contains("empty"));
    }

    #[test]
    fn apply_keeps_failures_for_the_next_run() {
        let old = State {
            source: "s".into(),
            run_id: "r1".into(),
            entries: vec![entry("gone", 1, "g"), entry("kept", 1, "k"), entry("retry", 1, "old")],
        };
        let copy = |key: &str, status| Outcome {
            bytes: 5,
            target_key: Some(key.into()),
            etag: Some("new".into()),
            ..Outcome::new(Action::Copy, key, status)
        };
        let deleted =
            Outcome { target_key: Some("gone".into()), ..Outcome::new(Action::MarkDeleted, "gone", Status::Ok) };
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
