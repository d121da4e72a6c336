# Amends: the two commands a new machine needs are `make demo` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)
export PYTHONWARNINGS := ignore

.PHONY: demo test stop bench help

help:
	@echo "make demo   install what is missing, start the platform, run the demo"
	@echo "make test   install what is missing, start RabbitMQ and FerretDB, run the tests"
	@echo "make bench  run the benchmarks (figures only, no pass/fail on speed)"
	@echo "make stop   stop everything the above started"

demo:
	deploy/local/bootstrap.sh all
	$(PY) scripts/demo.py

test:
	deploy/local/bootstrap.sh infra
	$(PY) -m pytest -p no:cacheprovider tests/unit tests/integration tests/e2e

bench:
	deploy/local/bootstrap.sh all
	$(PY) tests/bench/bench_publishing.py

stop:
	deploy/local/stop.sh
