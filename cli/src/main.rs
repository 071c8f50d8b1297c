//! The `backline` command: argument parsing and output around the `backline` engine.

mod dev;
mod progress;
mod records;
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
    Restore(Box<RestoreArgs>),
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
struct RestoreArgs {
    /// The job file (.toml, .yaml, .yml or .json).
    #[arg(long, short = 'c', value_name = "FILE", env = "BACKLINE_CONFIG")]
    config: String,
    /// The backup job whose backup to restore.
    #[arg(long, short = 'j', value_name = "NAME")]
    job: String,
    /// S3 jobs: restore into this bucket (created if missing; a bucket with objects in it is
    /// refused unless --allow-existing).
    #[arg(long, value_name = "BUCKET")]
    to_bucket: Option<String>,
    /// Filesystem jobs: restore under this folder (/a/b.txt lands in DIR/a/b.txt); default: the
    /// files' original paths.
    #[arg(long, value_name = "DIR")]
    to: Option<String>,
    /// Prepended to restored keys (default: the job's source prefix, so keys come back as they were).
    #[arg(long, value_name = "PREFIX")]
    to_prefix: Option<String>,
    /// Restore what the backup held after this run (a run id, see `backline runs`) or after the
    /// last run finished by this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_name = "RUN_ID|DATE")]
    as_of: Option<String>,
    /// Also restore objects deleted at the source (tagged Deleted=True in the backup).
    #[arg(long)]
    include_deleted: bool,
    /// Restore only keys under this prefix.
    #[arg(long, value_name = "P")]
    prefix: Option<String>,
    /// Glacier retrieval tier for archived objects, default Standard (Deep Archive has no
    /// Expedited: Standard is used).
    #[arg(long, value_parser = ["Standard", "Bulk", "Expedited"])]
    tier: Option<String>,
    /// Restore into a bucket that already holds objects (e.g. to continue an interrupted restore).
    #[arg(long)]
    allow_existing: bool,
    /// Replace objects (or files) in the target that differ from the backup.
    #[arg(long)]
    overwrite: bool,
    /// How often to check what waits: archived objects being retrieved (default 5m), Tableau
    /// publish jobs (default 10s).
    #[arg(long, value_name = "DURATION")]
    poll_interval: Option<String>,
    /// How long archived objects may take in all before they are reported failed (default 96h,
    /// twice Deep Archive's slowest tier).
    #[arg(long, value_name = "DURATION")]
    max_wait: Option<String>,
    /// Days a retrieved archive copy stays readable (default 7).
    #[arg(long, value_name = "DAYS")]
    restore_days: Option<u32>,
    /// Tableau jobs: the backed-up site to restore from (its content URL, or Default).
    #[arg(long, value_name = "SITE")]
    site: Option<String>,
    /// Tableau jobs: only this project (a name or a path from the top) and its sub-projects.
    #[arg(long, value_name = "PROJECT")]
    project: Option<String>,
    /// Tableau jobs: only this workbook (its name or id).
    #[arg(long, value_name = "NAME")]
    workbook: Option<String>,
    /// Tableau jobs: restore this older revision (backed up with `revisions = true`).
    #[arg(long, value_name = "N")]
    revision: Option<u32>,
    /// Tableau jobs: publish to this site instead.
    #[arg(long, value_name = "SITE")]
    to_site: Option<String>,
    /// Tableau jobs: publish under this project path instead of the original one.
    #[arg(long, value_name = "PATH")]
    to_project: Option<String>,
    /// QuickSight jobs: the day whose backup to restore (default: the day of the last run).
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: Option<String>,
    /// QuickSight jobs: restore groups, users and memberships (with neither --users nor
    /// --assets: both).
    #[arg(long)]
    users: bool,
    /// QuickSight jobs: import the asset bundles.
    #[arg(long)]
    assets: bool,
    /// QuickSight jobs: only these (users/NAME, groups/NAME, dashboards/ID, datasets/ID, ...).
    #[arg(long, value_name = "TYPE/ID", num_args = 1..)]
    only: Vec<String>,
    /// QuickSight jobs: restore into this account instead.
    #[arg(long, value_name = "ID")]
    to_account: Option<String>,
    /// QuickSight jobs: import assets into this region instead (and, with --to-account, make
    /// users and groups there).
    #[arg(long, value_name = "REGION")]
    to_region: Option<String>,
    /// Print the plan and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
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

/// The flags of `backline restore` as the `restore` options of a planner request: only what was
/// given (and the flags' defaults), so each kind's options name what it does not take.
fn restore_options(args: &RestoreArgs) -> serde_json::Value {
    let mut options = serde_json::Map::new();
    let given: [(&str, Option<&str>); 15] = [
        ("to_bucket", args.to_bucket.as_deref()),
        ("to_dir", args.to.as_deref()),
        ("to_prefix", args.to_prefix.as_deref()),
        ("as_of", args.as_of.as_deref()),
        ("max_wait", args.max_wait.as_deref()),
        ("prefix", args.prefix.as_deref()),
        ("tier", args.tier.as_deref()),
        ("poll_interval", args.poll_interval.as_deref()),
        ("site", args.site.as_deref()),
        ("project", args.project.as_deref()),
        ("workbook", args.workbook.as_deref()),
        ("to_site", args.to_site.as_deref()),
        ("date", args.date.as_deref()),
        ("to_account", args.to_account.as_deref()),
        ("to_region", args.to_region.as_deref()),
    ];
    for (name, value) in given {
        if let Some(value) = value {
            options.insert(name.to_string(), value.into());
        }
    }
    if let Some(to_project) = &args.to_project {
        options.insert("to_project".into(), to_project.as_str().into());
    }
    if let Some(revision) = args.revision {
        options.insert("revision".into(), revision.into());
    }
    if !args.only.is_empty() {
        options.insert("only".into(), args.only.clone().into());
    }
    if let Some(days) = args.restore_days {
        options.insert("restore_days".into(), days.into());
    }
    for (flag, on) in [
        ("include_deleted", args.include_deleted),
        ("allow_existing", args.allow_existing),
        ("overwrite", args.overwrite),
        ("users", args.users),
        ("assets", args.assets),
    ] {
        if on {
            options.insert(flag.to_string(), true.into());
        }
    }
    serde_json::Value::Object(options)
}

/// `restore.to_dir` -> `--to`, `restore.to_bucket` -> `--to-bucket`: errors name the flags.
fn flag_names(message: &str) -> String {
    let mut message = message.replace("`restore.to_dir`", "`--to`").replace("to_dir", "to");
    while let Some(at) = message.find("`restore.") {
        let end = message[at + 1..].find('`').map_or(message.len(), |e| at + 1 + e);
        let flag = message[at + "`restore.".len()..end].replace('_', "-");
        message.replace_range(at..end, &format!("`--{flag}"));
    }
    message
}

async fn restore(args: RestoreArgs) -> u8 {
    let job = match run::load_jobs(&args.config, Some(&args.job)) {
        Ok(mut jobs) => jobs.remove(0),
        Err(code) => return code,
    };
    let restore = match job.spec.restore_job(&job, restore_options(&args)) {
        Some(Ok(restore)) => restore,
        Some(Err(err)) => {
            let err = anyhow::Error::msg(flag_names(&err.to_string())).context(format!(
                "job {} is a {} job",
                job.name,
                job.spec.kind()
            ));
            eprintln!("error: {err:#}");
            return EXIT_BAD_INPUT;
        }
        None => {
            eprintln!("error: job {} is a {} job, which has no restore", job.name, job.spec.kind());
            return EXIT_BAD_INPUT;
        }
    };
    run::run_jobs(vec![restore], args.dry_run, !args.no_progress, Default::default(), None).await
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
        Command::Restore(args) => restore(*args).await,
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
