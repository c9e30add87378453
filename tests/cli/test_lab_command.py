"""``acpcheck lab`` is the separate acpcheck-lab distribution (lab/), found through its entry
point (group ``acpcheck.commands``, name ``lab``): with it installed the command is the lab's
own; without it, one line says what to install and the exit code is 4 (bad input).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from runner import acpcheck

ROOT = Path(__file__).resolve().parents[2]

# `acpcheck lab up` in a Python whose entry-point lookup finds nothing: as if acpcheck-lab were not installed.
WITHOUT_LAB = """
import importlib.metadata, sys
importlib.metadata.entry_points = lambda **selection: importlib.metadata.EntryPoints(())
from acpcheck.cli import main
sys.exit(main(["lab", "up"]))
"""


def test_without_the_lab_one_line_says_how_to_install_it() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_LAB], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 4, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "acpcheck-lab" in lines[0]
    assert "pip install ./lab" in lines[0] and "pip install acpcheck-lab" in lines[0]


def test_with_the_lab_installed_the_command_is_the_labs() -> None:
    result = acpcheck("lab", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: acpcheck lab ")
    assert "not installed" not in result.stderr


def test_the_product_does_not_import_the_lab() -> None:
    # The dependency runs one way: acpcheck-lab builds on acpcheck, never the reverse.
    product = [*(ROOT / "acpcheck").rglob("*.py"), *(ROOT / "checks").rglob("*.py")]
    assert product
    importers = [str(path.relative_to(ROOT)) for path in product if "acpcheck_lab" in _imported(path)]
    assert importers == []


def _imported(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports (in functions and TYPE_CHECKING blocks too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names
