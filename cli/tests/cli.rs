//! The `backline` binary as a user runs it: exit codes, messages, output; against moto_server.

use std::path::PathBuf;
use std::process::{Command, Output};

use backline_tests::{Moto, TestObject, create_bucket, put, source_and_target, unique};

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("backline-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn backline(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_backline"));
    command.args(args).env_remove("BACKLINE_CONFIG").env_remove("AWS_PROFILE");
    for (name, value) in Moto::get().env() {
        command.env(name, value);
    }
    command.output().expect("backline runs")
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn job_file(source: &str, target: &str, extra_target: &str) -> PathBuf {
    temp_file(
        "jobs.toml",
        &format!(
            "[[jobs]]\nname = \"photos\"\nkind = \"s3\"\n[jobs.source]\nbucket = \"{source}\"\n[jobs.target]\nbucket = \"{target}\"\n{extra_target}\n"
        ),
    )
}

#[test]
fn bad_job_files_exit_2_naming_file_job_and_field() {
    let unknown = job_file("src-a", "dst-a", "buckit = \"x\"");
    let missing = temp_file(
        "jobs.yaml",
        "jobs:\n  - name: photos\n    kind: s3\n    source: {prefix: a/}\n    target: {bucket: dst-a}\n",
    );
    let extension = temp_file("jobs.ini", "[jobs]\n");
    let bad_class = job_file("src-a", "dst-a", "storage_class = \"FROZEN\"");
    for (path, wants) in [
        (&unknown, vec!["jobs.toml", "job \"photos\"", "`target.buckit`", "unknown field", "storage_class"]),
        (&missing, vec!["jobs.yaml", "`source.bucket`", "missing"]),
        (&extension, vec!["jobs.ini", ".toml, .yaml, .yml or .json"]),
        (&bad_class, vec!["`target.storage_class`", "DEEP_ARCHIVE"]),
    ] {
        for args in [vec!["run", "--config"], vec!["config", "check"]] {
            let mut args = args.clone();
            args.push(path.to_str().unwrap());
            let output = backline(&args);
            let (_, stderr) = text(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            for want in &wants {
                assert!(stderr.contains(want), "{args:?}: `{want}` not in: {stderr}");
            }
        }
    }
}

#[test]
fn a_source_bucket_that_does_not_exist_exits_2() {
    let s3_target = unique("dst");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let clients = Moto::get().clients().await;
        create_bucket(&clients.s3, &s3_target).await;
    });
    let output = backline(&[
        "run",
        "--no-progress",
        "--config",
        job_file("missing-source-bucket", &s3_target, "").to_str().unwrap(),
    ]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("source bucket `missing-source-bucket` does not exist"), "{stderr}");
}

