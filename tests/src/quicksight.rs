//! The QuickSight emulator (`tests/emulators/quicksight`) for tests, its S3 imports served by
//! this process's moto.

use std::ops::Deref;

use serde_json::{Value, json};

use crate::Moto;
use crate::emulator::Emulator;

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
