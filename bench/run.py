#!/usr/bin/env python3
"""`make bench`: backline against s5cmd, rclone and `aws s3 sync` on the same work, side by side.

Every tool talks to one S3 server on loopback (s3s-fs with a request counter, bench/s3-server).
Each scenario runs REPS times per tool, tools in a rotating order; a run counts only after the
target is checked against the source byte for byte. The medians go to bench/results/peers.json
and into BENCHMARKS.md.
"""

import argparse
import base64
import filecmp
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import peers

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


class Server:
    """bench-s3-server on a free loopback port, storing under `root`."""

    def __init__(self, binary, root, latency=None):
        """`latency`: the server's BENCH_* settings (see bench/s3-server/src/latency.rs), so
        answers take as long as on S3; None answers at loopback speed."""
        self.root = Path(root)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [binary, str(self.root), str(self.port), peers.ACCESS_KEY, peers.SECRET_KEY],
            stdout=subprocess.DEVNULL,
            env={**os.environ, **(latency or {})},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self._get("/_bench/counts")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the bench S3 server did not start")

    def _get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.load(response)

    def reset(self):
        self._get("/_bench/reset")

    def counts(self):
        return self._get("/_bench/counts")

    def tags(self, bucket):
        return self._get(f"/_bench/tags?bucket={bucket}")

    def bucket_dir(self, bucket):
        return self.root / bucket

    def find_bucket(self, pattern):
        if not pattern.endswith("*"):
            return pattern
        found = [p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith(pattern[:-1])]
        if len(found) != 1:
            raise RuntimeError(f"expected one bucket named {pattern}, found {found}")
        return found[0]

    def remove_bucket(self, bucket):
        shutil.rmtree(self.bucket_dir(bucket), ignore_errors=True)
        marker = ".bucket-" + base64.urlsafe_b64encode(bucket.encode()).decode().rstrip("=") + ".object-"
        for entry in os.scandir(self.root):
            if entry.name.startswith(marker):
                os.unlink(entry.path)

    def stop(self):
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def run_measured(command, env, log):
    """Runs `command`; returns its exit code and peak RSS in MiB. GNU time does the waiting: a
    child forked from this Python process would report Python's own RSS as its floor (Linux
    keeps the larger of the two across exec)."""
    rss_file = Path(str(log) + ".rss")
    with open(log, "w") as out:
        code = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", str(rss_file), *command], env=env,
                              stdout=out, stderr=subprocess.STDOUT).returncode
    lines = rss_file.read_text().split()
    return code, (int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else float("nan"))


def files_under(folder):
    folder = Path(folder)
    found = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            found[str(path.relative_to(folder))] = path
    return found


def check_copy(source_dir, target_dir, gone=(), gone_tags=None):
    """The target holds every source file, byte for byte. Keys in `gone` were deleted at the
    source: absent from the target, or (gone_tags given) present and tagged Deleted=True."""
    source, target = files_under(source_dir), files_under(target_dir)
    missing = sorted(source.keys() - target.keys())
    if missing:
        raise RuntimeError(f"{len(missing)} objects missing from {target_dir}, e.g. {missing[:3]}")
    differ = [k for k in source if not filecmp.cmp(source[k], target[k], shallow=False)]
    if differ:
        raise RuntimeError(f"{len(differ)} objects differ in {target_dir}, e.g. {differ[:3]}")
    extra = target.keys() - source.keys()
    if gone_tags is None:
        if extra:
            raise RuntimeError(f"{len(extra)} deleted objects still in {target_dir}, e.g. {sorted(extra)[:3]}")
    else:
        untagged = [k for k in gone if gone_tags.get(k, {}).get("Deleted") != "True"]
        if extra != set(gone) or untagged:
            raise RuntimeError(f"deletions not marked in {target_dir}: {len(untagged)} untagged")


