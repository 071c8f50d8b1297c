//! The three functions as Lambda runs them: each a process of its own on the Lambda Runtime API
//! of `tests/emulators/lambda` (which stands in for `cargo lambda watch`), invoked over the
//! Lambda Invoke API.
//!
//! The processes are the test binary itself, started again to run one test, `hook`, which
//! serves the function named in [`FUNCTION_ENV`] (a test binary can reach the function crates;
//! this library cannot).

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::Moto;
use crate::emulator::Emulator;

/// Set in a function process: which function it serves (`planner`, `worker`, `finalizer`).
pub const FUNCTION_ENV: &str = "BACKLINE_TEST_LAMBDA_FUNCTION";
pub const FUNCTIONS: [&str; 3] = ["planner", "worker", "finalizer"];

pub struct LambdaHost {
    pub emulator: Emulator,
    processes: Vec<Child>,
    pub logs: PathBuf,
}

impl LambdaHost {
    /// Starts the emulator and one process per function, with `env` (queues, ledger, job file)
    /// and moto as every AWS endpoint. `hook` is the name of the test that serves a function.
    pub async fn start(hook: &str, moto: &Moto, env: &[(&str, String)], timeout_seconds: u32) -> LambdaHost {
        let names: Vec<String> = FUNCTIONS.iter().map(|f| format!("backline-{f}")).collect();
        let emulator =
            Emulator::start("lambda", &json!({"functions": names, "timeout_seconds": timeout_seconds})).await;
        let logs = std::env::temp_dir().join(crate::unique("lambda-logs"));
        std::fs::create_dir_all(&logs).expect("a log folder");
        let exe = std::env::current_exe().expect("the test binary");
        let mut processes = Vec::new();
        for (function, name) in FUNCTIONS.iter().zip(&names) {
            let log = File::create(logs.join(format!("{name}.log"))).expect("a log file");
            let mut command = Command::new(&exe);
            command
                .args(["--exact", hook, "--nocapture", "--test-threads=1"])
                .env(FUNCTION_ENV, function)
                .env("AWS_LAMBDA_RUNTIME_API", format!("{}/{name}", emulator.url))
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_ENDPOINT_URL", &moto.endpoint)
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("RUST_LOG", "info")
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(Stdio::from(log.try_clone().expect("a log file")))
                .stderr(Stdio::from(log));
            crate::killed_with_spawning_thread(&mut command);
            processes.push(command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}")));
        }
        LambdaHost { emulator, processes, logs }
    }

    /// The emulator's record of every invocation (see its README).
    pub async fn invocations(&self) -> Vec<serde_json::Value> {
        match self.emulator.get("invocations").await {
            serde_json::Value::Array(items) => items,
            other => panic!("invocations: {other}"),
        }
    }

    /// Every function's log, for a failing test's message.
    pub fn log_text(&self) -> String {
        FUNCTIONS
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.logs.join(format!("backline-{f}.log"))).unwrap_or_default();
                format!("--- backline-{f} ---\n{text}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for LambdaHost {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}
