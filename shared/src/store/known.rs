//! A state's entries taken one at a time as a plan merges them with a listing or a walk in the
//! same key order: streamed from the stored file, or from memory (a state rebuilt from a bucket).

use super::{StateEntry, StateReader, StoreError};

pub struct KnownEntries {
    reader: Option<StateReader>,
    listed: std::vec::IntoIter<StateEntry>,
    peeked: Option<StateEntry>,
    /// The stored state's bucket and key, for errors.
    bucket: String,
    key: String,
}

impl KnownEntries {
    /// Entries as `reader` reads them (none without a reader); `bucket` and `key` say where
    /// they come from when one cannot be read.
    pub fn streamed(reader: Option<StateReader>, bucket: &str, key: &str) -> KnownEntries {
        KnownEntries {
            reader,
            listed: Vec::new().into_iter(),
            peeked: None,
            bucket: bucket.to_string(),
            key: key.to_string(),
        }
    }

    /// Entries held in memory, sorted here by key.
    pub fn listed(mut entries: Vec<StateEntry>) -> KnownEntries {
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        KnownEntries { listed: entries.into_iter(), ..KnownEntries::streamed(None, "", "") }
    }

    /// The next entry if `wanted` accepts it.
    pub async fn next_if(
        &mut self,
        wanted: impl FnOnce(&StateEntry) -> bool,
    ) -> Result<Option<StateEntry>, StoreError> {
        if self.peeked.is_none() {
            self.peeked = match &mut self.reader {
                Some(reader) => reader.next().await.map_err(|message| StoreError::Decode {
                    bucket: self.bucket.clone(),
                    key: self.key.clone(),
                    message,
                })?,
                None => self.listed.next(),
            };
            if self.peeked.is_none() {
                self.reader = None;
            }
        }
        Ok(if self.peeked.as_ref().is_some_and(wanted) { self.peeked.take() } else { None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> StateEntry {
        StateEntry { key: key.into(), size: 1, etag: String::new(), deleted: false, mtime: None, untagged: false }
    }

    #[tokio::test]
    async fn listed_entries_come_in_key_order_and_only_when_wanted() {
        let mut known = KnownEntries::listed(vec![entry("b"), entry("a/c"), entry("a-b")]);
        assert_eq!(known.next_if(|e| e.key.as_str() < "a").await.unwrap(), None);
        let mut keys = Vec::new();
        while let Some(e) = known.next_if(|_| true).await.unwrap() {
            keys.push(e.key);
        }
        assert_eq!(keys, ["a-b", "a/c", "b"]);
    }
}
