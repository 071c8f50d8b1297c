//! A workbook's metadata as S3 object tags, within S3's rules: at most 10 tags (Backline keeps
//! two free for `Deleted`/`DeletedAt`), keys up to 128 and values up to 256 characters, of
//! letters, digits, spaces and `+ - = . _ : / @` only.

use super::xml::Workbook;

/// Tags a workbook gets; `Deleted` and `DeletedAt` may be added later.
pub const MAX_WORKBOOK_TAGS: usize = 8;
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 256;

/// One character as S3 allows it in a tag; others become `_`.
fn allowed(c: char) -> char {
    if c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c) { c } else { '_' }
}

fn clean(text: &str, max: usize) -> String {
    let cleaned: String = text.chars().map(allowed).collect();
    let trimmed = cleaned.trim();
    trimmed.chars().take(max).collect::<String>().trim_end().to_string()
}

/// The workbook's tags, most important first; empty values are left out, and the last ones
/// (description, the workbook's own tags) are dropped if there is no room.
pub fn workbook_tags(site: &str, project_path: &str, workbook: &Workbook) -> Vec<(String, String)> {
    let own_tags = workbook.tags.join(" ");
    let candidates = [
        ("WorkbookId", workbook.id.as_str()),
        ("Site", site),
        ("Project", project_path),
        ("Owner", workbook.owner_name.as_deref().or(workbook.owner_id.as_deref()).unwrap_or("")),
        ("CreatedAt", workbook.created_at.as_str()),
        ("UpdatedAt", workbook.updated_at.as_str()),
        ("Description", workbook.description.as_str()),
        ("Tags", own_tags.as_str()),
    ];
    candidates
        .into_iter()
        .map(|(key, value)| (clean(key, MAX_KEY), clean(value, MAX_VALUE)))
        .filter(|(key, value)| !key.is_empty() && !value.is_empty())
        .take(MAX_WORKBOOK_TAGS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workbook(description: &str, tags: &[&str]) -> Workbook {
        Workbook {
            id: "6d13b0ca".into(),
            name: "Sales".into(),
            project_id: None,
            project_name: None,
            owner_id: Some("u1".into()),
            owner_name: Some("Zoë O'Brien".into()),
            created_at: "2016-06-31T00:00:00Z".into(),
            updated_at: "2026-11-01T10:00:00Z".into(),
            description: description.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn values_keep_unicode_letters_and_lose_what_s3_refuses() {
        let tags = workbook_tags("finance", "Reports/Q1 (draft)", &workbook("Umsätze & Kosten; <2026>", &["a#b"]));
        let get = |k: &str| tags.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Owner"), Some("Zoë O_Brien"));
        assert_eq!(get("Project"), Some("Reports/Q1 _draft_"));
        assert_eq!(get("Description"), Some("Umsätze _ Kosten_ _2026_"));
        assert_eq!(get("CreatedAt"), Some("2016-06-31T00:00:00Z"), "an impossible date is kept");
        for (key, value) in &tags {
            assert!(key.chars().chain(value.chars()).all(|c| allowed(c) == c), "{key}={value}");
        }
    }

    #[test]
    fn long_values_are_cut_and_empty_ones_left_out() {
        let long = "x".repeat(1000);
        let tags = workbook_tags("s", "p", &workbook(&long, &[]));
        let description = &tags.iter().find(|(k, _)| k == "Description").unwrap().1;
        assert_eq!(description.chars().count(), 256);
        assert!(!tags.iter().any(|(k, _)| k == "Tags"), "no tags, no Tags tag");
        assert!(tags.len() <= MAX_WORKBOOK_TAGS);
        let many: Vec<String> = (0..100).map(|i| format!("tag{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let tags = workbook_tags("s", "p", &workbook("d", &refs));
        assert_eq!(tags.len(), MAX_WORKBOOK_TAGS);
        assert!(tags.iter().all(|(_, v)| v.chars().count() <= 256));
    }
}
