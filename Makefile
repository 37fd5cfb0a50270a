# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-fast demo lab lint typecheck bench bench-deps bench-logs bench-full bench-schedules clean ssh-client promtool schemas config-docs

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed (PYTHON=$(PYTHON))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Unicon's default SSH backend runs the OpenSSH client.
ssh-client:
	@command -v ssh >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq openssh-client; }

# promtool checks ops/prometheus and the live /metrics in the tests (skipped without it); Debian ships it in `prometheus`.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			{ apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; } \
				|| echo "promtool: installing Debian's prometheus package failed; the promtool tests will be skipped"; \
		else \
			echo "promtool: not found (install Debian's prometheus package as root); the promtool tests will be skipped"; \
		fi; }

## run: the service on a bundled nats-server with JetStream (data in ./.data); Ctrl-C stops both
run: $(STAMP) ssh-client
	$(BIN)/pyats-ro serve --with-nats

## test-fast: the unit and lab tiers, for the edit loop (about a minute; CI runs `make test`)
test-fast: $(STAMP) ssh-client
	$(BIN)/python -m pytest -q -m "unit or lab" $(PYTEST_ARGS)

## test: the whole suite (every tier: unit, tooling, lab, bus, mockdevice, integration; corpus where present) with branch coverage
test: $(STAMP) ssh-client promtool lint typecheck
	$(BIN)/python -m pytest --cov=service --cov-branch --cov-report=term --cov-report=json:.data/coverage.json $(PYTEST_ARGS)
	$(BIN)/python -m coverage report --data-file=.coverage --include='service/domain/*,service/contract/*' --fail-under=90
	$(BIN)/python -m coverage report --data-file=.coverage --include='service/device/*' --fail-under=80

## demo: nats-server + a lab of 10 devices + the service, one sample request, results printed
demo: $(STAMP) ssh-client
	$(BIN)/pyats-ro demo --devices 10

## lab: the fake device lab alone (10 iosxe devices from port 10022)
lab: $(STAMP)
	$(BIN)/pyats-ro lab --count 10 --base-port 10022 --latency 0.1 --host-key .data/lab_host_key

lint: $(STAMP)
	$(BIN)/ruff check service tests
	$(BIN)/ruff format --check service tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

bench-deps: $(STAMP)
	@$(BIN)/python -c 'import scrapli, nornir, nornir_netmiko, shutil; assert shutil.which("py-spy")' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[test,bench]'

## bench: cold, warm, warm 1-device and sequential scenarios, 100 lab devices x 2 commands at 100 ms, with 1 and 2 device workers, and the peers (scrapli, Nornir + netmiko) on the same lab (docs/PERFORMANCE.md)
bench: $(STAMP) ssh-client bench-deps
	$(BIN)/python ops/bench/run.py --scenarios cold,warm,warm1,sequential --devices 100 --latency 0.1 --concurrency 100 --backend paramiko:w1,paramiko:w2 $(BENCH_ARGS)
	$(BIN)/python ops/bench/log_cost.py --lines 5000
	-$(BIN)/python ops/bench/gateway_cost.py --requests 200  # prints PASS or FAIL against the 2 ms target; a FAIL does not stop make

## bench-logs: the cost of one log line, text and JSON, with and without enqueue
bench-logs: $(STAMP)
	$(BIN)/python ops/bench/log_cost.py --lines 20000

## bench-full: every scenario (adds fairness with 500 devices and big with 1000, with $$SRV.PING latencies) on both SSH backends, the service's work in one process, 2 workers, and 2 separate `pyats-ro worker` commands
bench-full: $(STAMP) ssh-client bench-deps
	$(BIN)/python ops/bench/run.py --scenarios cold,warm,warm1,fairness,big,sequential --backend pty,paramiko:w0,paramiko:w2,paramiko:x2 $(BENCH_ARGS)

## bench-schedules: issue 16's scale target: 1000 lab devices polled by one schedule every 60 s, 3 ticks, on this machine's cores; CPU per tick, results/s, lag, a fairness probe, scrapli on the same devices (~7 min; `BENCH_ARGS="--devices 50 --interval 15 --ticks 2"` for a 1-minute smoke)
bench-schedules: $(STAMP) bench-deps
	$(BIN)/python ops/bench/schedule_scale.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .coverage

## schemas: regenerate schemas/ (JSON Schema of the msgspec Structs, nats.micro replies, AsyncAPI)
schemas: $(STAMP)
	$(BIN)/python -m service.contract.schema schemas
	$(BIN)/python -m service.contract_docs.asyncapi schemas

## config-docs: regenerate the settings tables in docs/CONFIGURATION.md and .env.example
config-docs: $(STAMP)
	$(BIN)/python -m service.devtools.config_docs
