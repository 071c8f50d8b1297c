#!/usr/bin/env python3
"""Planning memory at a million objects: `backline plan` of an S3 job whose source lists
N objects (a synthetic bucket of the bench server, listed page by page like S3), first with no
state (everything is new), then against a state of N entries (nothing changed). Writes bench/results/plan.json."""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import peers
from run import Server, run_measured

ROOT = Path(__file__).resolve().parent.parent


def synthetic_state(count, source):
    """The state a backup of synthetic-<count> leaves: the bench server's objects, in key order."""
    yield json.dumps({"version": 1, "source": source, "run_id": "bench"}) + "\n"
    for i in range(count):
        etag = f'"{(i * 0x9E3779B97F4A7C15F39CC0605CEDC835) % (1 << 128):032x}"'
        yield json.dumps({"k": f"obj/{i:09}", "s": (i * 2654435761) % 65536 + 1, "e": etag}) + "\n"


def measure(command, env, log):
    started = time.monotonic()
    code, rss_mib = run_measured(command, env, log)
    wall = time.monotonic() - started
    if code != 0:
        sys.exit(f"{command[0]} failed, see {log}")
    return {"wall_s": round(wall, 2), "rss_mib": round(rss_mib, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backline", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--work", default="/tmp/backline-bench")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "plan.json"))
    args = parser.parse_args()

    work = Path(args.work)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    server = Server(args.server, work / "s3-plan")
    source_bucket = f"synthetic-{args.objects}"
    results = {"objects": args.objects}
    try:
        backline = peers.Backline(server.url, work, args.backline)
        s5cmd = peers.S5cmd(server.url, work)
        subprocess.run([s5cmd.binary, "--endpoint-url", server.url, "mb", "s3://plan-target"], env=s5cmd.env(),
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([s5cmd.binary, "--endpoint-url", server.url, "mb", "s3://bench-control"], env=s5cmd.env(),
                       check=True, stdout=subprocess.DEVNULL)
        command = backline.s3_sync(source_bucket, "plan-target", "plan")
        command[command.index("run")] = "plan"
        command.remove("--no-progress")
        env = backline.env()

        results["backline, no state"] = measure(command, env, work / "logs" / "plan-no-state.log")
        print("backline, no state:", results["backline, no state"], flush=True)

        state = work / "plan-state.jsonl"
        with open(state, "w") as out:
            out.writelines(synthetic_state(args.objects, f"s3://{source_bucket}/"))
        subprocess.run([s5cmd.binary, "--endpoint-url", server.url, "cp", str(state),
                        "s3://bench-control/_backline/state/bench-plan.jsonl"], env=s5cmd.env(), check=True,
                       stdout=subprocess.DEVNULL)
        log = work / "logs" / "plan-state.log"
        results[f"backline, state of {args.objects} entries"] = measure(command, env, log)
        if f"; {args.objects} unchanged;" not in log.read_text():
            sys.exit(f"the plan against the state did not find every object unchanged, see {log}")
        print("backline, with state:", results[f"backline, state of {args.objects} entries"], flush=True)

    finally:
        server.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
