#!/usr/bin/env bash
# `make demo`: back up a demo bucket on a local moto_server, change it, back it up again,
# and print the reports. Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
backline="${CARGO_TARGET_DIR:-target}/debug/backline"
trap 'scripts/stack.sh down >/dev/null' EXIT
scripts/stack.sh down >/dev/null
scripts/stack.sh up
# shellcheck disable=SC1091
source .demo/stack.env
.venv/bin/python scripts/demo_data.py

report() {
  run_dir=$(.venv/bin/python -c '
import boto3, sys
keys = [o["Key"] for p in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket="photos-backup", Prefix="_backline/runs/photos/") for o in p.get("Contents", [])]
print(sorted(k for k in keys if k.endswith("report.md"))[-1])')
  echo
  echo "----- s3://photos-backup/$run_dir -----"
  .venv/bin/python -c 'import boto3,sys; print(boto3.client("s3").get_object(Bucket="photos-backup", Key=sys.argv[1])["Body"].read().decode())' "$run_dir"
}

echo
echo "== backline plan: what the first run will do"
"$backline" plan --config shared/examples/demo.toml
echo
echo "== backline run: first backup"
"$backline" run --config shared/examples/demo.toml
report

echo "== change the source: one object rewritten, one deleted"
.venv/bin/python -c '
import boto3
s3 = boto3.client("s3")
s3.put_object(Bucket="photos-prod", Key="2026/11/0000.jpg", Body=b"edited")
s3.delete_object(Bucket="photos-prod", Key="2026/11/0005.jpg")'
echo
echo "== backline run: incremental backup"
"$backline" run --config shared/examples/demo.toml
report
echo "Deleted object in the backup keeps its data and is tagged:"
.venv/bin/python -c 'import boto3; print(boto3.client("s3").get_object_tagging(Bucket="photos-backup", Key="2026/11/0005.jpg")["TagSet"])'
