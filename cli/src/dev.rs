//! `backline dev`: the Lambda flow on a developer's machine.

use std::sync::Arc;
use std::time::Duration;

use backline::aws::AwsClients;
use backline::config::InfraConfig;
use backline::dev::{EventSources, Invoker, Pump, PumpStats, ensure_queues};
use clap::{Args, Subcommand};

use crate::{EXIT_BAD_INPUT, EXIT_OK};

#[derive(Subcommand)]
pub enum DevCommand {
    /// The SQS event source mappings AWS runs, for functions under `cargo lambda watch`:
    /// long-poll the work and finalize queues, invoke backline-worker and backline-finalizer
    /// with SQS batch events, delete what they report done, leave what failed to SQS (back
    /// after the visibility time-out, to the DLQ after the last receive). Queues, batch sizes
    /// and visibility come from infra/event-sources.json, as in the CDK stack. Stops on Ctrl-C.
    Pump(PumpArgs),
}

#[derive(Args)]
pub struct PumpArgs {
    /// Where the functions answer the Lambda Invoke API (`cargo lambda watch` listens on 9000).
    #[arg(long, value_name = "URL", env = "BACKLINE_INVOKE_URL", default_value = "http://127.0.0.1:9000")]
    pub invoke_url: String,
    /// The queues are <STACK>-work and <STACK>-finalize (each with a -dlq); made if missing.
    #[arg(long, value_name = "STACK", default_value = "backline")]
    pub stack: String,
    /// A deployment or job file whose [infra] sets worker_timeout_seconds and
    /// worker_max_concurrency (default: the stack's defaults).
    #[arg(long, short = 'c', value_name = "FILE", env = "BACKLINE_CONFIG")]
    pub config: Option<String>,
    /// How long each receive waits for a message, in seconds (at most 20, as SQS allows).
    #[arg(long, value_name = "SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait_seconds: u64,
    /// Do not print each finished run's report.
    #[arg(long)]
    pub no_reports: bool,
    /// More log output on stderr (-v debug).
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
}

pub async fn run(command: DevCommand) -> u8 {
    match command {
        DevCommand::Pump(args) => pump(args).await,
    }
}

async fn pump(args: PumpArgs) -> u8 {
    let infra = match &args.config {
        None => InfraConfig::default(),
        Some(path) => match backline::Config::load(path) {
            Ok(config) => config.infra.unwrap_or_default(),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_BAD_INPUT;
            }
        },
    };
    let clients = AwsClients::from_env().await;
    let invoker = Invoker::new(&args.invoke_url);
    let queues = match ensure_queues(&clients.sqs, &args.stack, &infra).await {
        Ok(queues) => queues,
        Err(e) => {
            eprintln!("error: {e} (is the local stack up? `make stack-up`)");
            return crate::EXIT_SERVICE;
        }
    };
    for queue in &queues {
        let m = &queue.mapping;
        tracing::info!(
            "{} -> {}: batch size {}, window {} s, {} at once, visibility {} s, DLQ after {} receives",
            queue.name,
            m.function_name(),
            m.batch_size,
            m.max_batching_window_seconds,
            queue.max_concurrency,
            queue.visibility_timeout_seconds,
            EventSources::get().max_receive_count
        );
    }
    let pump = Arc::new(Pump {
        sqs: clients.sqs.clone(),
        s3: clients.s3.clone(),
        invoker,
        queues,
        wait: Duration::from_secs(args.wait_seconds),
        print_reports: !args.no_reports,
        stats: Arc::new(PumpStats::default()),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping: no new receives; invocations under way finish");
        let _ = stop.send(true);
    });
    pump.clone().run(stopped).await;
    let stats = &pump.stats;
    use std::sync::atomic::Ordering::Relaxed;
    eprintln!(
        "pump stopped: {} invocations, {} messages deleted, {} left in their queues after a failure",
        stats.invocations.load(Relaxed),
        stats.deleted.load(Relaxed),
        stats.left.load(Relaxed)
    );
    EXIT_OK
}
