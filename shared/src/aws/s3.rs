//! S3 naming and sizing rules shared by every kind that writes to S3.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but unreserved characters and `/` is escaped in `x-amz-copy-source`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
/// Tag sets travel as a URL query string (`x-amz-tagging`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub const MAX_PARTS: u64 = 10_000;
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// CopyObject copies up to 5 GiB in one request; larger objects must go by parts.
pub const MAX_SINGLE_COPY: u64 = 5 << 30;
pub const MAX_TAGS: usize = 10;
pub const MAX_KEY_BYTES: usize = 1024;

/// The `x-amz-copy-source` value for a key of any shape.
pub fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE))
}

/// A part size that keeps `size` within 10,000 parts: at least `preferred`, rounded to MiB.
pub fn part_size(size: u64, preferred: u64) -> u64 {
    let needed = size.div_ceil(MAX_PARTS);
    let mib = 1 << 20;
    needed.max(preferred).max(MIN_PART_SIZE).div_ceil(mib) * mib
}

/// Inclusive byte ranges, `bytes=first-last`, covering `size` in parts of `part_size`.
pub fn part_ranges(size: u64, part_size: u64) -> Vec<(u64, u64)> {
    (0..size.div_ceil(part_size))
        .map(|i| {
            let first = i * part_size;
            (first, (first + part_size).min(size) - 1)
        })
        .collect()
}

/// Encodes a tag set for the `Tagging` parameter of CopyObject or CreateMultipartUpload.
pub fn encode_tagging(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, QUERY_VALUE), utf8_percent_encode(v, QUERY_VALUE)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_escapes_everything_but_slashes() {
        assert_eq!(copy_source("b", "a b/c+d%e"), "b/a%20b/c%2Bd%25e");
        assert_eq!(copy_source("b", "ünï/x"), "b/%C3%BCn%C3%AF/x");
    }

    #[test]
    fn five_tebibytes_fit_in_ten_thousand_parts() {
        let size = 5u64 << 40;
        let part = part_size(size, 8 << 20);
        assert!(size.div_ceil(part) <= MAX_PARTS);
        assert_eq!(part % (1 << 20), 0);
        assert_eq!(part_size(100 << 20, 8 << 20), 8 << 20);
        assert_eq!(part_size(10, 1), MIN_PART_SIZE);
    }

    #[test]
    fn ranges_cover_the_object_exactly() {
        assert_eq!(part_ranges(10, 4), vec![(0, 3), (4, 7), (8, 9)]);
        assert_eq!(part_ranges(8, 4), vec![(0, 3), (4, 7)]);
        let ranges = part_ranges((17 << 20) + 3, 8 << 20);
        assert_eq!(ranges.len(), 3);
        assert_eq!(ranges.last().unwrap().1, (17 << 20) + 2);
    }

    #[test]
    fn tagging_is_query_encoded() {
        let tags = vec![("a b".to_string(), "x=y&z".to_string()), ("k".to_string(), "v".to_string())];
        assert_eq!(encode_tagging(&tags), "a%20b=x%3Dy%26z&k=v");
    }
}

/// One version of an object, as ListObjectVersions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    pub key: String,
    /// `None` for the version of an unversioned bucket (S3 calls it "null").
    pub version_id: Option<String>,
    pub etag: String,
    pub archived: bool,
}

/// Every version of every object under `prefix`, across all pages.
pub async fn list_versions(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<ListedVersion>, String> {
    let mut listed = Vec::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| format!("listing versions in `{bucket}`: {}", super::error_text(&e)))?;
        for version in page.versions() {
            let (Some(key), Some(etag)) = (version.key(), version.e_tag()) else { continue };
            listed.push(ListedVersion {
                key: key.to_string(),
                version_id: version.version_id().filter(|id| *id != "null").map(str::to_string),
                etag: etag.to_string(),
                archived: super::glacier::is_archived(version.storage_class().map(|c| c.as_str())),
            });
        }
        if page.is_truncated() != Some(true) {
            return Ok(listed);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
}

/// Fails with what to do when `bucket` (the job's `role` bucket: source, target...) cannot be
/// reached: a missing or forbidden bucket is bad input, anything else a service failure.
pub async fn check_bucket(
    s3: &aws_sdk_s3::Client,
    role: &str,
    bucket: &str,
) -> Result<(), crate::pipeline::EngineError> {
    use crate::pipeline::EngineError;
    let Err(err) = s3.head_bucket().bucket(bucket).send().await else { return Ok(()) };
    Err(match err.raw_response().map(|r| r.status().as_u16()) {
        Some(404) => EngineError::Input(format!("{role} bucket `{bucket}` does not exist (HeadBucket: 404)")),
        Some(403) => EngineError::Input(format!(
            "{role} bucket `{bucket}`: access denied (HeadBucket: 403; check the credentials' permissions)"
        )),
        _ => EngineError::service(format!("HeadBucket on {role} bucket `{bucket}`"), super::error_text(&err)),
    })
}
