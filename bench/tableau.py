"""Tableau backups at scale, against the Tableau emulator and the local stack (moto):
- requests per workbook in a no-change run (Tableau calls from the emulator's log, S3 calls
  from moto's request count), over WORKBOOKS workbooks;
- peak memory of `backline run` while one workbook of BIG_MIB MiB streams into S3.
Run by `make bench-tableau`; needs the local stack's environment (`.demo/stack.env`).
Prints one JSON object."""
import json
import os
import resource
import subprocess
import sys
import time

import boto3

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "emulators"))
from harness import EmulatorProcess  # noqa: E402
ADMIN = "5de011f8-5aa9-4d5b-b991-f462c8dd6bb7"


def world(workbooks: list) -> dict:
    return {
        "credentials": {"pats": {"backline": {"secret": "pat-secret", "user": "admin"}}},
        "settings": {"max_page_size": 1000},
        "sites": [{"id": "site-default", "name": "Default", "contentUrl": "",
                   "users": [{"id": ADMIN, "name": "admin", "siteRole": "SiteAdministratorCreator"}],
                   "projects": [{"id": "p", "name": "Sales", "parentProjectId": None}], "workbooks": workbooks}],
    }


def job_file(path: str, server: str, bucket: str) -> None:
    with open(path, "w") as f:
        f.write(f'[[jobs]]\nname = "tableau-bench"\nkind = "tableau"\n[jobs.source]\nserver = "{server}"\n'
                f'api_version = "3.19"\ntoken_name = "backline"\ntoken_secret = "env:BENCH_TABLEAU_TOKEN"\n'
                f'[jobs.target]\nbucket = "{bucket}"\n')


def run(backline: str, config: str) -> tuple[float, float]:
    """Runs the job; returns (seconds, peak RSS in MiB of this and earlier children)."""
    started = time.monotonic()
    result = subprocess.run([backline, "run", "--no-progress", "--config", config], capture_output=True, text=True,
                            env={**os.environ, "BENCH_TABLEAU_TOKEN": "pat-secret"})
    if result.returncode != 0:
        sys.exit(f"backline run: exit {result.returncode}: {result.stdout}{result.stderr}")
    return time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    backline, workdir = sys.argv[1], sys.argv[2]
    count, big_mib = int(os.environ.get("WORKBOOKS", "1000")), int(os.environ.get("BIG_MIB", "2048"))
    os.makedirs(workdir, exist_ok=True)
    s3 = boto3.client("s3")
    results = {}

    # No change: the second run over `count` workbooks.
    emulator = EmulatorProcess("tableau", quiet=True)
    try:
        books = [{"id": f"w{i:05d}", "name": f"Book {i:05d}", "projectId": "p", "ownerId": ADMIN, "text": f"book {i}"}
                 for i in range(count)]
        emulator.control("reset", world(books))
        bucket = f"tableau-bench-{int(time.time())}"
        s3.create_bucket(Bucket=bucket)
        config = os.path.join(workdir, "tableau-bench.toml")
        job_file(config, emulator.url, bucket)
        first_seconds, _ = run(backline, config)
        before = emulator.control("state?requests=false")["request_count"]
        second_seconds, _ = run(backline, config)
        tableau_calls = emulator.control("state?requests=false")["request_count"] - before
        results["no_change"] = {"workbooks": count, "first_run_s": round(first_seconds, 1),
                                "no_change_run_s": round(second_seconds, 1), "tableau_requests": tableau_calls,
                                "tableau_requests_per_workbook": round(tableau_calls / count, 4)}
    finally:
        emulator.stop()

    # One big workbook: memory while it streams into S3.
    emulator = EmulatorProcess("tableau", quiet=True)
    try:
        big = {"id": "big", "name": "Big", "projectId": "p", "ownerId": ADMIN,
               "generate": {"size": big_mib * 1024 * 1024, "seed": 1}}
        emulator.control("reset", world([big]))
        bucket = f"tableau-bench-big-{int(time.time())}"
        s3.create_bucket(Bucket=bucket)
        config = os.path.join(workdir, "tableau-bench-big.toml")
        job_file(config, emulator.url, bucket)
        seconds, peak = run(backline, config)
        size = s3.head_object(Bucket=bucket, Key="Default/Sales/Big.twbx")["ContentLength"]
        results["big_workbook"] = {"mib": big_mib, "stored_bytes": size, "seconds": round(seconds, 1),
                                   "peak_rss_mib": round(peak, 1)}
    finally:
        emulator.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
