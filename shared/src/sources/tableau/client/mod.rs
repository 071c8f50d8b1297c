//! Tableau's REST API over HTTPS: sign-in (personal access token or name and password), the
//! listings Backline pages through, and workbook downloads as streams.
//!
//! A personal access token holds one session at a time: signing in again with it, to any site,
//! ends the earlier session. A [`Connection`] is one session that a worker's tasks share; when
//! the server says the session ended (401), it signs in once more and retries, and only the
//! first task to notice does so.

use std::time::Duration;

use tokio::sync::RwLock;

use super::xml::{self, Credentials, Pagination, Project, Revision, Site, User, Workbook};

/// How Backline signs in.
#[derive(Clone)]
pub enum Login {
    Token { name: String, secret: String },
    Password { name: String, password: String },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableauError {
    #[error("{call}: HTTP {status}, Tableau error {code}: {summary}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Api { call: String, status: u16, code: String, summary: String, detail: String },
    #[error("{call}: the server asks to wait {}s (429)", retry_after.as_secs())]
    Throttled { call: String, retry_after: Duration },
    #[error("{call}: {message}")]
    Transport { call: String, message: String },
}

impl TableauError {
    pub fn status(&self) -> Option<u16> {
        match self {
            TableauError::Api { status, .. } => Some(*status),
            TableauError::Throttled { .. } => Some(429),
            TableauError::Transport { .. } => None,
        }
    }

    /// A dropped connection or a server error: the same request may succeed if sent again
    /// (and a write may have taken effect or not).
    pub fn transient(&self) -> bool {
        matches!(self, TableauError::Transport { .. })
            || self.status().is_some_and(|s| (500..600).contains(&s) && s != 501)
    }
}

/// Page size asked for; servers may answer with fewer, and paging follows `totalAvailable`.
const PAGE_SIZE: u32 = 100;
/// A read that fails for a dropped connection or a 5xx is sent again this often, with backoff.
const TRANSIENT_RETRIES: u32 = 4;
/// The planner waits out a 429 this long in place; longer waits fail the site.
pub const INLINE_WAIT: Duration = Duration::from_secs(60);

/// The server's REST API at one version.
#[derive(Clone)]
pub struct TableauClient {
    http: reqwest::Client,
    api: String,
}

pub(super) fn transport(call: &str, err: impl std::fmt::Display) -> TableauError {
    TableauError::Transport { call: call.to_string(), message: err.to_string() }
}

/// Turns a non-success answer into its error, reading Tableau's error document.
async fn failure(call: &str, response: reqwest::Response) -> TableauError {
    let status = response.status().as_u16();
    if status == 429 {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(30)
            // `Retry-After: 0` would make waiting it out in place a busy loop.
            .max(1);
        return TableauError::Throttled { call: call.to_string(), retry_after: Duration::from_secs(retry_after) };
    }
    let body = response.text().await.unwrap_or_default();
    let error = xml::api_error(&body).unwrap_or(xml::ApiError {
        code: String::new(),
        summary: body.chars().take(200).collect(),
        detail: String::new(),
    });
    TableauError::Api { call: call.to_string(), status, code: error.code, summary: error.summary, detail: error.detail }
}

impl TableauClient {
    /// A client for `server` at `api_version`, or at the version its `serverinfo` says.
    pub async fn connect(server: &str, api_version: Option<&str>) -> Result<TableauClient, TableauError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| transport("client", e))?;
        let version = match api_version {
            Some(version) => version.to_string(),
            None => {
                // Any supported version answers serverinfo with the newest it speaks.
                let url = format!("{server}/api/2.4/serverinfo");
                let response = http.get(&url).send().await.map_err(|e| transport("serverinfo", e))?;
                if !response.status().is_success() {
                    return Err(failure("serverinfo", response).await);
                }
                let text = response.text().await.map_err(|e| transport("serverinfo", e))?;
                xml::api_version(&text).map_err(|e| transport("serverinfo", e))?
            }
        };
        Ok(TableauClient { http, api: format!("{server}/api/{version}") })
    }

    /// Signs in, again after a dropped connection or a server error: a sign-in whose answer was
    /// lost only leaves a session that expires on its own.
    async fn sign_in(&self, login: &Login, site_content_url: &str) -> Result<Credentials, TableauError> {
        let mut failures = 0;
        loop {
            match self.sign_in_once(login, site_content_url).await {
                Err(error) if error.transient() && failures < TRANSIENT_RETRIES => {
                    failures += 1;
                    tracing::warn!(attempt = failures, %error, "Tableau sign-in failed; trying again");
                    tokio::time::sleep(Duration::from_millis(250 << failures)).await;
                }
                signed_in => return signed_in,
            }
        }
    }

    async fn sign_in_once(&self, login: &Login, site_content_url: &str) -> Result<Credentials, TableauError> {
        let call = "auth/signin";
        let response = self
            .http
            .post(format!("{}/auth/signin", self.api))
            .header(reqwest::header::CONTENT_TYPE, "application/xml")
            .body(xml::sign_in_request(login, site_content_url))
            .send()
            .await
            .map_err(|e| transport(call, e))?;
        if !response.status().is_success() {
            return Err(failure(call, response).await);
        }
        let text = response.text().await.map_err(|e| transport(call, e))?;
        xml::credentials(&text).map_err(|e| transport(call, e))
    }
}

