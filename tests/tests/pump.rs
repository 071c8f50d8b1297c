//! The whole Lambda flow on one machine: the planner invoked over the Lambda Invoke API, the
//! pump (`backline dev pump`) delivering the work and finalize queues to the worker and the
//! finalizer, each function a process of its own on the Lambda Runtime API, against moto.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use backline::config::InfraConfig;
use backline::dev::{EventQueue, EventSources, Invocation, Invoker, Pump, PumpStats, ensure_queues};
use backline::pipeline::Deployment;
use backline::store::Manifest;
use backline_tests::lambda::{FUNCTION_ENV, LambdaHost};
use backline_tests::{Moto, TestObject, body, create_ledger_table, keys, put, source_and_target, unique};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Not a test of its own: the body of the function processes `LambdaHost` starts. In a normal
/// test run it returns at once.
#[test]
fn lambda_function_process() {
    let Ok(function) = std::env::var(FUNCTION_ENV) else { return };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let served = runtime.block_on(async {
        lambda_runtime::tracing::init_default_subscriber();
        match function.as_str() {
            "planner" => backline_planner::serve().await,
            "worker" => backline_worker::serve().await,
            "finalizer" => backline_finalizer::serve().await,
            other => panic!("no function {other}"),
        }
    });
    if let Err(e) = served {
        eprintln!("{function}: {e}");
        std::process::exit(1);
    }
}

/// Queues made as `infra/event-sources.json` says, a ledger, the functions, and the pump.
struct LocalFlow {
    moto: &'static Moto,
    sqs: aws_sdk_sqs::Client,
    queues: Vec<EventQueue>,
    host: LambdaHost,
    invoker: Invoker,
    stats: Arc<PumpStats>,
    stop: watch::Sender<bool>,
    pump: tokio::task::JoinHandle<()>,
}

impl LocalFlow {
    async fn start(job_file: &str, worker_timeout_seconds: u32) -> LocalFlow {
        let moto = Moto::get();
        let clients = moto.clients().await;
        let infra = InfraConfig { worker_timeout_seconds, ..InfraConfig::default() };
        let mut queues = ensure_queues(&clients.sqs, &unique("local"), &infra).await.expect("queues");
        // Two cores: a few pollers are enough to show concurrent deliveries.
        queues.iter_mut().for_each(|q| q.max_concurrency = q.max_concurrency.min(4));
        let url = |name: &str| queues.iter().find(|q| q.mapping.queue == name).expect(name).url.clone();
        let deployment = Deployment {
            work_queue_url: url("work"),
            finalize_queue_url: url("finalize"),
            ledger_table: unique("ledger"),
            config: Some(job_file.to_string()),
        };
        create_ledger_table(&clients.dynamodb, &deployment.ledger_table).await;
        let env = [
            ("BACKLINE_WORK_QUEUE_URL", deployment.work_queue_url.clone()),
            ("BACKLINE_FINALIZE_QUEUE_URL", deployment.finalize_queue_url.clone()),
            ("BACKLINE_LEDGER_TABLE", deployment.ledger_table.clone()),
            ("BACKLINE_CONFIG", job_file.to_string()),
        ];
        let host = LambdaHost::start("lambda_function_process", moto, &env, worker_timeout_seconds.max(60)).await;
        let invoker = Invoker::new(&host.emulator.url);
        let stats = Arc::new(PumpStats::default());
        let pump = Arc::new(Pump {
            sqs: clients.sqs.clone(),
            s3: clients.s3.clone(),
            invoker: invoker.clone(),
            queues: queues.clone(),
            wait: Duration::from_secs(1),
            print_reports: true,
            stats: stats.clone(),
        });
        let (stop, stopped) = watch::channel(false);
        let pump = tokio::spawn(pump.run(stopped));
        LocalFlow { moto, sqs: clients.sqs, queues, host, invoker, stats, stop, pump }
    }

