#!/usr/bin/env bash
# The Lambda flow on one machine: the local stack, the three functions and `backline dev pump`,
# which delivers the work and finalize queues to them as AWS's event source mappings do.
#
#   scripts/lambda_local.sh watch   functions under `cargo lambda watch` (port 9000, rebuilt as
#                                   you edit); runs until Ctrl-C, which stops everything
#   scripts/lambda_local.sh demo    functions as built binaries on tests/emulators/lambda; invokes
#                                   the planner with events/planner-request.json, shows the three
#                                   functions' logs and the pump's deliveries, then the report
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
target="${CARGO_TARGET_DIR:-target}/debug"
pids=()

# Newest first: the functions stop before the server they poll.
stop_all() {
  trap - EXIT INT TERM
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/stack.sh down >/dev/null
}
trap stop_all EXIT
trap 'echo; echo "stopping the functions, the pump and the local stack"; exit 130' INT TERM

# Prefixes each line of a process's output with its name, so the logs interleave readably.
label() { sed -u "s/^/$(printf '%-11s' "[$1]") /"; }

start_stack() {
  scripts/stack.sh down >/dev/null
  scripts/stack.sh up
  # shellcheck disable=SC1091
  source .demo/stack.env
  .venv/bin/python scripts/demo_data.py
}

# The pump's log (stderr) goes to the terminal, labelled; the reports it prints (stdout) to $2.
start_pump() {
  local url=$1 out=$2
  shift 2
  "$target/backline" dev pump --invoke-url "$url" "$@" 2> >(label pump >&2) >"$out" &
  pids+=($!)
}

wait_for_port() {
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "nothing listens on port $1" >&2
  return 1
}

watch() {
  cargo build --locked -p backline-cli
  start_stack
  echo "starting the functions under cargo lambda watch (the first invocation builds them)"
  PATH="$PWD/.venv/bin:$PATH" cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000 \
    > >(label lambda) 2>&1 &
  pids+=($!)
  wait_for_port 9000
  start_pump http://127.0.0.1:9000 /dev/stdout
  echo
  echo "ready: in another terminal, run"
  echo "  make invoke FN=planner EVENT=events/planner-request.json"
  echo "Ctrl-C stops the functions, the pump and the local stack."
  wait -n "${pids[@]}"
}

demo() {
  cargo build --locked -p backline-cli -p backline-planner -p backline-worker -p backline-finalizer
  start_stack
  local port
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  .venv/bin/python tests/emulators/lambda/emulator.py --host 127.0.0.1 --port "$port" \
    --function backline-planner --function backline-worker --function backline-finalizer >/dev/null &
  pids+=($!)
  wait_for_port "$port"
  for fn in planner worker finalizer; do
    AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/backline-$fn" AWS_LAMBDA_FUNCTION_NAME="backline-$fn" \
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 AWS_LAMBDA_FUNCTION_VERSION='$LATEST' RUST_LOG=info NO_COLOR=1 \
      "$target/backline-$fn" > >(label "$fn") 2>&1 &
    pids+=($!)
  done
  rm -f .demo/reports.txt # a report from an earlier demo would end the wait below at once
  start_pump "http://127.0.0.1:$port" .demo/reports.txt --wait-seconds 1
  echo
  echo "== invoke backline-planner with events/planner-request.json (as make invoke does)"
  .venv/bin/python -c 'import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], data=open("events/planner-request.json", "rb").read()) as r:
    print(r.read().decode())' "http://127.0.0.1:$port/2015-03-31/functions/backline-planner/invocations"
  echo
  # The pump prints a run's report once the finalizer is done with it.
  for _ in $(seq 1 240); do
    if grep -q 'report.md' .demo/reports.txt 2>/dev/null; then break; fi
    sleep 0.5
  done
  sleep 1
  echo
  echo "== the report"
  cat .demo/reports.txt
}

case "$mode" in
  watch) watch ;;
  demo) demo ;;
  *) echo "usage: $0 watch|demo" >&2; exit 2 ;;
esac