#[test]
fn the_example_job_file_passes_config_check() {
    let output = backline(&["config", "example", "s3"]);
    assert_eq!(output.status.code(), Some(0));
    let (example, _) = text(&output);
    let path = temp_file("example.toml", &example);
    let output = backline(&["config", "check", path.to_str().unwrap()]);
    let (normalised, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(normalised.contains("multipart_threshold = \"1 GiB\""), "{normalised}");
    assert!(stderr.contains("1 job(s), valid"), "{stderr}");
}

#[test]
fn run_plan_and_exit_codes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (source, target) = runtime.block_on(async {
        let clients = Moto::get().clients().await;
        let (source, target) = source_and_target(&clients.s3).await;
        put(&clients.s3, &source, &TestObject::new("a.txt", "a")).await;
        put(&clients.s3, &source, &TestObject::new("b c.txt", "bc")).await;
        (source, target)
    });
    let file = job_file(&source, &target, "");
    let file = file.to_str().unwrap();

    let output = backline(&["plan", "--config", file]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("would copy 2 objects") && stdout.contains("\"b c.txt\""), "{stdout}");

    let output = backline(&["run", "--no-progress", "--config", file, "--job", "photos"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("succeeded") && stdout.contains("copied 2 objects"), "{stdout}");
    assert!(stdout.contains(&format!("s3://{target}/_backline/runs/photos/")), "{stdout}");

    let output = backline(&["run", "--no-progress", "--config", file, "--job", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("job \"nope\" not found; jobs in this file: photos"));

    // A key that cannot fit under the target prefix fails its task: the run ends with exit 1.
    runtime.block_on(async {
        let clients = Moto::get().clients().await;
        put(&clients.s3, &source, &TestObject::new("k".repeat(1020), "long")).await;
    });
    let prefixed = job_file(&source, &target, "prefix = \"backup/\"");
    let output = backline(&["run", "--no-progress", "--config", prefixed.to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("failed 1") && stdout.contains("S3 allows 1024"), "{stdout}");
}

#[test]
fn help_explains_exit_codes_and_endpoints() {
    let (stdout, _) = text(&backline(&["--help"]));
    assert!(stdout.contains("Exit codes") && stdout.contains("AWS_ENDPOINT_URL"), "{stdout}");
    let (stdout, _) = text(&backline(&["run", "--help"]));
    assert!(stdout.contains("--dry-run") && stdout.contains("--no-progress"), "{stdout}");
}

#[test]
fn restore_verify_runs_and_status_from_the_command_line() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (source, target) = runtime.block_on(async {
        let clients = Moto::get().clients().await;
        let (source, target) = source_and_target(&clients.s3).await;
        put(&clients.s3, &source, &TestObject::new("doc.txt", "doc")).await;
        (source, target)
    });
    let file = job_file(&source, &target, "");
    let file = file.to_str().unwrap();
    let (stdout, stderr) = text(&backline(&["run", "--no-progress", "--config", file]));
    let run_id = stdout.split_whitespace().nth(2).expect("a run id").to_string();
    assert!(run_id.starts_with("photos-"), "{stdout}{stderr}");

    let output = backline(&["verify", "--config", file]);
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("in sync"), "{stdout}");
    let restored = unique("restored");
    let output = backline(&[
        "restore",
        "--no-progress",
        "--config",
        file,
        "--job",
        "photos",
        "--to-bucket",
        &restored,
        "--as-of",
        &run_id,
    ]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("photos-restore") && stdout.contains("copied 1 object "), "{stdout}");
    let output = backline(&["restore", "--no-progress", "--config", file, "--job", "photos", "--to-bucket", &restored]);
    assert_eq!(output.status.code(), Some(2), "a bucket with objects is refused");
    assert!(text(&output).1.contains("--allow-existing"));
    let output =
        backline(&["restore", "--config", file, "--job", "photos", "--to-bucket", &restored, "--tier", "Fast"]);
    assert_eq!(output.status.code(), Some(2));

    runtime.block_on(async {
        let clients = Moto::get().clients().await;
        put(&clients.s3, &target, &TestObject::new("doc.txt", "DOC")).await;
    });
    let output = backline(&["verify", "--config", file, "--deep"]);
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("DRIFT") && stdout.contains("doc.txt"), "{stdout}");

    let (stdout, _) = text(&backline(&["runs", "--config", file]));
    assert!(stdout.contains(&run_id) && stdout.contains("photos-restore-"), "{stdout}");
    let output = backline(&["status", "--config", file, &run_id]);
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.contains("finished succeeded"), "{stdout}");
    assert_eq!(backline(&["status", "--config", file, "photos-19990101T000000Z"]).status.code(), Some(2));
}

/// Runs `backline` as the unprivileged user `nobody` when the tests run as root (as CI does),
/// so file permissions mean what they mean for a real backup user.
fn backline_unprivileged(args: &[&str]) -> Output {
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut command = if is_root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]).arg(env!("CARGO_BIN_EXE_backline"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_backline"))
    };
    command.args(args).env("HOME", "/tmp");
    for (name, value) in Moto::get().env() {
        command.env(name, value);
    }
    command.output().expect("backline runs")
}

