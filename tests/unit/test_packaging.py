"""pyproject.toml lists every package, so a new subpackage cannot be left out of the wheel.

setuptools is given an explicit package list (the top-level checks/, profiles/ and
reports/ are mapped into ``acpcheck``), so it finds nothing by itself: a package
missing here works in the editable checkout and is absent from the wheel.
scripts/check-wheel.sh proves the wheel itself.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Packages whose code lives at the top level of the checkout, not under acpcheck/.
MAPPED = {"acpcheck.checks": "checks", "acpcheck.profiles": "profiles", "acpcheck.reports": "reports"}


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_packages_are_the_directories_with_an_init() -> None:
    on_disk = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "acpcheck").rglob("__init__.py")}
    assert sorted(_setuptools()["packages"]) == sorted(on_disk | set(MAPPED))


def test_top_level_directories_are_mapped_into_acpcheck() -> None:
    package_dir = _setuptools()["package-dir"]
    assert package_dir == {"acpcheck": "acpcheck", **MAPPED}
    for directory in MAPPED.values():
        assert (ROOT / directory / "__init__.py").is_file(), directory


def test_report_files_are_package_data() -> None:
    patterns = _setuptools()["package-data"]["acpcheck.reports"]
    for name in ("report.html.j2", "results.schema.json"):
        assert (ROOT / "reports" / name).is_file(), name
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