def write_random_tree(folder, count, min_size, max_size, seed, fanout=40):
    """`count` files of random sizes and bytes in `fanout` subfolders; kept between runs."""
    folder = Path(folder)
    # Beside the folder, not in it: every tool would back the stamp up too.
    stamp = folder.with_name(folder.name + ".complete")
    spec = f"{count} {min_size} {max_size} {seed} {fanout}"
    if stamp.exists() and stamp.read_text() == spec:
        return
    shutil.rmtree(folder, ignore_errors=True)
    rng = random.Random(seed)
    for i in range(count):
        path = folder / f"d{i % fanout:02}" / f"obj{i:07}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        remaining = rng.randint(min_size, max_size)
        with open(path, "wb") as out:
            while remaining:
                piece = min(remaining, MIB)
                out.write(rng.randbytes(piece))
                remaining -= piece
    stamp.write_text(spec)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.logs = self.work / "logs"
        self.logs.mkdir(exist_ok=True)
        self.s5cmd = peers.S5cmd("", self.work).binary
        self.runs = {}  # scenario -> tool -> [run]
        settings = {
            "BENCH_LATENCY_MS": args.latency_ms or None,
            "BENCH_COPY_MIBPS": args.copy_mibps,
            "BENCH_THROUGHPUT_MIBPS": args.throughput_mibps,
        }
        self.latency = {name: str(value) for name, value in settings.items() if value}

    def tools(self, endpoint):
        return [
            peers.Backline(endpoint, self.work, self.args.backline),
            peers.S5cmd(endpoint, self.work),
            peers.Rclone(endpoint, self.work),
            peers.AwsCli(endpoint, self.work),
        ]

    def helper(self, server, *command):
        """s5cmd as the loader: fills and changes sources, makes buckets (not measured)."""
        subprocess.run([self.s5cmd, "--endpoint-url", server.url, *command], env=peers.base_env(), check=True,
                       stdout=subprocess.DEVNULL)

    def measure(self, server, tool, command, scenario, objects, check):
        server.reset()
        log = self.logs / f"{scenario}-{tool.name}.log"
        started = time.monotonic()
        exit_code, rss_mib = run_measured(command, tool.env(), log)
        wall = time.monotonic() - started
        counts = server.counts()
        if exit_code != 0:
            raise RuntimeError(f"{tool.name} failed in {scenario} (exit {exit_code}), see {log}")
        check()
        run = {"wall_s": wall, "rss_mib": rss_mib, "requests": counts["total"],
               "by_operation": counts["by_operation"], "objects": objects}
        self.runs.setdefault(scenario, {}).setdefault(tool.name, []).append(run)
        print(f"  {scenario:<22} {tool.name:<9} {wall:7.2f} s {run['rss_mib']:7.1f} MiB {counts['total']:7d} requests",
              flush=True)

    def small_objects(self, rep):
        """20,000 objects: full backup, no change, 1% changed and 1% deleted; then the folder runs."""
        args = self.args
        data = self.work / "data"
        write_random_tree(data / "small", args.objects, 1024, 64 * 1024, seed=1)
        if not args.s3_only:
            write_random_tree(data / "files", args.files, 1024, 16 * 1024, seed=2, fanout=50)
        server = Server(args.server, self.work / f"s3-r{rep}", self.latency)
        try:
            tools = self.tools(server.url)
            tools = tools[rep % len(tools):] + tools[:rep % len(tools)]
            self.helper(server, "mb", "s3://src")
            self.helper(server, "mb", "s3://bench-control")
            self.helper(server, "cp", f"{data / 'small'}/*", "s3://src/")
            source = server.bucket_dir("src")
            for tool in tools:
                self.helper(server, "mb", f"s3://{tool.name}-copy")
            for scenario in ("s3-full", "s3-no-change"):
                for tool in tools:
                    target = server.bucket_dir(f"{tool.name}-copy")
                    self.measure(server, tool, tool.s3_sync("src", f"{tool.name}-copy", f"s3-r{rep}"), scenario,
                                 args.objects, lambda: check_copy(source, target))

            keys = sorted(files_under(source))
            rng = random.Random(100 + rep)
            picked = rng.sample(keys, 2 * max(1, args.objects // 100))
            changed, deleted = picked[: len(picked) // 2], picked[len(picked) // 2:]
            changes = self.work / "data" / "changes"
            shutil.rmtree(changes, ignore_errors=True)
            for key in changed:
                (changes / key).parent.mkdir(parents=True, exist_ok=True)
                (changes / key).write_bytes(rng.randbytes(rng.randint(1024, 64 * 1024)))
            self.helper(server, "cp", f"{changes}/*", "s3://src/")
            script = self.work / "delete.txt"
            script.write_text("".join(f"rm s3://src/{key}\n" for key in deleted))
            self.helper(server, "run", str(script))
            for tool in tools:
                target = f"{tool.name}-copy"
                tags = server.tags if tool.name == "backline" else None
                self.measure(
                    server, tool, tool.s3_sync("src", target, f"s3-r{rep}"), "s3-1pct-changed", args.objects,
                    lambda: check_copy(source, server.bucket_dir(target), deleted, tags and tags(target)),
                )

            for scenario in () if args.s3_only else ("files-first", "files-no-change"):
                for tool in tools:
                    pattern = tool.folder_bucket(f"r{rep}")
                    if scenario == "files-first" and not pattern.endswith("*"):
                        self.helper(server, "mb", f"s3://{pattern}")
                    command = tool.folder_sync(data / "files", pattern.rstrip("*"), f"r{rep}")
                    self.measure(server, tool, command, scenario, args.files, lambda: check_copy(
                        data / "files", server.bucket_dir(server.find_bucket(pattern)) / tool.folder_keys(data / "files")))
        finally:
            server.stop()

    def large_objects(self):
        """8 objects of 256 MiB: every tool copies them with multipart or whole-object copies."""
        args = self.args
        data = self.work / "data"
        write_random_tree(data / "large", args.large_count, args.large_mib * MIB, args.large_mib * MIB, seed=3,
                          fanout=1)
        server = Server(args.server, self.work / "s3-large", self.latency)
        try:
            self.helper(server, "mb", "s3://large")
            self.helper(server, "mb", "s3://bench-control")
            self.helper(server, "cp", f"{data / 'large'}/*", "s3://large/")
            source = server.bucket_dir("large")
            for rep in range(args.reps):
                tools = self.tools(server.url)
                for tool in tools[rep % len(tools):] + tools[:rep % len(tools)]:
                    target = f"{tool.name}-large-r{rep}"
                    self.helper(server, "mb", f"s3://{target}")
                    self.measure(server, tool, tool.s3_sync("large", target, f"large-r{rep}"), "s3-large-multipart",
                                 args.large_count, lambda: check_copy(source, server.bucket_dir(target)))
                    server.remove_bucket(target)
        finally:
            server.stop()


def summarize(runs):
    summary = {}
    for scenario, by_tool in runs.items():
        summary[scenario] = {}
        for tool, tool_runs in by_tool.items():
            wall = statistics.median(r["wall_s"] for r in tool_runs)
            summary[scenario][tool] = {
                "runs": len(tool_runs),
                "wall_s": round(wall, 3),
                "objects_per_s": round(tool_runs[0]["objects"] / wall, 1),
                "rss_mib": round(statistics.median(r["rss_mib"] for r in tool_runs), 1),
                "requests": int(statistics.median(r["requests"] for r in tool_runs)),
                "by_operation": tool_runs[-1]["by_operation"],
            }
    return summary


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({cpu}), {mem_kib / MIB:.0f} GiB, Linux {platform.release()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backline", required=True, help="release build of the backline CLI")
    parser.add_argument("--server", required=True, help="bench-s3-server binary")
    parser.add_argument("--work", default="/tmp/backline-bench", help="data and server storage (several GiB)")
    parser.add_argument("--reps", type=int, default=3, help="runs per tool and scenario; the median counts")
    parser.add_argument("--objects", type=int, default=20_000, help="small objects in the S3 scenarios")
    parser.add_argument("--files", type=int, default=50_000, help="files in the folder scenarios")
    parser.add_argument("--large-count", type=int, default=8)
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "peers.json"))
    parser.add_argument("--latency-ms", type=float, default=0, help="first-byte latency of every S3 answer")
    parser.add_argument("--copy-mibps", type=float, help="rate of one server-side copy (default unlimited)")
    parser.add_argument("--throughput-mibps", type=float, help="bodies' shared rate (default unlimited)")
    parser.add_argument("--s3-only", action="store_true",
                        help="only the S3 scenarios of small objects (no folders, no large objects)")
    args = parser.parse_args()

    bench = Bench(args)
    tools = bench.tools("http://127.0.0.1:1")
    versions = {tool.name: tool.version() for tool in tools}
    print("tools:", ", ".join(versions.values()), flush=True)
    for rep in range(args.reps):
        print(f"small objects and files, run {rep + 1} of {args.reps}", flush=True)
        bench.small_objects(rep)
    if not args.s3_only:
        print("large objects", flush=True)
        bench.large_objects()

    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "versions": versions,
        "settings": {tool.name: tool.settings for tool in tools},
        "parameters": {
            k: getattr(args, k)
            for k in ("reps", "objects", "files", "large_count", "large_mib", "latency_ms", "copy_mibps", "throughput_mibps",
                      "s3_only")
        },
        "scenarios": summarize(bench.runs),
        "runs": bench.runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
