"""The commands package: one registry that the parser, the dispatch and the README's exit-code
table all come from, and no import cycle anywhere in vditui."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import grimp

from vditui.cli import build_parser
from vditui.commands.registry import COMMANDS, command, exit_table
from vditui.core.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def import_cycles(package: str) -> list[list[str]]:
    """The strongly connected groups of more than one module in ``package``'s import graph
    (imports inside functions and under ``TYPE_CHECKING`` included: a cycle only the type
    checker sees is still two modules that cannot be understood apart)."""
    graph = grimp.build_graph(package)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return found


def test_no_module_of_vditui_imports_itself_through_others() -> None:
    assert import_cycles("vditui") == []


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "cyc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from cyc import b\n")
    (pkg / "b.py").write_text("from cyc import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("cyc") == [["cyc.a", "cyc.b"]]


def test_every_command_of_the_registry_is_on_the_command_line_and_runs_from_it() -> None:
    parser = build_parser()
    listed = re.findall(r"^    (\w+) ", parser.format_help(), re.M)
    assert listed == [c.name for c in COMMANDS]
    for c in COMMANDS:
        assert command(c.name) is c
        assert callable(c.load()), c.run
        assert set(c.exits) <= set(ExitCode)


def test_the_readme_exit_code_table_is_the_registry_s() -> None:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- exit-codes:[^>]*-->\n(.*?)<!-- /exit-codes -->", text, re.S)
    assert m is not None, "README.md has no exit-code table between its markers"
    assert m.group(1) == exit_table()


def test_report_to_a_directory_is_one_line_and_exit_2_before_any_pass(
        tmp_path: Path, capsys) -> None:
    import argparse
    import asyncio

    from vditui.commands.report import cmd_report
    from vditui.core.settings import EngineSettings

    # An unroutable platform: the refusal must come before the engine would try it.
    settings = EngineSettings(url="http://127.0.0.1:9", username="u", password="p")
    args = argparse.Namespace(format="md", output=str(tmp_path))
    assert asyncio.run(cmd_report(args, settings, [])) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert err == (f"vditui: report: cannot write {tmp_path}: it is a directory; give a file "
                   "name, e.g. -o DIR/report.md\n")
