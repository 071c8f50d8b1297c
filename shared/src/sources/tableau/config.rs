//! The `tableau` job's spec: which server and sites, and the buckets their workbooks go to.

use serde::{Deserialize, Serialize};

use crate::config::{BucketName, HumanDuration, Secret, StorageClass};

/// `kind = "tableau"`: every workbook of a Tableau Server's sites into S3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableauJob {
    pub source: TableauSource,
    /// Where whole sites go. Without it, only the projects of `[[jobs.projects]]` are backed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TableauTarget>,
    /// Projects (with their sub-projects) that go to a bucket of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<ProjectTarget>,
    /// Back up every revision the server still keeps, each once.
    #[serde(default)]
    pub revisions: bool,
    /// Download workbooks with their extracts (falling back to without when refused).
    #[serde(default = "default_true")]
    pub include_extract: bool,
    /// Copy an unchanged workbook's object onto itself once it is older than this, so that
    /// lifecycle rules that expire old objects never expire a live workbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_after: Option<HumanDuration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableauSource {
    /// `https://tableau.example.com`.
    pub server: ServerUrl,
    /// The REST API version; default: what the server's `serverinfo` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// A personal access token's name, with `token_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<Secret>,
    /// Or a user's name, with `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Only these sites (by name or content URL; `Default` or "" for the default site).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
    /// Every site but these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_sites: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableauTarget {
    pub bucket: BucketName,
    /// Before every key: `<prefix><site>/<project path>/<workbook>.<twbx|twb>`.
    #[serde(default)]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
}

/// `[[jobs.projects]]`: a project of a site, with its sub-projects, into its own bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectTarget {
    pub site: String,
    /// The project's name, or its path from the top (`Finance/Reports`).
    pub project: String,
    pub bucket: BucketName,
    #[serde(default)]
    pub prefix: String,
}

fn default_true() -> bool {
    true
}

/// An `http://` or `https://` URL without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerUrl(String);

impl ServerUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServerUrl {
    type Error = String;

    fn try_from(url: String) -> Result<Self, String> {
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
                Ok(ServerUrl(url.trim_end_matches('/').to_string()))
            }
            _ => Err(format!("`{url}` is not a server URL; allowed: https://host[:port] (or http:// for tests)")),
        }
    }
}

impl From<ServerUrl> for String {
    fn from(url: ServerUrl) -> String {
        url.0
    }
}

impl TableauJob {
    /// `(field, what is wrong)` for a spec serde accepted but that cannot work.
    pub fn check(&self) -> Result<(), (String, String)> {
        let source = &self.source;
        let token = (source.token_name.is_some(), source.token_secret.is_some());
        let user = (source.username.is_some(), source.password.is_some());
        match (token, user) {
            ((true, true), (false, false)) | ((false, false), (true, true)) => {}
            ((true, false), _) => return Err(("source.token_secret".into(), "missing; a token_name needs it".into())),
            ((false, true), _) => return Err(("source.token_name".into(), "missing; a token_secret needs it".into())),
            (_, (true, false)) => return Err(("source.password".into(), "missing; a username needs it".into())),
            (_, (false, true)) => return Err(("source.username".into(), "missing; a password needs it".into())),
            ((false, false), (false, false)) => {
                return Err((
                    "source.token_name".into(),
                    "missing; sign in with token_name and token_secret, or username and password".into(),
                ));
            }
            _ => {
                return Err((
                    "source.username".into(),
                    "give a personal access token (token_name, token_secret) or a username and password, not both"
                        .into(),
                ));
            }
        }
        if self.target.is_none() && self.projects.is_empty() {
            return Err((
                "target.bucket".into(),
                "missing; give a target bucket for whole sites, or [[jobs.projects]] to back up only those".into(),
            ));
        }
        if !source.sites.is_empty() && !source.excluded_sites.is_empty() {
            return Err(("source.excluded_sites".into(), "give `sites` or `excluded_sites`, not both".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Format};

    fn error(extra_source: &str, extra_job: &str) -> String {
        let text = format!(
            "[[jobs]]\nname = \"t\"\nkind = \"tableau\"\n{extra_job}\n[jobs.source]\nserver = \"https://t.example\"\n{extra_source}\n[jobs.target]\nbucket = \"b-b-b\"\n"
        );
        Config::parse(&text, Format::Toml, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn bad_files_name_the_field_and_what_is_allowed() {
        let cases = [
            ("token_name = \"n\"", "", "source.token_secret"),
            ("token_name = \"n\"\ntoken_secret = \"plain-text-secret\"", "", "never written in the job file"),
            ("", "", "token_name and token_secret, or username and password"),
            ("username = \"u\"", "", "source.password"),
            ("token_name = \"n\"\ntoken_secret = \"env:T\"\nusername = \"u\"\npassword = \"env:P\"", "", "not both"),
            ("token_name = \"n\"\ntoken_secret = \"env:T\"\nsites = [\"a\"]\nexcluded_sites = [\"b\"]", "", "not both"),
            ("token_name = \"n\"\ntoken_secret = \"env:T\"\nsevrer = 1", "", "unknown field"),
        ];
        for (source, job, want) in cases {
            let err = error(source, job);
            assert!(err.contains(want) && err.contains("t.toml") && err.contains("job \"t\""), "{source} {job}: {err}");
        }
    }

    #[test]
    fn the_sample_planner_event_carries_a_valid_job() {
        use crate::pipeline::events::{JobRef, PlannerEvent, parse_planner_event};
        let sample: serde_json::Value =
            serde_json::from_str(include_str!("../../../../events/planner-tableau.json")).unwrap();
        let PlannerEvent::Request(request) = parse_planner_event(sample).unwrap() else { panic!("a request") };
        let JobRef::Inline(job) = request.job else { panic!("an inline job") };
        let spec = job.spec.get::<super::TableauJob>().expect("a tableau job");
        assert_eq!((job.concurrency, spec.projects.len()), (4, 1));
    }

    #[test]
    fn the_default_concurrency_is_the_kinds() {
        let text = "[[jobs]]\nname = \"t\"\nkind = \"tableau\"\n[jobs.source]\nserver = \"https://t.example/\"\ntoken_name = \"n\"\ntoken_secret = \"env:T\"\n[jobs.target]\nbucket = \"b-b-b\"\n";
        let job = Config::parse(text, Format::Toml, "t.toml").unwrap().jobs.remove(0);
        assert_eq!(job.concurrency, 4);
        let spec = job.spec.get::<super::TableauJob>().unwrap();
        assert_eq!(spec.source.server.as_str(), "https://t.example", "no trailing slash");
    }
}