#[test]
fn an_unreadable_file_is_reported_the_others_uploaded_and_the_run_exits_1() {
    use std::os::unix::fs::PermissionsExt;
    let folder = backline_tests::temp_folder("cli-fs");
    std::fs::write(folder.join("readable.txt"), "fine").unwrap();
    std::fs::write(folder.join("secret.txt"), "no").unwrap();
    std::fs::set_permissions(folder.join("readable.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(folder.join("secret.txt"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let prefix = unique("clifs");
    let jobs = temp_file(
        "fs.toml",
        &format!(
            "[[jobs]]\nname = \"files\"\nkind = \"filesystem\"\nfolders = [{:?}]\n[jobs.target]\nbucket_prefix = \"{prefix}\"\nstorage_class = \"STANDARD\"\n",
            folder.display().to_string()
        ),
    );
    std::fs::set_permissions(jobs.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&jobs, std::fs::Permissions::from_mode(0o644)).unwrap();

    let output = backline_unprivileged(&["plan", "--config", jobs.to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("folder {} -> bucket {prefix}-", folder.display())), "{stdout}");

    let output = backline_unprivileged(&["run", "--no-progress", "--config", jobs.to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("copied 1 object ") && stdout.contains("failed 1"), "{stdout}");
    assert!(stdout.contains("secret.txt") && stdout.contains("ermission denied"), "{stdout}");
}

#[test]
fn a_service_that_fails_during_the_run_exits_4_naming_the_call() {
    // Nothing listens on this port: every S3 call fails, which is not the user's input.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let file = job_file("src-unreachable", "dst-unreachable", "");
    let output = Command::new(env!("CARGO_BIN_EXE_backline"))
        .args(["run", "--no-progress", "--config", file.to_str().unwrap()])
        .env_remove("BACKLINE_CONFIG")
        .env_remove("AWS_PROFILE")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("backline runs");
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("HeadBucket on source bucket `src-unreachable` failed"), "{stderr}");
}

#[test]
fn restore_flags_a_kind_does_not_take_are_named() {
    let file = job_file("src-flags", "dst-flags", "");
    let output = backline(&["restore", "--config", file.to_str().unwrap(), "--job", "photos", "--to", "/tmp/x"]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("s3 job") && stderr.contains("`--to`") && stderr.contains("unknown field"), "{stderr}");
    let output = backline(&["restore", "--config", file.to_str().unwrap(), "--job", "photos"]);
    let stderr = text(&output).1;
    assert!(stderr.contains("`--to-bucket`") && stderr.contains("missing"), "{stderr}");
}

#[test]
fn the_config_of_the_tool_backline_replaces_imports_into_a_valid_job_file() {
    let original = temp_file(
        "config.toml",
        "[main]\nworkdir = \"/tmp/x\"\nmax_workers = 6\n[backup.sites]\ns3_bucket_name = \"my-tableau-backup\"\nexcluded_sites = [\"Sandbox\"]\n[[backup.projects]]\nsite = \"Sales\"\nprojects = [\"Marketing\"]\nbucket = \"sales-backup\"\n",
    );
    let output = backline(&["config", "import", "tableau-wb-backup2s3", original.to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("kind = \"tableau\"") && stdout.contains("# [main] workdir"), "{stdout}");
    let imported = temp_file("imported.toml", &stdout);
    let output = backline(&["config", "check", imported.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let output = backline(&["config", "import", "nosuchtool", original.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("tableau-wb-backup2s3"), "names the tools it knows");
}

/// A quicksight job against the QuickSight emulator, run through the binary.
fn quicksight_file(bucket: &str, table: &str) -> PathBuf {
    temp_file(
        "quicksight.yaml",
        &format!(
            "jobs:\n  - name: qs\n    kind: quicksight\n    mode: full\n    source:\n      account_id: \"111111111111\"\n      region: us-east-1\n    target:\n      bucket: {bucket}\n      users_table: {table}-u\n      groups_table: {table}-g\n      memberships_table: {table}-m\n    poll_interval: 1s\n"
        ),
    )
}

#[test]
fn quicksight_mode_and_output_dir_from_the_command_line() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let world = serde_json::json!({"accounts": {"111111111111": {
        "users": [{"name": "alice", "identity_type": "QUICKSIGHT"}, {"name": "bob", "identity_type": "QUICKSIGHT"}],
        "groups": [{"name": "analysts"}], "memberships": [{"group": "analysts", "member": "bob"}],
        "regions": {"us-east-1": {"datasources": [{"id": "athena"}],
            "datasets": [{"id": "sales", "deps": ["athena"]}, {"id": "upload", "deps": ["athena"], "exportable": false}],
            "dashboards": [{"id": "d1"}]}}}}});
    let server = runtime.block_on(backline_tests::quicksight::QuickSightServer::start(&world));
    let bucket = unique("qs-cli");
    runtime.block_on(async { create_bucket(&Moto::get().clients().await.s3, &bucket).await });
    let file = quicksight_file(&bucket, &unique("qs-cli"));
    let out = std::env::temp_dir().join(unique("qs-out"));
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_backline"));
        command.args(args).env_remove("BACKLINE_CONFIG").env("AWS_ENDPOINT_URL_QUICKSIGHT", &server.url);
        for (name, value) in Moto::get().env() {
            command.env(name, value);
        }
        command.output().expect("backline runs")
    };

    let config = file.to_str().unwrap();
    let output = run(&["run", "--config", config, "--mode", "users-only", "--output-dir", out.to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    let mut written: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    written.sort();
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written[0].starts_with("backup_manifest_") && written[0].ends_with(".json"), "{written:?}");
    assert!(written[1].starts_with("backup_report_") && written[1].ends_with(".txt"), "{written:?}");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(&written[0])).unwrap()).unwrap();
    let keys: Vec<&str> = manifest["tasks"].as_array().unwrap().iter().map(|t| t["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 4, "users-only: 2 users, 1 group, 1 membership, no bundle: {keys:?}");
    let report = std::fs::read_to_string(out.join(&written[1])).unwrap();
    assert!(report.contains("`qs` (quicksight)") && report.contains("| 4 | 4 |"), "{report}");

    // --dry-run reports its checks and writes nothing; --mode applies only where a job has one.
    let output = run(&["plan", "--config", config]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("exists, would be reused") && stdout.contains("1 dashboards in 1 bundle"), "{stdout}");
    let s3_job = job_file("src-mode", "dst-mode", "");
    let output = run(&["run", "--config", s3_job.to_str().unwrap(), "--mode", "full"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("--mode applies to none of the jobs run (s3)"), "{}", text(&output).1);

    // The summary names what was skipped and why; the log has no colour off a terminal, and
    // --log-file gets it too.
    let log = std::env::temp_dir().join(format!("{}.log", unique("qs-log")));
    let output = run(&["run", "--config", config, "-v", "--log-file", log.to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("skipped \"datasets/upload\": QuickSight cannot export it"), "{stdout}");
    assert!(stdout.contains("copied 7 objects"), "{stdout}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes when stderr is a file: {stderr:?}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("INFO") && logged.contains("finalized") && !logged.contains('\u{1b}'), "{logged}");

    // A restore's bad --only is named.
    let output = run(&["restore", "--config", config, "--job", "qs", "--only", "widgets/w1", "--dry-run"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("widgets") && text(&output).1.contains("dashboards"), "{}", text(&output).1);
}

#[test]
fn the_quicksight_backup_config_imports_into_a_valid_job_file() {
    let original = temp_file(
        "config.yaml",
        "aws:\n  region: eu-west-1\n  account_id: \"123456789012\"\n  identity_region: us-east-1\ns3:\n  bucket_name: my-qs-backups\n  prefix_format: YYYY-MM-DD\nbackup:\n  max_assets_per_bundle: 25\nlogging:\n  level: DEBUG\n",
    );
    let output = backline(&["config", "import", "quicksight-backup", original.to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let imported = temp_file("imported.yaml", &stdout);
    let output = backline(&["config", "check", imported.to_str().unwrap()]);
    let (checked, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{stdout}");
    assert!(
        checked.contains("max_assets_per_bundle = 25") && checked.contains("prefix_format = \"YYYY-MM-DD\""),
        "{checked}"
    );
}

#[test]
fn vault_secrets_never_reach_stdout_stderr_or_the_log_file_and_zabbix_stub_prints() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vault = backline_tests::vault::VaultServer::shared();
    let world =
        serde_json::json!({"accounts": {"111111111111": {"regions": {"us-east-1": {"dashboards": [{"id": "d1"}]}}}}});
    let server = runtime.block_on(backline_tests::quicksight::QuickSightServer::start(&world));
    runtime.block_on(server.post("faults", &serde_json::json!({"fail_next_export": 10})));
    let slack = backline_tests::WebhookListener::start();
    let secret = format!("T0-SECRET-{}", unique("cli"));
    runtime.block_on(
        vault.put_v2("backline/cli-slack", serde_json::json!({"url": format!("{}/hooks/{secret}", slack.url)})),
    );
    let bucket = unique("qs-vault-cli");
    runtime.block_on(async { create_bucket(&Moto::get().clients().await.s3, &bucket).await });
    let config = temp_file(
        "vault.toml",
        &format!(
            "[notify]\nslack_webhook = \"vault:secret/data/backline/cli-slack#url\"\nzabbix = {{ server = \"zbx.example\", host = \"backup-host\" }}\n\n[[jobs]]\nname = \"qs-vault\"\nkind = \"quicksight\"\nmode = \"assets-only\"\npoll_interval = \"1s\"\n[jobs.source]\naccount_id = \"111111111111\"\nregion = \"us-east-1\"\n[jobs.target]\nbucket = \"{bucket}\"\n"
        ),
    );
    let log = std::env::temp_dir().join(format!("{}.log", unique("vault-cli")));
    let mut command = Command::new(env!("CARGO_BIN_EXE_backline"));
    command
        .args([
            "run",
            "-vv",
            "--zabbix-stub",
            "--log-file",
            log.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .env("AWS_ENDPOINT_URL_QUICKSIGHT", &server.url);
    for (name, value) in Moto::get().env() {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "a failed export: {stdout}{stderr}");
    assert_eq!(slack.received().len(), 1, "the Slack URL came from Vault");
    assert!(stdout.contains("zabbix stub: zbx.example:10051 backup-host backline.heartbeat[qs-vault]"), "{stdout}");
    assert!(stdout.contains("backline.exit_code[qs-vault] 1"), "{stdout}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("DEBUG"), "-vv logs debug lines to the file too");
    for (what, text) in [("stdout", &stdout), ("stderr", &stderr), ("the log file", &logged)] {
        assert!(!text.contains(&secret), "the secret is in {what}");
    }
}
