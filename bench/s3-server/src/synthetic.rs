//! Synthetic buckets: made-up objects listed page by page, so the planning benchmark lists a
//! million objects without a million files on disk.
//!
//! - `synthetic-<N>`: N objects `obj/000000000`… under one folder.
//! - `synthetic-<N>-in-<F>`: the same N objects spread over F folders, `d00000/000000000`…,
//!   as a bucket of logs or exports by date would be.
//! - A name ending in `-copy` lists the same objects: a sync tool's no-change run compares
//!   the two listings and finds nothing to do.
//!
//! Listings honour `prefix`, `delimiter`, `max-keys`, `start-after` and continuation tokens as
//! S3 does: keys come in byte order, and a folder rolled up by the delimiter counts as one
//! entry of the page.

use s3s::dto::*;

/// The shape of a synthetic bucket: how many objects, in how many folders (`None`: `obj/`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Synthetic {
    objects: u64,
    folders: Option<u64>,
}

impl Synthetic {
    /// The synthetic bucket `bucket` names, if it is one.
    pub fn of(bucket: &str) -> Option<Synthetic> {
        let rest = bucket.strip_prefix("synthetic-")?;
        let rest = rest.strip_suffix("-copy").unwrap_or(rest);
        match rest.split_once("-in-") {
            Some((objects, folders)) => {
                let folders: u64 = folders.parse().ok().filter(|f| *f > 0)?;
                Some(Synthetic { objects: objects.parse().ok()?, folders: Some(folders) })
            }
            None => Some(Synthetic { objects: rest.parse().ok()?, folders: None }),
        }
    }

    /// Key of object `i`; keys grow with `i` in byte order.
    fn key(&self, i: u64) -> String {
        match self.folders {
            None => format!("obj/{i:09}"),
            Some(folders) => format!("d{:05}/{i:09}", (i as u128 * folders as u128 / self.objects as u128) as u64),
        }
    }

