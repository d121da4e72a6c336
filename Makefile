# Amends: the two commands a new machine needs are `make demo` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)
export PYTHONWARNINGS := ignore

.PHONY: demo test chaos stop bench help regions regions-stop

help:
	@echo "make demo   install what is missing, start the platform, run the demo"
	@echo "             (SCALE=matching=2,notifications=3: that many processes of those services; docs/scaling.md)"
	@echo "make test   install what is missing, start RabbitMQ and FerretDB, run the tests (with the quick fault suite)"
	@echo "make chaos  the fault suite in its long mode"
	@echo "make bench  run the benchmarks (figures only, no pass/fail on speed)"
	@echo "make stop   stop everything the above started (and the stacks of make regions)"
	@echo "make regions       a national stack and two region stacks on this machine, on ports of their own (docs/regions.md)"
	@echo "make regions-stop  stop those three stacks only"

demo:
	deploy/local/bootstrap.sh all
	$(PY) scripts/demo.py

test:
	deploy/local/bootstrap.sh infra
	$(PY) -m pytest -p no:cacheprovider tests/unit tests/integration tests/e2e tests/reliability

chaos:
	deploy/local/bootstrap.sh infra
	AMENDS_CHAOS=long $(PY) -m pytest -p no:cacheprovider -s tests/reliability

bench:
	deploy/local/bootstrap.sh all
	for bench in tests/bench/bench_*.py; do echo "== $$bench"; $(PY) $$bench || exit 1; done

stop:
	deploy/local/regions.sh stop
	deploy/local/stop.sh

regions:
	deploy/local/regions.sh start

regions-stop:
	deploy/local/regions.sh stop
