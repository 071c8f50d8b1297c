//! Who is working on a chunk delivery or a finalize right now. SQS may hand the same message to
//! two workers at once, and hands it out again when a worker dies mid-way: a lease in the
//! ledger lets the first delivery work alone, and tells the next one whether someone started
//! before and stopped without finishing (so what it wrote may be in the target already).
//!
//! A lease lasts until its holder's Lambda must end (its deadline), so a dead holder cannot
//! keep it, and a holder that gives up with an error ends it at once.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::EngineError;
use crate::aws::error_text;

/// How taking a lease went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Nobody took it before.
    First,
    /// A holder took it at `since` and stopped without finishing (it died, or gave up with an
    /// error): what it did is unrecorded.
    AfterStop { since: DateTime<Utc> },
    /// Someone holds it now, until `until`.
    Busy { until: DateTime<Utc> },
}

/// The longest a Lambda runs: the lease of a holder whose deadline is unknown.
pub const LONGEST_HOLD: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The end of a lease for a holder whose Lambda must stop at `deadline_ms` (epoch
/// milliseconds, as the runtime reports it; 0 when unknown).
pub fn until_deadline(deadline_ms: u64) -> DateTime<Utc> {
    let now = Utc::now();
    i64::try_from(deadline_ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .filter(|deadline| *deadline > now)
        .unwrap_or_else(|| now + chrono::Duration::from_std(LONGEST_HOLD).expect("15 minutes"))
}

/// When a lease was taken, and until when it holds.
type Held = (DateTime<Utc>, DateTime<Utc>);

/// Leases in memory, for a run in one process.
#[derive(Default)]
pub struct MemoryLeases {
    held: Mutex<HashMap<String, Held>>,
}

impl MemoryLeases {
    pub fn take(&self, name: String, until: DateTime<Utc>) -> Lease {
        let now = Utc::now();
        let mut held = self.held.lock().expect("lease lock");
        let lease = match held.get(&name) {
            None => Lease::First,
            Some((_, until)) if *until > now => return Lease::Busy { until: *until },
            Some((since, _)) => Lease::AfterStop { since: *since },
        };
        held.insert(name, (now, until));
        lease
    }

    pub fn end(&self, name: &str) {
        if let Some((_, until)) = self.held.lock().expect("lease lock").get_mut(name) {
            *until = Utc::now() - chrono::Duration::milliseconds(1);
        }
    }
}

/// Leases in the ledger table: `pk` the run id, `sk` `lease#<name>`, with the holder's start
/// (`since`, RFC 3339) and the lease's end (`until`, epoch milliseconds).
pub struct DynamoLeases<'a> {
    pub client: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl DynamoLeases<'_> {
    fn error(&self, operation: &str, err: impl std::fmt::Display) -> EngineError {
        EngineError::Ledger(format!("table {}: {operation}: {err}", self.table))
    }

    pub async fn take(&self, run_id: &str, name: &str, until: DateTime<Utc>) -> Result<Lease, EngineError> {
        let now = Utc::now();
        let result = self
            .client
            .put_item()
            .table_name(self.table)
            .item("pk", s(run_id))
            .item("sk", s(format!("lease#{name}")))
            .item("since", s(now.to_rfc3339()))
            .item("until", n(until.timestamp_millis()))
            .item("expires_at", n((now + chrono::Duration::days(30)).timestamp()))
            .condition_expression("attribute_not_exists(pk) OR #until < :now")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let since = output
                    .attributes()
                    .and_then(|old| old.get("since"))
                    .and_then(|v| v.as_s().ok())
                    .and_then(|v| DateTime::parse_from_rfc3339(v).ok());
                Ok(since.map_or(Lease::First, |since| Lease::AfterStop { since: since.with_timezone(&Utc) }))
            }
            Err(e) if matches!(e.code(), Some("ConditionalCheckFailedException")) => {
                Ok(Lease::Busy { until: self.held_until(run_id, name).await?.unwrap_or(until) })
            }
            Err(e) => Err(self.error("PutItem", error_text(&e))),
        }
    }

    async fn held_until(&self, run_id: &str, name: &str) -> Result<Option<DateTime<Utc>>, EngineError> {
        let output = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", s(run_id))
            .key("sk", s(format!("lease#{name}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", error_text(&e)))?;
        Ok(output
            .item()
            .and_then(|item| item.get("until"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis))
    }

    /// Ends the lease now, keeping when it started: the next taker learns someone stopped.
    pub async fn end(&self, run_id: &str, name: &str) -> Result<(), EngineError> {
        self.client
            .update_item()
            .table_name(self.table)
            .key("pk", s(run_id))
            .key("sk", s(format!("lease#{name}")))
            .update_expression("SET #until = :zero")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                if matches!(e.code(), Some("ConditionalCheckFailedException")) {
                    Ok(())
                } else {
                    Err(self.error("UpdateItem", error_text(&e)))
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_first_then_busy_then_after_a_stop_once_ended() {
        let leases = MemoryLeases::default();
        let later = Utc::now() + chrono::Duration::minutes(5);
        assert_eq!(leases.take("chunk#1".into(), later), Lease::First);
        assert!(matches!(leases.take("chunk#1".into(), later), Lease::Busy { until } if until == later));
        leases.end("chunk#1");
        assert!(matches!(leases.take("chunk#1".into(), later), Lease::AfterStop { .. }));
        assert_eq!(leases.take("chunk#2".into(), later), Lease::First);
    }

    #[test]
    fn an_unknown_or_past_deadline_holds_for_the_longest_lambda_run() {
        let held = until_deadline(0) - Utc::now();
        assert!(held > chrono::Duration::minutes(14) && held <= chrono::Duration::minutes(15));
        let soon = Utc::now() + chrono::Duration::seconds(30);
        assert_eq!(
            until_deadline(soon.timestamp_millis() as u64),
            DateTime::from_timestamp_millis(soon.timestamp_millis()).unwrap()
        );
    }
}
