"""The alert rules in docs/ checked and run by Prometheus's own promtool against made-up series
(tests/prometheus/vditui-alerts.test.yml), and the metric names they read checked against what
the exporter serves."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vditui.core.metrics import MetricsState

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "vditui-alerts.yml"
RULE_TESTS = ROOT / "tests" / "prometheus" / "vditui-alerts.test.yml"
MONITORING = ROOT / "docs" / "monitoring.md"

pytestmark = pytest.mark.timeout(60)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: scripts/setup.sh installs Debian's prometheus package"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def test_promtool_check_rules():
    r = promtool("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 5 rules found" in r.stdout


def test_promtool_test_rules():
    r = promtool("test", "rules", str(RULE_TESTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_promtool_test_rules_fails_on_a_wrong_expectation(tmp_path):
    # The same tests with one expectation turned around must fail: promtool really evaluates
    # the rules (a test file it silently ignored would pass both ways).
    text = RULE_TESTS.read_text()
    wrong = text.replace("      - eval_time: 14m\n        alertname: VdituiDriftConfirmed\n"
                         "        exp_alerts: []\n",
                         "      - eval_time: 14m\n        alertname: VdituiDriftConfirmed\n"
                         "        exp_alerts:\n          - exp_labels: {severity: warning}\n", 1)
    assert wrong != text
    (tmp_path / "docs").mkdir()
    shutil.copy(RULES, tmp_path / "docs" / RULES.name)
    (tmp_path / "t" / "p").mkdir(parents=True)
    (tmp_path / "t" / "p" / RULE_TESTS.name).write_text(wrong)
    r = promtool("test", "rules", str(tmp_path / "t" / "p" / RULE_TESTS.name))
    assert r.returncode != 0
    assert "VdituiDriftConfirmed" in r.stdout + r.stderr


def test_rules_read_only_metrics_the_exporter_serves():
    served = {f.name for f in MetricsState(60.0).families()} | {"up"}
    used = set(re.findall(r"\b(vditui_[a-z_]+|up)\{", RULES.read_text()))
    used |= set(re.findall(r"expr: (vditui_[a-z_]+)\b", RULES.read_text()))
    assert used and used <= served, used - served


def test_monitoring_doc_points_at_the_rules_and_names_every_metric():
    doc = MONITORING.read_text()
    assert "vditui-alerts.yml" in doc
    for f in MetricsState(60.0).families():
        name = f.name + ("_total" if f.kind == "counter" else "")
        assert f"`{name}`" in doc, name
