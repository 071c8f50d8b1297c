//! The `quicksight` job's spec: which account and regions, and where users, groups and asset
//! bundles go.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{BucketName, HumanDuration};

/// `kind = "quicksight"`: an account's users, groups and memberships into dated DynamoDB
/// tables, and its data sources, data sets, analyses and dashboards as asset bundles into S3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickSightJob {
    /// What to back up; `backline run --mode` overrides it.
    #[serde(default)]
    pub mode: Mode,
    pub source: QuickSightSource,
    pub target: QuickSightTarget,
    /// Assets per exported bundle, 1-100.
    #[serde(default)]
    pub max_assets_per_bundle: BundleSize,
    /// Each bundle also holds what its assets need (an analysis's data sets and data sources).
    #[serde(default = "yes")]
    pub include_dependencies: bool,
    #[serde(default = "yes")]
    pub include_permissions: bool,
    #[serde(default = "yes")]
    pub include_tags: bool,
    /// After a successful run, delete this job's dated tables older than this (never today's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_tables: Option<HumanDuration>,
    /// How often a running export (or import) job is looked at.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Users, groups and memberships, and every asset.
    #[default]
    Full,
    UsersOnly,
    AssetsOnly,
}

impl Mode {
    pub fn users(self) -> bool {
        self != Mode::AssetsOnly
    }

    pub fn assets(self) -> bool {
        self != Mode::UsersOnly
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::UsersOnly => "users-only",
            Mode::AssetsOnly => "assets-only",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickSightSource {
    pub account_id: AccountId,
    /// Where the assets are.
    pub region: Region,
    /// Where users and groups are (QuickSight answers user calls only there); default: `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_region: Option<Region>,
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

impl QuickSightSource {
    pub fn identity_region(&self) -> &Region {
        self.identity_region.as_ref().unwrap_or(&self.region)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickSightTarget {
    /// Asset bundles go here, under `<prefix>/<date>/<type>/`.
    pub bucket: BucketName,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default)]
    pub prefix_format: DateFormat,
    /// Each run writes `YYYY-MM-DD-<users_table>` (and the others), made on first use.
    #[serde(default = "default_users_table")]
    pub users_table: TableBase,
    #[serde(default = "default_groups_table")]
    pub groups_table: TableBase,
    #[serde(default = "default_memberships_table")]
    pub memberships_table: TableBase,
}

/// The date part of bundle keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DateFormat {
    #[default]
    #[serde(rename = "YYYY/MM/DD")]
    Slashes,
    #[serde(rename = "YYYY-MM-DD")]
    Dashes,
    #[serde(rename = "YYYYMMDD")]
    Compact,
}

impl DateFormat {
    pub fn format(self, at: DateTime<Utc>) -> String {
        let pattern = match self {
            DateFormat::Slashes => "%Y/%m/%d",
            DateFormat::Dashes => "%Y-%m-%d",
            DateFormat::Compact => "%Y%m%d",
        };
        at.format(pattern).to_string()
    }
}

fn yes() -> bool {
    true
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

fn default_namespace() -> String {
    "default".into()
}

fn default_prefix() -> String {
    "quicksight-backups".into()
}

fn default_users_table() -> TableBase {
    TableBase("quicksight-users-backup".into())
}

fn default_groups_table() -> TableBase {
    TableBase("quicksight-groups-backup".into())
}

fn default_memberships_table() -> TableBase {
    TableBase("quicksight-users-groups-backup".into())
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AccountIdText", into = "String")]
pub struct AccountId(String);

/// An account id as written: quoted, or a bare number (YAML and TOML read one as an integer).
#[derive(Deserialize)]
#[serde(untagged)]
enum AccountIdText {
    Text(String),
    Number(u64),
}

impl TryFrom<AccountIdText> for AccountId {
    type Error = String;

    fn try_from(id: AccountIdText) -> Result<Self, String> {
        match id {
            AccountIdText::Text(text) => AccountId::try_from(text),
            AccountIdText::Number(n) => AccountId::try_from(n.to_string()).map_err(|_| {
                format!(
                    "`{n}` is not an AWS account id; allowed: 12 digits, quoted (a bare number loses leading zeros)"
                )
            }),
        }
    }
}

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = String;

    fn try_from(id: String) -> Result<Self, String> {
        if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(id))
        } else {
            Err(format!("`{id}` is not an AWS account id; allowed: 12 digits, quoted (\"123456789012\")"))
        }
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> String {
        id.0
    }
}

/// An AWS region name such as `us-east-1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Region {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let parts: Vec<&str> = name.split('-').collect();
        let valid = parts.len() >= 3
            && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
            && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        if valid { Ok(Region(name)) } else { Err(format!("`{name}` is not an AWS region; allowed: e.g. us-east-1")) }
    }
}

