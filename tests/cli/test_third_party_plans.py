"""Plans of clusters ACP does not build (imported, registered) may leave ``spec.network`` out.

A real ``acpcheck run`` of such a plan completes, and every check that needs the
network section SKIPs with one reason; a plan of a cluster ACP builds still needs it
(exit 4, naming file, line and field).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_cli import BASE, EXAMPLES, acpcheck

from acpcheck.catalog import load_catalog
from acpcheck.model.check import Scope

NO_NETWORK = "the plan has no network section (imported/registered clusters may omit it)"
#: The plan checks that read spec.network (tests/checks/test_no_network.py keeps this mark honest).
NETWORK_CHECKS = {
    check_id for check_id, meta in load_catalog().items() if meta.scope is Scope.PLAN and meta.applies.reads_network
}


def imported_without_network(tmp_path: Path) -> Path:
    data = yaml.safe_load((EXAMPLES / "imported-cluster.yaml").read_text())
    del data["spec"]["network"]
    path = tmp_path / "imported.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_plan_only(plan: Path, out: Path) -> dict:
    result = acpcheck("run", "--plan", str(plan), "--profile", "plan", "--out", str(out))
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return json.loads((out / "results.json").read_text())


def test_the_catalogue_has_network_checks() -> None:
    assert {"ACP-NET-001", "ACP-NET-002", "ACP-VER-005", "ACP-UPG-004"} <= NETWORK_CHECKS


@pytest.mark.parametrize("kind", ["imported", "registered"])
def test_plan_without_network_runs_and_skips_what_needs_it(kind: str, tmp_path: Path) -> None:
    plan = imported_without_network(tmp_path) if kind == "imported" else EXAMPLES / "registered-cluster.yaml"
    assert "network" not in yaml.safe_load(plan.read_text())["spec"]
    document = run_plan_only(plan, tmp_path / "out")
    assert document["summary"]["error"] == 0
    results = document["results"]
    by_check = {r["check"]: r for r in results}
    assert NETWORK_CHECKS <= set(by_check), sorted(NETWORK_CHECKS - set(by_check))
    for check_id in sorted(NETWORK_CHECKS):
        result = by_check[check_id]
        assert result["status"] == "skip" and NO_NETWORK in result["message"], (
            check_id,
            result["status"],
            result["message"],
        )
    # Nothing else is skipped for that reason, and the plan is still judged.
    assert not [r["check"] for r in results if NO_NETWORK in r["message"] and r["check"] not in NETWORK_CHECKS]
    assert by_check["ACP-VER-003"]["status"] == "pass"


def test_imported_plan_with_network_still_checks_it(tmp_path: Path) -> None:
    document = run_plan_only(EXAMPLES / "imported-cluster.yaml", tmp_path / "out")
    by_check = {r["check"]: r for r in document["results"]}
    assert by_check["ACP-NET-001"]["status"] == "pass"
    assert not [r["check"] for r in document["results"] if NO_NETWORK in r["message"]]


def _without_network(text: str) -> str:
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("  network:"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("    "))
    return "".join(lines[:start] + lines[end:])


def test_workload_on_premise_plan_without_network_exits_4(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    text = _without_network(BASE)
    assert "type: on-premise" in text and "network:" not in text
    plan.write_text(text)
    result = acpcheck("run", "--plan", str(plan), "--out", str(tmp_path / "out"))
    assert result.returncode == 4, result.stdout + result.stderr
    line = next(number for number, content in enumerate(text.splitlines(), 1) if content == "spec:")
    assert f"{plan}:{line}: spec.network: required for cluster type on-premise" in result.stderr
    assert "only imported and registered clusters may omit it" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "out").exists()


def test_validate_names_the_missing_network_too(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(_without_network(BASE).replace("ipFamily: ipv4", "ipFamily: ipv5"))
    result = acpcheck("validate", "--plan", str(plan))
    assert result.returncode == 4
    assert (
        "spec.network: required for cluster type on-premise" in result.stderr
        and "spec.cluster.ipFamily" in result.stderr
    )


def test_explain_says_the_check_needs_a_network_section() -> None:
    result = acpcheck("list", "--json", "--area", "net")
    applies = {c["id"]: c["applies"] for c in json.loads(result.stdout)}
    assert applies["ACP-NET-001"] == "plans with a network section"
