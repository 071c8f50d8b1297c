//! The `backline` command: argument parsing and output around the `backline` engine.

mod dev;
mod progress;
mod records;
mod restore;
mod run;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes, for scripts.
pub const EXIT_OK: u8 = 0;
pub const EXIT_TASKS_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_DRIFT: u8 = 3;
pub const EXIT_SERVICE: u8 = 4;
/// Ctrl-C, as shells report a process ended by SIGINT.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit code of a run that stopped with `err`: 4 a service call failed, 2 bad input.
pub fn exit_code(err: &backline::EngineError) -> u8 {
    err.exit_code()
}

#[derive(Parser)]
#[command(
    name = "backline",
    version,
    about = "Incremental, verifiable backups of S3 buckets, folders, Tableau workbooks and QuickSight into S3.",
    long_about = "Incremental, verifiable backups of S3 buckets, folders, Tableau workbooks and QuickSight\n\
        (users into DynamoDB, assets as bundles) into S3.\n\n\
        The same planner, workers and finalizer that run on AWS Lambda run here in one process.\n\
        AWS access comes from the standard environment: credentials chain, AWS_REGION, and\n\
        AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> for local servers.\n\n\
        Exit codes: 0 every task succeeded, 1 the run finished with failed tasks,\n\
        2 bad input or the run could not start, 3 verify found drift,\n\
        4 a service call failed during the run (the message names it; trying again may help),\n\
        130 interrupted (Ctrl-C): open multipart uploads aborted, the run recorded as interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Also write the log to FILE (at least info level, without colour), as well as to stderr.
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run backup jobs now: plan, copy, write the manifest, report and state.
    Run(RunArgs),
    /// Show what a run would do, writing nothing (same as `run --dry-run`).
    Plan(JobArgs),
    /// Restore a job's backup (into a bucket, into folders, back to a Tableau site or QuickSight), now or
    /// as it was after a past run.
    Restore(Box<restore::RestoreArgs>),
    /// Compare a job's source with its backup and report drift, writing nothing.
    Verify(VerifyArgs),
    /// List a job's runs (and its restores) with their time, counts and outcome.
    Runs(JobArgs),
    /// Show where one run stands: finished, or chunks done and objects waiting.
    Status(StatusArgs),
    /// Check or create job files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Developer tools: the Lambda flow on one machine (see `make watch`).
    #[command(subcommand)]
    Dev(dev::DevCommand),
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
    /// Filesystem jobs: keep a copy of each folder's state in DIR and use it while it matches
    /// the stored one (saves downloading large states).
    #[arg(long, value_name = "DIR")]
    cache: Option<std::path::PathBuf>,
    /// Filesystem jobs: rebuild each folder's state from its bucket first (a file whose object
    /// has the same size counts as backed up).
    #[arg(long)]
    reset: bool,
    /// Tableau jobs: back up only this site (its name or content URL); the same as setting
    /// TS_SITE_NAME.
    #[arg(long, value_name = "NAME", env = "TS_SITE_NAME")]
    site: Option<String>,
    /// Print what would be sent to Zabbix (`[notify] zabbix`) instead of sending it.
    #[arg(long)]
    zabbix_stub: bool,
    /// QuickSight jobs: what to back up this time, instead of the job's `mode`.
    #[arg(long, value_parser = ["full", "users-only", "assets-only"])]
    mode: Option<String>,
    /// Also write each run's manifest and report here, as
    /// backup_manifest_YYYYMMDD_HHMMSS.json and backup_report_YYYYMMDD_HHMMSS.txt.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Also compare content: S3 checksums where both sides have one, else a SHA-256 of both.
    #[arg(long)]
    deep: bool,
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The run id (see `backline runs`).
    run: String,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a job file and print its jobs with every default filled in.
    Check {
        /// The job file (.toml, .yaml, .yml or .json).
        file: String,
    },
    /// Read the config file of a tool Backline replaces and print the equivalent job file.
    Import {
        /// The tool: tableau-wb-backup2s3 or quicksight-backup.
        tool: String,
        /// Its config file.
        file: String,
    },
    /// Print a commented example job file for a kind.
    Example {
        /// The job kind.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(backline::config::registry::names()))]
        kind: String,
    },
}

