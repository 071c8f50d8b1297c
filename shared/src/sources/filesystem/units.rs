//! Which folders a filesystem job backs up, and the bucket each goes to.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::FilesystemJob;

/// One folder backed up into one bucket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unit {
    pub folder: String,
    pub bucket: String,
}

/// The path lowercased, every run of characters outside `a-z0-9` made one `-`, trimmed of `-`.
pub fn slug(path: &str) -> String {
    let mut slug = String::with_capacity(path.len());
    for c in path.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_string()
}

/// `{prefix}-{slug}`; over 63 characters, the first 54 and `-` and 8 hex digits of the path's SHA-256.
pub fn bucket_name(prefix: &str, path: &str) -> String {
    let name = format!("{prefix}-{}", slug(path));
    if name.len() <= 63 {
        return name;
    }
    let digest = Sha256::digest(path.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    // The name is ASCII (slug and prefix are), so byte 54 is a character boundary.
    format!("{}-{hex}", &name[..54])
}

/// The folders and the direct subfolders of the roots, each with its bucket, sorted by folder.
pub fn units(spec: &FilesystemJob) -> Result<Vec<Unit>, String> {
    let mut folders: Vec<String> = spec.folders.iter().map(|f| f.as_str().to_string()).collect();
    for root in &spec.roots {
        let entries = std::fs::read_dir(root.as_str()).map_err(|e| format!("root {}: {e}", root.as_str()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("root {}: {e}", root.as_str()))?;
            // Symbolic links to folders are not followed: a root's own folders only.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(Path::new(root.as_str()).join(entry.file_name()).to_string_lossy().into_owned());
            }
        }
    }
    folders.sort();
    folders.dedup();
    let units: Vec<Unit> = folders
        .into_iter()
        .map(|folder| Unit { bucket: bucket_name(spec.target.bucket_prefix.as_str(), &folder), folder })
        .collect();
    for pair in units.windows(2) {
        if pair[0].bucket == pair[1].bucket {
            return Err(format!(
                "folders {} and {} would share bucket {}",
                pair[0].folder, pair[1].folder, pair[0].bucket
            ));
        }
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_lowercase_and_collapse() {
        assert_eq!(slug("/srv/images/one"), "srv-images-one");
        assert_eq!(slug("/Srv//Images (2024)/Ünï_x/"), "srv-images-2024-n-x");
        assert_eq!(bucket_name("matricula", "/srv/images/one"), "matricula-srv-images-one");
    }

    #[test]
    fn long_names_keep_54_characters_and_a_hash() {
        let path = "/srv/images/archives/a very long folder name that goes on and on/and deeper";
        let name = bucket_name("matricula", path);
        assert_eq!(name.len(), 63);
        assert!(name.starts_with("matricula-srv-images-archives-a-very-long-folder-name-"));
        let hash = &name[55..];
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert_ne!(name, bucket_name("matricula", &format!("{path}2")), "the hash tells long paths apart");
    }
}
