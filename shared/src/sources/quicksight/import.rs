//! `backline config import quicksight-backup FILE`: the YAML or JSON config of the tool Backline
//! replaces (`aws`, `dynamodb`, `s3`, `backup`, `logging`) as a Backline job file in YAML, with a
//! comment for every setting that has no equivalent.

use std::fmt::Write;

use serde_json::{Map, Value};

use super::config::TableBase;
use super::{AccountId, BundleSize, Region};
use crate::config::BucketName;

/// The tool whose config this reads.
pub const TOOL: &str = "quicksight-backup";

/// The sections of the original config, and the settings it reads in each.
const KNOWN: [(&str, &[&str]); 5] = [
    ("aws", &["region", "account_id", "identity_region", "access_key_id", "secret_access_key", "session_token"]),
    ("dynamodb", &["users_table_name", "groups_table_name", "users_group_table_name"]),
    ("s3", &["bucket_name", "prefix_format", "prefix"]),
    (
        "backup",
        &["include_dependencies", "include_permissions", "include_tags", "export_format", "max_assets_per_bundle"],
    ),
    ("logging", &["level", "file_path"]),
];

/// The bundles' prefix the original tool always wrote under (its loader never read `s3.prefix`).
const ORIGINAL_PREFIX: &str = "quicksight-backups";

/// A string as a double-quoted scalar: JSON's escapes are valid YAML.
fn quoted(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

/// A key for a comment line: as it is when plain, else quoted (no line break gets through).
fn plain(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        key.to_string()
    } else {
        quoted(key)
    }
}

/// The original config's top-level mapping.
struct Settings<'a>(&'a Map<String, Value>);

impl<'a> Settings<'a> {
    /// `section.key`, absent when missing or null (the original tool drops nulls).
    fn get(&self, section: &str, key: &str) -> Option<&'a Value> {
        self.0.get(section)?.as_object()?.get(key).filter(|v| !v.is_null())
    }

    /// A string setting; an empty one counts as missing, as in the original tool.
    fn string(&self, section: &str, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(section, key) {
            None => Ok(None),
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(other) => Err(format!("{section}.{key}: {other} is not a string")),
        }
    }

    /// A true/false setting, true when missing (the original tool's default). The original read
    /// YAML 1.1, where `yes`, `no`, `on` and `off` are flags too.
    fn flag(&self, section: &str, key: &str) -> Result<bool, String> {
        match self.get(section, key) {
            None => Ok(true),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(Value::String(word)) if matches!(word.to_ascii_lowercase().as_str(), "yes" | "on") => Ok(true),
            Some(Value::String(word)) if matches!(word.to_ascii_lowercase().as_str(), "no" | "off") => Ok(false),
            Some(other) => Err(format!("{section}.{key}: {other} is not a flag; allowed: true, false")),
        }
    }
}

/// The text as JSON when it starts with `{` (falling back to YAML's flow style), else as YAML.
fn parse(text: &str) -> Result<Value, String> {
    if text.lines().all(|line| line.trim().is_empty() || line.trim_start().starts_with('#')) {
        return Ok(Value::Null);
    }
    if text.trim_start().starts_with('{') {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => Ok(value),
            Err(json) => serde_yaml::from_str::<Value>(text).map_err(|_| format!("not valid JSON: {json}")),
        }
    } else {
        serde_yaml::from_str::<Value>(text).map_err(|e| format!("not valid YAML: {e}"))
    }
}