/// Log lines on stderr (colour only on a terminal) and, with `--log-file`, in that file too.
fn init_logging(verbose: u8, log_file: Option<&std::path::Path>) -> Result<(), String> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, fmt};

    let level = |verbose: u8| match verbose {
        0 => "warn",
        1 => "info,aws=warn",
        _ => "debug,aws_smithy_runtime=info,hyper=info,h2=info,rustls=info",
    };
    let filter =
        |verbose: u8| EnvFilter::try_from_env("BACKLINE_LOG").unwrap_or_else(|_| EnvFilter::new(level(verbose)));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter(verbose));
    let file = match log_file {
        None => None,
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("--log-file {}: {e}", path.display()))?;
            Some(
                fmt::layer()
                    .with_writer(std::sync::Mutex::new(file))
                    .with_target(false)
                    .with_ansi(false)
                    .with_filter(filter(verbose.max(1))),
            )
        }
    };
    tracing_subscriber::registry().with(stderr).with(file).init();
    Ok(())
}

/// `backline config import TOOL FILE`.
fn import_config(tool: &str, file: &str) -> u8 {
    let importer = match backline::config::registry::importer(tool) {
        Ok(importer) => importer,
        Err(tools) => {
            eprintln!("error: no import from `{tool}`; Backline reads the configs of: {}", tools.join(", "));
            return EXIT_BAD_INPUT;
        }
    };
    let converted = std::fs::read_to_string(file)
        .map_err(|e| anyhow::Error::new(e).context(format!("{file}: cannot read")))
        .and_then(|text| (importer.convert)(&text).map_err(|e| anyhow::anyhow!("{file}: {e}")));
    match converted {
        Ok(job_file) => {
            print!("{job_file}");
            EXIT_OK
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            EXIT_BAD_INPUT
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = match &cli.command {
        Command::Run(args) => args.job.verbose,
        Command::Plan(args) | Command::Runs(args) => args.verbose,
        Command::Restore(args) => args.verbose,
        Command::Verify(args) => args.job.verbose,
        Command::Status(args) => args.job.verbose,
        Command::Config(_) => 0,
        // The pump's log is its output: one line per delivery.
        Command::Dev(dev::DevCommand::Pump(args)) => args.verbose + 1,
    };
    if let Err(err) = init_logging(verbose, cli.log_file.as_deref()) {
        eprintln!("error: {err}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let code = match cli.command {
        Command::Dev(command) => dev::run(command).await,
        Command::Run(args) => {
            if let Some(site) = &args.site {
                // SAFETY: nothing runs yet on the runtime's other threads to read the environment.
                unsafe { std::env::set_var("TS_SITE_NAME", site) };
            }
            let options = backline::pipeline::EngineOptions {
                state_cache: args.cache,
                reset_state: args.reset,
                zabbix_stub: args.zabbix_stub,
                // One process runs the job here: whatever is open under its targets is a
                // killed earlier run's.
                abort_uploads_older_than: Some(std::time::Duration::ZERO),
                resumable: true,
                ..Default::default()
            };
            let overrides: Vec<(&str, serde_json::Value)> =
                args.mode.iter().map(|mode| ("mode", mode.as_str().into())).collect();
            match run::load_jobs(&args.job.config, args.job.job.as_deref())
                .and_then(|jobs| run::with_overrides(jobs, &overrides))
            {
                Ok(jobs) => {
                    run::run_jobs(jobs, args.dry_run, !args.no_progress, options, args.output_dir.as_deref()).await
                }
                Err(code) => code,
            }
        }
        Command::Plan(args) => match run::load_jobs(&args.config, args.job.as_deref()) {
            Ok(jobs) => run::run_jobs(jobs, true, false, Default::default(), None).await,
            Err(code) => code,
        },
        Command::Restore(args) => restore::restore(*args).await,
        Command::Verify(args) => records::verify(&args.job.config, args.job.job.as_deref(), args.deep).await,
        Command::Runs(args) => records::runs(&args.config, args.job.as_deref()).await,
        Command::Status(args) => records::status(&args.job.config, args.job.job.as_deref(), &args.run).await,
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
        Command::Config(ConfigCommand::Import { tool, file }) => import_config(&tool, &file),
        Command::Config(ConfigCommand::Example { kind }) => {
            let entry = backline::config::registry::lookup(&kind).expect("clap checked the kind");
            print!("{}", entry.example);
            EXIT_OK
        }
    };
    ExitCode::from(code)
}
