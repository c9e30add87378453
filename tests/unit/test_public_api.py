"""The public API for check authors: ``import acpcheck`` gives every name a check needs,
and costs little (the pytest plugin and the CLI import it on every start, issue 21):
the names are imported on first use, so pydantic and the plan model stay out."""

from __future__ import annotations

import json
import subprocess
import sys

import acpcheck

AUTHOR_NAMES = {
    "check",
    "When",
    "Severity",
    "Scope",
    "NodeContext",
    "NodeSet",
    "TargetUnavailable",
    "fail",
    "fail_if",
    "warn",
    "manual",
    "skip",
}


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_import_acpcheck_imports_neither_pydantic_nor_the_models() -> None:
    loaded = imported_after("import acpcheck")
    assert not {m for m in loaded if m == "pydantic" or m.startswith("pydantic.")}
    assert not {m for m in loaded if m.startswith("acpcheck.") and m != "acpcheck"}


def test_the_report_helpers_cost_no_pydantic_either() -> None:
    loaded = imported_after("from acpcheck import check, fail, Severity, Scope, When")
    assert "acpcheck.model.check" in loaded and "pydantic" not in loaded


def test_every_author_name_is_exported_and_resolves() -> None:
    assert AUTHOR_NAMES <= set(acpcheck.__all__)
    for name in acpcheck.__all__:
        assert getattr(acpcheck, name) is not None, name
    assert AUTHOR_NAMES <= set(dir(acpcheck))


def test_the_names_are_the_ones_their_modules_define() -> None:
    from acpcheck.facts.model import NodeContext
    from acpcheck.model.check import check
    from acpcheck.sources.base import TargetUnavailable

    assert acpcheck.check is check and acpcheck.NodeContext is NodeContext
    assert acpcheck.TargetUnavailable is TargetUnavailable


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        acpcheck.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("acpcheck.no_such_name resolved")