impl From<Region> for String {
    fn from(region: Region) -> String {
        region.0
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The base name of a dated table: DynamoDB's characters, short enough for the date before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TableBase(String);

/// `YYYY-MM-DD-`.
const DATE_PART: usize = 11;

impl TableBase {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The table of `date`: `YYYY-MM-DD-<base>`.
    pub fn dated(&self, date: chrono::NaiveDate) -> String {
        format!("{}-{}", date.format("%Y-%m-%d"), self.0)
    }

    /// The date of a table of this base, if `table` is one.
    pub fn date_of(&self, table: &str) -> Option<chrono::NaiveDate> {
        let date = table.strip_suffix(&self.0)?.strip_suffix('-')?;
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
    }
}

impl TryFrom<String> for TableBase {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if name.is_empty() || name.len() > 255 - DATE_PART || !name.chars().all(allowed) {
            return Err(format!(
                "`{name}` cannot name a DynamoDB table; allowed: 1-{} of a-z A-Z 0-9 _ - .",
                255 - DATE_PART
            ));
        }
        Ok(TableBase(name))
    }
}

impl From<TableBase> for String {
    fn from(name: TableBase) -> String {
        name.0
    }
}

/// Assets in one bundle: QuickSight takes 1 to 100 ARNs per export job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct BundleSize(u32);

impl BundleSize {
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl Default for BundleSize {
    fn default() -> Self {
        BundleSize(50)
    }
}

impl TryFrom<i64> for BundleSize {
    type Error = String;

    fn try_from(n: i64) -> Result<Self, String> {
        match n {
            1..=100 => Ok(BundleSize(n as u32)),
            _ => Err(format!("{n} is out of range; allowed: 1-100 (QuickSight exports at most 100 assets a job)")),
        }
    }
}

impl From<BundleSize> for u32 {
    fn from(size: BundleSize) -> u32 {
        size.0
    }
}

impl QuickSightJob {
    /// `(field, what is wrong)` for a spec serde accepted but that cannot work.
    pub fn check(&self) -> Result<(), (String, String)> {
        let namespace = &self.source.namespace;
        if namespace.is_empty()
            || namespace.len() > 64
            || !namespace.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err((
                "source.namespace".into(),
                format!("`{namespace}` is not a QuickSight namespace; allowed: 1-64 of a-z A-Z 0-9 - . _"),
            ));
        }
        let target = &self.target;
        let tables = [&target.users_table, &target.groups_table, &target.memberships_table];
        for (i, a) in tables.iter().enumerate() {
            if tables[..i].contains(a) {
                return Err(("target".into(), format!("two tables share the name `{}`", a.as_str())));
            }
        }
        if target.prefix.contains("//") || target.prefix.starts_with('/') {
            return Err(("target.prefix".into(), format!("`{}` has an empty path segment", target.prefix)));
        }
        Ok(())
    }

    /// `prefix/date/` of the run at `at`.
    pub fn date_prefix(&self, at: DateTime<Utc>) -> String {
        let prefix = self.target.prefix.trim_end_matches('/');
        let date = self.target.prefix_format.format(at);
        if prefix.is_empty() { format!("{date}/") } else { format!("{prefix}/{date}/") }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Format};

