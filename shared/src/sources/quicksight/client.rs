//! QuickSight clients per region, and the listings Backline reads (every page of each).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_quicksight::config::http::HttpResponse;
use aws_sdk_quicksight::error::{ProvideErrorMetadata, SdkError};
use serde::{Deserialize, Serialize};

use super::AssetType;
use crate::aws::{AwsClients, error_text};
use crate::pipeline::EngineError;

/// For Start calls: the SDK counts LimitExceededException (all export slots taken) as
/// throttling and would retry it for a minute inside one worker; the task waits in the queue
/// instead.
pub fn no_retries() -> aws_sdk_quicksight::config::Builder {
    aws_sdk_quicksight::config::Builder::default().retry_config(RetryConfig::standard().with_max_attempts(1))
}

/// A Start call that failed in a way worth trying again at the next look: the account's job
/// quota is full or the call was throttled, or it never got an answer (a dropped connection, a
/// time-out, a 5xx). A Start that did reach QuickSight is found again by its job id: the next
/// Start of that id answers ConflictException, which the caller takes as its own job.
pub fn start_should_wait<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => {
            matches!(service.err().code(), Some("LimitExceededException" | "ThrottlingException"))
                || service.raw().status().is_server_error()
        }
        _ => false,
    }
}

/// The NextTokens of one listing: a token seen before means the answers go round in a circle,
/// and the listing stops with an error instead of asking forever.
#[derive(Default)]
struct Pages {
    seen: std::collections::HashSet<String>,
}

impl Pages {
    fn next(&mut self, call: &str, token: Option<&str>) -> Result<Option<String>, EngineError> {
        match token.filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(token) if !self.seen.insert(token.to_string()) => Err(EngineError::service(
                call,
                format!("QuickSight answered with NextToken `{token}` a second time: the listing would never end"),
            )),
            Some(token) => Ok(Some(token.to_string())),
        }
    }
}

/// A QuickSight client for one account in one region.
#[derive(Clone, Debug)]
pub struct QuickSight {
    pub client: aws_sdk_quicksight::Client,
    pub account: String,
    pub region: String,
}

impl QuickSight {
    pub fn new(clients: &AwsClients, account: &str, region: &str) -> QuickSight {
        // QuickSight throttles list calls at a few a second: back off longer than for S3.
        let retry = RetryConfig::standard().with_max_attempts(8).with_initial_backoff(Duration::from_millis(500));
        let mut config = aws_sdk_quicksight::config::Builder::from(&clients.sdk_config)
            .region(aws_sdk_quicksight::config::Region::new(region.to_string()))
            .retry_config(retry);
        if let Some(endpoint) = &clients.quicksight_endpoint {
            config = config.endpoint_url(endpoint);
        }
        QuickSight {
            client: aws_sdk_quicksight::Client::from_conf(config.build()),
            account: account.to_string(),
            region: region.to_string(),
        }
    }

    /// The error of `call`, naming the call and where it went.
    pub fn error<E, R>(&self, call: &str, err: &aws_sdk_quicksight::error::SdkError<E, R>) -> EngineError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let call = format!("QuickSight {call} (account {}, {})", self.account, self.region);
        match err.code() {
            Some("AccessDeniedException") => EngineError::Input(format!("{call}: {}", error_text(err))),
            _ => EngineError::service(call, error_text(err)),
        }
    }
}

/// A user as the users table keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_name: String,
    pub arn: String,
    pub email: Option<String>,
    pub role: Option<String>,
    pub identity_type: Option<String>,
    pub active: bool,
    pub principal_id: Option<String>,
    pub custom_permissions_name: Option<String>,
    pub external_login_federation_provider_type: Option<String>,
    pub external_login_federation_provider_url: Option<String>,
    pub external_login_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub group_name: String,
    pub arn: String,
    pub description: Option<String>,
    pub principal_id: Option<String>,
    /// Member user names.
    pub members: Vec<String>,
    /// Member ARNs, in the order of `members`.
    pub member_arns: Vec<String>,
}