/// One signed-in session on one site.
pub struct Connection {
    client: TableauClient,
    login: Login,
    site_content_url: String,
    credentials: RwLock<Credentials>,
    /// A 429 asking for at most this is waited out in place; longer ones are returned.
    inline_wait: Duration,
}

impl Connection {
    pub async fn open(
        client: &TableauClient,
        login: &Login,
        site_content_url: &str,
        inline_wait: Duration,
    ) -> Result<Connection, TableauError> {
        let credentials = client.sign_in(login, site_content_url).await?;
        Ok(Connection {
            client: client.clone(),
            login: login.clone(),
            site_content_url: site_content_url.to_string(),
            credentials: RwLock::new(credentials),
            inline_wait,
        })
    }

    /// Sends a request built by `build` (given the URL prefix of the site and the token);
    /// signs in again once if the session ended, and waits out a short 429.
    pub(super) async fn send<F>(&self, call: &str, build: F) -> Result<reqwest::Response, TableauError>
    where
        F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    {
        self.exchange(call, false, build).await
    }

    /// [`Connection::send`] for a write that is the same however often it is made (setting an
    /// owner): sent again after a dropped connection or a server error, as reads are.
    pub(super) async fn send_idempotent<F>(&self, call: &str, build: F) -> Result<reqwest::Response, TableauError>
    where
        F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    {
        self.exchange(call, true, build).await
    }

