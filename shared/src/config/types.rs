//! Values several kinds share: bucket names, storage classes, paths, restore tiers. Each is
//! checked when the job file is read, so a bad value names its field.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::size::HumanDuration;

/// Glacier retrieval tiers. Deep Archive has no Expedited tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreTier {
    #[default]
    Standard,
    Bulk,
    Expedited,
}

impl RestoreTier {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreTier::Standard => "Standard",
            RestoreTier::Bulk => "Bulk",
            RestoreTier::Expedited => "Expedited",
        }
    }
}

/// How long an archived object waits before it is checked again, unless a restore says otherwise.
pub fn default_poll_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5 * 60))
}

/// Days a retrieved archive copy stays readable.
pub fn default_restore_days() -> u32 {
    7
}

/// The storage classes S3 accepts on a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    Standard,
    StandardIa,
    OnezoneIa,
    IntelligentTiering,
    GlacierIr,
    Glacier,
    DeepArchive,
    ReducedRedundancy,
}

impl StorageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::GlacierIr => "GLACIER_IR",
            StorageClass::Glacier => "GLACIER",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
            StorageClass::ReducedRedundancy => "REDUCED_REDUNDANCY",
        }
    }
}

/// An S3 bucket name, checked against S3's naming rules when the job file is read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BucketName(String);

impl BucketName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BucketName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let allowed = "3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit";
        let valid_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        let edges_ok = name
            .bytes()
            .next()
            .zip(name.bytes().last())
            .is_some_and(|(first, last)| first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric());
        if (3..=63).contains(&name.len()) && valid_chars && edges_ok && !name.contains("..") {
            Ok(BucketName(name))
        } else {
            Err(format!("`{name}` is not a valid bucket name; allowed: {allowed}"))
        }
    }
}

impl From<BucketName> for String {
    fn from(name: BucketName) -> String {
        name.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl BucketName {
    /// A name built from parts already checked (a prefix and a slug), not read from a file.
    pub fn derived(name: String) -> BucketName {
        debug_assert!(BucketName::try_from(name.clone()).is_ok(), "{name}");
        BucketName(name)
    }
}

/// An absolute path, without `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AbsolutePath(String);

impl AbsolutePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AbsolutePath {
    type Error = String;

    fn try_from(path: String) -> Result<Self, String> {
        if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
            return Err(format!("`{path}` is not an absolute path without `..`"));
        }
        let trimmed = path.trim_end_matches('/');
        Ok(AbsolutePath(if trimmed.is_empty() { "/".into() } else { trimmed.to_string() }))
    }
}

impl From<AbsolutePath> for String {
    fn from(path: AbsolutePath) -> String {
        path.0
    }
}

/// The start of bucket names: lowercase letters, digits and `-`, short enough for a slug to follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BucketPrefix(String);

impl BucketPrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BucketPrefix {
    type Error = String;

    fn try_from(prefix: String) -> Result<Self, String> {
        let ok = (3..=40).contains(&prefix.len())
            && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && prefix.as_bytes()[0].is_ascii_alphanumeric()
            && !prefix.ends_with('-');
        if ok {
            Ok(BucketPrefix(prefix))
        } else {
            Err(format!("`{prefix}`: allowed: 3 to 40 characters of a-z, 0-9 and '-', not starting or ending with '-'"))
        }
    }
}

impl From<BucketPrefix> for String {
    fn from(prefix: BucketPrefix) -> String {
        prefix.0
    }
}

/// A secret given by reference, never by value: `env:NAME`, `ssm:/parameter/name` or
/// `secretsmanager:secret-id`, resolved at run time. Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Secret(String);

impl Secret {
    pub fn reference(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.0.split_once(':').map_or("", |(scheme, _)| scheme);
        write!(f, "{scheme}:…")
    }
}

impl TryFrom<String> for Secret {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        let known = ["env:", "ssm:", "secretsmanager:", "vault:"];
        match known.iter().find(|p| value.starts_with(*p)) {
            Some(&"vault:") => crate::secrets::vault::VaultRef::parse(&value["vault:".len()..]).map(|_| Secret(value)),
            Some(prefix) if value.len() > prefix.len() => Ok(Secret(value)),
            _ => Err("not a secret reference; allowed: env:NAME, ssm:/parameter/name, secretsmanager:secret-id or \
                 vault:mount/path#field (a secret is never written in the job file itself)"
                .into()),
        }
    }
}

impl From<Secret> for String {
    fn from(secret: Secret) -> String {
        secret.0
    }
}
