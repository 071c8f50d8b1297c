//! `infra/event-sources.json`: the queues and the event source mappings that feed them to the
//! functions. The CDK stack reads the same file, so the local pump delivers what AWS would.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::config::InfraConfig;

const FILE: &str = include_str!("../../../infra/event-sources.json");

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSources {
    #[serde(rename = "_comment")]
    _comment: Vec<String>,
    /// A queue's visibility time-out is this many times its consumer's time-out.
    pub visibility_factor: u32,
    /// Receives after which SQS moves a message to the queue's DLQ.
    pub max_receive_count: u32,
    pub retention_days: u32,
    pub dlq_retention_days: u32,
    pub mappings: Vec<Mapping>,
}

/// One queue and the function it feeds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// `work` or `finalize`: the queue is `<stack>-<queue>`.
    pub queue: String,
    /// `worker` or `finalizer`: the function is `backline-<function>`.
    pub function: String,
    pub batch_size: u32,
    pub max_batching_window_seconds: u32,
    /// `None`: the deployment's `worker_timeout_seconds`.
    pub timeout_seconds: Option<u32>,
    /// `None`: the deployment's `worker_max_concurrency`.
    pub max_concurrency: Option<u32>,
}

impl EventSources {
    /// The file as built into this binary.
    pub fn get() -> &'static EventSources {
        static PARSED: OnceLock<EventSources> = OnceLock::new();
        PARSED.get_or_init(|| serde_json::from_str(FILE).expect("infra/event-sources.json is valid (tested)"))
    }

    pub fn mapping(&self, queue: &str) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.queue == queue)
    }
}

impl Mapping {
    pub fn queue_name(&self, stack: &str) -> String {
        format!("{stack}-{}", self.queue)
    }

    pub fn dlq_name(&self, stack: &str) -> String {
        format!("{stack}-{}-dlq", self.queue)
    }

    pub fn function_name(&self) -> String {
        format!("backline-{}", self.function)
    }

    pub fn timeout_seconds(&self, infra: &InfraConfig) -> u32 {
        self.timeout_seconds.unwrap_or(infra.worker_timeout_seconds)
    }

    pub fn max_concurrency(&self, infra: &InfraConfig) -> u32 {
        self.max_concurrency.unwrap_or(infra.worker_max_concurrency)
    }

    pub fn visibility_timeout_seconds(&self, infra: &InfraConfig) -> u32 {
        self.timeout_seconds(infra) * EventSources::get().visibility_factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infra() -> InfraConfig {
        toml::from_str("").unwrap()
    }

    #[test]
    fn the_file_names_both_queues_within_the_limits_of_an_sqs_event_source() {
        let sources = EventSources::get();
        let work = sources.mapping("work").expect("work");
        let finalize = sources.mapping("finalize").expect("finalize");
        assert_eq!(
            (work.function_name(), finalize.function_name()),
            ("backline-worker".into(), "backline-finalizer".into())
        );
        assert_eq!(work.queue_name("backline"), "backline-work");
        assert_eq!(finalize.dlq_name("backline"), "backline-finalize-dlq");
        for m in &sources.mappings {
            assert!((1..=10_000).contains(&m.batch_size), "{m:?}");
            assert!(m.max_batching_window_seconds <= 300, "{m:?}");
            // SQS allows at most 12 hours of visibility.
            assert!(m.visibility_timeout_seconds(&infra()) <= 43_200, "{m:?}");
        }
        assert_eq!(work.visibility_timeout_seconds(&infra()), 900 * sources.visibility_factor);
        assert_eq!(work.max_concurrency(&infra()), infra().worker_max_concurrency);
        assert!((1..=1000).contains(&sources.max_receive_count));
    }
}
