//! The fault-injecting proxy (`tests/emulators/faultproxy`) for tests: one per test, in front of
//! moto_server or an emulator, with the rules of the test's scenario.

use std::ops::Deref;

use aws_config::{BehaviorVersion, Region};
use backline::aws::AwsClients;
use serde_json::{Value, json};

use crate::emulator::Emulator;

/// 5 % of requests answered 503 SlowDown, 1 % reset before they reach the server: the S3 rules
/// of the fault scenarios.
pub fn unreliable_s3() -> Value {
    json!([
        {"name": "slowdown", "fault": "slowdown", "rate": 0.05},
        {"name": "reset", "fault": "reset", "rate": 0.01},
    ])
}

pub struct FaultProxy(Emulator);

impl FaultProxy {
    /// A proxy to `upstream` injecting faults by `rules` (see the proxy's README), seeded so a
    /// scenario injects the same faults each time.
    pub async fn start(upstream: &str, rules: Value) -> FaultProxy {
        let proxy = Emulator::start_with("faultproxy", &["--upstream", upstream], &json!({})).await;
        proxy.post("reset", &json!({"rules": rules, "seed": 7})).await;
        FaultProxy(proxy)
    }

    /// Clients that reach moto through the proxy, with Backline's own retry settings.
    pub async fn clients(&self) -> AwsClients {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "proxy"))
            .load()
            .await;
        AwsClients::from_sdk_config(&config)
    }

    /// Faults injected so far, in all.
    pub async fn faults(&self) -> u64 {
        let stats = self.get("stats").await;
        stats["faults"].as_object().map_or(0, |f| f.values().filter_map(Value::as_u64).sum())
    }

    pub async fn stats(&self) -> Value {
        self.get("stats").await
    }
}

impl Deref for FaultProxy {
    type Target = Emulator;

    fn deref(&self) -> &Emulator {
        &self.0
    }
}