    /// The first index whose key is not before `key` (or, with `after`, not at or before it).
    fn index_of(&self, key: &str, after: bool) -> u64 {
        let (mut lo, mut hi) = (0, self.objects);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let k = self.key(mid);
            let before = if after { k.as_str() <= key } else { k.as_str() < key };
            if before { lo = mid + 1 } else { hi = mid }
        }
        lo
    }

    /// The index listing resumes at after `after`: past every key of a folder the delimiter
    /// rolled up, when `after` is one.
    fn index_after(&self, after: &str, delimiter: Option<&str>) -> u64 {
        match delimiter {
            Some(d) if after.ends_with(d) => self.index_of(&format!("{after}\u{10FFFF}"), false),
            _ => self.index_of(after, true),
        }
    }

    /// One ListObjectsV2 page.
    pub fn list(&self, input: ListObjectsV2Input) -> ListObjectsV2Output {
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
        let page = input.max_keys.unwrap_or(1000).clamp(1, 1000) as usize;
        let first = self.index_of(&prefix, false);
        // A continuation token is the last key or folder listed, like a v1 marker or
        // start-after (s3s-fs answers v1 through v2, so the token must work as a marker too).
        let mut next = match input.continuation_token.as_ref().or(input.start_after.as_ref()) {
            Some(after) => self.index_after(after, delimiter.as_deref()),
            None => 0,
        }
        .max(first);
        let mut contents = Vec::new();
        let mut folders = Vec::new();
        while next < self.objects && contents.len() + folders.len() < page {
            let key = self.key(next);
            if !key.starts_with(&prefix) {
                next = self.objects;
                break;
            }
            let rolled_up = delimiter.as_deref().and_then(|d| {
                let cut = key[prefix.len()..].find(d)?;
                Some(key[..prefix.len() + cut + d.len()].to_string())
            });
            match rolled_up {
                Some(folder) => {
                    // Every key of the folder sorts before the folder's name with a byte past it.
                    next = self.index_of(&format!("{folder}\u{10FFFF}"), false);
                    folders.push(CommonPrefix { prefix: Some(folder) });
                }
                None => {
                    contents.push(self.object(next, key));
                    next += 1;
                }
            }
        }
        let more = next < self.objects && self.key(next).starts_with(&prefix);
        let last = folders.last().and_then(|f| f.prefix.clone()).max(contents.last().and_then(|o| o.key.clone()));
        ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: Some(page as i32),
            key_count: Some((contents.len() + folders.len()) as i32),
            continuation_token: input.continuation_token,
            start_after: input.start_after,
            is_truncated: Some(more),
            next_continuation_token: last.filter(|_| more),
            contents: Some(contents),
            common_prefixes: (!folders.is_empty()).then_some(folders),
            ..Default::default()
        }
    }

    /// Object `i`: sizes of 1 B to 64 KiB, an ETag that differs per object.
    fn object(&self, i: u64, key: String) -> Object {
        Object {
            key: Some(key),
            size: Some((i.wrapping_mul(2_654_435_761) % 65_536 + 1) as i64),
            e_tag: Some(ETag::Strong(format!(
                "{:032x}",
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
            ))),
            last_modified: Some(Timestamp::from(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))),
            storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        max_keys: i32,
        token: Option<String>,
    ) -> ListObjectsV2Input {
        ListObjectsV2Input {
            bucket: bucket.into(),
            prefix: Some(prefix.into()),
            delimiter: delimiter.map(Into::into),
            max_keys: Some(max_keys),
            continuation_token: token,
            ..Default::default()
        }
    }

    /// Every entry of a listing, folders as `[name]`, following continuation tokens.
    fn all(bucket: &str, prefix: &str, delimiter: Option<&str>, max_keys: i32) -> Vec<String> {
        let shape = Synthetic::of(bucket).unwrap();
        let (mut out, mut token) = (Vec::new(), None);
        loop {
            let page = shape.list(input(bucket, prefix, delimiter, max_keys, token));
            let mut entries: Vec<String> = page.contents.unwrap().into_iter().map(|o| o.key.unwrap()).collect();
            entries.extend(
                page.common_prefixes.unwrap_or_default().into_iter().map(|p| format!("[{}]", p.prefix.unwrap())),
            );
            entries.sort_by(|a, b| a.trim_start_matches('[').cmp(b.trim_start_matches('[')));
            out.extend(entries);
            match page.next_continuation_token {
                Some(next) => token = Some(next),
                None => return out,
            }
        }
    }

    #[test]
    fn folders_roll_up_and_pages_follow_each_other() {
        assert_eq!(all("synthetic-3", "", None, 2), ["obj/000000000", "obj/000000001", "obj/000000002"]);
        assert_eq!(all("synthetic-3", "", Some("/"), 2), ["[obj/]"]);
        assert_eq!(all("synthetic-6-in-3", "", Some("/"), 2), ["[d00000/]", "[d00001/]", "[d00002/]"]);
        assert_eq!(all("synthetic-6-in-3", "d00001/", None, 1), ["d00001/000000002", "d00001/000000003"]);
        assert_eq!(all("synthetic-6-in-3", "d00001/", Some("/"), 1000).len(), 2);
        assert_eq!(all("synthetic-6-in-3", "d9", None, 1000), Vec::<String>::new());
        assert_eq!(all("synthetic-6-in-3", "", None, 4).len(), 6);
        // A v1 marker (the last key listed) resumes as a token does.
        let shape = Synthetic::of("synthetic-6-in-3").unwrap();
        let after = ListObjectsV2Input {
            start_after: Some("d00001/000000002".into()),
            ..input("synthetic-6-in-3", "", None, 1, None)
        };
        assert_eq!(shape.list(after).contents.unwrap()[0].key.as_deref(), Some("d00001/000000003"));
        let after = ListObjectsV2Input {
            start_after: Some("d00001/".into()),
            ..input("synthetic-6-in-3", "", Some("/"), 1, None)
        };
        assert_eq!(shape.list(after).common_prefixes.unwrap()[0].prefix.as_deref(), Some("d00002/"));
        assert_eq!(Synthetic::of("synthetic-6-in-0"), None);
        assert_eq!(Synthetic::of("synthetic-6-in-3-copy"), Synthetic::of("synthetic-6-in-3"));
        assert_eq!(Synthetic::of("photos"), None);
    }
}
