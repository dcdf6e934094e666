"""The batch types live in a leaf module, so the sources and validation import each other's side in any order."""

from __future__ import annotations

import subprocess
import sys

import pytest

FIRST_IMPORTS = [
    "onec.sources.typing",
    "onec.validation",
    "onec.sources",
    "onec.sources.csv_export",
    "onec.sources.ude_xml",
    "onec.sources.exports",
    "onec.sync",
]


@pytest.mark.parametrize("module", FIRST_IMPORTS)
def test_any_module_can_be_imported_first(module: str) -> None:
    """A fresh interpreter per module: in one process, whichever test ran first would hide a cycle."""
    imported = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120, check=False
    )
    assert imported.returncode == 0, imported.stderr
