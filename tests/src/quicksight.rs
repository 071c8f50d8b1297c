//! The QuickSight emulator (`tests/emulators/quicksight`) for tests, its S3 imports served by
//! this process's moto.

use std::collections::BTreeMap;
use std::ops::Deref;

use serde_json::{Value, json};

use crate::Moto;
use crate::emulator::Emulator;

/// (name, CRC-32, size) of each entry, read from the zip's central directory.
pub fn zip_entries(zip: &[u8]) -> Vec<(String, u32, u32)> {
    let u16_at = |at: usize| u16::from_le_bytes([zip[at], zip[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(zip[at..at + 4].try_into().unwrap());
    let end = (0..zip.len().saturating_sub(21)).rev().find(|&at| u32_at(at) == 0x0605_4b50).expect("a zip");
    let mut at = u32_at(end + 16) as usize;
    let mut entries = Vec::new();
    for _ in 0..u16_at(end + 10) {
        assert_eq!(u32_at(at), 0x0201_4b50, "a central directory entry");
        let (name_len, extra, comment) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32));
        let name = String::from_utf8_lossy(&zip[at + 46..at + 46 + name_len]).into_owned();
        entries.push((name, u32_at(at + 16), u32_at(at + 24)));
        at += 46 + name_len + extra + comment;
    }
    entries.sort();
    entries
}

/// What a restore made in `account` (assets in `region`), by `users/NAME`, `groups/NAME`, `memberships/USER#GROUP`
/// and `<asset type>/ID`: the account's id masked, what the emulator derives from it (principal
/// ids) or from the clock (times) left out.
pub fn made_in(state: &Value, account: &str, region: &str) -> BTreeMap<String, String> {
    let text = state["accounts"][account].to_string().replace(account, "ACCOUNT");
    let restored: Value = serde_json::from_str(&text).expect("JSON");
    let mut made = BTreeMap::new();
    let mut add = |kind: &str, name: &Value, item: &Value| {
        let mut item = item.clone();
        for derived in ["principal_id", "created", "updated"] {
            item.as_object_mut().expect("an object").remove(derived);
        }
        made.insert(format!("{kind}/{}", name.as_str().unwrap_or_default()), item.to_string());
    };
    let namespace = &restored["namespaces"]["default"];
    for kind in ["users", "groups"] {
        for item in namespace[kind].as_array().into_iter().flatten() {
            add(kind, &item["name"], item);
        }
    }
    for item in namespace["memberships"].as_array().into_iter().flatten() {
        let id =
            format!("{}#{}", item["member"].as_str().unwrap_or_default(), item["group"].as_str().unwrap_or_default());
        add("memberships", &json!(id), item);
    }
    for (kind, assets) in restored["regions"][region].as_object().into_iter().flatten() {
        for item in assets.as_array().into_iter().flatten() {
            add(kind, &item["id"], item);
        }
    }
    made
}

pub struct QuickSightServer(Emulator);

impl QuickSightServer {
    /// Starts an emulator seeded with `world` (see its README); imports from `s3://` read moto.
    pub async fn start(world: &Value) -> QuickSightServer {
        let server = QuickSightServer(Emulator::start("quicksight", world).await);
        server.post("settings", &json!({ "s3_endpoint": Moto::get().endpoint })).await;
        server
    }

    /// Counters, jobs and the world (see the emulator's README).
    pub async fn state(&self) -> Value {
        self.get("state").await
    }

    /// Calls of `operation` so far.
    pub async fn calls(&self, operation: &str) -> u64 {
        self.state().await["calls"][operation].as_u64().unwrap_or(0)
    }

    /// AWS clients for moto with QuickSight pointed at this emulator.
    pub async fn clients(&self) -> backline::aws::AwsClients {
        let mut clients = Moto::get().clients().await;
        clients.quicksight_endpoint = Some(self.url.clone());
        clients
    }
}

impl Deref for QuickSightServer {
    type Target = Emulator;

    fn deref(&self) -> &Emulator {
        &self.0
    }
}