/// An asset QuickSight lists: what an export names and the manifest records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub id: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl QuickSight {
    pub async fn users(&self, namespace: &str) -> Result<Vec<User>, EngineError> {
        let mut users = Vec::new();
        let mut token = None;
        let mut pages = Pages::default();
        loop {
            let page = self
                .client
                .list_users()
                .aws_account_id(&self.account)
                .namespace(namespace)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.error("ListUsers", &e))?;
            users.extend(page.user_list().iter().map(|u| User {
                user_name: u.user_name().unwrap_or_default().to_string(),
                arn: u.arn().unwrap_or_default().to_string(),
                email: u.email().map(str::to_string),
                role: u.role().map(|r| r.as_str().to_string()),
                identity_type: u.identity_type().map(|t| t.as_str().to_string()),
                active: u.active(),
                principal_id: u.principal_id().map(str::to_string),
                custom_permissions_name: u.custom_permissions_name().map(str::to_string),
                external_login_federation_provider_type:
                    u.external_login_federation_provider_type().map(str::to_string),
                external_login_federation_provider_url: u.external_login_federation_provider_url().map(str::to_string),
                external_login_id: u.external_login_id().map(str::to_string),
            }));
            token = pages.next("ListUsers", page.next_token())?;
            if token.is_none() {
                return Ok(users);
            }
        }
    }

    /// Every group with its members (one listing per group).
    pub async fn groups(&self, namespace: &str) -> Result<Vec<Group>, EngineError> {
        let mut groups = Vec::new();
        let mut token = None;
        let mut pages = Pages::default();
        loop {
            let page = self
                .client
                .list_groups()
                .aws_account_id(&self.account)
                .namespace(namespace)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.error("ListGroups", &e))?;
            for g in page.group_list() {
                groups.push(Group {
                    group_name: g.group_name().unwrap_or_default().to_string(),
                    arn: g.arn().unwrap_or_default().to_string(),
                    description: g.description().map(str::to_string),
                    principal_id: g.principal_id().map(str::to_string),
                    members: Vec::new(),
                    member_arns: Vec::new(),
                });
            }
            token = pages.next("ListGroups", page.next_token())?;
            if token.is_none() {
                break;
            }
        }
        for group in &mut groups {
            let mut token = None;
            let mut pages = Pages::default();
            loop {
                let page = self
                    .client
                    .list_group_memberships()
                    .aws_account_id(&self.account)
                    .namespace(namespace)
                    .group_name(&group.group_name)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| self.error(&format!("ListGroupMemberships of `{}`", group.group_name), &e))?;
                for member in page.group_member_list() {
                    group.members.push(member.member_name().unwrap_or_default().to_string());
                    group.member_arns.push(member.arn().unwrap_or_default().to_string());
                }
                token = pages.next("ListGroupMemberships", page.next_token())?;
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(groups)
    }

    /// Every asset of a type, in the order QuickSight lists them. Deleted analyses (which
    /// ListAnalyses still returns) are left out.
    pub async fn assets(&self, kind: AssetType) -> Result<Vec<Asset>, EngineError> {
        let mut assets = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = Pages::default();
        let asset = |id: Option<&str>, arn: Option<&str>, name: Option<&str>| Asset {
            id: id.unwrap_or_default().to_string(),
            arn: arn.unwrap_or_default().to_string(),
            name: name.unwrap_or_default().to_string(),
        };
        loop {
            let next = match kind {
                AssetType::Datasources => {
                    let page = self
                        .client
                        .list_data_sources()
                        .aws_account_id(&self.account)
                        .set_next_token(token)
                        .send()
                        .await
                        .map_err(|e| self.error("ListDataSources", &e))?;
                    assets.extend(page.data_sources().iter().map(|a| asset(a.data_source_id(), a.arn(), a.name())));
                    page.next_token().map(str::to_string)
                }
                AssetType::Datasets => {
                    let page = self
                        .client
                        .list_data_sets()
                        .aws_account_id(&self.account)
                        .set_next_token(token)
                        .send()
                        .await
                        .map_err(|e| self.error("ListDataSets", &e))?;
                    assets.extend(page.data_set_summaries().iter().map(|a| asset(a.data_set_id(), a.arn(), a.name())));
                    page.next_token().map(str::to_string)
                }
                AssetType::Analyses => {
                    let page = self
                        .client
                        .list_analyses()
                        .aws_account_id(&self.account)
                        .set_next_token(token)
                        .send()
                        .await
                        .map_err(|e| self.error("ListAnalyses", &e))?;
                    let live = page
                        .analysis_summary_list()
                        .iter()
                        .filter(|a| !matches!(a.status(), Some(aws_sdk_quicksight::types::ResourceStatus::Deleted)));
                    assets.extend(live.map(|a| asset(a.analysis_id(), a.arn(), a.name())));
                    page.next_token().map(str::to_string)
                }
                AssetType::Dashboards => {
                    let page = self
                        .client
                        .list_dashboards()
                        .aws_account_id(&self.account)
                        .set_next_token(token)
                        .send()
                        .await
                        .map_err(|e| self.error("ListDashboards", &e))?;
                    assets.extend(
                        page.dashboard_summary_list().iter().map(|a| asset(a.dashboard_id(), a.arn(), a.name())),
                    );
                    page.next_token().map(str::to_string)
                }
            };
            token = pages.next(&format!("listing {}", kind.as_str()), next.as_deref())?;
            if token.is_none() {
                return Ok(assets);
            }
        }
    }
}
