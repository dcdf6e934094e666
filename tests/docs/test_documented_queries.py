"""Every query the documentation shows returns rows on the demo's output.

A code block is run by its language: `sql` statements against `data/warehouse.duckdb` (or, after a
`<!-- doc-test: lake -->` line, against the Parquet lake through `views.sql`, as an analyst with DuckDB alone would),
`python` as a script from the folder holding `data/` (after a `<!-- doc-test: delta -->` line, once `data/delta/`
holds the Delta lake, written from the warehouse by `onec-etl check` with ONEC_LAKE_FORMAT=delta), and in `bash`
blocks every `onec-etl query` line. Other shell
lines are commands, not queries: the tests of their own commands cover them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from onec.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(
    r"(?:^<!-- doc-test: (?P<mark>[a-z]+) -->\n)?^```(?P<language>[a-z]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL
)
_QUERY_LINE = re.compile(r"^(?:\./dev )?onec-etl query ")


@dataclass(frozen=True)
class Block:
    source: str
    line: int
    language: str
    mark: str | None
    body: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}"


def _blocks() -> list[Block]:
    found = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("language")) + 1
            found.append(Block(path.name, line, match["language"], match["mark"], match["body"]))
    return found


def _statements(sql: str) -> list[str]:
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


QUERY_BLOCKS = [b for b in _blocks() if b.language in ("sql", "python") or any(
    _QUERY_LINE.match(line) for line in b.body.splitlines()
)]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`onec-etl demo` run as a user runs it: from a folder, writing the default `data/` there."""
    folder = tmp_path_factory.mktemp("demo")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ONEC_")}
    command = [sys.executable, "-m", "onec.cli", "demo", "--documents", "1200"]
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def test_the_documentation_has_queries_to_check() -> None:
    languages = {b.language for b in QUERY_BLOCKS}
    assert {"sql", "python", "bash"} <= languages and len(QUERY_BLOCKS) >= 5


@pytest.mark.parametrize("block", QUERY_BLOCKS, ids=str)
def test_documented_query_returns_rows(
    block: Block, demo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(demo)
    if block.language == "sql":
        _run_sql(block)
    elif block.language == "python":
        if block.mark == "delta":
            _write_delta_lake(monkeypatch, capsys)
        _run_python(block, demo)
    else:
        _run_query_lines(block, monkeypatch, capsys)


def _run_sql(block: Block) -> None:
    if block.mark == "lake":
        os.chdir("data/lake")
        con = duckdb.connect()
        con.execute(Path("views.sql").read_text(encoding="utf-8"))
    else:
        con = duckdb.connect("data/warehouse.duckdb", read_only=True)
    for statement in _statements(block.body):
        rows = con.execute(statement).fetchall()
        assert rows, f"{block}: no rows from\n{statement}"


def _write_delta_lake(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's Delta lake, as a user switching to it gets it: `onec-etl check` writes what the lake lacks."""
    monkeypatch.setenv("ONEC_DATA_DIR", "data")
    monkeypatch.setenv("ONEC_LAKE_FORMAT", "delta")
    assert main(["check"]) == 0, capsys.readouterr().out
    assert Path("data/delta/documents/_delta_log").is_dir()


def _run_python(block: Block, demo: Path) -> None:
    result = subprocess.run([sys.executable, "-c", block.body], cwd=demo, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{block}: {result.stderr[-2000:]}"
    assert result.stdout.strip() and "shape: (0," not in result.stdout, f"{block}: no rows\n{result.stdout}"


def _run_query_lines(block: Block, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ONEC_DATA_DIR", "data")
    for line in block.body.splitlines():
        if not _QUERY_LINE.match(line):
            continue
        words = shlex.split(line, comments=True)
        args = words[words.index("query") :]
        capsys.readouterr()
        assert main(args) == 0, f"{block}: {line}"
        output = capsys.readouterr().out
        if "--format" in args and args[args.index("--format") + 1] == "json":
            assert json.loads(output), f"{block}: no rows from {line}"
        else:
            assert len(output.strip().splitlines()) >= 2, f"{block}: no rows from {line}\n{output}"
