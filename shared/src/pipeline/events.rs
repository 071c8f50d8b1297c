//! The events the planner accepts:
//! - an EventBridge envelope whose `detail` holds a plan request;
//! - a plain plan request (a schedule's `Input`, a manual invoke);
//! - a bare scheduled event (`detail` empty): every job of the file named by `BACKLINE_CONFIG`.
//!
//! A request names a job of that file (`"job": "photos"`) or carries one inline (`"job": {...}`).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::EngineError;
use crate::config::{Config, Format, Job};

#[derive(Debug, Clone, PartialEq)]
pub enum JobRef {
    Named(String),
    Inline(Box<Job>),
    /// Restore the backup of the named job, with options whose schema depends on its kind.
    Restore(String, Box<Value>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    pub job: JobRef,
    /// The event time the run id derives from; the time of receipt when absent.
    pub time: Option<DateTime<Utc>>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlannerEvent {
    Request(PlanRequest),
    /// Run every job of the configured job file.
    Scheduled {
        time: Option<DateTime<Utc>>,
    },
}

fn bad(message: impl Into<String>) -> EngineError {
    EngineError::Input(format!("planner event: {}", message.into()))
}

fn parse_time(value: Option<&Value>, field: &str) -> Result<Option<DateTime<Utc>>, EngineError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| bad(format!("`{field}` is not an RFC 3339 time ({text}): {e}"))),
        Some(_) => Err(bad(format!("`{field}` must be a string such as \"2026-11-22T03:00:00Z\""))),
    }
}

fn parse_restore(value: Value) -> Result<JobRef, EngineError> {
    let Value::Object(mut fields) = value else {
        return Err(bad("`restore` must be an object with `job`, `to_bucket` and options"));
    };
    let job = match fields.remove("job") {
        Some(Value::String(name)) => name,
        _ => return Err(bad("`restore.job` must name the backup job to restore")),
    };
    Ok(JobRef::Restore(job, Box::new(Value::Object(fields))))
}

fn parse_request(
    mut fields: Map<String, Value>,
    envelope_time: Option<DateTime<Utc>>,
) -> Result<PlanRequest, EngineError> {
    const ALLOWED: &str = "job or restore, time, dry_run";
    if let Some(unknown) = fields.keys().find(|k| !matches!(k.as_str(), "job" | "restore" | "time" | "dry_run")) {
        return Err(bad(format!("unknown field `{unknown}`; allowed: {ALLOWED}")));
    }
    if fields.contains_key("job") && fields.contains_key("restore") {
        return Err(bad("give `job` or `restore`, not both"));
    }
    let job = match fields.remove("job") {
        None if fields.contains_key("restore") => parse_restore(fields.remove("restore").expect("checked"))?,
        Some(Value::String(name)) => JobRef::Named(name),
        Some(job @ Value::Object(_)) => {
            JobRef::Inline(Box::new(Job::from_value(job).map_err(|e| bad(format!("inline job: {e}")))?))
        }
        Some(_) => return Err(bad("`job` must be a job name or a job table")),
        None => return Err(bad(format!("missing `job`; allowed fields: {ALLOWED}"))),
    };
    let time = parse_time(fields.get("time"), "time")?.or(envelope_time);
    let dry_run = match fields.get("dry_run") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err(bad("`dry_run` must be true or false")),
    };
    Ok(PlanRequest { job, time, dry_run })
}

pub fn parse_planner_event(value: Value) -> Result<PlannerEvent, EngineError> {
    let Value::Object(mut fields) = value else {
        return Err(bad("expected a JSON object"));
    };
    if fields.contains_key("detail-type") {
        let time = parse_time(fields.get("time"), "time")?;
        return match fields.remove("detail") {
            Some(Value::Object(detail)) if detail.is_empty() => Ok(PlannerEvent::Scheduled { time }),
            None | Some(Value::Null) => Ok(PlannerEvent::Scheduled { time }),
            Some(Value::Object(detail)) => parse_request(detail, time).map(PlannerEvent::Request),
            Some(_) => Err(bad("`detail` must be an object")),
        };
    }
    parse_request(fields, None).map(PlannerEvent::Request)
}

/// Where the Lambda planner finds its job file: a local path or an `s3://bucket/key` URL.
pub async fn load_config(location: &str, s3: &aws_sdk_s3::Client) -> Result<Config, EngineError> {
    let Some(rest) = location.strip_prefix("s3://") else {
        return Ok(Config::load(location)?);
    };
    let (bucket, key) = rest
        .split_once('/')
        .ok_or_else(|| EngineError::Input(format!("BACKLINE_CONFIG `{location}`: expected s3://bucket/key")))?;
    let format = Format::from_path(key).ok_or_else(|| crate::ConfigError::Extension { file: location.to_string() })?;
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| EngineError::Input(format!("BACKLINE_CONFIG {location}: {}", crate::aws::error_text(&e))))?;
    let bytes =
        object.body.collect().await.map_err(|e| EngineError::Input(format!("BACKLINE_CONFIG {location}: {e}")))?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| EngineError::Input(format!("BACKLINE_CONFIG {location}: not UTF-8")))?;
    Ok(Config::parse(&text, format, location)?)
}

