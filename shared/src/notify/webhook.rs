//! Failure notifications: a Microsoft Teams card and/or a JSON POST. Webhook URLs are
//! credentials: they are resolved at run time (`env:`, `ssm:`, `secretsmanager:`) and never
//! logged. Best-effort: a notification that cannot be sent is logged and the run goes on.

use std::time::Duration;

use serde_json::{Value, json};

use super::Failure;
use crate::aws::AwsClients;
use crate::config::{Job, SecretRef};

/// Finds the URL a reference points to (or the URL itself).
pub async fn resolve(clients: &AwsClients, reference: &SecretRef) -> Result<String, String> {
    crate::secrets::resolve(clients, reference.reference()).await
}

/// An Adaptive Card in the message envelope Teams webhooks (Workflows and connectors) accept.
pub fn teams_card(failure: &Failure) -> Value {
    let mut facts = vec![
        json!({"title": "Job", "value": failure.job}),
        json!({"title": "Run", "value": failure.run_id}),
        json!({"title": "Status", "value": failure.status}),
    ];
    if let Some(c) = &failure.counts {
        facts.push(json!({"title": "Copied", "value": format!("{} ({} bytes)", c.copied, c.bytes_copied)}));
        facts.push(json!({"title": "Failed", "value": c.failed.to_string()}));
        facts.push(json!({"title": "Skipped", "value": c.skipped.to_string()}));
    }
    if let Some(report) = &failure.report {
        facts.push(json!({"title": "Report", "value": report}));
    }
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "color": "Attention",
               "text": format!("Backline: {} {}", failure.job, failure.status.replace('_', " "))}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if !failure.errors.is_empty() {
        body.push(json!({"type": "TextBlock", "text": "First errors:", "weight": "Bolder"}));
        for error in &failure.errors {
            body.push(json!({"type": "TextBlock", "text": error, "wrap": true, "fontType": "Monospace"}));
        }
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body
            }
        }]
    })
}

/// A Slack incoming-webhook message: a line of text, then the facts and first errors.
pub fn slack_message(failure: &Failure) -> Value {
    let mut lines =
        vec![format!("*Backline: {} {}* (run `{}`)", failure.job, failure.status.replace('_', " "), failure.run_id)];
    if let Some(c) = &failure.counts {
        lines.push(format!("copied {}, failed {}, skipped {}", c.copied, c.failed, c.skipped));
    }
    lines.extend(failure.errors.iter().map(|e| format!("• `{e}`")));
    if let Some(report) = &failure.report {
        lines.push(format!("report: {report}"));
    }
    let text = lines.join("\n");
    json!({"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
}

/// Sends the job's webhook notifications about a failure. Never fails the caller.
pub async fn send(clients: &AwsClients, job: &Job, failure: &Failure) {
    let Some(notify) = &job.notify else { return };
    let targets = [
        ("teams", &notify.teams_webhook, teams_card(failure)),
        ("slack", &notify.slack_webhook, slack_message(failure)),
        ("webhook", &notify.webhook, json!(failure)),
    ];
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::warn!(error = %err, "cannot send notifications");
            return;
        }
    };
    for (kind, reference, payload) in targets {
        let Some(reference) = reference else { continue };
        let url = match resolve(clients, reference).await {
            Ok(url) => url,
            Err(err) => {
                tracing::warn!(kind, reference = ?reference, error = %err, "cannot resolve the notification URL");
                continue;
            }
        };
        match client.post(&url).json(&payload).send().await {
            Ok(response) if response.status().is_success() => tracing::info!(kind, "notification sent"),
            Ok(response) => tracing::warn!(kind, status = %response.status(), "notification refused"),
            // The error would print the URL, which is a credential.
            Err(err) => tracing::warn!(kind, error = %err.without_url(), "notification not sent"),
        }
    }
}
