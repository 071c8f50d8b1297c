//! The job file: one schema read from TOML, YAML or JSON.
//!
//! Every format is first read into a `serde_json::Value` and then validated by one code path,
//! so an error names the same field the same way whichever format the user wrote.

mod infra;
mod job;
pub mod registry;
pub mod size;
mod types;

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use infra::{EfsMount, InfraConfig};
pub use job::*;
pub use size::{ByteSize, HumanDuration};
pub use types::*;

/// Parses the options of a restore (a planner request's `restore`, or the flags of
/// `backline restore`) into a kind's options type, naming bad fields as `restore.FIELD`.
pub fn restore_options<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, JobError> {
    deserialize_at(value, "restore").map_err(|(field, message)| JobError { job: None, field, message })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub jobs: Vec<Job>,
    /// `[notify]`: the defaults every job's `[jobs.notify]` was merged over (already in each job).
    #[serde(skip)]
    pub notify: Option<Notify>,
    /// The deployment's settings, for the CDK app in `infra/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infra: Option<InfraConfig>,
}

/// A job file that cannot be used. Displays as `FILE: job "NAME": field `F`: what is wrong`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: unsupported extension; a job file ends in .toml, .yaml, .yml or .json")]
    Extension { file: String },
    #[error("{file}: not valid {format}: {message}")]
    Syntax { file: String, format: &'static str, message: String },
    #[error("{file}: {}field `{field}`: {message}", job.as_ref().map(|j| format!("job {j}: ")).unwrap_or_default())]
    Field {
        file: String,
        /// The job's name in quotes, or its position when it has no usable name.
        job: Option<String>,
        field: String,
        message: String,
    },
    #[error("{file}: job {job:?} not found; jobs in this file: {}", available.join(", "))]
    UnknownJob { file: String, job: String, available: Vec<String> },
}

/// The formats a job file can be written in, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
    Json,
}

impl Format {
    pub fn from_path(path: &str) -> Option<Format> {
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
            Format::Json => "JSON",
        }
    }
}

impl Config {
    /// Reads and validates a job file from disk.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let format = Format::from_path(&file).ok_or_else(|| ConfigError::Extension { file: file.clone() })?;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
        Config::parse(&text, format, &file)
    }

    /// Validates a job file's text; `file` names it in errors.
    pub fn parse(text: &str, format: Format, file: &str) -> Result<Config, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax { file: file.to_string(), format: format.name(), message };
        let value: Value = match format {
            Format::Toml => toml::from_str(text).map_err(|e| syntax(e.to_string()))?,
            Format::Yaml => serde_yaml::from_str(text).map_err(|e| syntax(e.to_string()))?,
            Format::Json => serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?,
        };
        Config::from_value(value, file)
    }

    fn from_value(value: Value, file: &str) -> Result<Config, ConfigError> {
        let field_error = |job: Option<String>, field: &str, message: String| ConfigError::Field {
            file: file.to_string(),
            job,
            field: field.to_string(),
            message,
        };
        let Value::Object(mut top) = value else {
            return Err(field_error(None, "jobs", "the file must be a table with a `jobs` list".into()));
        };
        if let Some(unknown) = top.keys().find(|k| !["jobs", "infra", "notify"].contains(&k.as_str())) {
            return Err(field_error(
                None,
                unknown,
                "unknown field; allowed at the top level: jobs, notify, infra".into(),
            ));
        }
        let notify: Option<Notify> = match top.remove("notify") {
            None => None,
            Some(value) => Some(deserialize_at(value, "notify").map_err(|(f, m)| field_error(None, &f, m))?),
        };
        let infra = match top.remove("infra") {
            None => None,
            Some(value) => {
                let infra: InfraConfig = deserialize_at(value, "infra").map_err(|(f, m)| field_error(None, &f, m))?;
                infra.check().map_err(|(f, m)| field_error(None, &format!("infra.{f}"), m))?;
                Some(infra)
            }
        };
        let jobs = match top.remove("jobs") {
            Some(Value::Array(jobs)) if !jobs.is_empty() => jobs,
            Some(Value::Array(_)) | None => {
                return Err(field_error(
                    None,
                    "jobs",
                    "missing; the file must define at least one [[jobs]] entry".into(),
                ));
            }
            Some(_) => {
                return Err(field_error(None, "jobs", "must be a list of jobs ([[jobs]] in TOML)".into()));
            }
        };
        let mut parsed: Vec<Job> = Vec::with_capacity(jobs.len());
        for (index, job) in jobs.into_iter().enumerate() {
            let mut job = Job::from_value(job).map_err(|e| e.in_file(file, index))?;
            if let Some(defaults) = &notify {
                job.notify = Some(job.notify.take().unwrap_or_default().over(defaults));
            }
            if parsed.iter().any(|other| other.name == job.name) {
                return Err(field_error(
                    Some(format!("{:?}", job.name)),
                    "name",
                    "duplicate job name; each job needs its own".into(),
                ));
            }
            parsed.push(job);
        }
        Ok(Config { jobs: parsed, notify, infra })
    }

    /// The job called `name`.
    pub fn job(&self, name: &str, file: &str) -> Result<&Job, ConfigError> {
        self.jobs.iter().find(|j| j.name == name).ok_or_else(|| ConfigError::UnknownJob {
            file: file.to_string(),
            job: name.to_string(),
            available: self.jobs.iter().map(|j| j.name.clone()).collect(),
        })
    }

    /// The normalised jobs (defaults filled in) as TOML, for `backline config check`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print as TOML: {e}\n"))
    }
}

