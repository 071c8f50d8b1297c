//! The emulators of `tests/emulators/` for tests: one process per test, so each test's world is
//! its own, on a free loopback port, killed when the test drops it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub struct Emulator {
    pub url: String,
    /// The emulator's own port, where it speaks a protocol other than HTTP (the Zabbix trapper);
    /// `url` is then its control API.
    pub port: u16,
    child: Child,
    http: reqwest::Client,
}

fn python() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = workspace.join(".venv/bin/python");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}

impl Emulator {
    /// Starts `tests/emulators/{name}/emulator.py` and seeds it with `world` (see its README).
    pub async fn start(name: &str, world: &Value) -> Emulator {
        Emulator::start_with(name, &[], world).await
    }

    /// Starts an emulator with more arguments. With `--control-port 0` it prints a second line,
    /// `control on <port>`, and its control API is there.
    pub async fn start_with(name: &str, args: &[&str], world: &Value) -> Emulator {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("emulators/{name}/emulator.py"));
        let mut command = Command::new(python());
        command
            .arg(&script)
            .args(["--port", "0", "--host", "127.0.0.1"])
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        crate::killed_with_spawning_thread(&mut command);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the emulator's first line");
        let port: u16 = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let mut control = port;
        if args.contains(&"--control-port") {
            line.clear();
            stdout.read_line(&mut line).expect("the emulator's second line");
            control = line
                .trim()
                .strip_prefix("control on ")
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("unexpected second line {line:?}"));
        }
        let server = Emulator { url: format!("http://127.0.0.1:{control}"), port, child, http: reqwest::Client::new() };
        server.post("reset", world).await;
        server
    }

    /// A control call: `POST /_emulator/{path}`.
    pub async fn post(&self, path: &str, body: &Value) -> Value {
        let response =
            self.http.post(format!("{}/_emulator/{path}", self.url)).json(body).send().await.expect("emulator");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "POST /_emulator/{path}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A control read: `GET /_emulator/{path}`.
    pub async fn get(&self, path: &str) -> Value {
        let response = self.http.get(format!("{}/_emulator/{path}", self.url)).send().await.expect("emulator");
        assert!(response.status().is_success(), "GET /_emulator/{path}: {}", response.status());
        response.json().await.expect("JSON")
    }

    pub async fn delete(&self, path: &str) {
        let response = self.http.delete(format!("{}/_emulator/{path}", self.url)).send().await.expect("emulator");
        assert!(response.status().is_success(), "DELETE /_emulator/{path}: {}", response.status());
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
