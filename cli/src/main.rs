//! The `backline` command: argument parsing and output around the `backline` engine.

mod progress;
mod run;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes, for scripts.
pub const EXIT_OK: u8 = 0;
pub const EXIT_TASKS_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "backline",
    version,
    about = "Incremental, verifiable backups of S3 buckets into backup buckets.",
    long_about = "Incremental, verifiable backups of S3 buckets into backup buckets.\n\n\
        The same planner, workers and finalizer that run on AWS Lambda run here in one process.\n\
        AWS access comes from the standard environment: credentials chain, AWS_REGION, and\n\
        AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> for local servers.\n\n\
        Exit codes: 0 every task succeeded, 1 the run finished with failed tasks,\n\
        2 bad input or the run could not start."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run backup jobs now: plan, copy, write the manifest, report and state.
    Run(RunArgs),
    /// Show what a run would do, writing nothing (same as `run --dry-run`).
    Plan(JobArgs),
    /// Check or create job files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Args)]
struct JobArgs {
    /// The job file (.toml, .yaml, .yml or .json).
    #[arg(long, short = 'c', value_name = "FILE", env = "BACKLINE_CONFIG")]
    config: String,
    /// Run only this job (default: every job in the file, one after another).
    #[arg(long, short = 'j', value_name = "NAME")]
    job: Option<String>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Print the plan (counts, bytes, first keys) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    no_progress: bool,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a job file and print its jobs with every default filled in.
    Check {
        /// The job file (.toml, .yaml, .yml or .json).
        file: String,
    },
    /// Print a commented example job file for a kind.
    Example {
        /// The job kind.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(backline::JobSpec::KINDS))]
        kind: String,
    },
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,aws=warn",
        _ => "debug,aws_smithy_runtime=info,hyper=info,h2=info,rustls=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BACKLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => {
            init_logging(args.job.verbose);
            run::run(
                &args.job.config,
                args.job.job.as_deref(),
                args.dry_run,
                !args.no_progress,
            )
            .await
        }
        Command::Plan(args) => {
            init_logging(args.verbose);
            run::run(&args.config, args.job.as_deref(), true, false).await
        }
        Command::Config(ConfigCommand::Check { file }) => match backline::Config::load(&file) {
            Ok(config) => {
                print!("{}", config.to_toml());
                eprintln!("{file}: {} job(s), valid", config.jobs.len());
                EXIT_OK
            }
            Err(err) => {
                eprintln!("error: {err}");
                EXIT_BAD_INPUT
            }
        },
        Command::Config(ConfigCommand::Example { kind }) => {
            let (_, text) = backline::config::EXAMPLES
                .iter()
                .find(|(k, _)| *k == kind)
                .expect("clap checked the kind");
            print!("{text}");
            EXIT_OK
        }
    };
    ExitCode::from(code)
}
