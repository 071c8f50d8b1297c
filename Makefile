# Backline: `make demo` to see a backup, `make test` for everything CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# One warm build outside the checkout, shared by every clone on this machine (CI included).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/backline/target
VENV := .venv
PYTHON ?= python3
FN ?= planner
EVENT ?= events/planner-request.json

.PHONY: help setup setup-lambda test lint unit demo watch invoke lambdas stack-up stack-down clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/.dev: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV)/.lambda: requirements-lambda.txt $(VENV)/.dev
	$(VENV)/bin/pip install --quiet -r requirements-lambda.txt
	touch $@

setup: $(VENV)/.dev ## Python venv with pinned moto (the local stack)

setup-lambda: $(VENV)/.lambda ## cargo-lambda and zig into the venv

lint: ## rustfmt and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

test: setup lint ## Everything CI runs: lint, unit, integration and handler tests
	cargo test --workspace --locked

demo: setup ## Back up a demo bucket on a local moto_server and print the reports
	cargo build --locked -p backline-cli
	scripts/demo.sh

stack-up: setup ## Start the local stack (moto_server, queues, ledger, demo buckets)
	scripts/stack.sh up

stack-down: ## Stop the local stack
	scripts/stack.sh down

watch: setup-lambda stack-up ## Run the three functions under `cargo lambda watch` against the local stack
	source .demo/stack.env && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda watch

invoke: setup-lambda ## Send EVENT to FN (planner, worker, finalizer) running under `make watch`
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda invoke backline-$(FN) --data-file $(EVENT)

lambdas: setup-lambda ## Build the functions for Lambda (arm64) with cargo-lambda
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 \
		-p backline-planner -p backline-worker -p backline-finalizer

clean: stack-down ## Remove the venv and local stack files (the cargo build stays warm)
	rm -rf $(VENV) .demo
