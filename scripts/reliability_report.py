#!/usr/bin/env python3
"""Writes RELIABILITY.md from the figures the fault and bad-input suites leave behind.

    python3 scripts/reliability_report.py FIGURES_DIR OUTPUT.md

Each suite scenario writes one JSON file into FIGURES_DIR (tests/src/reliability.rs); this
script only arranges them. It exits 1 when any scenario lost or duplicated an item, so
`make reliability` fails with the table written.
"""

import datetime
import glob
import json
import os
import sys

HEADER = """# Reliability

What Backline survives, measured by its fault and bad-input suites. This file is written by
`make reliability` from the suites' own counts; do not edit it by hand.

- **Faults**: a fault-injecting proxy (`tests/emulators/faultproxy/`) between Backline and its
  servers (moto_server, the Tableau and QuickSight emulators) answers 503 SlowDown,
  500 InternalError, throttling, resets connections and changes sources mid-copy; `backline
  run` and `backline restore` are killed with SIGKILL at random points and then run to the
  end; on the Lambda path a worker dies at its deadline (mid-copy or mid-upload, before
  recording, before the ledger write) in S3, Tableau and QuickSight backups and restores
  (mid-publish and mid-import too), a chunk and a finalize message are delivered twice at once, and a claim-check
  object goes missing. Folder backups run where the folder is, not on Lambda, so they have
  kill scenarios instead. After each scenario the target is compared with the
  source (or with the same run without faults) byte for byte, versioned targets are checked
  for extra versions, and every item must be counted as copied exactly once over all the
  runs' manifests.
- **Bad input**: valid job files, events, queue bodies, state files, manifests, Tableau
  responses and QuickSight answers, mutated at random (property tests); every input must be
  read correctly or refused with an error, never a panic or a hang.

Run it: `make reliability` (full size, about 15 minutes on two cores). `make test` runs the same scenarios
at a smaller size.
"""


def load(directory):
    rows = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path, encoding="utf-8") as f:
            rows.append(json.load(f))
    return rows


def fault_table(rows):
    lines = [
        "| Scenario | Kind | Items | Faults injected | Runs | Lost | Duplicated | Notes |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['kind']} | {r['items']} | {r['faults_injected']} | {r['runs']} "
            f"| {r['lost']} | {r['duplicates']} | {r['note']} |"
        )
    return lines


def input_table(rows):
    lines = [
        "| Input | Tried | Refused with an error | Read correctly | Panics |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = r["scenario"].removeprefix("bad input: ")
        accepted = r["inputs_tried"] - r["inputs_rejected"]
        lines.append(f"| {name} — {r['note']} | {r['inputs_tried']} | {r['inputs_rejected']} | {accepted} | 0 |")
    return lines


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    directory, output = sys.argv[1], sys.argv[2]
    rows = load(directory)
    if not rows:
        sys.exit(f"no figures in {directory}: run the suites first (make reliability)")
    faults = [r for r in rows if not r["scenario"].startswith("bad input")]
    inputs = [r for r in rows if r["scenario"].startswith("bad input")]
    sizes = sorted({r["size"] for r in rows})
    lost = sum(r["lost"] for r in faults)
    duplicated = sum(r["duplicates"] for r in faults)
    injected = sum(r["faults_injected"] for r in faults)
    tried = sum(r["inputs_tried"] for r in inputs)
    out = [HEADER]
    out.append(
        f"Last run: {datetime.date.today().isoformat()}, size {', '.join(sizes)}. "
        f"**{injected} faults injected, {lost} items lost, {duplicated} duplicated; "
        f"{tried} bad inputs tried, 0 panics.**\n"
    )
    out.append("## Faults\n")
    out.extend(fault_table(faults))
    out.append("\n## Bad input\n")
    out.extend(input_table(inputs))
    with open(output, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"{output}: {len(faults)} fault scenarios, {len(inputs)} input families; lost {lost}, duplicated {duplicated}")
    sys.exit(1 if lost or duplicated else 0)


if __name__ == "__main__":
    main()