    /// What `make invoke FN=planner EVENT=...` does.
    async fn invoke_planner(&self, event: Value) -> Value {
        match self.invoker.invoke("backline-planner", &event).await.expect("invoke") {
            Invocation::Response(response) => response,
            Invocation::FunctionError(e) => panic!("planner failed: {e}\n{}", self.host.log_text()),
        }
    }

    /// Waits until the finalizer has written the run's manifest, and returns it.
    async fn manifest(&self, s3: &aws_sdk_s3::Client, bucket: &str, run_id: &str, limit: Duration) -> Manifest {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let found = keys(s3, bucket, "_backline/runs/").await;
            if let Some(key) = found.iter().find(|k| k.ends_with(&format!("/{run_id}/manifest.json"))) {
                return serde_json::from_slice(&body(s3, bucket, key).await).expect("a manifest");
            }
            assert!(tokio::time::Instant::now() < deadline, "run {run_id} did not finish\n{}", self.host.log_text());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Messages in a queue: visible, in flight and delayed.
    async fn depth(&self, url: &str) -> u64 {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .expect("queue attributes");
        let map = attributes.attributes().cloned().unwrap_or_default();
        map.values().map(|v| v.parse::<u64>().unwrap_or(0)).sum()
    }

    /// Every queue and DLQ, by name, with what is in it.
    async fn depths(&self) -> Vec<(String, u64)> {
        let mut depths = Vec::new();
        for queue in &self.queues {
            depths.push((queue.name.clone(), self.depth(&queue.url).await));
            depths.push((format!("{}-dlq", queue.name), self.depth(&queue.dlq_url).await));
        }
        depths
    }

    async fn stop(self) -> Arc<PumpStats> {
        let _ = self.stop.send(true);
        let _ = self.pump.await;
        self.stats
    }
}

fn job_file(source: &str, target: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}.yaml", unique("pump-jobs")));
    let text = format!(
        "jobs:\n  - name: photos\n    kind: s3\n    source: {{bucket: {source}}}\n    \
         target: {{bucket: {target}, storage_class: DEEP_ARCHIVE}}\n"
    );
    std::fs::write(&path, text).expect("a job file");
    path.display().to_string()
}

#[tokio::test]
async fn a_backup_and_a_deep_archive_restore_run_through_the_pump_and_leave_every_queue_empty() {
    let clients = Moto::get().clients().await;
    let s3 = &clients.s3;
    let (source, target) = source_and_target(s3).await;
    for i in 0..12 {
        put(s3, &source, &TestObject::new(format!("2026/11/IMG {i:04}.jpg"), format!("photo {i}"))).await;
    }
    let flow = LocalFlow::start(&job_file(&source, &target), 60).await;

    let planned = flow.invoke_planner(json!({"job": "photos", "time": "2026-11-22T04:00:00Z"})).await;
    assert_eq!(planned["runs"][0]["run_id"], "photos-20261122T040000Z", "{planned}");
    let manifest = flow.manifest(s3, &target, "photos-20261122T040000Z", Duration::from_secs(60)).await;
    assert_eq!((manifest.status.as_str(), manifest.counts.copied), ("succeeded", 12), "{:?}", manifest.counts);
    // In Deep Archive, the copies cannot be read back until restored: the restore below does.
    let copied: Vec<String> = keys(s3, &target, "2026/").await;
    assert_eq!(copied.len(), 12, "{copied:?}");
    let report = keys(s3, &target, "_backline/runs/photos/photos-20261122T040000Z/").await;
    assert!(report.iter().any(|k| k.ends_with("report.md")), "{report:?}");

    // The restore asks for retrievals; its chunk waits in the queue as a delayed message and
    // the pump brings it back to a worker until the objects are readable.
    backline_tests::set_transition(flow.moto, "s3::keyrestore", Some(1));
    let to = unique("thawed");
    let request =
        json!({"restore": {"job": "photos", "to_bucket": to, "poll_interval": "1s"}, "time": "2026-11-22T05:00:00Z"});
    let planned = flow.invoke_planner(request).await;
    let run_id = planned["runs"][0]["run_id"].as_str().expect("a restore run").to_string();
    let restored = flow.manifest(s3, &target, &run_id, Duration::from_secs(90)).await;
    assert_eq!(restored.status, "succeeded", "{:?}", restored.counts);
    for i in 0..12 {
        let key = format!("2026/11/IMG {i:04}.jpg");
        assert_eq!(body(s3, &to, &key).await, format!("photo {i}").into_bytes(), "{key}");
    }

    let invocations = flow.host.invocations().await;
    let count = |function: &str| invocations.iter().filter(|i| i["function"] == function).count();
    let restore_chunks = invocations
        .iter()
        .filter(|i| i["function"] == "backline-worker")
        .filter(|i| i["event"]["Records"][0]["body"].as_str().unwrap_or_default().contains(&run_id))
        .count();
    assert!(restore_chunks >= 2, "the restore's chunk should have waited in the queue: {restore_chunks} deliveries");
    assert_eq!(count("backline-finalizer"), 2, "one finalize message per run");
    for invocation in &invocations {
        assert_eq!(invocation["status"], "ok", "{invocation}");
        if invocation["function"] != "backline-planner" {
            let records = invocation["event"]["Records"].as_array().expect("an SQS event");
            assert_eq!(records.len(), 1, "batch size 1, as the stack sets it");
            assert_eq!(records[0]["eventSource"], "aws:sqs");
            assert!(records[0]["eventSourceARN"].as_str().is_some_and(|a| a.starts_with("arn:aws:sqs:")));
            assert!(records[0]["attributes"]["ApproximateReceiveCount"].is_string(), "{invocation}");
        }
    }

    let depths = flow.depths().await;
    assert!(depths.iter().all(|(_, n)| *n == 0), "queues not empty: {depths:?}");
    let stats = flow.stop().await;
    assert_eq!(stats.left.load(Ordering::Relaxed), 0);
    assert_eq!(
        stats.invocations.load(Ordering::Relaxed) as usize,
        count("backline-worker") + count("backline-finalizer")
    );
}

