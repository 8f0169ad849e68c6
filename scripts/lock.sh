#!/usr/bin/env bash
# Refreshes requirements.lock: resolves `pip install -e '.[test]'` in a fresh temporary venv (not
# .venv, which may hold extras) and writes what it installed. Run by `make lock`.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
{
  echo "# The versions \`make test\`, CI (.ci/run) and the benchmarks install: every package of"
  echo "# \`pip install -e '.[test]'\`, resolved once in a fresh venv (scripts/setup.sh installs with"
  echo "# \`-c requirements.lock\`). pyproject.toml keeps the ranges users install from."
  echo "# Written by \`make lock\` (scripts/lock.sh); commit it once \`make test\` passes on it."
  "$tmp/venv/bin/python" -m pip freeze --disable-pip-version-check --exclude-editable
} > "$tmp/lock"
mv "$tmp/lock" requirements.lock
echo "lock: requirements.lock written ($(grep -vc '^#' requirements.lock) packages); run make test"
