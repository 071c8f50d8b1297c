"""QuickSight backups at scale, against the QuickSight emulator and the local stack (moto):
QuickSight API calls by operation and wall time for ASSETS assets (and USERS users), with
the emulator advancing a job on every look and `poll_interval = 1s`, so the time is Backline's
own, not QuickSight's export time. Run by `make bench-quicksight`; needs the local stack's
environment (`.demo/stack.env`). Prints one JSON object."""
import json
import os
import subprocess
import sys
import time

import boto3

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "emulators"))
from harness import EmulatorProcess  # noqa: E402
ACCOUNT = "111111111111"


def world(assets: int, users: int) -> dict:
    # A tenth data sources, a fifth data sets, a fifth analyses, the rest dashboards.
    sources, datasets, analyses = assets // 10, assets // 5, assets // 5
    dashboards = assets - sources - datasets - analyses
    return {
        "settings": {"polls_per_status": 1},
        "accounts": {ACCOUNT: {
            "users": [{"name": f"user{i:04d}", "identity_type": "QUICKSIGHT"} for i in range(users)],
            "groups": [{"name": f"group{i:02d}"} for i in range(users // 10)],
            "memberships": [{"group": f"group{i % (users // 10):02d}", "member": f"user{i:04d}"} for i in range(users)],
            "regions": {"us-east-1": {
                "datasources": {"generate": sources, "prefix": "source"},
                "datasets": {"generate": datasets, "prefix": "set", "deps": ["source-0001"]},
                "analyses": {"generate": analyses, "prefix": "analysis", "deps": ["set-0001"]},
                "dashboards": {"generate": dashboards, "prefix": "dashboard", "deps": ["analysis-0001"]},
            }},
        }},
    }


def main() -> None:
    backline, workdir = sys.argv[1], sys.argv[2]
    assets, users = int(os.environ.get("ASSETS", "1000")), int(os.environ.get("USERS", "200"))
    os.makedirs(workdir, exist_ok=True)
    emulator = EmulatorProcess("quicksight", quiet=True)
    try:
        emulator.control("reset", world(assets, users))
        bucket = f"quicksight-bench-{int(time.time())}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        config = os.path.join(workdir, "quicksight-bench.yaml")
        with open(config, "w") as f:
            f.write(f'jobs:\n  - name: quicksight-bench\n    kind: quicksight\n    source: {{account_id: "{ACCOUNT}", '
                    f'region: us-east-1}}\n    target: {{bucket: {bucket}, users_table: {bucket}-u, groups_table: '
                    f'{bucket}-g, memberships_table: {bucket}-m}}\n    poll_interval: 1s\n')
        started = time.monotonic()
        result = subprocess.run([backline, "run", "--no-progress", "--config", config], capture_output=True, text=True,
                                env={**os.environ, "AWS_ENDPOINT_URL_QUICKSIGHT": emulator.url})
        seconds = time.monotonic() - started
        if result.returncode != 0:
            sys.exit(f"backline run: exit {result.returncode}: {result.stdout}{result.stderr}")
        state = emulator.control("state")
        calls = state["calls"]
        print(json.dumps({
            "assets": assets, "users": users, "groups": users // 10, "memberships": users,
            "bundles": len(state["export_jobs"]), "seconds": round(seconds, 1),
            "quicksight_calls": sum(calls.values()), "quicksight_calls_by_operation": calls,
            "max_concurrent_exports_seen": state["max_concurrent_exports_seen"],
        }, indent=2))
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