#[tokio::test]
async fn a_message_the_worker_fails_comes_back_after_its_visibility_and_then_goes_to_the_dlq() {
    let clients = Moto::get().clients().await;
    let (source, target) = source_and_target(&clients.s3).await;
    // A one-second worker time-out makes the work queue's visibility six seconds.
    let flow = LocalFlow::start(&job_file(&source, &target), 1).await;
    let work = flow.queues.iter().find(|q| q.mapping.queue == "work").expect("work queue").clone();
    assert_eq!(work.visibility_timeout_seconds, 6);
    let sent = flow.sqs.send_message().queue_url(&work.url).message_body("{\"not\": \"a chunk\"}").send().await;
    let id = sent.expect("send").message_id().expect("an id").to_string();

    let max_receives = EventSources::get().max_receive_count as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20 + 8 * max_receives as u64);
    while flow.depth(&work.dlq_url).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never reached the DLQ: {:?}", flow.depths().await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deliveries: Vec<Value> = flow
        .host
        .invocations()
        .await
        .into_iter()
        .filter(|i| i["event"]["Records"][0]["messageId"] == id.as_str())
        .collect();
    let counts: Vec<&str> = deliveries
        .iter()
        .map(|d| d["event"]["Records"][0]["attributes"]["ApproximateReceiveCount"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=max_receives).map(|n| n.to_string()).collect();
    assert_eq!(counts, expected, "delivered once per receive until the DLQ took it");
    for delivery in &deliveries {
        assert_eq!(delivery["response"]["batchItemFailures"][0]["itemIdentifier"], id.as_str(), "{delivery}");
    }
    // Each redelivery came only after the visibility time-out.
    let starts: Vec<u64> = deliveries.iter().map(|d| d["started_ms"].as_f64().unwrap() as u64).collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] >= 5_000), "redelivered too soon: {starts:?}");
    let depths = flow.depths().await;
    assert_eq!(flow.depth(&work.url).await, 0, "{depths:?}");
    let stats = flow.stop().await;
    assert_eq!((stats.deleted.load(Ordering::Relaxed), stats.left.load(Ordering::Relaxed)), (0, max_receives as u64));
}
