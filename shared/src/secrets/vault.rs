//! `vault:` secret references: `vault:kv/data/path#field` (KV version 2) and
//! `vault:kv1/path#field` (version 1) read from `VAULT_ADDR`, signed in with `VAULT_TOKEN`,
//! AppRole (`VAULT_ROLE_ID`, `VAULT_SECRET_ID`) or, on Lambda, Vault's AWS IAM method
//! (`VAULT_AWS_ROLE`). Values and tokens are cached per process and never logged: errors name
//! the reference, never what it holds.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::aws::AwsClients;

/// A parsed `vault:` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultRef {
    /// The API path after `/v1/`.
    pub path: String,
    pub field: String,
    /// KV version 2 (`<mount>/data/...`): the value sits under `data.data`.
    pub v2: bool,
}

impl VaultRef {
    /// `kv/data/app/slack#url` or `kv1/app/slack#url`.
    pub fn parse(text: &str) -> Result<VaultRef, String> {
        let (path, field) = text
            .split_once('#')
            .filter(|(p, f)| !p.is_empty() && !f.is_empty())
            .ok_or_else(|| format!("`vault:{text}` is not a Vault reference; allowed: vault:mount/path#field"))?;
        let path = path.trim_matches('/');
        if !path.contains('/') || path.split('/').any(|s| s.is_empty() || s == "..") {
            return Err(format!("`vault:{text}`: the path needs a mount and a secret, such as kv/data/app#field"));
        }
        let v2 = path.split('/').nth(1) == Some("data");
        Ok(VaultRef { path: path.to_string(), field: field.to_string(), v2 })
    }
}

/// What the process has read, and its token: Vault is asked once per process.
struct Cache {
    values: HashMap<String, String>,
    token: Option<String>,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache { values: HashMap::new(), token: None }))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client")
}

fn address() -> Result<String, String> {
    std::env::var("VAULT_ADDR")
        .ok()
        .filter(|a| !a.is_empty())
        .map(|a| a.trim_end_matches('/').to_string())
        .ok_or_else(|| "VAULT_ADDR is not set".to_string())
}

/// Vault's `{"errors": [...]}`, or the status.
async fn failure(response: reqwest::Response) -> String {
    let status = response.status();
    let errors = response.json::<Value>().await.ok().and_then(|v| v.get("errors").cloned());
    match errors.and_then(|e| e.as_array().cloned()).filter(|e| !e.is_empty()) {
        // Vault's texts span lines ("1 error occurred:\n\t* permission denied"): one line here.
        Some(errors) => {
            let text = errors.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ");
            format!("{status}: {}", text.split_whitespace().collect::<Vec<_>>().join(" "))
        }
        None if status == reqwest::StatusCode::NOT_FOUND => format!("{status}: no such secret"),
        None => status.to_string(),
    }
}

/// The value of `reference` (the text after `vault:`).
pub async fn read(clients: &AwsClients, reference: &str) -> Result<String, String> {
    let parsed = VaultRef::parse(reference)?;
    if let Some(value) = cache().lock().expect("vault cache").values.get(reference) {
        return Ok(value.clone());
    }
    let addr = address()?;
    let token = token(clients, &addr).await?;
    let response = http()
        .get(format!("{addr}/v1/{}", parsed.path))
        .header("X-Vault-Token", &token)
        .send()
        .await
        .map_err(|e| format!("Vault at {addr}: {}", e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("Vault secret {}: {}", parsed.path, failure(response).await));
    }
    let body: Value = response.json().await.map_err(|e| format!("Vault secret {}: {e}", parsed.path))?;
    let data = if parsed.v2 { &body["data"]["data"] } else { &body["data"] };
    let value = match &data[&parsed.field] {
        Value::String(s) => s.clone(),
        Value::Null => return Err(format!("Vault secret {} has no field `{}`", parsed.path, parsed.field)),
        other => other.to_string(),
    };
    cache().lock().expect("vault cache").values.insert(reference.to_string(), value.clone());
    Ok(value)
}