/// The restore job of a backup job, from the options of a `restore` request.
pub fn restore_job(backup: &Job, options: Value) -> Result<Job, EngineError> {
    match backup.spec.restore_job(backup, options) {
        Some(restore) => restore.map_err(|e| bad(e.to_string())),
        None => Err(EngineError::Input(format!(
            "job {} is a {} job, which has no restore",
            backup.name,
            backup.spec.kind()
        ))),
    }
}

/// The jobs an event asks for, each with its event time and dry-run flag.
pub async fn resolve_jobs(
    event: PlannerEvent,
    config_location: Option<&str>,
    s3: &aws_sdk_s3::Client,
) -> Result<Vec<(Job, Option<DateTime<Utc>>, bool)>, EngineError> {
    let config = || async {
        let location = config_location.ok_or_else(|| {
            EngineError::Input("BACKLINE_CONFIG is not set; a named or scheduled job needs the job file".into())
        })?;
        load_config(location, s3).await.map(|c| (c, location.to_string()))
    };
    match event {
        PlannerEvent::Request(PlanRequest { job: JobRef::Inline(job), time, dry_run }) => {
            Ok(vec![(*job, time, dry_run)])
        }
        PlannerEvent::Request(PlanRequest { job: JobRef::Named(name), time, dry_run }) => {
            let (config, file) = config().await?;
            Ok(vec![(config.job(&name, &file)?.clone(), time, dry_run)])
        }
        PlannerEvent::Request(PlanRequest { job: JobRef::Restore(name, options), time, dry_run }) => {
            let (config, file) = config().await?;
            let backup = config.job(&name, &file)?;
            Ok(vec![(restore_job(backup, *options)?, time, dry_run)])
        }
        PlannerEvent::Scheduled { time } => {
            let (config, _) = config().await?;
            Ok(config.jobs.into_iter().map(|job| (job, time, false)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_with_detail_is_a_request_at_the_event_time() {
        let event = json!({"detail-type": "Backline Run", "source": "ops", "time": "2026-11-22T03:00:00Z", "detail": {"job": "photos"}});
        let PlannerEvent::Request(request) = parse_planner_event(event).unwrap() else { panic!() };
        assert_eq!(request.job, JobRef::Named("photos".into()));
        assert_eq!(request.time.unwrap().to_rfc3339(), "2026-11-22T03:00:00+00:00");
    }

    #[test]
    fn bare_scheduled_event_runs_the_file() {
        let event = json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-22T03:00:00Z", "detail": {}});
        assert!(matches!(parse_planner_event(event).unwrap(), PlannerEvent::Scheduled { time: Some(_) }));
    }

    #[test]
    fn plain_request_with_inline_job() {
        let event = json!({"job": {"name": "p", "kind": "s3", "source": {"bucket": "src-b"}, "target": {"bucket": "dst-b"}}, "dry_run": true});
        let PlannerEvent::Request(request) = parse_planner_event(event).unwrap() else { panic!() };
        assert!(request.dry_run);
        assert!(matches!(request.job, JobRef::Inline(job) if job.name == "p"));
    }

    #[test]
    fn restore_requests_carry_their_options() {
        let event = json!({"restore": {"job": "photos", "to_bucket": "photos-restored", "as_of": "2026-11-01", "tier": "Bulk"}});
        let PlannerEvent::Request(request) = parse_planner_event(event).unwrap() else { panic!() };
        let JobRef::Restore(job, options) = request.job else { panic!() };
        assert_eq!(job, "photos");
        let backup = Config::parse(crate::config::registry::lookup("s3").unwrap().example, Format::Toml, "s3.toml")
            .unwrap()
            .jobs
            .remove(0);
        let restore = restore_job(&backup, *options).unwrap();
        assert_eq!(restore.spec.kind(), "s3-restore");
        let options = &restore.spec.to_value()["options"];
        assert_eq!((options["as_of"].as_str(), options["tier"].as_str()), (Some("2026-11-01"), Some("Bulk")));
        let err = restore_job(&backup, json!({"to_bucket": "b-b-b", "tier": "Fast"})).unwrap_err();
        assert!(err.to_string().contains("restore.tier") && err.to_string().contains("Expedited"), "{err}");
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (event, want) in [
            (json!({"jbo": "x"}), "unknown field `jbo`"),
            (json!({}), "missing `job`"),
            (json!({"job": "x", "time": "yesterday"}), "RFC 3339"),
            (json!({"job": {"name": "p", "kind": "s3"}}), "source"),
            (json!([1]), "JSON object"),
        ] {
            let err = parse_planner_event(event).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
