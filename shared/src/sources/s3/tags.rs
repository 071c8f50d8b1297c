//! Naming and tagging rules of the S3 backup.

use chrono::{DateTime, Utc};

use super::S3Job;

pub const DELETED: &str = "Deleted";
pub const DELETED_AT: &str = "DeletedAt";

/// Where a source key lands in the backup: the source prefix swapped for the target prefix.
pub fn target_key(spec: &S3Job, source_key: &str) -> String {
    let relative = source_key.strip_prefix(spec.source.prefix.as_str()).unwrap_or(source_key);
    format!("{}{relative}", spec.target.prefix)
}

/// The object's tags with `Deleted=True` and `DeletedAt` merged in. An object already marked
/// keeps its first `DeletedAt`.
pub fn deleted_tags(existing: Vec<(String, String)>, now: DateTime<Utc>) -> Vec<(String, String)> {
    let already = existing.iter().any(|(k, v)| k == DELETED && v == "True");
    let previous_at = existing.iter().find(|(k, _)| k == DELETED_AT).map(|(_, v)| v.clone());
    let mut tags: Vec<(String, String)> =
        existing.into_iter().filter(|(k, _)| k != DELETED && k != DELETED_AT).collect();
    let at = match previous_at {
        Some(at) if already => at,
        _ => now.format("%Y-%m-%dT%H:%M").to_string(),
    };
    tags.push((DELETED.to_string(), "True".to_string()));
    tags.push((DELETED_AT.to_string(), at));
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn deleted_tags_merge_with_the_objects_own() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 3, 4, 5).unwrap();
        let tags = deleted_tags(vec![pair("team", "ops")], now);
        assert_eq!(tags, vec![pair("team", "ops"), pair("Deleted", "True"), pair("DeletedAt", "2026-11-22T03:04")]);
        let again = deleted_tags(tags.clone(), now + chrono::Duration::days(1));
        assert_eq!(again, tags, "a second marking keeps the first time");
    }

    #[test]
    fn target_keys_swap_prefixes() {
        let mut spec: S3Job = serde_json::from_value(serde_json::json!({
            "source": {"bucket": "src-b", "prefix": "in/"}, "target": {"bucket": "dst-b", "prefix": "backup/"}
        }))
        .unwrap();
        assert_eq!(target_key(&spec, "in/a/b c"), "backup/a/b c");
        spec.target.prefix.clear();
        assert_eq!(target_key(&spec, "in/x"), "x");
    }
}