/// The process's token: `VAULT_TOKEN`, else an AppRole or AWS IAM login (once).
async fn token(clients: &AwsClients, addr: &str) -> Result<String, String> {
    if let Ok(token) = std::env::var("VAULT_TOKEN")
        && !token.is_empty()
    {
        return Ok(token);
    }
    if let Some(token) = cache().lock().expect("vault cache").token.clone() {
        return Ok(token);
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (method, body) = match (env("VAULT_ROLE_ID"), env("VAULT_SECRET_ID"), env("VAULT_AWS_ROLE")) {
        (Some(role_id), Some(secret_id), _) => ("approle", json!({"role_id": role_id, "secret_id": secret_id})),
        (_, _, Some(role)) => ("aws", aws_login(clients, &role).await?),
        _ => {
            return Err("no Vault credentials: set VAULT_TOKEN, VAULT_ROLE_ID and VAULT_SECRET_ID, or VAULT_AWS_ROLE \
                        (AWS IAM auth)"
                .into());
        }
    };
    let mount = env(&format!("VAULT_{}_MOUNT", method.to_ascii_uppercase())).unwrap_or_else(|| method.to_string());
    let response = http()
        .post(format!("{addr}/v1/auth/{mount}/login"))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("Vault {method} login: {}", e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("Vault {method} login: {}", failure(response).await));
    }
    let body: Value = response.json().await.map_err(|e| format!("Vault {method} login: {e}"))?;
    let token = body["auth"]["client_token"]
        .as_str()
        .ok_or_else(|| format!("Vault {method} login answered without auth.client_token"))?
        .to_string();
    cache().lock().expect("vault cache").token = Some(token.clone());
    Ok(token)
}

/// The body of an AWS IAM login: an `sts:GetCallerIdentity` request signed with this process's
/// credentials, which Vault forwards to STS to learn who is asking.
pub async fn aws_login(clients: &AwsClients, role: &str) -> Result<Value, String> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = clients.sdk_config.credentials_provider().ok_or("no AWS credentials for Vault's AWS IAM login")?;
    let credentials = provider.provide_credentials().await.map_err(|e| format!("AWS credentials: {e}"))?;
    let server_id = std::env::var("VAULT_AWS_HEADER_VALUE").ok().filter(|v| !v.is_empty());
    Ok(signed_login(credentials, role, server_id.as_deref(), SystemTime::now()))
}

const STS_URL: &str = "https://sts.amazonaws.com/";
const STS_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// The login body for `role`, signed at `time` (apart for tests).
pub fn signed_login(
    credentials: aws_credential_types::Credentials,
    role: &str,
    server_id: Option<&str>,
    time: SystemTime,
) -> Value {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_smithy_types::base64;

    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), "sts.amazonaws.com".into()),
        ("Content-Type".into(), "application/x-www-form-urlencoded; charset=utf-8".into()),
    ];
    if let Some(id) = server_id {
        headers.push(("X-Vault-AWS-IAM-Server-ID".into(), id.into()));
    }
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let request = SignableRequest::new(
        "POST",
        STS_URL,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(STS_BODY.as_bytes()),
    )
    .expect("a signable request");
    let (instructions, _) = sign(request, &params).expect("signing a fixed request").into_parts();
    for (name, value) in instructions.headers() {
        headers.push((name.to_string(), value.to_string()));
    }
    // Vault wants each header as a list of values.
    let header_map: serde_json::Map<String, Value> =
        headers.into_iter().map(|(k, v)| (k, Value::Array(vec![Value::String(v)]))).collect();
    json!({
        "role": role,
        "iam_http_request_method": "POST",
        "iam_request_url": base64::encode(STS_URL),
        "iam_request_body": base64::encode(STS_BODY),
        "iam_request_headers": base64::encode(Value::Object(header_map).to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_bad_ones_say_what_is_allowed() {
        let v2 = VaultRef::parse("kv/data/backline/slack#url").unwrap();
        assert_eq!((v2.path.as_str(), v2.field.as_str(), v2.v2), ("kv/data/backline/slack", "url", true));
        let v1 = VaultRef::parse("kv1/backline/token#value").unwrap();
        assert!(!v1.v2);
        for bad in ["kv/data/x", "#f", "kv#f", "kv/../x#f"] {
            assert!(VaultRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_aws_login_is_a_signed_get_caller_identity() {
        use aws_smithy_types::base64;
        let credentials =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", Some("tok".into()), None, "t");
        let login = signed_login(credentials, "backline", Some("vault.example"), SystemTime::UNIX_EPOCH);
        let decode = |field: &str| String::from_utf8(base64::decode(login[field].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(decode("iam_request_url"), "https://sts.amazonaws.com/");
        assert_eq!(decode("iam_request_body"), "Action=GetCallerIdentity&Version=2011-06-15");
        let headers: Value = serde_json::from_str(&decode("iam_request_headers")).unwrap();
        let authorization = headers["authorization"][0].as_str().unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/19700101/us-east-1/sts/aws4_request")
        );
        assert!(authorization.contains("x-vault-aws-iam-server-id"), "the server id is signed: {authorization}");
        assert_eq!(headers["x-amz-security-token"][0], "tok");
        assert_eq!(login["role"], "backline");
    }
}
