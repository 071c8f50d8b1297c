#!/usr/bin/env python3
"""Planning at a million objects: `backline plan` of an S3 job whose source lists N objects (a
synthetic bucket of the bench server, listed page by page like S3), first with no state
(everything is new), then against a state of N entries (nothing changed), each in its own
process, for wall time and peak RSS.

With `--folders F` the objects sit in F folders, so Backline can list folders at once; with
`--peers` the no-change run of s5cmd, rclone and `aws s3 sync` over the same listing (each
compares the source with a target that lists the same objects) is measured beside it.
`--latency-ms` makes the server answer as slowly as S3 does. Writes bench/results/plan.json,
or `--out`.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import peers
from run import Server, run_measured

ROOT = Path(__file__).resolve().parent.parent


def synthetic_key(i, count, folders):
    """Key of object `i` of the bench server's synthetic bucket (bench/s3-server/src/synthetic.rs)."""
    return f"d{i * folders // count:05}/{i:09}" if folders else f"obj/{i:09}"


def synthetic_state(count, folders, source):
    """The state a backup of the synthetic bucket leaves: its objects, in key order."""
    yield json.dumps({"version": 1, "source": source, "run_id": "bench"}) + "\n"
    for i in range(count):
        etag = f'"{(i * 0x9E3779B97F4A7C15F39CC0605CEDC835) % (1 << 128):032x}"'
        key = synthetic_key(i, count, folders)
        yield json.dumps({"k": key, "s": (i * 2654435761) % 65536 + 1, "e": etag}) + "\n"


def measure(command, env, log):
    started = time.monotonic()
    code, rss_mib = run_measured(command, env, log)
    wall = time.monotonic() - started
    if code != 0:
        sys.exit(f"{command[0]} failed, see {log}")
    return {"wall_s": round(wall, 2), "rss_mib": round(rss_mib, 1)}


def peer_commands(server_url, work, source, target):
    """Each peer's no-change sync of `source` into `target`, changing nothing (dry runs)."""
    s5cmd = peers.S5cmd(server_url, work)
    rclone = peers.Rclone(server_url, work)
    aws = peers.AwsCli(server_url, work)
    s5cmd_sync = s5cmd.s3_sync(source, target, "")
    return {
        # --dry-run is one of s5cmd's global flags, before the command.
        "s5cmd sync --dry-run": (s5cmd_sync[:3] + ["--dry-run"] + s5cmd_sync[3:], s5cmd.env()),
        # --checksum compares the listings' ETags; without it rclone reads every object's
        # modification time with a HEAD (a million requests here).
        "rclone sync --dry-run --checksum": (rclone.s3_sync(source, target, "") + ["--dry-run", "--checksum"], rclone.env()),
        "aws s3 sync --dryrun": (aws.s3_sync(source, target, "") + ["--dryrun"], aws.env()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backline", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--folders", type=int, default=0, help="spread the objects over this many folders")
    parser.add_argument("--latency-ms", type=float, default=0, help="first-byte latency of every S3 answer")
    parser.add_argument("--peers", action="store_true", help="also measure the peers' no-change runs")
    parser.add_argument("--work", default="/tmp/backline-bench")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "plan.json"))
    args = parser.parse_args()

    work = Path(args.work)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    latency = {"BENCH_LATENCY_MS": str(args.latency_ms)} if args.latency_ms else None
    server = Server(args.server, work / "s3-plan", latency)
    source_bucket = f"synthetic-{args.objects}" + (f"-in-{args.folders}" if args.folders else "")
    results = {"objects": args.objects, "folders": args.folders, "latency_ms": args.latency_ms}
    try:
        backline = peers.Backline(server.url, work, args.backline)
        s5cmd = peers.S5cmd(server.url, work)
        for bucket in ("plan-target", "bench-control"):
            subprocess.run([s5cmd.binary, "--endpoint-url", server.url, "mb", f"s3://{bucket}"], env=s5cmd.env(),
                           check=True, stdout=subprocess.DEVNULL)
        command = backline.s3_sync(source_bucket, "plan-target", "plan")
        command[command.index("run")] = "plan"
        command.remove("--no-progress")
        env = backline.env()

        results["backline, no state"] = measure(command, env, work / "logs" / "plan-no-state.log")
        print("backline, no state:", results["backline, no state"], flush=True)

        state = work / "plan-state.jsonl"
        with open(state, "w") as out:
            out.writelines(synthetic_state(args.objects, args.folders, f"s3://{source_bucket}/"))
        subprocess.run([s5cmd.binary, "--endpoint-url", server.url, "cp", str(state),
                        "s3://bench-control/_backline/state/bench-plan.jsonl"], env=s5cmd.env(), check=True,
                       stdout=subprocess.DEVNULL)
        log = work / "logs" / "plan-state.log"
        name = f"backline, state of {args.objects} entries (nothing changed)"
        results[name] = measure(command, env, log)
        if f"; {args.objects} unchanged;" not in log.read_text():
            sys.exit(f"the plan against the state did not find every object unchanged, see {log}")
        print(f"{name}:", results[name], flush=True)

        if args.peers:
            for name, (peer_command, peer_env) in peer_commands(server.url, work, source_bucket,
                                                                f"{source_bucket}-copy").items():
                log = work / "logs" / f"plan-{name.split()[0]}.log"
                results[f"{name} (nothing changed)"] = measure(peer_command, peer_env, log)
                # A dry run that found work prints a line per object.
                if len(log.read_text().splitlines()) > 10:
                    sys.exit(f"{name} found something to do in a no-change run, see {log}")
                print(f"{name}:", results[f"{name} (nothing changed)"], flush=True)
    finally:
        server.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
