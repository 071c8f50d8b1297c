#!/usr/bin/env bash
# The linters a platform team runs on a template: cfn-lint (errors fail, warnings are shown)
# and checkov (every skipped check is justified in checkov.yaml).
set -uo pipefail
cd "$(dirname "$0")/.."
template=infra/cdk.out/${1:-Backline}.template.json
venv=.venv-infra/bin
"$venv/cfn-lint" "$template"
rc=$?
# cfn-lint's exit code is a bit set: 2 errors, 4 warnings, 8 informational.
if (( rc & 2 )) || (( rc & 1 )); then
  echo "cfn-lint found errors in $template" >&2
  exit 1
fi
"$venv/checkov" -f "$template" --config-file infra/checkov.yaml
