//! What every job shares: its name, control location, concurrency, schedule and notifications.
//! The rest of a job entry is its kind's spec, found through the registry.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use super::types::BucketName;
use crate::pipeline::kind::Kind;

/// One named backup or restore, as written in the job file or carried inline in an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    /// Where manifests, reports, chunk claim-checks and state live. Defaults to the kind's
    /// target bucket under `_backline/`.
    pub control: Option<ControlLocation>,
    /// Tasks in flight at once per chunk.
    pub concurrency: usize,
    /// An EventBridge Scheduler expression (`rate(1 day)`, `cron(0 3 * * ? *)`) for deployments.
    pub schedule: Option<String>,
    /// Where to say so when a run fails or has failed tasks.
    pub notify: Option<Notify>,
    /// The kind's own fields.
    pub spec: JobSpec,
}

/// A job's kind and its spec. Derefs to the [`Kind`] it is, so the pipeline calls
/// `job.spec.plan(...)` without knowing which kind it has.
#[derive(Clone)]
pub struct JobSpec(Arc<dyn Kind>);

impl JobSpec {
    pub fn new(kind: impl Kind) -> JobSpec {
        JobSpec(Arc::new(kind))
    }

    pub(crate) fn from_arc(kind: Arc<dyn Kind>) -> JobSpec {
        JobSpec(kind)
    }

    /// What `kind = "..."` says.
    pub fn kind(&self) -> &'static str {
        self.0.name()
    }

    /// The spec as its concrete type, for code of that kind (and its tests).
    pub fn get<T: Kind>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }
}

impl Deref for JobSpec {
    type Target = dyn Kind;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for JobSpec {
    fn eq(&self, other: &JobSpec) -> bool {
        self.kind() == other.kind() && self.0.to_value() == other.0.to_value()
    }
}

/// A job serializes as its entry in a job file: the shared fields, `kind`, then the spec's.
impl Serialize for Job {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        if let Some(control) = &self.control {
            map.serialize_entry("control", control)?;
        }
        map.serialize_entry("concurrency", &self.concurrency)?;
        if let Some(schedule) = &self.schedule {
            map.serialize_entry("schedule", schedule)?;
        }
        if let Some(notify) = &self.notify {
            map.serialize_entry("notify", notify)?;
        }
        map.serialize_entry("kind", self.spec.kind())?;
        if let serde_json::Value::Object(fields) = self.spec.to_value() {
            for (name, value) in fields {
                map.serialize_entry(&name, &value)?;
            }
        }
        map.end()
    }
}

/// `[notify]` (defaults for every job) and `[jobs.notify]`: each channel optional, each URL a
/// secret reference resolved at run time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// A Microsoft Teams incoming webhook (Workflows or connector): gets a card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_webhook: Option<SecretRef>,
    /// A Slack incoming webhook: gets a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_webhook: Option<SecretRef>,
    /// Any endpoint that takes a JSON POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<SecretRef>,
    /// A Sentry DSN: a failed run, or one that cannot start, is one event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentry_dsn: Option<SecretRef>,
    /// Sentry's `environment` (default `production`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentry_environment: Option<String>,
    /// A Zabbix server's trapper: a heartbeat at the start of a run, the outcome at its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zabbix: Option<Zabbix>,
}

impl Notify {
    /// This job's channels over the file's defaults: each channel the job names is its own.
    pub fn over(self, defaults: &Notify) -> Notify {
        let d = defaults.clone();
        Notify {
            teams_webhook: self.teams_webhook.or(d.teams_webhook),
            slack_webhook: self.slack_webhook.or(d.slack_webhook),
            webhook: self.webhook.or(d.webhook),
            sentry_dsn: self.sentry_dsn.or(d.sentry_dsn),
            sentry_environment: self.sentry_environment.or(d.sentry_environment),
            zabbix: self.zabbix.or(d.zabbix),
        }
    }
}

/// `zabbix = { server = "zbx:10051", host = "backup-host", key_prefix = "backline" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zabbix {
    /// The server (or proxy) trapper: `host:port`, port 10051 when left out.
    pub server: String,
    /// The host as Zabbix knows it.
    pub host: String,
    /// Items are `<key_prefix>.heartbeat`, `.exit_code`, `.copied`, `.failed`, `.duration`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

fn default_key_prefix() -> String {
    "backline".into()
}

impl Zabbix {
    /// `host:port` to connect to.
    pub fn address(&self) -> String {
        if self.server.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) {
            self.server.clone()
        } else {
            format!("{}:10051", self.server)
        }
    }
}

/// A URL, or where to find one: `env:NAME`, `ssm:/parameter/name`, `secretsmanager:secret-id`,
/// `vault:kv/data/path#field`. Never printed: webhook URLs and DSNs are credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretRef(String);

impl SecretRef {
    pub fn reference(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once(':') {
            Some((scheme @ ("env" | "ssm" | "secretsmanager" | "vault"), _)) => write!(f, "{scheme}:…"),
            _ => f.write_str("<url>"),
        }
    }
}

impl TryFrom<String> for SecretRef {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        let known = ["https://", "http://", "env:", "ssm:", "secretsmanager:", "vault:"];
        if !(known.iter().any(|p| value.starts_with(p)) && value.len() > value.find(':').unwrap_or(0) + 1) {
            return Err("not a URL or a secret reference; allowed: an https:// URL, env:NAME, ssm:/parameter/name, \
                secretsmanager:secret-id or vault:mount/path#field"
                .into());
        }
        if let Some(path) = value.strip_prefix("vault:") {
            crate::secrets::vault::VaultRef::parse(path)?;
        }
        Ok(SecretRef(value))
    }
}

impl From<SecretRef> for String {
    fn from(value: SecretRef) -> String {
        value.0
    }
}

pub const DEFAULT_CONCURRENCY: usize = 32;
pub const DEFAULT_CONTROL_PREFIX: &str = "_backline/";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlLocation {
    pub bucket: BucketName,
    #[serde(default = "default_control_prefix")]
    pub prefix: String,
}

fn default_control_prefix() -> String {
    DEFAULT_CONTROL_PREFIX.to_string()
}

impl Job {
    /// The control location: explicit, or the kind's target bucket under `_backline/`.
    pub fn control(&self) -> ControlLocation {
        self.control.clone().unwrap_or_else(|| ControlLocation {
            bucket: self.spec.control_bucket(),
            prefix: DEFAULT_CONTROL_PREFIX.to_string(),
        })
    }

    /// This job with one field of its spec replaced (`backline run --mode`), checked as the
    /// job file's own would be; an error when the kind has no such field.
    pub fn with_field(&self, field: &str, value: serde_json::Value) -> Result<Job, String> {
        let mut fields = self.spec.to_value();
        let Some(map) = fields.as_object_mut().filter(|m| m.contains_key(field)) else {
            return Err(format!("{} jobs have no `{field}`", self.spec.kind()));
        };
        map.insert(field.to_string(), value);
        let entry = super::registry::lookup(self.spec.kind()).expect("a registered kind");
        let spec = (entry.parse)(fields).map_err(|(f, m)| format!("`{f}`: {m}"))?;
        Ok(Job { spec: JobSpec::from_arc(spec), ..self.clone() })
    }

    /// A restore of this job's backup, of kind `spec`: named `{name}-restore`, its runs
    /// recorded beside the backup's, notifying the same channels.
    pub fn restore_with(&self, spec: impl Kind) -> Job {
        Job {
            name: format!("{}-restore", self.name),
            control: Some(self.control()),
            concurrency: self.concurrency,
            schedule: None,
            notify: self.notify.clone(),
            spec: JobSpec::new(spec),
        }
    }
}
