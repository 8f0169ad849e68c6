.PHONY: setup demo test lint bench lab lock

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/vditui --demo

lab: setup
	.venv/bin/vditui lab up

# The suite runs on 3 workers, a test file each at a time (each worker starts its own labs on
# loopback subnets of their own): 5 min instead of 12 on 2 cores, the lab tests mostly waiting.
test: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q -p no:cacheprovider -n 3 --dist loadfile

lock:
	@bash scripts/lock.sh

bench: setup
	.venv/bin/python -m benchmarks
