//! `backline config import tableau-wb-backup2s3 FILE`: the config of the tool Backline replaces
//! (`[main]`, `[backup.sites]`, `[[backup.projects]]`, `[vault]`) as a Backline job file, with a
//! comment for every setting that has no equivalent.

use std::fmt::Write;

use toml::Value;

/// The tool whose config this reads.
pub const TOOL: &str = "tableau-wb-backup2s3";

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The equivalent Backline job file, or what is wrong with `text`.
pub fn import(text: &str) -> Result<String, String> {
    let config: toml::Table = toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))?;
    let table = |name: &str| config.get(name).and_then(Value::as_table);
    let backup = table("backup");
    let sites = backup.and_then(|b| b.get("sites")).and_then(Value::as_table);
    let projects: Vec<&toml::Table> = backup
        .and_then(|b| b.get("projects"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_table).collect())
        .unwrap_or_default();
    if sites.is_none() && projects.is_empty() {
        return Err("no [backup.sites] and no [[backup.projects]]: nothing is backed up by this config".into());
    }
    let main = table("main");
    let vault = table("vault");
    let creds_path = vault.and_then(|v| v.get("paths")).and_then(|p| p.get("ts_creds")).and_then(Value::as_str);

    let mut out = String::new();
    let _ = writeln!(out, "# Converted from a {TOOL} config by `backline config import`. Check every TODO.");
    let _ = writeln!(out, "[[jobs]]\nname = \"tableau\"\nkind = \"tableau\"\nschedule = \"cron(0 2 * * ? *)\"");
    match main.and_then(|m| m.get("max_workers")).and_then(Value::as_integer) {
        Some(workers) => {
            let _ = writeln!(
                out,
                "# [main] max_workers: downloads in flight per site.\nconcurrency = {}",
                workers.clamp(1, 1024)
            );
        }
        None => {
            let _ = writeln!(out, "concurrency = 4");
        }
    }
    if main.is_some_and(|m| m.contains_key("workdir")) {
        let _ = writeln!(out, "# [main] workdir: not needed; workbooks stream into S3 without touching local disk.");
    }
    let _ = writeln!(out, "\n[jobs.source]");
    let source_note = creds_path.map(|p| format!(" (the `url` field of Vault secret {p})")).unwrap_or_default();
    let _ = writeln!(out, "server = \"https://tableau.example.com\"   # TODO: your server{source_note}");
    let user_note = creds_path.map(|p| format!(" (the `username` field of Vault secret {p})")).unwrap_or_default();
    let _ = writeln!(out, "username = \"backup\"                      # TODO: the user{user_note}");
    let _ = writeln!(
        out,
        "password = \"env:TABLEAU_PASSWORD\"        # TODO: or ssm:/..., secretsmanager:...{}",
        creds_path.map(|p| format!("; was the `password` field of Vault secret {p}")).unwrap_or_default()
    );
    if let Some(sites) = sites {
        let excluded = strings(sites.get("excluded_sites"));
        if !excluded.is_empty() {
            let list: Vec<String> = excluded.iter().map(|s| quoted(s)).collect();
            let _ = writeln!(out, "excluded_sites = [{}]", list.join(", "));
        }
        let bucket = sites.get("s3_bucket_name").or_else(|| sites.get("bucket")).and_then(Value::as_str);
        let bucket = bucket.ok_or("[backup.sites] has no s3_bucket_name")?;
        let _ = writeln!(
            out,
            "\n# [backup.sites]: every site but the excluded ones.\n[jobs.target]\nbucket = {}",
            quoted(bucket)
        );
        for key in sites.keys().filter(|k| !matches!(k.as_str(), "excluded_sites" | "s3_bucket_name" | "bucket")) {
            let _ = writeln!(out, "# [backup.sites] {key}: no equivalent, left out.");
        }
    } else {
        let _ = writeln!(out, "# No [backup.sites]: only the projects below are backed up, as before.");
    }
    for project in &projects {
        let site = project.get("site").and_then(Value::as_str).ok_or("a [[backup.projects]] entry has no site")?;
        let bucket = project.get("bucket").or_else(|| project.get("s3_bucket_name")).and_then(Value::as_str);
        let bucket = bucket.ok_or_else(|| format!("the [[backup.projects]] entry of site {site:?} has no bucket"))?;
        let mut names = strings(project.get("projects"));
        if let Some(one) = project.get("project").and_then(Value::as_str) {
            names.push(one.to_string());
        }
        for name in names {
            let _ = writeln!(
                out,
                "\n[[jobs.projects]]\nsite = {}\nproject = {}\nbucket = {}",
                quoted(site),
                quoted(&name),
                quoted(bucket)
            );
        }
    }
    if let Some(vault) = vault {
        let _ =
            writeln!(out, "\n# [vault]: Backline reads secrets by reference (env:, ssm:, secretsmanager:) for now;");
        let _ = writeln!(out, "#   Vault references come with Backline's Vault support. Was:");
        for key in ["url", "role_id"].iter().filter(|k| vault.contains_key(**k)) {
            let _ = writeln!(out, "#   {key} = {}", vault[*key]);
        }
        if vault.contains_key("secret_id") {
            let _ = writeln!(out, "#   secret_id = (not copied)");
        }
        if let Some(params) = vault.get("paths").and_then(|p| p.get("params")).and_then(Value::as_str) {
            let _ = writeln!(
                out,
                "#   paths.params = {} (sentry_dsn): Sentry notifications are not in Backline yet.",
                quoted(params)
            );
        }
    }
    for key in config.keys().filter(|k| !matches!(k.as_str(), "main" | "backup" | "vault")) {
        let _ = writeln!(out, "# [{key}]: no equivalent, left out.");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Format};

    const ORIGINAL: &str = r#"