/// A problem with one job, before we know which file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub job: Option<String>,
    pub field: String,
    pub message: String,
}

impl JobError {
    fn in_file(self, file: &str, index: usize) -> ConfigError {
        ConfigError::Field {
            file: file.to_string(),
            job: Some(self.job.map(|n| format!("{n:?}")).unwrap_or_else(|| format!("#{}", index + 1))),
            field: self.field,
            message: self.message,
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(job) = &self.job {
            write!(f, "job {job:?}: ")?;
        }
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for JobError {}

/// Job names become part of run ids, S3 keys and metric dimensions.
fn check_job_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` is not a usable job name; allowed: 1 to 100 characters of A-Z, a-z, 0-9, '-' and '_'"))
    }
}

impl Job {
    /// Validates one job given as a JSON value (from a job file or an event).
    pub fn from_value(value: Value) -> Result<Job, JobError> {
        let Value::Object(mut fields) = value else {
            return Err(JobError { job: None, field: "jobs".into(), message: "each job must be a table".into() });
        };
        let name = match fields.remove("name") {
            Some(Value::String(name)) => name,
            Some(_) => {
                return Err(JobError { job: None, field: "name".into(), message: "must be a string".into() });
            }
            None => {
                return Err(JobError {
                    job: None,
                    field: "name".into(),
                    message: "missing; every job needs a name".into(),
                });
            }
        };
        let error = |field: String, message: String| JobError { job: Some(name.clone()), field, message };
        check_job_name(&name).map_err(|m| error("name".into(), m))?;
        let kinds = registry::names().join(", ");
        let kind = match fields.remove("kind") {
            Some(Value::String(kind)) => kind,
            Some(_) => {
                return Err(error("kind".into(), format!("must be a string; allowed: {kinds}")));
            }
            None => return Err(error("kind".into(), format!("missing; allowed: {kinds}"))),
        };
        let Some(entry) = registry::lookup(&kind) else {
            return Err(error("kind".into(), format!("unknown kind `{kind}`; allowed: {kinds}")));
        };
        let control = take_field::<ControlLocation>(&mut fields, "control").map_err(|(f, m)| error(f, m))?;
        let concurrency = take_field::<usize>(&mut fields, "concurrency")
            .map_err(|(f, m)| error(f, m))?
            .unwrap_or(entry.default_concurrency);
        if !(1..=1024).contains(&concurrency) {
            return Err(error("concurrency".into(), "must be between 1 and 1024".into()));
        }
        let schedule = take_field::<String>(&mut fields, "schedule").map_err(|(f, m)| error(f, m))?;
        let notify = take_field::<Notify>(&mut fields, "notify").map_err(|(f, m)| error(f, m))?;
        if let Some(schedule) = &schedule
            && !(schedule.starts_with("rate(") || schedule.starts_with("cron(") || schedule.starts_with("at("))
        {
            return Err(error(
                "schedule".into(),
                format!("`{schedule}` is not a schedule expression; allowed: rate(...), cron(...) or at(...)"),
            ));
        }
        let spec = JobSpec::from_arc((entry.parse)(Value::Object(fields)).map_err(|(f, m)| error(f, m))?);
        Ok(Job { name, control, concurrency, schedule, notify, spec })
    }
}

impl<'de> Deserialize<'de> for Job {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Job::from_value(value).map_err(serde::de::Error::custom)
    }
}

fn take_field<T: serde::de::DeserializeOwned>(
    fields: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<T>, (String, String)> {
    fields.remove(name).map(|value| deserialize_at(value, name)).transpose()
}

/// Deserializes `value`, turning serde's message into (dotted field path, what is wrong).
pub(crate) fn deserialize_at<T: serde::de::DeserializeOwned>(value: Value, base: &str) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut path = err.path().to_string();
        if path == "." {
            path.clear();
        }
        let message = err.inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        let named = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()).map(str::to_string);
        let mut segments: Vec<&str> = [base, path.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
        if let Some(name) = &named {
            segments.push(name);
        }
        let message = if message.starts_with("missing field") {
            "missing (required)".to_string()
        } else if let Some(rest) = message.strip_prefix("unknown field `") {
            let allowed = rest.split_once(", expected ").map(|(_, a)| a).unwrap_or("no fields here");
            format!("unknown field; allowed: {}", allowed.trim_start_matches("one of "))
        } else {
            message
        };
        (segments.join("."), message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[jobs]]
name = "photos"
kind = "s3"
[jobs.source]
bucket = "photos-prod"
[jobs.target]
bucket = "photos-backup"
"#;

    fn field_error(text: &str, format: Format) -> (Option<String>, String, String) {
        match Config::parse(text, format, "jobs.toml").unwrap_err() {
            ConfigError::Field { job, field, message, .. } => (job, field, message),
            other => panic!("expected a field error, got {other}"),
        }
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let config = Config::parse(MINIMAL, Format::Toml, "jobs.toml").unwrap();
        let job = &config.jobs[0];
        assert_eq!(job.name, "photos");
        assert_eq!(job.concurrency, DEFAULT_CONCURRENCY);
        let s3 = job.spec.get::<crate::sources::s3::S3Job>().expect("an s3 job");
        assert_eq!(s3.source.prefix, "");
        assert_eq!(s3.target.multipart_threshold, ByteSize(1 << 30));
        assert!(s3.target.copy_tags);
        assert_eq!(job.control().bucket.as_str(), "photos-backup");
        assert_eq!(job.control().prefix, "_backline/");
    }

    #[test]
    fn the_three_formats_read_the_same_jobs() {
        let yaml = "jobs:\n  - name: photos\n    kind: s3\n    source: {bucket: photos-prod}\n    target: {bucket: photos-backup}\n";
        let json = r#"{"jobs":[{"name":"photos","kind":"s3","source":{"bucket":"photos-prod"},"target":{"bucket":"photos-backup"}}]}"#;
        let toml = Config::parse(MINIMAL, Format::Toml, "a.toml").unwrap();
        assert_eq!(Config::parse(yaml, Format::Yaml, "a.yaml").unwrap(), toml);
        assert_eq!(Config::parse(json, Format::Json, "a.json").unwrap(), toml);
    }

    #[test]
    fn unknown_field_is_named_with_what_is_allowed() {
        let text = MINIMAL.replace("bucket = \"photos-backup\"", "bucket = \"photos-backup\"\nbuckit = 1");
        let (job, field, message) = field_error(&text, Format::Toml);
        assert_eq!(job.as_deref(), Some("\"photos\""));
        assert_eq!(field, "target.buckit");
        assert!(message.contains("allowed:") && message.contains("storage_class"), "{message}");
    }

    #[test]
    fn missing_bucket_is_named() {
        let text = MINIMAL.replace("bucket = \"photos-prod\"", "prefix = \"x/\"");
        let (_, field, message) = field_error(&text, Format::Toml);
        assert_eq!(field, "source.bucket");
        assert_eq!(message, "missing (required)");
    }

    #[test]
    fn bad_values_say_what_is_allowed() {
        let cases = [
            ("bucket = \"photos-backup\"", "bucket = \"Photos_Backup\"", "target.bucket", "not a valid bucket name"),
            (
                "bucket = \"photos-backup\"",
                "bucket = \"photos-backup\"\nstorage_class = \"COLD\"",
                "target.storage_class",
                "DEEP_ARCHIVE",
            ),
            (
                "bucket = \"photos-backup\"",
                "bucket = \"photos-backup\"\nmultipart_threshold = \"lots\"",
                "target.multipart_threshold",
                "not a size",
            ),
            (
                "kind = \"s3\"",
                "kind = \"s3\"\nonly_modified_within = \"yesterday\"",
                "only_modified_within",
                "not a duration",
            ),
            ("kind = \"s3\"", "kind = \"ftp\"", "kind", "allowed: s3, s3-restore"),
            ("name = \"photos\"", "name = \"my photos\"", "name", "not a usable job name"),
        ];
        for (from, to, want_field, want_message) in cases {
            let (_, field, message) = field_error(&MINIMAL.replace(from, to), Format::Toml);
            assert_eq!(field, want_field, "{to}");
            assert!(message.contains(want_message), "{to}: {message}");
        }
    }

    #[test]
    fn duplicate_names_and_empty_files_are_refused() {
        let twice = format!("{MINIMAL}{MINIMAL}");
        assert_eq!(field_error(&twice, Format::Toml).1, "name");
        assert_eq!(field_error("", Format::Toml).1, "jobs");
        assert_eq!(field_error("jobs = []\nother = 1", Format::Toml).1, "other");
    }

    #[test]
    fn syntax_errors_name_the_format() {
        let err = Config::parse("[[jobs]\n", Format::Toml, "x.toml").unwrap_err();
        assert!(err.to_string().starts_with("x.toml: not valid TOML"), "{err}");
    }

    #[test]
    fn extensions_are_checked() {
        assert_eq!(Format::from_path("a/b.YML"), Some(Format::Yaml));
        assert_eq!(Format::from_path("jobs.ini"), None);
        let err = Config::load("jobs.ini").unwrap_err();
        assert!(err.to_string().contains(".toml, .yaml, .yml or .json"), "{err}");
    }

    #[test]
    fn the_example_deployment_config_is_valid() {
        let text = include_str!("../../../infra/backline.example.toml");
        let config = Config::parse(text, Format::Toml, "backline.example.toml").unwrap_or_else(|e| panic!("{e}"));
        let infra = config.infra.expect("an infra section");
        assert_eq!(infra.noncurrent_expiry_days, 180);
        for kind in registry::names() {
            assert!(
                config.jobs.iter().any(|j| j.spec.kind() == kind && j.schedule.is_some()),
                "the example schedules no {kind} job"
            );
        }
        let bad = text.replace("architecture = \"arm64\"", "architecture = \"sparc\"");
        let err = Config::parse(&bad, Format::Toml, "d.toml").unwrap_err().to_string();
        assert!(err.contains("infra.architecture") && err.contains("x86_64"), "{err}");
    }

    #[test]
    fn every_kind_has_an_example() {
        for entry in registry::kinds() {
            assert!(entry.example.contains(&format!("kind = \"{}\"", entry.name)), "no example for {}", entry.name);
        }
    }

    #[test]
    fn examples_parse_and_round_trip() {
        for (kind, text) in registry::kinds().iter().map(|k| (k.name, k.example)) {
            let config = Config::parse(text, Format::Toml, kind).unwrap_or_else(|e| panic!("{kind}: {e}"));
            let again = Config::parse(&config.to_toml(), Format::Toml, kind).unwrap();
            assert_eq!(config, again);
        }
    }

    #[test]
    fn jobs_travel_in_json_messages() {
        let config = Config::parse(MINIMAL, Format::Toml, "a.toml").unwrap();
        let json = serde_json::to_string(&config.jobs[0]).unwrap();
        let back: Job = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config.jobs[0]);
    }
}

