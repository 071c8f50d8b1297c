//! The Tableau emulator (`tests/emulators/tableau`) for tests.

use std::collections::BTreeMap;
use std::ops::Deref;

use serde_json::{Value, json};

use crate::emulator::Emulator;

/// The personal access token every test world grants (`backline`, for user `admin`).
pub const PAT_SECRET: &str = "pat-secret";

/// An environment variable of this test's own holding [`PAT_SECRET`], for a job's
/// `token_secret = "env:NAME"`; its name is returned.
pub fn token_env() -> String {
    let name = format!("TABLEAU_TOKEN_{}", crate::unique("t").replace('-', "_"));
    // SAFETY: the variable's name is this test's own; no other thread reads or writes it.
    unsafe { std::env::set_var(&name, PAT_SECRET) };
    name
}

/// One site (Default) with one project (Top) and `n` workbooks `Book 000`…, workbook `i`
/// holding `text(i)`, all last updated at the same time.
pub fn one_site_world(n: usize, text: impl Fn(usize) -> String) -> Value {
    let books: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("w{i:03}"), "name": format!("Book {i:03}"), "projectId": "p", "ownerId": "u",
                   "text": text(i), "updatedAt": "2026-01-02T00:00:00Z"})
        })
        .collect();
    json!({
        "credentials": {"pats": {"backline": {"secret": PAT_SECRET, "user": "admin"}}},
        "sites": [{"id": "site-default", "name": "Default", "contentUrl": "",
                   "users": [{"id": "u", "name": "admin", "siteRole": "SiteAdministratorCreator"}],
                   "projects": [{"id": "p", "name": "Top", "parentProjectId": null}], "workbooks": books}]
    })
}

/// The hex SHA-256 of `bytes`, as the emulator records what was published.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What the emulator published into `Top` under the new top-level project `project` (a
/// restore's `--to-project` of a [`one_site_world`]): each workbook's name with the SHA-256 of
/// every publish of it that completed.
pub fn published_under(state: &Value, project: &str) -> BTreeMap<String, Vec<String>> {
    let created = state["projects_created"].as_array().expect("projects_created");
    let top = created.iter().find(|p| p["name"] == project && p["parentProjectId"].is_null()).expect("the project");
    let under = created.iter().find(|p| p["name"] == "Top" && p["parentProjectId"] == top["id"]).expect("Top under it");
    let mut published: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in state["published"].as_array().expect("published") {
        if record["projectId"] == under["id"] && record["status"] == "done" {
            let name = record["name"].as_str().expect("a name").to_string();
            published.entry(name).or_default().push(record["sha256"].as_str().expect("a SHA-256").to_string());
        }
    }
    published
}

pub struct TableauServer(Emulator);

impl TableauServer {
    /// Starts an emulator and seeds it with `world` (see the emulator's README).
    pub async fn start(world: &Value) -> TableauServer {
        TableauServer(Emulator::start("tableau", world).await)
    }

    /// What happened: sessions, requests by route, `session_conflicts`, published workbooks.
    pub async fn state(&self) -> Value {
        let url = format!("{}/_emulator/state?requests=false", self.url);
        reqwest::get(url).await.expect("emulator").json().await.expect("state JSON")
    }
}

impl Deref for TableauServer {
    type Target = Emulator;

    fn deref(&self) -> &Emulator {
        &self.0
    }
}
