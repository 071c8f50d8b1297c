//! Secrets by reference: `env:NAME`, `ssm:/parameter/name`, `secretsmanager:secret-id`,
//! `vault:mount/path#field`. Resolved when a run needs them; the values are never logged,
//! printed or put in a message.

pub mod vault;

use crate::aws::{AwsClients, error_text};

/// The value `reference` points to. Text that is not a reference is returned as it is (a
/// webhook URL given directly).
pub async fn resolve(clients: &AwsClients, reference: &str) -> Result<String, String> {
    if let Some(name) = reference.strip_prefix("env:") {
        return std::env::var(name).map_err(|_| format!("environment variable {name} is not set"));
    }
    if let Some(name) = reference.strip_prefix("ssm:") {
        let output = clients
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| format!("SSM parameter {name}: {}", error_text(&e)))?;
        return output
            .parameter()
            .and_then(|p| p.value())
            .map(str::to_string)
            .ok_or_else(|| format!("SSM parameter {name} has no value"));
    }
    if let Some(id) = reference.strip_prefix("secretsmanager:") {
        let output = clients
            .secretsmanager
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| format!("secret {id}: {}", error_text(&e)))?;
        return output.secret_string().map(str::to_string).ok_or_else(|| format!("secret {id} has no string value"));
    }
    if let Some(path) = reference.strip_prefix("vault:") {
        return vault::read(clients, path).await;
    }
    Ok(reference.to_string())
}
