//! Slots of a resource shared by every run and worker: at most `limit` holders at once (such
//! as QuickSight's five export jobs per account). A holder that dies keeps its slot only until
//! its lease ends, so a killed worker cannot block the resource for good.
//!
//! A task that finds no free slot waits in the queue like any other waiting task; nothing in
//! the pipeline caps a resource on its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::EngineError;
use crate::aws::error_text;

/// A request for one slot of `resource`.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot<'a> {
    /// Names the resource and its scope, such as `quicksight-export#123456789012#us-east-1`.
    pub resource: &'a str,
    pub limit: u32,
    /// Who holds it, such as the task's export job id; the same holder asking again keeps it.
    pub holder: &'a str,
    /// How long the slot stays taken if it is never released.
    pub lease: Duration,
}

fn expiry(lease: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

/// Slots in memory, for a run in one process.
#[derive(Default)]
pub struct MemorySlots {
    held: Mutex<HashMap<String, HashMap<String, DateTime<Utc>>>>,
}

impl MemorySlots {
    pub fn acquire(&self, slot: &Slot<'_>) -> bool {
        let mut held = self.held.lock().expect("slots lock");
        let holders = held.entry(slot.resource.to_string()).or_default();
        let now = Utc::now();
        holders.retain(|_, until| *until > now);
        if !holders.contains_key(slot.holder) && holders.len() >= slot.limit as usize {
            return false;
        }
        holders.insert(slot.holder.to_string(), expiry(slot.lease));
        true
    }

    pub fn release(&self, resource: &str, holder: &str) {
        if let Some(holders) = self.held.lock().expect("slots lock").get_mut(resource) {
            holders.remove(holder);
        }
    }
}

/// Slots in the ledger table: one item per resource (`pk` = `slot#<resource>`) whose string
/// set `holders` has one `<holder>@<lease end, epoch seconds>` per slot taken.
pub struct DynamoSlots<'a> {
    pub client: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
}

const SLOT_SK: &str = "slot";

fn key(resource: &str) -> AttributeValue {
    AttributeValue::S(format!("slot#{resource}"))
}

fn parse_holder(entry: &str) -> Option<(&str, i64)> {
    let (holder, until) = entry.rsplit_once('@')?;
    Some((holder, until.parse().ok()?))
}

impl DynamoSlots<'_> {
    fn error(&self, operation: &str, err: impl std::fmt::Display) -> EngineError {
        EngineError::Ledger(format!("table {}: {operation}: {err}", self.table))
    }

    /// The resource's `<holder>@<lease end>` entries, read consistently.
    async fn holders(&self, resource: &str) -> Result<Vec<String>, EngineError> {
        let item = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", key(resource))
            .key("sk", AttributeValue::S(SLOT_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", error_text(&e)))?;
        Ok(item.item().and_then(|i| i.get("holders")).and_then(|h| h.as_ss().ok()).cloned().unwrap_or_default())
    }

    pub async fn acquire(&self, slot: &Slot<'_>) -> Result<bool, EngineError> {
        let entries = self.holders(slot.resource).await?;
        let now = Utc::now().timestamp();
        let (expired, live): (Vec<&String>, Vec<&String>) =
            entries.iter().partition(|e| parse_holder(e).is_none_or(|(_, until)| until <= now));
        let mine: Vec<String> = live
            .iter()
            .filter(|e| parse_holder(e).is_some_and(|(holder, _)| holder == slot.holder))
            .map(|e| e.to_string())
            .collect();
        // Expired leases (and the holder's own, renewed below) leave the set first.
        let stale: Vec<String> = expired.into_iter().cloned().chain(mine.iter().cloned()).collect();
        if !stale.is_empty() {
            self.client
                .update_item()
                .table_name(self.table)
                .key("pk", key(slot.resource))
                .key("sk", AttributeValue::S(SLOT_SK.into()))
                .update_expression("DELETE holders :stale")
                .expression_attribute_values(":stale", AttributeValue::Ss(stale))
                .send()
                .await
                .map_err(|e| self.error("UpdateItem", error_text(&e)))?;
        }
        let entry = format!("{}@{}", slot.holder, expiry(slot.lease).timestamp());
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", key(slot.resource))
            .key("sk", AttributeValue::S(SLOT_SK.into()))
            .update_expression("ADD holders :me")
            .condition_expression("attribute_not_exists(holders) OR size(holders) < :limit")
            .expression_attribute_values(":me", AttributeValue::Ss(vec![entry.clone()]))
            .expression_attribute_values(":limit", AttributeValue::N(slot.limit.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => self.confirm(slot, &entry).await,
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(self.error("UpdateItem", error_text(&e))),
        }
    }

    /// Reads the set back after taking a slot. DynamoDB's conditional ADD is atomic, so this
    /// finds nothing to do there; on a store whose conditions race (moto under concurrent
    /// requests lets two writers both see room for one) the live holders past the limit, in
    /// name order, step back, so the limit holds either way.
    async fn confirm(&self, slot: &Slot<'_>, entry: &str) -> Result<bool, EngineError> {
        let now = Utc::now().timestamp();
        let mut live: Vec<String> = self
            .holders(slot.resource)
            .await?
            .into_iter()
            // Our own entry counts even with a lease that ends at once.
            .filter(|e| e == entry || parse_holder(e).is_some_and(|(_, until)| until > now))
            .collect();
        live.sort();
        match live.iter().position(|e| e == entry) {
            Some(at) if at < slot.limit as usize => return Ok(true),
            // The write was lost (a racing store): not held; the task asks again later.
            None => return Ok(false),
            Some(_) => {}
        }
        self.client
            .update_item()
            .table_name(self.table)
            .key("pk", key(slot.resource))
            .key("sk", AttributeValue::S(SLOT_SK.into()))
            .update_expression("DELETE holders :me")
            .expression_attribute_values(":me", AttributeValue::Ss(vec![entry.to_string()]))
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", error_text(&e)))?;
        Ok(false)
    }

    pub async fn release(&self, resource: &str, holder: &str) -> Result<(), EngineError> {
        let mine: Vec<String> = self
            .holders(resource)
            .await?
            .into_iter()
            .filter(|e| parse_holder(e).is_some_and(|(h, _)| h == holder))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        self.client
            .update_item()
            .table_name(self.table)
            .key("pk", key(resource))
            .key("sk", AttributeValue::S(SLOT_SK.into()))
            .update_expression("DELETE holders :mine")
            .expression_attribute_values(":mine", AttributeValue::Ss(mine))
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", error_text(&e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot<'a>(holder: &'a str, lease: Duration) -> Slot<'a> {
        Slot { resource: "exports#1", limit: 2, holder, lease }
    }

    #[test]
    fn a_full_resource_refuses_until_a_slot_is_released_or_expires() {
        let slots = MemorySlots::default();
        let hour = Duration::from_secs(3600);
        assert!(slots.acquire(&slot("a", hour)));
        assert!(slots.acquire(&slot("b", Duration::ZERO)));
        assert!(slots.acquire(&slot("a", hour)), "a holder asking again keeps its slot");
        assert!(slots.acquire(&slot("c", hour)), "b's lease ended");
        assert!(!slots.acquire(&slot("d", hour)), "two of two taken");
        slots.release("exports#1", "a");
        assert!(slots.acquire(&slot("d", hour)));
    }

    #[test]
    fn holder_entries_parse_back() {
        assert_eq!(parse_holder("job-1@1700000000"), Some(("job-1", 1_700_000_000)));
        assert_eq!(parse_holder("a@b@5"), Some(("a@b", 5)));
        assert_eq!(parse_holder("nothing"), None);
    }
}
