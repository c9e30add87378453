"""The Allure description of a check, written by ``acpcheck run --alluredir`` and rendered by
Allure's own command line: the docstring's paragraphs as paragraphs (its hard wraps are not
line breaks), reST ``code`` as code, then the fix.

Allure renders a result's ``description`` as Markdown (``descriptionHtml`` in the report it
generates). Without the Allure command line (scripts/setup-system.sh installs it, as for
tests/unit/test_allure.py) only the result files are checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from runner import acpcheck

from acpcheck.catalog import load_catalog
from acpcheck.report.allure import description

ROOT = Path(__file__).resolve().parents[2]
ALLURE = (
    os.environ.get("ACPCHECK_ALLURE") or shutil.which("allure") or "/opt/acpcheck-test-tools/node_modules/.bin/allure"
)
#: A rationale with ``code`` (a cluster check, SKIP without a kubeconfig) and one of several paragraphs.
CHECKS = ("ACP-REG-002", "ACP-VER-002")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("allure")
    selection = [argument for check in CHECKS for argument in ("--check", check)]
    plan = str(ROOT / "examples" / "workload-kube-ovn.yaml")
    done = acpcheck(
        "run", "--plan", plan, "--profile", "upgrade", *selection, "--out", str(directory / "out"),
        "--alluredir", str(directory / "results"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return directory / "results"


def descriptions(results: Path) -> dict[str, str]:
    written = [json.loads(path.read_text()) for path in results.glob("*-result.json")]
    return {result["name"].split()[0]: result["description"] for result in written}


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())]


def test_paragraphs_are_unwrapped_and_code_is_markdown(results: Path) -> None:
    catalog = load_catalog()
    written = descriptions(results)
    assert sorted(written) == sorted(CHECKS)
    for check, text in written.items():
        meta = catalog[check]
        assert "``" not in text
        # each paragraph of the docstring is one line, with the same words
        expected = [p.replace("``", "`") for p in paragraphs(meta.rationale)] + [f"Fix: {meta.remediation}"]
        assert text.split("\n\n") == expected
    assert "(`/v2/…`, `/auth/token`)" in written["ACP-REG-002"]
    assert len(paragraphs(catalog["ACP-VER-002"].rationale)) == 2


def test_lists_and_words_cut_at_a_hyphen() -> None:
    text = description("Ranges:\n\n- 172.17.x.x-\n  172.18.x.x\n- the ``bip``\n  setting\n\nDone.", "Run ``x``.")
    assert text == "Ranges:\n\n- 172.17.x.x-172.18.x.x\n- the `bip` setting\n\nDone.\n\nFix: Run `x`."


@pytest.mark.skipif(not Path(ALLURE).exists() and shutil.which(ALLURE) is None, reason="no Allure command line")
def test_allure_renders_paragraphs_and_code(results: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [ALLURE, "generate", str(results), "-o", str(tmp_path / "report"), "--clean"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cases: list[dict[str, Any]] = [
        json.loads(path.read_text()) for path in (tmp_path / "report" / "data" / "test-cases").glob("*.json")
    ]
    html = {case["name"].split()[0]: case["descriptionHtml"] for case in cases}
    assert "<code>/v2/…</code>" in html["ACP-REG-002"] and "``" not in html["ACP-REG-002"]
    # the two paragraphs of the rationale and the fix: three paragraphs, no line break inside one
    assert html["ACP-VER-002"].count("<p>") == 3
    assert all("\n" not in p and "<br" not in p for p in re.findall(r"<p>(.*?)</p>", html["ACP-VER-002"], re.S))
