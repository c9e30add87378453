"""reports/results.schema.json describes what `acpcheck run` really writes.

Real runs (plan profile, so no connection and no lab) of every example plan, with
and without waivers, must validate; documents with typical mistakes must not; and
the schema's enums must stay equal to the code's statuses, severities and areas.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from acpcheck.model.check import AREAS, ID_PATTERN, Severity
from acpcheck.model.result import Status, exit_code

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PLANS = sorted(EXAMPLES.glob("*.yaml")) + sorted((EXAMPLES / "defective").glob("*.yaml"))
DEFECTIVE = EXAMPLES / "defective" / "workload-with-defects.yaml"
SCHEMA_FILE = ROOT / "reports" / "results.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def acpcheck_run(plan: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    """`acpcheck run --profile plan` as a user runs it; (exit code, results.json)."""
    script = Path(sys.executable).with_name("acpcheck")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "acpcheck"]
    process = subprocess.run(
        [*command, "run", "--plan", str(plan), "--profile", "plan", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert (out / "results.json").exists(), process.stdout + process.stderr
    return process.returncode, json.loads((out / "results.json").read_text())


def assert_valid(validator: jsonschema.Draft202012Validator, document: dict[str, Any]) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(document)
    ]
    assert not errors, "\n".join(errors[:20])
    # What a schema cannot say: the counts add up, and the area is the id's.
    counted = {str(s): sum(r["status"] == str(s) for r in document["results"]) for s in Status}
    assert document["summary"] == counted
    assert all(r["check"].split("-")[1] == r["area"] for r in document["results"])


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_run_matches_the_schema(
    plan: Path, tmp_path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    code, document = acpcheck_run(plan, tmp_path / "out")
    assert_valid(validator, document)
    assert code == document["run"]["exitCode"]


def test_run_with_live_and_expired_waivers_matches_the_schema(
    tmp_path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    _, plain = acpcheck_run(DEFECTIVE, tmp_path / "plain")
    failing = sorted({r["check"] for r in plain["results"] if r["status"] == "fail"})
    assert len(failing) >= 2, "the defective example needs two failing checks for this test"
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n"
        f"  - {{check: {failing[0]}, target: plan, reason: accepted for the test, owner: qa@example.com, "
        f"expires: {dt.date.today() + dt.timedelta(days=365)}}}\n"
        f"  - {{check: {failing[1]}, target: 'node:*', reason: long gone, owner: qa@example.com, expires: "
        f"2000-01-01}}\n"
    )
    code, document = acpcheck_run(DEFECTIVE, tmp_path / "out", "--waivers", str(waivers))
    assert_valid(validator, document)
    waived = [r for r in document["results"] if r["status"] == "waived"]
    assert {r["check"] for r in waived} == {failing[0]} and all(
        r["waiver"]["owner"] == "qa@example.com" for r in waived
    )
    assert [w["check"] for w in document["expiredWaivers"]] == [failing[1]]
    assert code == document["run"]["exitCode"] == 1


def test_schema_enums_are_the_codes(validator: jsonschema.Draft202012Validator) -> None:
    defs = validator.schema["$defs"]
    assert defs["status"]["enum"] == [str(s) for s in Status]
    assert defs["severity"]["enum"] == [str(s) for s in sorted(Severity, reverse=True)]
    assert defs["area"]["enum"] == list(AREAS)
    assert defs["checkId"]["pattern"] == ID_PATTERN.pattern.replace(r"\d{3}", "[0-9]{3}")
    assert list(defs["summary"]["properties"]) == defs["summary"]["required"] == [str(s) for s in Status]
    reachable = {
        exit_code(dict.fromkeys(defs["summary"]["required"], 0) | {status: 1}, expired)
        for status in defs["summary"]["required"]
        for expired in (0, 1)
    }
    reachable.add(exit_code(dict.fromkeys(defs["summary"]["required"], 0)))
    assert reachable <= set(defs["run"]["properties"]["exitCode"]["enum"])


def _first(status: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: next(r for r in d["results"] if r["status"] == status)


MISTAKES: dict[str, Callable[[dict[str, Any]], None]] = {
    "missing summary key": lambda d: d["summary"].pop("waived"),
    "extra summary key": lambda d: d["summary"].update(unknown=0),
    "negative count": lambda d: d["summary"].update(fail=-1),
    "count as text": lambda d: d["summary"].update(fail="5"),
    "missing run.exitCode": lambda d: d["run"].pop("exitCode"),
    "exit code 3": lambda d: d["run"].update(exitCode=3),
    "unknown top-level key": lambda d: d.update(extra=True),
    "missing expiredWaivers": lambda d: d.pop("expiredWaivers"),
    "wrong schema id": lambda d: d.update(schema="acpcheck/results/v1"),  # readers take v1; the schema is v2's
    "result without its cluster": lambda d: _first("fail")(d).pop("cluster"),
    "run without fleet": lambda d: d["run"].pop("fleet"),
    "fleet without clusters": lambda d: d["run"].update(
        fleet={"name": "prod", "file": "f.yaml", "acp": "4.3", "clusters": []}
    ),
    "unknown status": lambda d: _first("fail")(d).update(status="failed"),
    "upper-case severity": lambda d: _first("fail")(d).update(severity="HIGH"),
    "unknown area": lambda d: _first("fail")(d).update(area="DNS"),
    "malformed check id": lambda d: _first("fail")(d).update(check="ACP-NET-1"),
    "old target 'nodes'": lambda d: _first("fail")(d).update(target="nodes"),
    "bare node target": lambda d: _first("fail")(d).update(target="node:"),
    "misspelt result key": lambda d: _first("fail")(d).update(taget=_first("fail")(d).pop("target")),
    "waived without waiver": lambda d: _first("fail")(d).update(status="waived"),
    "waiver on a fail": lambda d: _first("fail")(d).update(
        waiver={"check": "ACP-*", "target": "plan", "reason": "r", "owner": "o", "expires": "2099-01-01"}
    ),
    "ref not https": lambda d: _first("fail")(d).update(refs=["http://example.com"]),
    "timestamp not UTC": lambda d: d["run"].update(started="2026-01-01T10:00:00+01:00"),
}


@pytest.fixture(scope="module")
def defective_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    _, document = acpcheck_run(DEFECTIVE, tmp_path_factory.mktemp("defective"))
    return document


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mutated_document_is_rejected(
    mistake: str, defective_document: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    assert validator.is_valid(defective_document)
    broken = copy.deepcopy(defective_document)
    MISTAKES[mistake](broken)
    assert not validator.is_valid(broken), mistake