    const JOB: &str = "jobs:\n  - name: q\n    kind: quicksight\n    source:\n      account_id: \"123456789012\"\n      region: us-east-1\n    target:\n      bucket: b-b-b\n";

    fn error(extra: &str) -> String {
        Config::parse(&format!("{JOB}{extra}"), Format::Yaml, "q.yaml").unwrap_err().to_string()
    }

    #[test]
    fn bad_files_name_the_field_and_what_is_allowed() {
        let cases = [
            ("    max_assets_per_bundle: 150\n", "max_assets_per_bundle", "allowed: 1-100"),
            ("    max_assets_per_bundle: 0\n", "max_assets_per_bundle", "allowed: 1-100"),
            ("    mode: everything\n", "mode", "users-only"),
            ("    keep_tables: forever\n", "keep_tables", "duration"),
            ("    colour: red\n", "colour", "unknown field"),
        ];
        for (extra, field, allowed) in cases {
            let err = error(extra);
            assert!(err.contains(field) && err.contains(allowed) && err.contains("q.yaml"), "{extra}: {err}");
        }
        let err = Config::parse(&JOB.replace("\"123456789012\"", "12345"), Format::Yaml, "q.yaml").unwrap_err();
        assert!(err.to_string().contains("source.account_id") && err.to_string().contains("12 digits"), "{err}");
        let err = Config::parse(&JOB.replace("us-east-1", "Virginia"), Format::Yaml, "q.yaml").unwrap_err();
        assert!(err.to_string().contains("source.region"), "{err}");
        let err =
            Config::parse(&format!("{JOB}      prefix_format: DD.MM.YYYY\n"), Format::Yaml, "q.yaml").unwrap_err();
        assert!(err.to_string().contains("target.prefix_format") && err.to_string().contains("YYYY/MM/DD"), "{err}");
    }

    #[test]
    fn defaults_are_the_original_tools() {
        let job = Config::parse(JOB, Format::Yaml, "q.yaml").unwrap().jobs.remove(0);
        let spec = job.spec.get::<super::QuickSightJob>().unwrap();
        assert_eq!(spec.mode, super::Mode::Full);
        assert_eq!(spec.max_assets_per_bundle.get(), 50);
        assert_eq!(spec.source.namespace, "default");
        assert_eq!(spec.source.identity_region().as_str(), "us-east-1");
        assert_eq!(spec.target.users_table.as_str(), "quicksight-users-backup");
        assert_eq!(spec.target.memberships_table.as_str(), "quicksight-users-groups-backup");
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-03T04:05:06Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(spec.date_prefix(at), "quicksight-backups/2026/11/03/");
        assert_eq!(spec.target.users_table.dated(at.date_naive()), "2026-11-03-quicksight-users-backup");
        assert_eq!(spec.target.users_table.date_of("2026-11-03-quicksight-users-backup"), Some(at.date_naive()));
        assert_eq!(spec.target.users_table.date_of("2026-11-03-quicksight-users-backup-old"), None);
    }

    #[test]
    fn the_sample_planner_events_carry_a_valid_job_and_restore() {
        use crate::pipeline::events::{JobRef, PlannerEvent, parse_planner_event};
        let sample: serde_json::Value =
            serde_json::from_str(include_str!("../../../../events/planner-quicksight.json")).unwrap();
        let PlannerEvent::Request(request) = parse_planner_event(sample).unwrap() else { panic!("a request") };
        let JobRef::Inline(job) = request.job else { panic!("an inline job") };
        let spec = job.spec.get::<super::QuickSightJob>().expect("a quicksight job");
        assert_eq!(spec.source.identity_region().as_str(), "us-east-1");
        let restore: serde_json::Value =
            serde_json::from_str(include_str!("../../../../events/planner-quicksight-restore.json")).unwrap();
        let options = restore["restore"].as_object().unwrap().clone();
        let mut options = serde_json::Value::Object(options);
        options.as_object_mut().unwrap().remove("job");
        let restore = job.spec.restore_job(&job, options).expect("a restore").expect("valid options");
        assert_eq!(restore.spec.kind(), "quicksight-restore");
    }
}