#[cfg(test)]
mod notify_tests {
    use super::{Config, Format};

    #[test]
    fn notify_defaults_apply_to_every_job_and_a_jobs_own_channels_win() {
        let text = "[notify]\nslack_webhook = \"env:SLACK\"\nsentry_dsn = \"vault:secret/data/ops/sentry#dsn\"\nzabbix = { server = \"zbx\", host = \"h\" }\n\n[[jobs]]\nname = \"a\"\nkind = \"s3\"\nsource = { bucket = \"src-a\" }\ntarget = { bucket = \"dst-a\" }\n\n[[jobs]]\nname = \"b\"\nkind = \"s3\"\nsource = { bucket = \"src-b\" }\ntarget = { bucket = \"dst-b\" }\n[jobs.notify]\nslack_webhook = \"env:SLACK_B\"\n";
        let config = Config::parse(text, Format::Toml, "n.toml").unwrap();
        let a = config.jobs[0].notify.as_ref().unwrap();
        let b = config.jobs[1].notify.as_ref().unwrap();
        assert_eq!(a.slack_webhook.as_ref().unwrap().reference(), "env:SLACK");
        assert_eq!(b.slack_webhook.as_ref().unwrap().reference(), "env:SLACK_B");
        assert_eq!(b.sentry_dsn.as_ref().unwrap().reference(), "vault:secret/data/ops/sentry#dsn");
        let zabbix = b.zabbix.as_ref().unwrap();
        assert_eq!((zabbix.address().as_str(), zabbix.key_prefix.as_str()), ("zbx:10051", "backline"));
        assert!(!format!("{a:?}").contains("ops/sentry"), "references print without their path");
        let bad = Config::parse(&text.replace("#dsn", ""), Format::Toml, "n.toml").unwrap_err().to_string();
        assert!(bad.contains("notify.sentry_dsn") && bad.contains("mount/path#field"), "{bad}");
        let unknown = Config::parse(&text.replace("[notify]", "[notify]\npager = 1"), Format::Toml, "n.toml");
        assert!(unknown.unwrap_err().to_string().contains("pager"));
    }
}
