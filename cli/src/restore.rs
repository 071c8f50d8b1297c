//! `backline restore`: the flags become a kind's `restore` options, and the restore job runs
//! like any other.

use backline::pipeline::EngineOptions;
use clap::Args;

use crate::{EXIT_BAD_INPUT, run};

#[derive(Args)]
pub struct RestoreArgs {
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
    pub verbose: u8,
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

pub async fn restore(args: RestoreArgs) -> u8 {
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
    // Like `backline run`: a restore killed mid-way is taken up by the next restore of the job
    // (what it restored is counted once, its open uploads under the target are aborted).
    let options = EngineOptions {
        abort_uploads_older_than: Some(std::time::Duration::ZERO),
        resumable: true,
        ..Default::default()
    };
    run::run_jobs(vec![restore], args.dry_run, !args.no_progress, options, None).await
}
