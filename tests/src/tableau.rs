//! The Tableau emulator (`tests/emulators/tableau`) for tests.

use std::ops::Deref;

use serde_json::Value;

use crate::emulator::Emulator;

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
