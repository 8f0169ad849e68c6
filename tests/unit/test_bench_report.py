"""The benchmark summary goes between its markers, only where they stand on lines of their own."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.report import BEGIN, END, update_readme

RESULTS = Path(__file__).parents[2] / "benchmarks" / "results" / "latest.json"


def test_summary_replaces_the_block_and_leaves_quoted_markers(tmp_path: Path) -> None:
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    prose = f"The table sits between `{BEGIN}` and `{END}` markers, quoted here."
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\n{prose}\n\n{BEGIN}\nold table\n{END}\n\nafter\n", encoding="utf-8")
    assert update_readme(results, (readme,)) == [readme]
    text = readme.read_text(encoding="utf-8")
    assert prose in text and "old table" not in text and text.endswith("\nafter\n")
    assert text.count(BEGIN) == 2 and "| target | measured | verdict |" in text
    assert text.index("| target |") > text.index(prose)


def test_no_block_no_change(tmp_path: Path) -> None:
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    readme = tmp_path / "README.md"
    readme.write_text(f"only quoted: `{BEGIN}` … `{END}`\n", encoding="utf-8")
    assert update_readme(results, (readme,)) == []
    assert readme.read_text(encoding="utf-8") == f"only quoted: `{BEGIN}` … `{END}`\n"
