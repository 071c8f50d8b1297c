#!/usr/bin/env python3
"""Writes the measured tables of BENCHMARKS.md from bench/results/*.json. Each table sits
between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; the prose around them is kept."""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PEERS = ("s5cmd", "rclone", "aws-cli")
SCENARIOS = {
    "s3-full": "S3 → S3, full backup",
    "s3-no-change": "S3 → S3, second run, nothing changed",
    "s3-1pct-changed": "S3 → S3, 1% changed and 1% deleted",
    "s3-large-multipart": "S3 → S3, 8 × 256 MiB (multipart)",
    "files-first": "folder → S3, first run",
    "files-no-change": "folder → S3, second run, nothing changed",
}


def peers_tables(result):
    params = result["parameters"]
    work = f"{params['objects']:,} objects of 1-64 KiB"
    if not params.get("s3_only"):
        work += f", {params['files']:,} files of 1-16 KiB, {params['large_count']} × {params['large_mib']} MiB"
    server = "loopback, no added latency"
    if params.get("latency_ms"):
        server = f"{params['latency_ms']:g} ms before every answer's first byte"
        if params.get("copy_mibps"):
            server += f", server-side copies at {params['copy_mibps']:g} MiB/s"
        if params.get("throughput_mibps"):
            server += f", bodies sharing {params['throughput_mibps']:g} MiB/s"
    lines = [
        f"Last run: {result['date']} on {result['machine']}; median of {params['reps']} runs per tool and "
        f"scenario; {work}; server: {server}.",
        "",
        "Versions: " + "; ".join(result["versions"].values()) + ".",
        "",
        "| scenario | tool | wall time | objects/s | peak RSS | requests | per object |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    summary_rows = []
    for key, title in SCENARIOS.items():
        by_tool = result["scenarios"].get(key)
        if not by_tool:
            continue
        for tool in ("backline", *PEERS):
            if tool not in by_tool:
                continue
            m = by_tool[tool]
            objects = result["runs"][key][tool][0]["objects"]
            lines.append(f"| {title} | {tool} | {m['wall_s']:.2f} s | {m['objects_per_s']:,.0f} | "
                         f"{m['rss_mib']:.0f} MiB | {m['requests']:,} | {m['requests'] / objects:.3g} |")
        ours = by_tool.get("backline")
        peers = {t: by_tool[t] for t in PEERS if t in by_tool}
        if ours and peers:
            fastest = min(peers, key=lambda t: peers[t]["wall_s"])
            fewest = min(peers, key=lambda t: peers[t]["requests"])
            speed = peers[fastest]["wall_s"] / ours["wall_s"]
            requests = ours["requests"] / max(1, peers[fewest]["requests"])
            summary_rows.append(
                f"| {title} | {fastest} | {speed:.2f}× | {fewest} | {requests:.2f}× |"
            )
    lines += [
        "",
        "Backline against the best peer (speed: the fastest peer's time divided by backline's, above 1 "
        "means backline is faster; requests: backline's count divided by the thriftiest peer's, below 1 "
        "means fewer):",
        "",
        "| scenario | fastest peer | backline's speed | thriftiest peer | backline's requests |",
        "|---|---|---:|---|---:|",
        *summary_rows,
        "",
        "Requests by operation (last run of each):",
        "",
        "| scenario | tool | requests by operation |",
        "|---|---|---|",
    ]
    for key, title in SCENARIOS.items():
        for tool, m in result["scenarios"].get(key, {}).items():
            ops = ", ".join(f"{op} {n:,}" for op, n in sorted(m["by_operation"].items(), key=lambda x: -x[1]))
            lines.append(f"| {title} | {tool} | {ops} |")
    lines += ["", "How each tool was run:", ""]
    lines += [f"- **{tool}**: {text}" for tool, text in result["settings"].items()]
    return "\n".join(lines)


def plan_table(result):
    where = f" in {result['folders']:,} folders" if result.get("folders") else " under one prefix"
    server = f", {result['latency_ms']:g} ms before every answer" if result.get("latency_ms") else ", loopback"
    lines = [
        f"{result['objects']:,} objects{where} listed by the bench server's synthetic bucket (1,000 per page, "
        f"as S3 pages{server}):",
        "",
        "| run | wall time | peak RSS |",
        "|---|---:|---:|",
    ]
    runs = {name: m for name, m in result.items() if isinstance(m, dict)}
    for name, m in runs.items():
        lines.append(f"| {name} | {m['wall_s']:.1f} s | {m['rss_mib']:.0f} MiB |")
    ours = next((m for name, m in runs.items() if name.startswith("backline, state")), None)
    peers = {name: m for name, m in runs.items() if not name.startswith("backline")}
    if ours and peers:
        fastest = min(peers, key=lambda name: peers[name]["wall_s"])
        lines += ["", f"Backline's no-change time is {ours['wall_s'] / peers[fastest]['wall_s']:.2f}× that of the "
                  f"fastest peer ({fastest.split(' (')[0]})."]
    return "\n".join(lines)


def fs_plan_table(result):
    lines = [
        f"{result['files']:,} small files in {result['folders']:,} folders, `backline plan`, release build "
        f"({result['date']}):",
        "",
        "| run | wall time | peak RSS | what the plan said |",
        "|---|---:|---:|---|",
    ]
    for name, m in result.items():
        if isinstance(m, dict):
            lines.append(f"| {name} | {m['wall_s']:.1f} s | {m['rss_mib']:.1f} MiB | {m['summary']} |")
    return "\n".join(lines)


def cold_start_table(result):
    lines = [
        "| function | host binary (x86_64, stripped) | arm64 `bootstrap` | ready for the first invoke (median / max) |",
        "|---|---:|---:|---:|",
    ]
    for name, m in result.items():
        arm = f"{m['arm64_bootstrap_mib']:.1f} MiB" if "arm64_bootstrap_mib" in m else "(run `make lambdas`)"
        lines.append(f"| backline-{name} | {m['host_binary_mib']:.1f} MiB | {arm} | "
                     f"{m['ready_ms_median']:.1f} ms / {m['ready_ms_max']:.1f} ms ({m['runs']} starts) |")
    return "\n".join(lines)


def main():
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    renders = (("peers", peers_tables), ("peers-20ms", peers_tables), ("plan", plan_table),
               ("plan-20ms", plan_table), ("fs-plan", fs_plan_table),
               ("cold-start", cold_start_table))
    for name, render in renders:
        source = RESULTS / f"{name.replace('-', '_')}.json"
        if not source.exists():
            continue
        table = render(json.loads(source.read_text()))
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.S)
        if not pattern.search(text):
            sys.exit(f"BENCHMARKS.md has no <!-- bench:{name} --> section")
        text = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    path.write_text(text)
    print(f"updated {path}")


if __name__ == "__main__":
    main()