/// The equivalent Backline job file, or what is wrong with `text`.
pub fn import(text: &str) -> Result<String, String> {
    let root = parse(text)?;
    let Value::Object(root) = &root else {
        return Err(format!(
            "the config is {}, not a mapping of sections (aws, dynamodb, s3, backup, logging)",
            if root.is_null() { "empty".to_string() } else { root.to_string() }
        ));
    };
    for (section, _) in KNOWN {
        match root.get(section) {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(other) => return Err(format!("{section}: {other} is not a section of settings")),
        }
    }
    let s = Settings(root);

    // Required: the original tool does not start without them either.
    let account = match s.get("aws", "account_id") {
        None => None,
        Some(Value::String(id)) if id.is_empty() => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(other) => {
            return Err(format!(
                "aws.account_id: {other} is not an AWS account id; allowed: 12 digits, quoted (\"123456789012\")"
            ));
        }
    };
    let region = s.string("aws", "region")?;
    let bucket = s.string("s3", "bucket_name")?;
    let (Some(account), Some(region), Some(bucket)) = (account.as_deref(), region, bucket) else {
        let missing: Vec<&str> = [
            ("aws.account_id", account.is_none()),
            ("aws.region", region.is_none()),
            ("s3.bucket_name", bucket.is_none()),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(key, _)| key)
        .collect();
        let them = if missing.len() == 1 { "it" } else { "them" };
        return Err(format!("missing {}: {TOOL} requires {them} too", missing.join(", ")));
    };
    let account = AccountId::try_from(account.to_string()).map_err(|e| format!("aws.account_id: {e}"))?;
    let region = Region::try_from(region.to_string()).map_err(|e| format!("aws.region: {e}"))?;
    let identity_region = s
        .string("aws", "identity_region")?
        .map(|r| Region::try_from(r.to_string()).map_err(|e| format!("aws.identity_region: {e}")))
        .transpose()?;
    let bucket = BucketName::try_from(bucket.to_string()).map_err(|e| format!("s3.bucket_name: {e}"))?;

    let prefix = s.string("s3", "prefix")?;
    if let Some(prefix) = prefix
        && (prefix.starts_with('/') || prefix.contains("//"))
    {
        return Err(format!(
            "s3.prefix: `{prefix}` has an empty path segment; allowed: a-z A-Z 0-9 . _ - and single slashes, none first"
        ));
    }
    let prefix_format = s.string("s3", "prefix_format")?.unwrap_or("YYYY/MM/DD");
    if !matches!(prefix_format, "YYYY/MM/DD" | "YYYY-MM-DD" | "YYYYMMDD") {
        return Err(format!(
            "s3.prefix_format: `{prefix_format}` is not a date format; allowed: YYYY/MM/DD, YYYY-MM-DD, YYYYMMDD"
        ));
    }

    // (Backline's key, the original's key, its default)
    let table_keys = [
        ("users_table", "users_table_name", "quicksight-users-backup"),
        ("groups_table", "groups_table_name", "quicksight-groups-backup"),
        ("memberships_table", "users_group_table_name", "quicksight-users-groups-backup"),
    ];
    let mut tables: Vec<(&str, &str, TableBase)> = Vec::new();
    for (ours, theirs, default) in table_keys {
        let name = s.string("dynamodb", theirs)?.unwrap_or(default);
        let base = TableBase::try_from(name.to_string()).map_err(|e| format!("dynamodb.{theirs}: {e}"))?;
        if let Some((_, other, _)) = tables.iter().find(|(_, _, b)| b == &base) {
            return Err(format!(
                "dynamodb.{theirs}: `{name}` is also dynamodb.{other}; allowed: a different table for users, groups and memberships"
            ));
        }
        tables.push((ours, theirs, base));
    }

    let max_assets = match s.get("backup", "max_assets_per_bundle") {
        None => 50,
        Some(value) => value
            .as_i64()
            .ok_or_else(|| format!("backup.max_assets_per_bundle: {value} is not a whole number; allowed: 1-100"))?,
    };
    let max_assets = BundleSize::try_from(max_assets).map_err(|e| format!("backup.max_assets_per_bundle: {e}"))?;
    let include_dependencies = s.flag("backup", "include_dependencies")?;
    let include_permissions = s.flag("backup", "include_permissions")?;
    let include_tags = s.flag("backup", "include_tags")?;
    let export_format = s.string("backup", "export_format")?;
    if let Some(format) = export_format
        && !matches!(format, "QUICKSIGHT_JSON" | "CLOUDFORMATION_JSON")
    {
        return Err(format!(
            "backup.export_format: `{format}` is not an export format; allowed: QUICKSIGHT_JSON, CLOUDFORMATION_JSON"
        ));
    }

    // Comment lines for the settings with no equivalent, written after the job's settings.
    let mut notes: Vec<String> = Vec::new();
    for key in ["access_key_id", "secret_access_key", "session_token"] {
        if s.get("aws", key).is_some() {
            notes.push(format!(
                "aws.{key}: (not copied) Backline uses the AWS default credential chain: the environment, a profile, or the role it runs as."
            ));
        }
    }
    match export_format {
        Some("CLOUDFORMATION_JSON") => notes.push(
            "TODO backup.export_format: CLOUDFORMATION_JSON: Backline exports QUICKSIGHT_JSON bundles only (what its restore imports); no CloudFormation templates."
                .into(),
        ),
        Some(format) => notes.push(format!("backup.export_format: {format}: what Backline always exports; nothing to set.")),
        None => {}
    }
    if let Some(level) = s.get("logging", "level") {
        let level = level.as_str().map(quoted).unwrap_or_else(|| level.to_string());
        notes.push(format!(
            "logging.level: {level}: Backline logs to stderr; `-v` (info), `-vv` (debug) or BACKLINE_LOG=<filter> choose how much."
        ));
    }
    if let Some(path) = s.get("logging", "file_path") {
        let path = path.as_str().map(quoted).unwrap_or_else(|| path.to_string());
        notes.push(format!("logging.file_path: {path}: Backline writes no log file; redirect its stderr to keep one."));
    }
    for (section, keys) in KNOWN {
        if let Some(Value::Object(settings)) = root.get(section) {
            for key in settings.keys().filter(|k| !keys.contains(&k.as_str())) {
                notes.push(format!("{section}.{}: not a {TOOL} setting (it ignored it); left out.", plain(key)));
            }
        }
    }
    for key in root.keys().filter(|k| !KNOWN.iter().any(|(section, _)| *section == k.as_str())) {
        notes.push(format!("{}: not a {TOOL} section (it ignored it); left out.", plain(key)));
    }

    let mut out = String::new();
    let _ = writeln!(out, "# Converted from a {TOOL} config by `backline config import`. Check every TODO.");
    let _ = writeln!(out, "jobs:");
    let _ = writeln!(out, "  - name: quicksight");
    let _ = writeln!(out, "    kind: quicksight");
    let _ = writeln!(out, "    # TODO: when to run; {TOOL} ran whenever cron or a scheduler started it.");
    let _ = writeln!(out, "    schedule: \"cron(0 2 * * ? *)\"");
    let _ = writeln!(
        out,
        "    # Was the --mode flag of each run (default full): full | users-only | assets-only; `backline run --mode` still overrides it."
    );
    let _ = writeln!(out, "    mode: full");
    let _ = writeln!(
        out,
        "    # --output-dir (a flag): each run's manifest and report are kept in the bucket under _backline/;"
    );
    let _ = writeln!(
        out,
        "    #   `backline run --output-dir DIR` also writes backup_manifest_*.json and backup_report_*.txt there."
    );
    let _ = writeln!(out, "    # --dry-run (a flag): `backline plan`, or `backline run --dry-run`.");
    let _ = writeln!(out, "    source:");
    let _ = writeln!(out, "      account_id: {}", quoted(account.as_str()));
    let _ = writeln!(out, "      region: {}", quoted(region.as_str()));
    match &identity_region {
        Some(identity) => {
            let _ = writeln!(out, "      identity_region: {}", quoted(identity.as_str()));
        }
        None => {
            let _ =
                writeln!(out, "      # identity_region: not set; users and groups are read in `region`, as before.");
        }
    }
    let _ = writeln!(out, "      # {TOOL} always read the default namespace.");
    let _ = writeln!(out, "      namespace: default");
    let _ = writeln!(out, "    target:");
    let _ = writeln!(out, "      bucket: {}", quoted(bucket.as_str()));
    match prefix.map(|p| p.trim_end_matches('/')) {
        Some(prefix) if prefix != ORIGINAL_PREFIX => {
            let _ = writeln!(
                out,
                "      # TODO s3.prefix: {TOOL} never read this setting and wrote its bundles under {ORIGINAL_PREFIX}/;\n      \
                 #   keep {} as meant, or write {ORIGINAL_PREFIX} to put new bundles next to the old ones.",
                quoted(prefix)
            );
            let _ = writeln!(out, "      prefix: {}", quoted(prefix));
        }
        _ => {
            let _ = writeln!(out, "      prefix: {}", quoted(ORIGINAL_PREFIX));
        }
    }
    let _ = writeln!(out, "      prefix_format: {}", quoted(prefix_format));
    let _ = writeln!(out, "      # Each run writes YYYY-MM-DD-<name> tables, as {TOOL} did.");
    for (ours, _, base) in &tables {
        let _ = writeln!(out, "      {ours}: {}", quoted(base.as_str()));
    }
    let _ = writeln!(out, "    max_assets_per_bundle: {}", max_assets.get());
    let _ = writeln!(out, "    include_dependencies: {include_dependencies}");
    let _ = writeln!(out, "    include_permissions: {include_permissions}");
    let _ = writeln!(out, "    include_tags: {include_tags}");
    let _ = writeln!(
        out,
        "    # TODO: {TOOL} never deleted its dated tables; uncomment to delete this job's tables older than this.\n    \
         # keep_tables: \"90d\""
    );
    for note in notes {
        let _ = writeln!(out, "    # {note}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Format};

    const YAML: &str = r#"
# QuickSight backup, production account
aws:
  region: eu-west-1
  identity_region: us-east-1
  account_id: "210987654321"
  access_key_id: "AKIAEXAMPLEEXAMPLE"
  secret_access_key: "wJalrXUtnFEMI/s3cr3t"

dynamodb:
  users_table_name: "prod-qs-users"
  groups_table_name: "prod-qs-groups"
  users_group_table_name: "prod-qs-memberships"

s3:
  bucket_name: "acme-quicksight-backups"
  prefix_format: "YYYY-MM-DD"
  prefix: "qs/prod/"

backup:
  include_dependencies: true
  include_permissions: true
  include_tags: false
  export_format: "QUICKSIGHT_JSON"
  max_assets_per_bundle: 25

logging:
  level: "DEBUG"
  file_path: "/var/log/quicksight-backup/backup.log"

notifications:
  email: ops@example.com
"#;

    const JSON: &str = r#"{
  "aws": { "region": "us-east-1", "account_id": "123456789012" },
  "s3": { "bucket_name": "my-quicksight-backups", "prefix_format": "YYYYMMDD" },
  "backup": { "include_permissions": false, "max_assets_per_bundle": 100 },
  "logging": { "level": "INFO" }
}"#;

    fn yaml(text: &str) -> serde_yaml::Value {
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn a_yaml_config_becomes_a_valid_job_file_with_notes() {
        let text = import(YAML).unwrap();
        for line in [
            "    kind: quicksight",
            "    mode: full",
            "      account_id: \"210987654321\"",
            "      region: \"eu-west-1\"",
            "      identity_region: \"us-east-1\"",
            "      namespace: default",
            "      bucket: \"acme-quicksight-backups\"",
            "      prefix: \"qs/prod\"",
            "      prefix_format: \"YYYY-MM-DD\"",
            "      users_table: \"prod-qs-users\"",
            "      groups_table: \"prod-qs-groups\"",
            "      memberships_table: \"prod-qs-memberships\"",
            "    max_assets_per_bundle: 25",
            "    include_tags: false",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in:\n{text}");
        }
        for note in [
            "aws.access_key_id",
            "aws.secret_access_key",
            "logging.level",
            "logging.file_path",
            "backup.export_format",
            "TODO s3.prefix",
            "notifications",
            "keep_tables",
        ] {
            assert!(text.contains(note), "{note} not in:\n{text}");
        }
        assert!(!text.contains("s3cr3t") && !text.contains("AKIAEXAMPLE"), "a credential is never copied:\n{text}");

        let value = yaml(&text);
        let job = &value["jobs"][0];
        assert_eq!(job["kind"].as_str(), Some("quicksight"));
        assert_eq!(job["source"]["account_id"].as_str(), Some("210987654321"));
        assert_eq!(job["source"]["identity_region"].as_str(), Some("us-east-1"));
        assert_eq!(job["target"]["bucket"].as_str(), Some("acme-quicksight-backups"));
        assert_eq!(job["max_assets_per_bundle"].as_u64(), Some(25));
        assert_eq!(job["include_tags"].as_bool(), Some(false));
        assert!(job["keep_tables"].is_null(), "keep_tables is only suggested");

        let config = Config::parse(&text, Format::Yaml, "imported.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let spec = config.jobs[0].spec.get::<super::super::QuickSightJob>().unwrap();
        assert_eq!(spec.mode, super::super::Mode::Full);
        assert_eq!(spec.source.account_id.as_str(), "210987654321");
        assert_eq!(spec.source.identity_region().as_str(), "us-east-1");
        assert_eq!(spec.target.prefix_format, super::super::DateFormat::Dashes);
        assert_eq!(spec.target.memberships_table.as_str(), "prod-qs-memberships");
        assert_eq!(spec.max_assets_per_bundle.get(), 25);
        assert!(spec.include_dependencies && spec.include_permissions && !spec.include_tags);
    }

    #[test]
    fn a_json_config_gets_the_original_defaults() {
        let text = import(JSON).unwrap();
        let value = yaml(&text);
        let job = &value["jobs"][0];
        assert_eq!(job["source"]["region"].as_str(), Some("us-east-1"));
        assert!(job["source"]["identity_region"].is_null(), "{text}");
        assert_eq!(job["target"]["prefix"].as_str(), Some("quicksight-backups"));
        assert_eq!(job["target"]["prefix_format"].as_str(), Some("YYYYMMDD"));
        assert_eq!(job["target"]["users_table"].as_str(), Some("quicksight-users-backup"));
        assert_eq!(job["target"]["groups_table"].as_str(), Some("quicksight-groups-backup"));
        assert_eq!(job["target"]["memberships_table"].as_str(), Some("quicksight-users-groups-backup"));
        assert_eq!(job["max_assets_per_bundle"].as_u64(), Some(100));
        assert_eq!(job["include_dependencies"].as_bool(), Some(true));
        assert_eq!(job["include_permissions"].as_bool(), Some(false));
        assert!(!text.contains("TODO s3.prefix"), "{text}");

        let config = Config::parse(&text, Format::Yaml, "imported.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let spec = config.jobs[0].spec.get::<super::super::QuickSightJob>().unwrap();
        assert_eq!(spec.source.identity_region().as_str(), "us-east-1");
        assert_eq!(spec.target.prefix_format, super::super::DateFormat::Compact);
    }

    #[test]
    fn an_unquoted_account_id_and_cloudformation_are_taken_with_notes() {
        let text = import(
            "aws: {region: us-west-2, account_id: 123456789012}\ns3: {bucket_name: b-backups}\nbackup: {export_format: CLOUDFORMATION_JSON}\n",
        )
        .unwrap();
        assert_eq!(yaml(&text)["jobs"][0]["source"]["account_id"].as_str(), Some("123456789012"));
        assert!(text.contains("TODO backup.export_format: CLOUDFORMATION_JSON"), "{text}");
    }

    #[test]
    fn errors_name_the_setting() {
        let base = |extra: &str| format!("aws:\n  region: us-east-1\n  account_id: \"123456789012\"\n{extra}");
        let missing = import(&base("s3:\n  prefix_format: YYYY/MM/DD\n")).unwrap_err();
        assert!(missing.contains("s3.bucket_name"), "{missing}");
        let missing = import("{\"s3\": {\"bucket_name\": \"b-backups\"}}").unwrap_err();
        assert!(missing.contains("aws.account_id") && missing.contains("aws.region"), "{missing}");

        let bucket = "s3:\n  bucket_name: b-backups\n";
        let err = import(&base(&format!("{bucket}backup:\n  max_assets_per_bundle: 0\n"))).unwrap_err();
        assert!(err.contains("backup.max_assets_per_bundle") && err.contains("1-100"), "{err}");
        let err = import(&base(&format!("{bucket}backup:\n  max_assets_per_bundle: 101\n"))).unwrap_err();
        assert!(err.contains("backup.max_assets_per_bundle") && err.contains("1-100"), "{err}");
        let err = import(&base("s3:\n  bucket_name: b-backups\n  prefix_format: DD/MM/YYYY\n")).unwrap_err();
        assert!(err.contains("s3.prefix_format") && err.contains("YYYYMMDD"), "{err}");
        let err = import(&base(&format!("{bucket}backup:\n  include_tags: 2\n"))).unwrap_err();
        assert!(err.contains("backup.include_tags") && err.contains("true, false"), "{err}");
        let text =
            import(&base(&format!("{bucket}backup:\n  include_tags: off\n  include_permissions: yes\n"))).unwrap();
        assert_eq!(yaml(&text)["jobs"][0]["include_tags"].as_bool(), Some(false), "{text}");
        assert_eq!(yaml(&text)["jobs"][0]["include_permissions"].as_bool(), Some(true), "{text}");
        let err = import(&base(&format!("{bucket}backup:\n  export_format: XML\n"))).unwrap_err();
        assert!(err.contains("backup.export_format") && err.contains("QUICKSIGHT_JSON"), "{err}");
        let err =
            import(&base(&format!("{bucket}dynamodb:\n  groups_table_name: quicksight-users-backup\n"))).unwrap_err();
        assert!(err.contains("dynamodb.groups_table_name") && err.contains("dynamodb.users_table_name"), "{err}");
        let err =
            import("aws:\n  region: us-east-1\n  account_id: \"12345\"\ns3:\n  bucket_name: b-backups\n").unwrap_err();
        assert!(err.contains("aws.account_id"), "{err}");
        let err = import("aws:\n  region: Europe\n  account_id: \"123456789012\"\ns3:\n  bucket_name: b-backups\n")
            .unwrap_err();
        assert!(err.contains("aws.region"), "{err}");
        let err = import(&base("s3:\n  bucket_name: My_Bucket\n")).unwrap_err();
        assert!(err.contains("s3.bucket_name"), "{err}");

        assert!(import("aws: [\n").unwrap_err().contains("not valid YAML"));
        assert!(import("{\"aws\": ").unwrap_err().contains("not valid JSON"));
        assert!(import("").unwrap_err().contains("empty"));
        assert!(import("# nothing yet\n\n").unwrap_err().contains("empty"));
        assert!(import("s3: bucket\n").unwrap_err().contains("s3"));
    }
}
