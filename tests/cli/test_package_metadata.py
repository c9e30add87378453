"""What an installer and a package index read about acpcheck and acpcheck-lab: license,
classifiers and project URLs, as declared in their pyproject.toml files.

Classifiers are checked against the official list (the ``trove-classifiers`` package,
the list PyPI itself accepts); a misspelt one makes an upload fail, and
``Framework :: Pytest`` is how pytest's plugin list finds acpcheck. scripts/check-wheel.sh
proves that the built wheels carry the LICENSE in their dist-info.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from trove_classifiers import classifiers as official
from trove_classifiers import deprecated_classifiers

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = {"acpcheck": ROOT, "acpcheck-lab": ROOT / "lab"}


def project(name: str) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((PROJECTS[name] / "pyproject.toml").read_text())["project"]
    return data


@pytest.mark.parametrize("name", PROJECTS)
def test_classifiers_are_official_and_current(name: str) -> None:
    declared = project(name)["classifiers"]
    assert declared, f"{name} declares no classifiers"
    assert [c for c in declared if c not in official] == [], "not on the official list"
    assert [c for c in declared if c in deprecated_classifiers] == [], "deprecated"
    assert declared == sorted(set(declared)), "sorted, each once"


def test_pytest_finds_the_plugin_by_its_classifier() -> None:
    assert "Framework :: Pytest" in project("acpcheck")["classifiers"]
    assert project("acpcheck")["entry-points"]["pytest11"] == {"acpcheck": "acpcheck.plugin"}


@pytest.mark.parametrize("name", PROJECTS)
def test_python_versions_follow_requires_python(name: str) -> None:
    """Each listed Python version is allowed by requires-python, and the oldest allowed one is listed."""
    metadata = project(name)
    allowed = SpecifierSet(metadata["requires-python"])
    versions = [
        Version(match.group(1))
        for c in metadata["classifiers"]
        if (match := re.fullmatch(r"Programming Language :: Python :: (\d+\.\d+)", c))
    ]
    assert versions and all(version in allowed for version in versions)
    assert min(versions) == Version(re.sub(r"[^\d.]", "", metadata["requires-python"]))
    assert "Programming Language :: Python :: 3 :: Only" in metadata["classifiers"]


@pytest.mark.parametrize("name", PROJECTS)
def test_license_file_is_the_declared_license(name: str) -> None:
    """The SPDX expression says Apache-2.0 and the file it ships is that license's full
    text (the lab ships the same file: a distribution's license files lie inside its directory)."""
    metadata = project(name)
    assert metadata["license"] == "Apache-2.0"
    assert metadata["license-files"] == ["LICENSE"]
    text = (PROJECTS[name] / "LICENSE").read_text()
    assert text.split() == (ROOT / "LICENSE").read_text().split()
    words = " ".join(text.split())
    assert words.startswith("Apache License Version 2.0, January 2004 http://www.apache.org/licenses/")
    assert "END OF TERMS AND CONDITIONS" in words and "APPENDIX: How to apply the Apache License" in words
    assert not [c for c in metadata["classifiers"] if c.startswith("License ::")], "PEP 639: the expression only"


def test_project_urls_are_absolute_https() -> None:
    urls = project("acpcheck")["urls"]
    assert urls and all(url.startswith("https://") for url in urls.values())
