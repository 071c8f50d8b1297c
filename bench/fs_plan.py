"""Filesystem planning at scale: peak memory and time of `backline plan` over a tree of N files,
first with no state (everything is new), then against a state that lists every file (nothing
changed). Run by `make bench-fs-plan` (N=1000000 by default, also part of `make bench`); needs
the local stack's environment and a release `backline`. Writes bench/results/fs_plan.json, which
bench/report.py puts into BENCHMARKS.md."""
import json
import os
import resource
import subprocess
import sys
import time

from pathlib import Path

import boto3

FILES_PER_FOLDER = 1000
RESULTS = Path(__file__).resolve().parent / "results" / "fs_plan.json"


def make_tree(root: str, count: int) -> None:
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return
    for n in range(count):
        folder = os.path.join(root, f"d{n // FILES_PER_FOLDER:05d}")
        if n % FILES_PER_FOLDER == 0:
            os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"img-{n:07d}.jpg"), "wb") as f:
            f.write(b"x" * (n % 97))
    open(marker, "w").close()


def peak_rss_of(argv: list[str]) -> tuple[float, float, str]:
    """Runs argv; returns (seconds, peak RSS in MiB, stdout)."""
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"{argv}: exit {result.returncode}: {result.stderr}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kib / 1024, result.stdout


def main() -> None:
    backline, count, workdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    tree = os.path.join(workdir, f"tree-{count}")
    started = time.monotonic()
    make_tree(tree, count)
    print(f"tree of {count} files in {tree} ready ({time.monotonic() - started:.0f} s)", flush=True)

    prefix = "bench-fs"
    jobs = os.path.join(workdir, "fs-bench.toml")
    with open(jobs, "w") as f:
        f.write(f'[[jobs]]\nname = "bench"\nkind = "filesystem"\nfolders = ["{tree}"]\n'
                f'[jobs.target]\nbucket_prefix = "{prefix}"\n')

    # Each measurement runs in its own process so RUSAGE_CHILDREN's peak is that run's alone.
    first = measured(backline, jobs)

    # A state listing every file as backed up, in the control location, as a run would leave it.
    s3 = boto3.client("s3")
    control, unit = f"{prefix}-backline", subprocess.run(
        [backline, "plan", "--config", jobs], capture_output=True, text=True).stdout.split("-> bucket ")[1].split()[0]
    for bucket in (control, unit):
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    lines = [json.dumps({"version": 1, "source": f"s3://{unit}", "run_id": "bench"})]
    for folder in sorted(os.listdir(tree)):
        path = os.path.join(tree, folder)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            st = os.stat(os.path.join(path, name))
            key = os.path.join(path, name).lstrip("/")
            lines.append(json.dumps({"k": key, "s": st.st_size, "e": "", "m": st.st_mtime_ns}))
    s3.put_object(Bucket=control, Key=f"_backline/state/bench/{unit}.jsonl", Body="\n".join(lines).encode() + b"\n")
    second = measured(backline, jobs)
    results = {"files": count, "folders": count // FILES_PER_FOLDER, "date": time.strftime("%Y-%m-%d"),
               "first run, no state (everything is new)": first,
               "against a state listing every file (nothing changed)": second}
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


def measured(backline: str, jobs: str) -> dict:
    """`backline plan` in a process of its own: wall time, peak RSS and the plan's summary line."""
    child = subprocess.run([sys.executable, __file__, "--measure", backline, jobs], capture_output=True, text=True)
    if child.returncode != 0:
        sys.exit(f"measuring the plan failed: {child.stderr}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{result['wall_s']:7.1f} s  peak RSS {result['rss_mib']:7.1f} MiB  {result['summary']}", flush=True)
    return result


if __name__ == "__main__":
    if sys.argv[1] == "--measure":
        seconds, peak, out = peak_rss_of([sys.argv[2], "plan", "--config", sys.argv[3]])
        print(json.dumps({"wall_s": round(seconds, 2), "rss_mib": round(peak, 1), "summary": out.splitlines()[0]}))
    else:
        main()
