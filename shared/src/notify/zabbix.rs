//! The Zabbix sender protocol: a `sender data` request to a server's trapper, items keyed
//! `<prefix>.<item>[<job>]`. A heartbeat when a run starts; its exit code, counts and duration
//! when it ends. The answer's `processed/failed` is checked; a failure is logged, never raised.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Zabbix;

const TIMEOUT: Duration = Duration::from_secs(5);

/// One item: key and value.
pub type Item = (String, String);

/// `<prefix>.<name>[<job>]`.
pub fn key(zabbix: &Zabbix, name: &str, job: &str) -> String {
    format!("{}.{name}[{job}]", zabbix.key_prefix)
}

/// A request as it goes on the wire: `ZBXD`, flags 1, the length (little endian), 4 reserved
/// bytes, the JSON.
pub fn frame(zabbix: &Zabbix, items: &[Item], clock: i64) -> Vec<u8> {
    let data: Vec<Value> =
        items.iter().map(|(k, v)| json!({"host": zabbix.host, "key": k, "value": v, "clock": clock})).collect();
    let body = json!({"request": "sender data", "data": data, "clock": clock}).to_string();
    let mut framed = Vec::with_capacity(13 + body.len());
    framed.extend_from_slice(b"ZBXD\x01");
    framed.extend_from_slice(&(body.len() as u32).to_le_bytes());
    framed.extend_from_slice(&[0, 0, 0, 0]);
    framed.extend_from_slice(body.as_bytes());
    framed
}

/// `(processed, failed)` from the server's `info`: `processed: 1; failed: 0; total: 1; ...`.
pub fn counts(info: &str) -> Option<(u64, u64)> {
    let number = |name: &str| {
        info.split(';').find_map(|part| part.trim().strip_prefix(name)?.trim().strip_prefix(':')?.trim().parse().ok())
    };
    Some((number("processed")?, number("failed")?))
}

async fn exchange(address: &str, request: &[u8]) -> Result<Value, String> {
    let mut stream = tokio::net::TcpStream::connect(address).await.map_err(|e| format!("connect: {e}"))?;
    stream.write_all(request).await.map_err(|e| format!("send: {e}"))?;
    let mut header = [0u8; 13];
    stream.read_exact(&mut header).await.map_err(|e| format!("no answer: {e}"))?;
    if &header[..4] != b"ZBXD" {
        return Err("the answer is not a Zabbix protocol message".into());
    }
    let length = u32::from_le_bytes(header[5..9].try_into().expect("4 bytes")) as usize;
    if length > 1 << 20 {
        return Err(format!("an answer of {length} bytes is not a sender answer"));
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.map_err(|e| format!("answer cut short: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))
}

/// Sends `items` (or prints them with `stub`); never fails the caller.
pub async fn send(zabbix: &Zabbix, items: &[Item], stub: bool) {
    let clock = chrono::Utc::now().timestamp();
    if stub {
        for (key, value) in items {
            println!("zabbix stub: {} {} {key} {value}", zabbix.address(), zabbix.host);
        }
        return;
    }
    let request = frame(zabbix, items, clock);
    let address = zabbix.address();
    let answer = match tokio::time::timeout(TIMEOUT, exchange(&address, &request)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => {
            tracing::warn!(server = %address, error = %err, "Zabbix: items not sent");
            return;
        }
        Err(_) => {
            tracing::warn!(server = %address, "Zabbix: no answer within {} s; items not sent", TIMEOUT.as_secs());
            return;
        }
    };
    let info = answer["info"].as_str().unwrap_or_default();
    match (answer["response"].as_str(), counts(info)) {
        (Some("success"), Some((_, 0))) => tracing::info!(server = %address, info, "Zabbix: items sent"),
        (_, Some((_, failed))) if failed > 0 => {
            tracing::warn!(server = %address, info, "Zabbix refused {failed} item(s): is each key an item of host {}?", zabbix.host)
        }
        _ => tracing::warn!(server = %address, answer = %answer, "Zabbix did not accept the items"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zabbix() -> Zabbix {
        Zabbix { server: "zbx".into(), host: "backup-host".into(), key_prefix: "backline".into() }
    }

    #[test]
    fn requests_are_framed_as_the_protocol_says() {
        let framed = frame(&zabbix(), &[(key(&zabbix(), "exit_code", "photos"), "0".into())], 1700000000);
        assert_eq!(&framed[..5], b"ZBXD\x01");
        let length = u32::from_le_bytes(framed[5..9].try_into().unwrap()) as usize;
        assert_eq!((length, &framed[9..13]), (framed.len() - 13, &[0u8, 0, 0, 0][..]));
        let body: Value = serde_json::from_slice(&framed[13..]).unwrap();
        assert_eq!(body["request"], "sender data");
        assert_eq!(
            body["data"][0],
            json!({"host": "backup-host", "key": "backline.exit_code[photos]", "value": "0", "clock": 1700000000})
        );
        assert_eq!(zabbix().address(), "zbx:10051");
    }

    #[test]
    fn the_servers_counts_are_read() {
        assert_eq!(counts("processed: 3; failed: 1; total: 4; seconds spent: 0.000055"), Some((3, 1)));
        assert_eq!(counts("nonsense"), None);
    }
}
