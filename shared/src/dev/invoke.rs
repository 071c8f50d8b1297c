//! A client of the Lambda Invoke API as `cargo lambda watch` serves it on a developer's machine
//! (`POST /2015-03-31/functions/{name}/invocations`, no signing).

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("invoke {function} at {url}: {message}")]
    Unreachable { function: String, url: String, message: String },
    #[error("invoke {function}: HTTP {status}: {body}")]
    Refused { function: String, status: u16, body: String },
}

/// What an invocation returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The handler's response (`Value::Null` for an empty body).
    Response(Value),
    /// The handler failed, timed out or could not start (`X-Amz-Function-Error`); the body
    /// says why, as Lambda reports it.
    FunctionError(String),
}

#[derive(Clone, Debug)]
pub struct Invoker {
    base: String,
    http: reqwest::Client,
}

impl Invoker {
    /// `base` is where the functions run, e.g. `http://127.0.0.1:9000` for `cargo lambda watch`.
    pub fn new(base: &str) -> Invoker {
        // No client time-out: a call lasts as long as the function may run, and the server
        // (cargo lambda watch, or Lambda) ends it at the function's own time-out.
        Invoker { base: base.trim_end_matches('/').to_string(), http: reqwest::Client::new() }
    }

    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Invocation, InvokeError> {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        let unreachable =
            |message: String| InvokeError::Unreachable { function: function.into(), url: url.clone(), message };
        let response = self
            .http
            .post(&url)
            .header("X-Amz-Invocation-Type", "RequestResponse")
            .json(payload)
            .send()
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let body = response.text().await.map_err(|e| unreachable(error_chain(&e)))?;
        if !status.is_success() {
            return Err(InvokeError::Refused { function: function.into(), status: status.as_u16(), body });
        }
        if function_error {
            return Ok(Invocation::FunctionError(body));
        }
        if body.trim().is_empty() {
            return Ok(Invocation::Response(Value::Null));
        }
        // A body that is not JSON is still the function's answer; the caller judges it.
        Ok(Invocation::Response(serde_json::from_str(&body).unwrap_or(Value::String(body))))
    }

    /// Waits until something answers at the base URL (a function server still building).
    pub async fn wait_until_up(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.http.get(&self.base).send().await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
