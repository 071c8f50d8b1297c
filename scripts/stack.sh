#!/usr/bin/env bash
# The local stack: moto_server on a free loopback port with Backline's queues, ledger table and
# demo buckets. `up` starts it and writes .demo/stack.env; `down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.demo
mkdir -p "$state"

up() {
  if [[ -f $state/moto.pid ]] && kill -0 "$(cat $state/moto.pid)" 2>/dev/null; then
    echo "local stack already running ($(grep AWS_ENDPOINT_URL= $state/stack.env))"
    return
  fi
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
  echo $! >"$state/moto.pid"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  cat >"$state/stack.env" <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
ENV
  # shellcheck disable=SC1091
  source "$state/stack.env"
  .venv/bin/python scripts/stack_resources.py >>"$state/stack.env"
  echo "local stack up: moto_server on 127.0.0.1:$port (environment in $state/stack.env)"
}

down() {
  if [[ -f $state/moto.pid ]]; then
    kill "$(cat $state/moto.pid)" 2>/dev/null || true
    rm -f "$state/moto.pid"
    echo "local stack stopped"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