[main]
workdir = "/tmp/tableau-backup"
max_workers = 6

[backup.sites]
s3_bucket_name = "my-tableau-backup"
excluded_sites = ["Personal", "Sandbox"]

[[backup.projects]]
site = "Sales"
projects = ["Finance/Revenue", "Marketing"]
bucket = "my-tableau-sales-backup"

[vault]
url = "https://vault.example.com"
role_id = "r"
secret_id = "s3cr3t"

[vault.paths]
ts_creds = "secret/tableau-server/prod"
params = "secret/tableau-content-backup/params"
"#;

    #[test]
    fn the_original_config_becomes_a_valid_job_file_with_notes() {
        let text = import(ORIGINAL).unwrap();
        let config = Config::parse(&text, Format::Toml, "imported.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let job = &config.jobs[0];
        let spec = job.spec.get::<super::super::TableauJob>().unwrap();
        assert_eq!(job.concurrency, 6);
        assert_eq!(spec.target.as_ref().unwrap().bucket.as_str(), "my-tableau-backup");
        assert_eq!(spec.source.excluded_sites, ["Personal", "Sandbox"]);
        let projects: Vec<(&str, &str)> =
            spec.projects.iter().map(|p| (p.project.as_str(), p.bucket.as_str())).collect();
        assert_eq!(
            projects,
            [("Finance/Revenue", "my-tableau-sales-backup"), ("Marketing", "my-tableau-sales-backup")]
        );
        for note in ["workdir", "secret/tableau-server/prod", "sentry_dsn", "TODO"] {
            assert!(text.contains(note), "{note} not in:\n{text}");
        }
        assert!(!text.contains("s3cr3t"), "a secret is never copied");
    }

    #[test]
    fn projects_only_stays_projects_only() {
        let text =
            import("[[backup.projects]]\nsite = \"Sales\"\nprojects = [\"Marketing\"]\nbucket = \"sales-backup\"\n")
                .unwrap();
        let config = Config::parse(&text, Format::Toml, "imported.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let spec = config.jobs[0].spec.get::<super::super::TableauJob>().unwrap();
        assert!(spec.target.is_none(), "{text}");
        assert_eq!(config.jobs[0].control().bucket.as_str(), "sales-backup");
        assert!(import("[main]\nworkdir = \"/tmp\"\n").unwrap_err().contains("nothing is backed up"));
        assert!(import("[backup.sites]\nexcluded_sites = []\n").unwrap_err().contains("s3_bucket_name"));
        assert!(import("not toml [").unwrap_err().contains("not valid TOML"));
    }
}
