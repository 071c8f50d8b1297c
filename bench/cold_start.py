#!/usr/bin/env python3
"""Cold start of the three Lambda functions: binary size (release, stripped) and the time from
process start to the first `GET /runtime/invocation/next`, the moment the function is ready
for its first invoke: everything before it (runtime, tracing, configuration, AWS clients) is
the cold start our code adds to Lambda's own. A small Lambda Runtime API on loopback stands in
for Lambda's. Writes bench/results/cold_start.json."""

import argparse
import json
import os
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("planner", "worker", "finalizer")


class RuntimeApi(BaseHTTPRequestHandler):
    first_poll = None  # set per run: threading.Event

    def do_GET(self):  # noqa: N802 (the http.server API)
        if self.path.endswith("/invocation/next"):
            RuntimeApi.first_poll.set()
            # Held open: the function stays parked on its first poll until it is stopped.
            time.sleep(30)
        self.send_response(404)
        self.end_headers()

    def do_POST(self):  # noqa: N802
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def ready_time(binary, port):
    RuntimeApi.first_poll = threading.Event()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "BACKLINE_WORK_QUEUE_URL": "http://127.0.0.1:9/queue/work",
        "BACKLINE_FINALIZE_QUEUE_URL": "http://127.0.0.1:9/queue/finalize",
        "BACKLINE_LEDGER_TABLE": "bench",
    }
    started = time.monotonic()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not RuntimeApi.first_poll.wait(20):
            raise RuntimeError(f"{binary} never asked for an event")
        return time.monotonic() - started
    finally:
        process.kill()
        process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin-dir", required=True, help="folder with release backline-{planner,worker,finalizer}")
    parser.add_argument("--lambda-dir", help="cargo-lambda output (arm64 bootstraps), if built")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cold_start.json"))
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    results = {}
    for name in FUNCTIONS:
        binary = Path(args.bin_dir) / f"backline-{name}"
        times = [ready_time(str(binary), port) for _ in range(args.runs)]
        entry = {
            "host_binary_mib": round(binary.stat().st_size / 2**20, 1),
            "ready_ms_median": round(statistics.median(times) * 1000, 1),
            "ready_ms_max": round(max(times) * 1000, 1),
            "runs": args.runs,
        }
        bootstrap = Path(args.lambda_dir or "/nonexistent") / f"backline-{name}" / "bootstrap"
        if bootstrap.exists():
            entry["arm64_bootstrap_mib"] = round(bootstrap.stat().st_size / 2**20, 1)
        results[name] = entry
        print(name, entry, flush=True)
    server.shutdown()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
