"""pyproject.toml lists every package, so a new subpackage cannot be left out of the wheel.
The same holds for the lab's own distribution, acpcheck-lab (lab/pyproject.toml), which the
product's wheel leaves out.

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


LAB = ROOT / "lab"


def _setuptools(project: Path = ROOT) -> dict:
    return tomllib.loads((project / "pyproject.toml").read_text())["tool"]["setuptools"]


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


def test_the_product_leaves_the_lab_out() -> None:
    assert not (ROOT / "acpcheck" / "lab").exists()
    setuptools = _setuptools()
    assert not [name for name in setuptools["packages"] if "lab" in name.split(".")]
    assert not [pattern for patterns in setuptools["package-data"].values() for pattern in patterns if "lab" in pattern]


def test_lab_packages_are_the_directories_with_an_init() -> None:
    on_disk = {".".join(init.parent.relative_to(LAB).parts) for init in (LAB / "acpcheck_lab").rglob("__init__.py")}
    assert sorted(_setuptools(LAB)["packages"]) == sorted(on_disk)


def test_lab_data_files_are_package_data() -> None:
    # Scenarios and CRDs are read at run time (shipped_scenarios, the test API server's types).
    patterns = _setuptools(LAB)["package-data"]["acpcheck_lab"]
    data = [path.relative_to(LAB / "acpcheck_lab").as_posix() for path in (LAB / "acpcheck_lab").rglob("*.yaml")]
    assert any(name.startswith("scenarios/") for name in data) and any(name.startswith("crds/") for name in data)
    for name in data:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


def test_lab_registers_its_command_for_acpcheck() -> None:
    project = tomllib.loads((LAB / "pyproject.toml").read_text())["project"]
    assert project["name"] == "acpcheck-lab"
    assert "acpcheck" in project["dependencies"]
    assert project["entry-points"]["acpcheck.commands"] == {"lab": "acpcheck_lab.cli:main"}