    async fn exchange<F>(&self, call: &str, idempotent: bool, build: F) -> Result<reqwest::Response, TableauError>
    where
        F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    {
        let mut signed_in_again = false;
        let mut waited = Duration::ZERO;
        let mut transient_failures = 0;
        loop {
            let (token, site) = {
                let credentials = self.credentials.read().await;
                (credentials.token.clone(), credentials.site_id.clone())
            };
            let base = format!("{}/sites/{site}", self.client.api);
            let request = build(&self.client.http, &base)
                .header("X-Tableau-Auth", &token)
                .build()
                .map_err(|e| transport(call, e))?;
            // Reads may be sent again after a dropped connection or a server error; writes (a
            // publish, an appended upload chunk) may have taken effect and are not.
            let repeatable = idempotent || matches!(*request.method(), reqwest::Method::GET | reqwest::Method::HEAD);
            let error = match self.client.http.execute(request).await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => failure(call, response).await,
                Err(e) => transport(call, e),
            };
            if error.transient() && repeatable && transient_failures < TRANSIENT_RETRIES {
                transient_failures += 1;
                tracing::warn!(call, attempt = transient_failures, %error, "Tableau request failed; trying again");
                tokio::time::sleep(Duration::from_millis(250 << transient_failures)).await;
                continue;
            }
            match &error {
                TableauError::Api { status: 401, .. } if !signed_in_again => {
                    signed_in_again = true;
                    let mut credentials = self.credentials.write().await;
                    // Another task may have signed in again already.
                    if credentials.token == token {
                        tracing::info!(site = %self.site_content_url, "Tableau session ended; signing in again");
                        *credentials = self.client.sign_in(&self.login, &self.site_content_url).await?;
                    }
                }
                TableauError::Throttled { retry_after, .. } if waited + *retry_after <= self.inline_wait => {
                    waited += *retry_after;
                    tokio::time::sleep(*retry_after).await;
                }
                _ => return Err(error),
            }
        }
    }

    /// Every page of a listing under the site.
    async fn list<T>(
        &self,
        call: &str,
        path: &str,
        extra: &[(&str, &str)],
        parse: fn(&str) -> Result<Vec<T>, String>,
    ) -> Result<Vec<T>, TableauError> {
        let mut all = Vec::new();
        let mut page = 1u32;
        loop {
            let page_text = page.to_string();
            let size_text = PAGE_SIZE.to_string();
            let response = self
                .send(call, |http, base| {
                    http.get(format!("{base}/{path}"))
                        .query(&[("pageSize", size_text.as_str()), ("pageNumber", page_text.as_str())])
                        .query(extra)
                })
                .await?;
            let text = response.text().await.map_err(|e| transport(call, e))?;
            let items = parse(&text).map_err(|e| transport(call, e))?;
            let got = items.len();
            all.extend(items);
            let Some(Pagination { total, .. }) = xml::pagination(&text).map_err(|e| transport(call, e))? else {
                return Ok(all);
            };
            if got == 0 || all.len() >= total as usize {
                return Ok(all);
            }
            page += 1;
        }
    }

    pub async fn sites(&self) -> Result<Vec<Site>, TableauError> {
        let call = "sites";
        let mut all = Vec::new();
        let mut page = 1u32;
        loop {
            let url = format!("{}/sites", self.client.api);
            let query = [("pageSize", PAGE_SIZE.to_string()), ("pageNumber", page.to_string())];
            let response = self.send(call, |http, _| http.get(&url).query(&query)).await?;
            let text = response.text().await.map_err(|e| transport(call, e))?;
            let sites = xml::sites(&text).map_err(|e| transport(call, e))?;
            let got = sites.len();
            all.extend(sites);
            match xml::pagination(&text).map_err(|e| transport(call, e))? {
                Some(p) if got > 0 && all.len() < p.total as usize => page += 1,
                _ => return Ok(all),
            }
        }
    }

    pub async fn projects(&self) -> Result<Vec<Project>, TableauError> {
        self.list("projects", "projects", &[], xml::projects).await
    }

    /// Every workbook of the site, with owners' names (`fields=_all_`).
    pub async fn workbooks(&self) -> Result<Vec<Workbook>, TableauError> {
        self.list("workbooks", "workbooks", &[("fields", "_all_")], xml::workbooks).await
    }

    pub async fn users(&self) -> Result<Vec<User>, TableauError> {
        self.list("users", "users", &[], xml::users).await
    }

    /// Gives a workbook another owner.
    pub async fn set_owner(&self, workbook_id: &str, user_id: &str) -> Result<(), TableauError> {
        let body = format!("<tsRequest><workbook><owner id=\"{}\"/></workbook></tsRequest>", xml::escape(user_id));
        self.send_idempotent("update workbook", |http, base| {
            http.put(format!("{base}/workbooks/{workbook_id}"))
                .header(reqwest::header::CONTENT_TYPE, "application/xml")
                .body(body.clone())
        })
        .await?;
        Ok(())
    }

    /// The revisions the server keeps of a workbook.
    pub async fn revisions(&self, workbook_id: &str) -> Result<Vec<Revision>, TableauError> {
        self.list("revisions", &format!("workbooks/{workbook_id}/revisions"), &[], xml::revisions).await
    }

    /// A workbook's file (or one revision's) as a stream, and the file name the server gives it.
    pub async fn content(
        &self,
        workbook_id: &str,
        revision: Option<u32>,
        include_extract: bool,
    ) -> Result<(reqwest::Response, Option<String>), TableauError> {
        let extract = if include_extract { "true" } else { "false" };
        let path = match revision {
            Some(number) => format!("workbooks/{workbook_id}/revisions/{number}/content"),
            None => format!("workbooks/{workbook_id}/content"),
        };
        let response = self
            .send("workbook content", |http, base| {
                http.get(format!("{base}/{path}")).query(&[("includeExtract", extract)])
            })
            .await?;
        let name = response
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .and_then(xml::disposition_filename);
        Ok((response, name))
    }

    /// Ends the session; best effort (it also ends when the token is used to sign in again).
    pub async fn sign_out(&self) {
        let token = self.credentials.read().await.token.clone();
        let url = format!("{}/auth/signout", self.client.api);
        if let Err(err) = self.client.http.post(url).header("X-Tableau-Auth", token).send().await {
            tracing::debug!(error = %err, "Tableau sign-out failed");
        }
    }
}

mod publish;

pub use publish::{ConnectionCredentials, Job, JobState, Publication};
