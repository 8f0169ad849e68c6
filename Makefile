.PHONY: setup demo test lint bench lab lock

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/vditui --demo

lab: setup
	.venv/bin/vditui lab up

test: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q -p no:cacheprovider

lock:
	@bash scripts/lock.sh

bench: setup
	.venv/bin/python -m benchmarks
